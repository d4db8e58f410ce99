"""Read users, groups and memberships from a Microsoft Entra ID tenant through Microsoft Graph v1.0.

Built on :mod:`connectors.kit`; settings and credentials are in :mod:`connectors.entra_settings`.
The app needs the application permissions ``User.Read.All`` and ``GroupMember.Read.All``, with
admin consent ("List group transitive members" names GroupMember.Read.All the least privileged).

**Full read** (first run, ``--full-resync``, scope changed, ``full_read_every`` passed, or an
expired delta link):

1. ``/users/delta?$deltatoken=latest`` — the users delta link *before* reading, so nothing
   that changes during the read is missed (a change seen twice is harmless);
2. ``/users`` with an explicit ``$select``, ``$expand=manager($select=id)`` and ``$top=999``
   ("List users": ``accountEnabled`` and ``userType`` are not default properties) — not with
   ``users = "members"``: the member listings then carry the members' whole records instead, so
   only members of synced groups are read at all;
3. the initial round of ``/groups/delta?$select=displayName,description,members``: every group's
   name and direct members in one pass, which gives the nesting graph and the groups delta link;
4. for every synced group, in the order listed, ``/transitiveMembers/microsoft.graph.user`` with
   ``ConsistencyLevel: eventual`` and ``$count=true`` on every page (the header is not part of
   the next link, "Paging Microsoft Graph data"), a few groups at a time. Members that are not
   users despite the cast (microsoftgraph/microsoft-graph-docs#11881, #17604) are skipped and
   counted by ``@odata.type``.

A full read tells ``ctx.listener`` the users after step 2, the synced groups after step 3, and
each group as its transitive listing ends (:mod:`connectors.kit.announce`); with
``users = "members"``, as each listing ends, first its members not told before
(``users_found``; a user in several groups keeps the first listing's record), then the group,
and every user again at the end. A delta read announces nothing.

**Delta read**: the two delta links, followed to their new delta links. Changed users are
merged into the kept directory; ``@removed`` users and groups leave it (the engine then
deactivates or deletes them). ``members@delta`` slices of one group, spread over pages, are
merged; replays change nothing. Delta reports *direct* members only, so the transitive members
of every synced group that a changed group is nested into (by the kept nesting graph) are read
again, and no others. A delta link that expired (400 ``syncStateNotFound``, after 7 days) or
that Graph reset (410) leads to a full read in the same run, logged with the reason
("Use delta query to track changes in Microsoft Graph data").

The delta links live in ``SourceRead.state``; the engine keeps a read's state only when the run
succeeds, so a failed run reads the same changes again next time.

Users: userName is ``userPrincipalName`` (or ``mail`` with ``username_attribute = "mail"``),
externalId the object id, ``accountEnabled = false`` is ``active = false`` (Entra has no
suspended state). Guests (``userType = Guest``, ``#EXT#`` UPNs) are skipped unless
``include_guests = true``; their userName is then their ``mail``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Container, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import structlog

from connectors.base import Deps, ReadContext, SourceError, SourceType, register
from connectors.entra_graph import (
    GROUP_SELECT,
    USER_SELECT,
    GraphLimits,
    GroupChanges,
    Nesting,
    merge_group_changes,
    pack_user,
    reshare_user,
    unpack_group,
    unpack_user,
    user_update,
)
from connectors.entra_settings import EntraSettings
from connectors.kit import (
    Announcer,
    ClientSecret,
    Delta,
    FederatedAssertion,
    FullReadNeeded,
    Http,
    KeptDirectory,
    KeySigner,
    OAuthToken,
    ODataLinks,
    PackedGroup,
    PackedUser,
    PrivateKeyJwt,
    bounded,
    json_or_empty,
    member_listings,
    pages,
    read_kept,
    scope_digest,
)
from syncd.errors import SourceAuthError
from syncd.model import RequestStats, SkipKind, Skipped, SourceRead
from syncd.normalise import Scope


__all__ = ["DeltaExpired", "EntraSettings", "EntraSource"]

log = structlog.get_logger(__name__)

USER_WIDTH = 12
GROUP_WIDTH = 3
PERMISSION = {"users": "User.Read.All", "groups": "GroupMember.Read.All", "members": "GroupMember.Read.All"}
# AADSTS codes of the token endpoint and what fixes each
# (https://learn.microsoft.com/entra/identity-platform/reference-error-codes).
_FIXES = {
    7000215: "the client secret is wrong: copy the secret's Value (not its Secret ID) from the app's "
    "Certificates & secrets page into source.entra.client_secret",
    7000222: "the client secret has expired: create a new one on the app's Certificates & secrets page "
    "and put its Value in source.entra.client_secret",
    700016: "no app with this client_id is registered in the tenant: check source.entra.client_id and tenant_id",
    90002: "the tenant does not exist: check source.entra.tenant_id (and login_url for a national cloud)",
    700027: "the certificate is not registered with the app: upload its public certificate on the app's "
    "Certificates & secrets page, or fix source.entra.certificate",
    700024: "the client assertion is outside its valid time: check this machine's clock, and that the "
    "federated token file is kept fresh",
    70021: "no federated credential of the app matches this token: add one (Certificates & secrets › "
    "Federated credentials) with the token's issuer and subject",
    700211: "no federated credential of the app trusts this token's issuer: add a federated credential for it",
    700212: "the token's audience does not match the app's federated credential (default api://AzureADTokenExchange)",
    1002012: "the scope is refused: check graph_url (the scope is {graph_url}/.default)",
    7000218: "no credential was sent: set client_secret, certificate or federated_token_file",
}


@dataclass(slots=True)
class _Listing:
    """One synced group's transitive users: ids, records (when asked), members skipped."""

    ids: list[str]
    users: dict[str, PackedUser]
    skipped: list[Skipped]


class DeltaExpired(SourceError, FullReadNeeded):
    """A delta link Graph no longer accepts (400 syncStateNotFound, or 410): read in full instead."""


class EntraSource:
    """Reads an Entra tenant; see the module docstring for what each read does."""

    def __init__(self, settings: EntraSettings, deps: Deps | None = None) -> None:
        deps = deps or Deps()
        self.settings = settings
        self._clock = deps.clock
        self._graph = f"{settings.graph_url}/v1.0"
        self._http = Http(
            deps,
            provider="Microsoft Graph",
            limits=GraphLimits(),
            max_retries=settings.max_retries,
            error=self._error,
            headers={"User-Agent": "syncd-entra-connector"},
        )
        self._pager = ODataLinks("Microsoft Graph")
        scopes = [settings.scope]
        grant: ClientSecret | PrivateKeyJwt | FederatedAssertion
        if settings.client_secret is not None:
            grant = ClientSecret(settings.client_id, settings.client_secret, scopes)
        elif settings.signing_key is not None:
            # "Microsoft identity platform certificate credentials": aud is the v2.0 token URL.
            grant = PrivateKeyJwt(
                settings.client_id,
                KeySigner(settings.signing_key),
                scopes,
                audience=settings.token_url,
                extra={"client_id": settings.client_id},
            )
        else:
            assert settings.federated_token_file is not None
            grant = FederatedAssertion(settings.client_id, settings.federated_token_file, scopes)
        self._http.auth = OAuthToken(self._http, settings.token_url, grant, clock=deps.clock, explain=self._refusal)

    @property
    def requests(self) -> int:
        """HTTP requests sent since this source was built (token requests and retries included)."""
        return self._http.requests

    @property
    def stats(self) -> RequestStats:
        """Those requests by HTTP status; a failed read leaves its requests here."""
        return self._http.stats

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- Entra's error advice ------------------------------------------------------------------

    def _refusal(self, status: int, body: Mapping[str, Any]) -> SourceAuthError:
        """Why the token endpoint gave no access token, and what fixes it."""
        error = str(body.get("error") or "unknown_error")
        description = str(body.get("error_description") or "no description").split(" Trace ID:")[0]
        codes = body.get("error_codes")
        code = codes[0] if isinstance(codes, list) and codes and isinstance(codes[0], int) else None
        message = (
            f"Entra refused an access token to app {self.settings.client_id} (HTTP {status}, {error}: {description})"
        )
        fix = _FIXES.get(code) if code is not None else None
        return SourceAuthError(f"{message}: {fix.format(graph_url=self.settings.graph_url)}" if fix else message)

    def _error(self, response: httpx2.Response, bucket: str) -> SourceError:
        """Turn a Graph error response into a SourceError ("Microsoft Graph error responses")."""
        body = json_or_empty(response)
        error = body.get("error") if isinstance(body, dict) else None
        code = str(error.get("code") or "no code") if isinstance(error, dict) else "no code"
        text = (
            str(error.get("message") or response.reason_phrase) if isinstance(error, dict) else response.reason_phrase
        )
        where = f"{response.request.method} {response.request.url.path}"
        status = response.status_code
        if status == 410 or (status == 400 and code == "syncStateNotFound"):
            return DeltaExpired(f"the {bucket} delta link is no longer valid (HTTP {status}, {code}: {text})")
        if status == 403:
            permission = PERMISSION.get(bucket, "User.Read.All and GroupMember.Read.All")
            return SourceAuthError(
                f"Microsoft Graph refused {where} (HTTP 403, {code}: {text}): the app needs the application "
                f"permission {permission} with admin consent; add it under API permissions › Microsoft Graph › "
                "Application permissions and press 'Grant admin consent'"
            )
        if status == 401:
            return SourceAuthError(
                f"Microsoft Graph rejected the access token even after fetching a new one (HTTP 401, {code}: "
                f"{text}): check that graph_url and login_url belong to the same cloud"
            )
        return SourceError(f"Microsoft Graph answered {where} with HTTP {status} ({code}: {text})")

    # -- listings ------------------------------------------------------------------------------

    async def _delta_round(
        self, url: str, bucket: str, each: Callable[[list[Any]], object], params: Mapping[str, str] | None = None
    ) -> str:
        """A delta round, each page's entries given to ``each`` as it arrives (not held: a full
        read's groups round carries every direct membership); the delta link it ends with."""
        link: str | None = None
        async for page in pages(self._http, url, self._pager, params=params, bucket=bucket, what=f"{bucket} delta"):
            each(page.items)
            link = ODataLinks.delta_link(page.body)
            del page  # before the next page is asked for
        if link is None:
            raise SourceError(f"Microsoft Graph ended the {bucket} delta round without a delta link")
        return link

    async def _users(self, skipped: list[Skipped]) -> dict[str, PackedUser]:
        params = {"$select": ",".join(USER_SELECT), "$expand": "manager($select=id)", "$top": "999"}
        users: dict[str, PackedUser] = {}
        async for page in pages(self._http, f"{self._graph}/users", self._pager, params=params, bucket="users"):
            for item in page.items:
                packed = pack_user(item, None)
                if isinstance(packed, Skipped):
                    skipped.append(packed)
                else:
                    users[packed[0]] = packed[1]
            del page  # 999 decoded users: not held while the next page is asked for
        return users

    async def _transitive(self, group_id: str, records: bool, held: Container[str] = frozenset()) -> _Listing | None:
        """The users nested anywhere below a group (with ``records``, the whole records of those
        not in ``held``, whose records the read has already); None when the group was deleted meanwhile."""
        url = f"{self._graph}/groups/{group_id}/transitiveMembers/microsoft.graph.user"
        # "List group transitive members": the cast is an advanced query.
        select = ",".join(USER_SELECT) if records else "id,userPrincipalName"
        params = {"$select": select, "$count": "true", "$top": "999"}
        ids: list[str] = []
        users: dict[str, PackedUser] = {}
        skipped: list[Skipped] = []
        others: dict[str, int] = {}
        found = False
        async for page in pages(
            self._http,
            url,
            self._pager,
            params=params,
            headers={"ConsistencyLevel": "eventual"},
            bucket="members",
            what=f"the members of group {group_id}",
            missing_ok=True,
        ):
            found = True
            for item in page.items:
                kind = (
                    str(item.get("@odata.type", "")).removeprefix("#microsoft.graph.") if isinstance(item, dict) else ""
                )
                member = item.get("id") if isinstance(item, dict) else None
                if not isinstance(member, str) or not member:
                    skipped.append(Skipped(SkipKind.MEMBERSHIP, f"{group_id}/?", "a member record without an id"))
                elif kind != "user":
                    others[kind or "unknown"] = others.get(kind or "unknown", 0) + 1
                    skipped.append(
                        Skipped(SkipKind.MEMBERSHIP, f"{group_id}/{member}", f"a {kind or 'member'} is not a user")
                    )
                elif item.get("userPrincipalName") is None:
                    # Limited information: only @odata.type and id ("directoryObject: getByIds").
                    raise SourceAuthError(
                        f"Microsoft Graph returned the members of group {group_id} with limited information: the "
                        "app needs the application permission User.Read.All with admin consent"
                    )
                else:
                    ids.append(sys.intern(member))  # one copy per user, not one per membership
                    if records and member not in held:
                        packed = pack_user(item, None)
                        if not isinstance(packed, Skipped):
                            users[member] = packed[1]
            del page  # before the next page is asked for
        if not found:
            log.info("entra.group_vanished", group=group_id)
            return None
        if others:
            log.info("entra.non_user_members", group=group_id, counts=others)
        return _Listing(ids, users, skipped)

    async def _resolve(
        self,
        group_ids: Iterable[str],
        users: dict[str, PackedUser] | None,
        skipped: list[Skipped],
        *,
        pack: Callable[[str, list[str]], PackedGroup] | None = None,
        announce: Announcer | None = None,
        held: Container[str] = frozenset(),
    ) -> dict[str, list[str] | None]:
        """Each group's transitive user ids (None: deleted meanwhile), by group id, a few groups
        at a time, listed in the order given. With ``pack`` (a full read), each group is announced
        as ``pack(id, members)`` as soon as its listing ends: transitive members are final.

        With ``users`` (``users = "members"``: no user listing), the members' records go there; in
        a full read a user in several groups keeps the first listing's record, announced (found)
        before that group. A member whose record the read holds already (in ``users``, or in
        ``held``: an incremental read's kept users, which its users delta keeps current) is not
        packed again: the listings of a 1% change's groups name tens of thousands of them at 100k
        users, each record held twice until the read ends otherwise.
        """
        wanted = list(dict.fromkeys(group_ids))
        records = users is not None
        known: Container[str] = held if held else (users if users is not None else frozenset())

        async def listing(group_id: str) -> _Listing | None:
            return await self._transitive(group_id, records, known)

        found: list[_Listing | None]
        if pack is None:
            found = await bounded(wanted, listing, self.settings.concurrency)
        else:
            kept = users

            def members(_: str, done: _Listing) -> dict[str, PackedUser]:
                assert kept is not None
                made = {user_id: kept.setdefault(user_id, packed) for user_id, packed in done.users.items()}
                done.users = {}  # kept: one record per user, not one per membership until the read ends
                return made

            announced = await member_listings(
                wanted,
                listing,
                self.settings.concurrency,
                pack=lambda group_id, done: (group_id, pack(group_id, done.ids)),
                announce=announce,
                users=members if users is not None else None,
            )
            found = [None if item is None else item[0] for item in announced]
        out: dict[str, list[str] | None] = {}
        for group_id, listed in sorted(zip(wanted, found, strict=True), key=lambda pair: pair[0]):
            if listed is None:
                out[group_id] = None
                continue
            out[group_id] = listed.ids
            skipped.extend(listed.skipped)
            if users is not None and pack is None:
                users.update(listed.users)
        return out

    # -- reads ---------------------------------------------------------------------------------

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the tenant in scope: full or by delta (see the module docstring); always complete."""
        digest = scope_digest(
            ctx.scope,
            tenant=self.settings.tenant_id,
            graph=self.settings.graph_url,
            guests=self.settings.include_guests,
        )
        return await read_kept(
            ctx,
            self._http,
            name="entra",
            digest=digest,
            full_read_every=self.settings.full_read_every,
            user_width=USER_WIDTH,
            group_width=GROUP_WIDTH,
            full=lambda skipped, announce: self._full_read(ctx.scope, digest, skipped, announce),
            incremental=lambda kept, skipped: self._delta_read(ctx.scope, kept, skipped),
            user=lambda uid, packed: unpack_user(uid, packed, self.settings),
            group=unpack_group,
            prefiltered=ctx.scope.users == "members",
            reshare=reshare_user,
        )

    async def _full_read(self, scope: Scope, digest: str, skipped: list[Skipped], announce: Announcer) -> KeptDirectory:
        started = self._clock()
        # "$deltatoken=latest": no entries, only the link to start the next read from.
        users_link = await self._delta_round(
            f"{self._graph}/users/delta",
            "users",
            lambda _: None,
            {"$select": ",".join((*USER_SELECT, "manager")), "$deltatoken": "latest"},
        )
        members_only = scope.users == "members"
        users = {} if members_only else await self._users(skipped)
        if not members_only:
            announce.users(users)  # before any member listing: user creates start now
        changes = GroupChanges()
        groups_link = await self._delta_round(
            f"{self._graph}/groups/delta",
            "groups",
            lambda entries: merge_group_changes(entries, changes, nesting_only=True),
            {"$select": GROUP_SELECT},
        )
        nesting = Nesting({})
        nesting.apply(changes)
        heads = {gid: c.props for gid, c in changes.groups.items() if isinstance(c.props.get("displayName"), str)}
        synced = [gid for gid, props in heads.items() if scope.wants_group(props["displayName"])]

        def pack(group_id: str, members: list[str]) -> PackedGroup:
            return [heads[group_id]["displayName"], heads[group_id].get("description"), members]

        announce.groups((group_id, pack(group_id, [])) for group_id in synced)
        directory = KeptDirectory(
            scope=digest,
            last_full_read=started,
            marks={"users_delta": users_link, "groups_delta": groups_link, "nesting": nesting.dump()},
            users=users,
        )
        resolved = await self._resolve(synced, users if members_only else None, skipped, pack=pack, announce=announce)
        for group_id, members in resolved.items():
            if members is not None:
                directory.groups[group_id] = pack(group_id, members)
        log.info("entra.full_read", users=len(users), groups=len(heads), synced=len(directory.groups))
        return directory

    async def _delta_read(self, scope: Scope, previous: KeptDirectory, skipped: list[Skipped]) -> KeptDirectory:
        links = [previous.marks.get(key) for key in ("users_delta", "groups_delta")]
        if not all(isinstance(link, str) for link in links):
            raise FullReadNeeded("the kept state has no delta links")
        try:
            user_entries: list[Any] = []
            users_link = await self._delta_round(str(links[0]), "users", user_entries.extend)
            changes = GroupChanges()
            groups_link = await self._delta_round(
                str(links[1]), "groups", lambda entries: merge_group_changes(entries, changes)
            )
        except DeltaExpired as exc:
            log.warning("entra.delta_expired", why=str(exc), action="full read")
            raise
        members_only = scope.users == "members"
        delta = Delta()
        for entry in user_entries:
            update = user_update(entry, previous.users)
            if isinstance(update, Skipped):
                skipped.append(update)
            elif update[1] is None:
                delta.removed_users.add(update[0])
            elif not members_only or update[0] in previous.users:
                delta.users[update[0]] = update[1]  # members only: others come with a member listing
        nesting = Nesting.load(previous.marks.get("nesting"))
        changed = nesting.apply(changes)
        again: set[str] = set()
        for group_id, change in changes.groups.items():
            kept = previous.groups.get(group_id)
            name = change.props.get("displayName", kept[0] if kept else None)
            if not isinstance(name, str) or not scope.wants_group(name):
                if kept is not None:
                    delta.removed_groups.add(group_id)  # renamed out of scope
                continue
            description = change.props.get("description", kept[1] if kept else None)
            if kept is None:
                again.add(group_id)  # new, or renamed into scope
                delta.groups[group_id] = [name, description, []]
            elif "displayName" in change.props or "description" in change.props:
                delta.groups[group_id] = [name, description, list(kept[2])]
        delta.removed_groups |= changes.removed
        synced = (set(previous.groups) | set(delta.groups)) - delta.removed_groups
        again |= nesting.affected(changed, synced)
        listed: dict[str, PackedUser] | None = {} if members_only else None
        resolved = await self._resolve(sorted(again), listed, skipped, held=previous.users)
        for group_id, members in resolved.items():
            if members is None:  # deleted since the delta round
                delta.groups.pop(group_id, None)
                delta.removed_groups.add(group_id)
                continue
            head = delta.groups.get(group_id) or previous.groups[group_id]
            delta.groups[group_id] = [head[0], head[1], members]
        for user_id, packed in (listed or {}).items():
            # A newcomer's record, from its listing; a user the delta calls removed stays removed.
            if user_id not in delta.removed_users:
                delta.users[user_id] = packed
        previous.apply(delta)
        if members_only:
            previous.prune_users(previous.member_ids())
        previous.marks = {"users_delta": users_link, "groups_delta": groups_link, "nesting": nesting.dump()}
        log.info(
            "entra.delta",
            users_changed=len(delta.users),
            users_removed=len(delta.removed_users),
            groups_changed=len(changes.groups),
            groups_removed=len(changes.removed),
            reread_groups=len(resolved),
        )
        return previous


def _build(settings: EntraSettings, deps: Deps) -> EntraSource:
    return EntraSource(settings, deps)


register(SourceType("entra", EntraSettings, _build, "Microsoft Entra ID tenant (Microsoft Graph)"))
