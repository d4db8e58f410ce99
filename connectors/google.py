"""Read users, groups and memberships from a Google Workspace domain (Admin SDK Directory API).

Authentication: a service account with domain-wide delegation signs a JWT that names an admin
to act as (``sub`` = ``admin_email``) and the three read-only Directory scopes, and trades it
at the token endpoint for an hour's access token ("Using OAuth 2.0 for Server to Server
Applications", https://developers.google.com/identity/protocols/oauth2/service-account). The
JWT is signed with the key of a key file (``credentials``; its ``token_uri`` is honoured), or,
keyless, by IAM Credentials ``signJwt`` for ``service_account`` with Application Default
Credentials (:mod:`connectors.google_keyless`). Settings: :mod:`connectors.google_settings`.

What a read does (there is no change feed for groups, so every read lists everything):

* every user, 500 a page, with ``fields=`` trimmed to what syncd uses;
* every group, 200 a page; ``[filters] groups`` globs match a group's name or its email;
* the members of each synced group, 200 a page with ``includeDerivedMembership=true`` (nested
  groups' users included, GROUP rows dropped, users de-duplicated), in parallel (``concurrency``);
  CUSTOMER rows ("everyone in the domain") and members with no user record (from outside the
  domain) are dropped and counted once per group. With ``nesting = "expand"``, or when Google
  refuses derived membership, syncd lists direct members and expands nested groups itself
  (visited set, so a cycle ends); ``includeDerivedMembership`` is reported to under-count in
  some domains (GAM-team/GAM#1210).
* the read tells ``ctx.listener`` the users once listed, the groups once listed, and each group
  once its flattened members are known (derived: when its listing ends; expanded: when every
  group below it is listed); :mod:`connectors.kit.announce`. Groups Google flattened and the
  listener was told of keep those members should Google refuse derived membership later on.
  With ``users = "members"`` a group's members are told (``users_found``) as the group's
  members are known, before the group, each once; a member whose manager is in the domain but
  not yet synced waits until the manager is a member of some synced group (its record names
  the manager only then), and its group waits with it (:mod:`connectors.google_found`).

Quotas ("Directory API: Limits and Quotas",
https://developers.google.com/workspace/admin/directory/v1/limits): requests are paced to
``queries_per_minute`` (Google's default is 2,400 per minute per user per project); 5xx, 429,
and 403 whose reason is ``userRateLimitExceeded`` or ``rateLimitExceeded`` are retried with
exponential backoff and jitter, never another 403 (googleapis/google-api-python-client
``googleapiclient/http.py``, ``_should_retry_response``). A listing that fails midway fails the
read. Delegation not set up (``unauthorized_client`` from the token endpoint, 403 "Not
Authorized" from the Directory API) becomes one message naming the fix.

Each user's ``etag`` is kept in the read's state with its parsed record: an unchanged user is
not parsed again, and the log says how many users changed since the last read. Group etags
are not used to skip member listings: Google does not say a membership change moves a
group's etag, so every synced group's members are listed on every read.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx2
import structlog

from connectors.base import Deps, ReadContext, SourceError, SourceType, register
from connectors.google_found import Tell
from connectors.google_found import managers as synced_managers
from connectors.google_keyless import IamSigner
from connectors.google_records import (
    GROUP_FIELDS,
    MEMBER_FIELDS,
    USER_FIELDS,
    USER_WIDTH,
    GroupHead,
    Members,
    PackedUser,
    expand,
    pack_user,
    parse_group,
    reshare_user,
    sort_members,
    unpack_user,
    wanted,
)
from connectors.google_settings import DIRECTORY, SCOPES, TOKEN_URI, GoogleSettings
from connectors.kit import (
    Announcer,
    Http,
    JwtBearer,
    KeptDirectory,
    KeySigner,
    Limits,
    OAuthToken,
    PackedGroup,
    PageToken,
    Signer,
    assemble,
    bounded,
    collect,
    items,
    json_or_empty,
    member_listings,
    resume,
    scope_digest,
)
from syncd.errors import SourceAuthError
from syncd.model import RequestStats, SkipKind, Skipped, SourceGroup, SourceRead, SourceUser
from syncd.normalise import Scope


__all__ = ["SCOPES", "GoogleSettings", "GoogleSource"]

log = structlog.get_logger(__name__)

ASSERTION_LIFETIME = 3600  # Google's most (reference: "Using OAuth 2.0 for Server to Server Applications")
DIRECTORY_BUCKETS = frozenset({"users", "groups", "members"})
THROTTLED = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
GROUP_WIDTH = 4  # [name, email, description, members]


# --- quotas -----------------------------------------------------------------------------------


def google_error(response: httpx2.Response) -> tuple[str, str]:
    """``errors[0].reason`` (or the newer ``status``) and the message of a Google error body."""
    body = json_or_empty(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", response.reason_phrase
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    reason = first.get("reason") or error.get("status") or ""
    return str(reason), str(error.get("message") or first.get("message") or response.reason_phrase)


class GoogleLimits(Limits):
    """Google's quotas: rate-limit 403s are retryable; Directory queries are paced per minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: deque[float] = deque()

    def retryable(self, response: httpx2.Response) -> bool:
        """5xx and 429, and a 403 only for ``userRateLimitExceeded`` or ``rateLimitExceeded``."""
        if response.status_code == 403:
            return google_error(response)[0] in THROTTLED
        return super().retryable(response)

    def decide(self, response: httpx2.Response) -> bool | float:
        """No rate-limit headers are documented: a throttling 403 backs off."""
        return True if response.status_code == 403 else super().decide(response)

    def pace(self, bucket: str, server_now: float, in_flight: int) -> tuple[float, str, dict[str, int]]:
        """Wait when the last minute already holds ``per_minute`` Directory queries."""
        if bucket not in DIRECTORY_BUCKETS:
            return 0.0, "", {}
        sent = self._sent
        while sent and sent[0] <= server_now - 60:
            sent.popleft()
        if len(sent) < self.per_minute:
            sent.append(server_now)
            return 0.0, "", {}
        wait = sent.popleft() + 60 - server_now
        sent.append(server_now + wait)
        return wait, "Directory API queries per minute used up", {"per_minute": self.per_minute}


# --- the source -------------------------------------------------------------------------------


class _DerivedRefused(SourceError):
    """Google refused ``includeDerivedMembership``: expand nested groups ourselves."""


class GoogleSource:
    """Reads a Workspace domain; see the module docstring."""

    def __init__(self, settings: GoogleSettings, deps: Deps | None = None) -> None:
        deps = deps or Deps()
        self.settings = settings
        self._clock = deps.clock
        self._http = Http(
            deps,
            provider="Google",
            limits=GoogleLimits(settings.queries_per_minute),
            max_retries=settings.max_retries,
            error=self._error,
            headers={"User-Agent": "syncd-google-connector"},
        )
        key = settings.key
        signer: Signer
        if key is not None:
            client, signer, token_uri = key.email, KeySigner(key.signing_key), key.token_uri
            self.client_id: str | None = key.client_id
        else:
            assert settings.service_account is not None
            client, token_uri, self.client_id = settings.service_account, TOKEN_URI, None
            signer = IamSigner(self._http, settings.iam_url, settings.service_account)
        grant = JwtBearer(client, settings.admin_email, signer, SCOPES, lifetime=ASSERTION_LIFETIME)
        self.client = client
        self._http.auth = OAuthToken(
            self._http, settings.token_uri or token_uri, grant, clock=deps.clock, explain=self._refusal
        )
        self._base = f"{settings.api_url}{DIRECTORY}"

    @property
    def stats(self) -> RequestStats:
        """Those requests by HTTP status; a failed read leaves its requests here."""
        return self._http.stats

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- Google's error advice ---------------------------------------------------------------

    def delegation_advice(self, what: str) -> str:
        """The one message for delegation not set up: which client id, which scopes, which admin."""
        client = self.client_id or (
            f"the unique ID of {self.client} (Cloud console › IAM › Service accounts › Details, or "
            f"`gcloud iam service-accounts describe {self.client} --format='value(oauth2ClientId)'`)"
        )
        return (
            f"Google refused domain-wide delegation ({what}). In the Admin console (admin.google.com) open "
            "Security › Access and data control › API controls › Domain-wide delegation and authorise client "
            f"ID {client} with the scopes {','.join(SCOPES)}; the admin syncd acts as, "
            f"{self.settings.admin_email} (admin_email), must be an administrator allowed to read users and "
            "groups. A delegation change can take up to 24 hours to apply"
        )

    def _refusal(self, status: int, body: Mapping[str, Any]) -> SourceAuthError:
        """Why the token endpoint gave no access token, and what fixes it."""
        error = str(body.get("error") or "unknown_error")
        description = str(body.get("error_description") or "no description")
        said = f"HTTP {status}, {error}: {description}"
        if error == "unauthorized_client":
            return SourceAuthError(self.delegation_advice(f"the token endpoint answered {said}"))
        if error == "invalid_grant" and "email or user id" in description.lower():
            return SourceAuthError(
                f"Google does not know {self.settings.admin_email} ({said}): set source.google.admin_email "
                "to the primary email of an administrator of the domain"
            )
        if error == "invalid_grant":
            return SourceAuthError(
                f"Google refused the assertion of {self.client} ({said}): the key may be deleted or disabled "
                "(create a new one), the service account deleted, or this machine's clock off by minutes"
            )
        return SourceAuthError(f"Google refused an access token to {self.client} ({said})")

    def _error(self, response: httpx2.Response, bucket: str) -> SourceError:
        """Turn a final Directory API error into a SourceError (branching on errors[0].reason)."""
        reason, message = google_error(response)
        status = response.status_code
        where = f"{response.request.method} {response.request.url.path}"
        said = f"HTTP {status}, {reason or 'no reason'}: {message}"
        if status == 403 and (reason in {"forbidden", "insufficientPermissions"} or "Not Authorized" in message):
            return SourceAuthError(self.delegation_advice(f"{where} answered {said}"))
        if status == 401:
            return SourceAuthError(
                f"Google rejected the access token even after fetching a new one ({where}: {said}); check that "
                "api_url and the token endpoint belong to the same Google"
            )
        if status == 400 and bucket == "members" and response.request.url.params.get("includeDerivedMembership"):
            return _DerivedRefused(f"Google refused includeDerivedMembership ({where}: {said})")
        return SourceError(f"Google answered {where} with {said}")

    # -- listings ----------------------------------------------------------------------------

    async def _users(self, kept: Mapping[str, PackedUser], skipped: list[Skipped]) -> dict[str, PackedUser]:
        params = {"customer": self.settings.customer, "maxResults": "500", "fields": USER_FIELDS}
        users: dict[str, PackedUser] = {}
        reused = 0
        # Packed a page at a time: a whole org's users as decoded JSON would be held at once.
        async for item in items(
            self._http, f"{self._base}/users", PageToken("Google", "users"), params=params, bucket="users"
        ):
            previous = kept.get(str(item.get("id"))) if isinstance(item, dict) else None
            if previous is not None and previous[-1] is not None and previous[-1] == item.get("etag"):
                # Unchanged since the last read (its etag says so), under the id the kept state interned.
                users[sys.intern(str(item["id"]))] = previous
                reused += 1
                continue
            packed = pack_user(item)
            if isinstance(packed, Skipped):
                skipped.append(packed)
            else:
                users[packed[0]] = packed[1]
        log.info("google.users", users=len(users), changed=len(users) - reused, kept=bool(kept))
        return users

    async def _groups(self, scope: Scope, skipped: list[Skipped]) -> list[GroupHead]:
        params = {"customer": self.settings.customer, "maxResults": "200", "fields": GROUP_FIELDS}
        heads: list[GroupHead] = []
        async for item in items(
            self._http, f"{self._base}/groups", PageToken("Google", "groups"), params=params, bucket="groups"
        ):
            group = parse_group(item)
            if isinstance(group, Skipped):
                skipped.append(group)
            elif wanted(scope, group):
                heads.append(group)
        return heads

    async def _member_rows(self, group_id: str, derived: bool) -> list[Any] | None:
        """A group's member rows; None when the group is gone (404) since it was listed."""
        params = {"maxResults": "200", "fields": MEMBER_FIELDS}
        if derived:
            params["includeDerivedMembership"] = "true"
        return await collect(
            self._http,
            f"{self._base}/groups/{quote(group_id, safe='')}/members",
            PageToken("Google", "members"),
            params=params,
            bucket="members",
            missing_ok=True,
        )

    async def _derived(
        self, groups: list[GroupHead], known: Mapping[str, Any], tell: Tell, done: dict[str, _Listed]
    ) -> dict[str, _Listed | None]:
        """Google's flattened members: each group is final, and announced, once its listing ends."""

        async def one(group: GroupHead) -> Members | None:
            rows = await self._member_rows(group.id, derived=True)
            if rows is None:
                return None
            members = sort_members(rows, known)
            done[group.id] = (members, packed := _pack_group(group, members.users))
            tell.group(group.id, packed)
            return members

        listings = await member_listings(
            groups, one, self.settings.concurrency, pack=lambda group, _: (group.id, done[group.id][1])
        )
        return {g.id: m for g, m in zip(groups, listings, strict=True)}

    async def _expanded(
        self, groups: list[GroupHead], known: Mapping[str, Any], tell: Tell
    ) -> dict[str, _Listed | None]:
        """Direct members of the synced groups and of every group nested below them, level by
        level, then flattened here (each group listed once, so a cycle ends). A synced group is
        final, and announced, once every group below it is listed."""
        direct: dict[str, Members] = {}
        gone: set[str] = set()
        out: dict[str, _Listed | None] = {}

        def settle(candidates: list[GroupHead]) -> None:
            for group in candidates:
                if group.id in out or not _closed(group.id, direct, gone):
                    continue
                if group.id in gone:
                    out[group.id] = None
                    continue
                own = direct[group.id]
                members = Members(expand(group.id, direct), own.groups, own.everyone, own.outsiders, own.unreadable)
                out[group.id] = (members, packed := _pack_group(group, members.users))
                tell.group(group.id, packed)

        synced = {g.id: g for g in groups}

        async def one(group_id: str) -> None:
            rows = await self._member_rows(group_id, derived=False)
            if rows is None:
                gone.add(group_id)
            else:
                direct[group_id] = sort_members(rows, known)
            if group_id in synced:  # a group with nothing nested is final at once
                settle([synced[group_id]])

        frontier = [g.id for g in groups]
        while frontier:
            await bounded(frontier, one, self.settings.concurrency)
            following: list[str] = []
            for group_id in frontier:
                listing = direct.get(group_id)
                if listing is not None:
                    following += [n for n in listing.groups if n not in direct and n not in gone and n not in following]
            frontier = [n for n in following if n not in direct]
            settle(groups)
        return out

    async def _memberships(
        self, groups: list[GroupHead], known: Mapping[str, Any], tell: Tell
    ) -> dict[str, _Listed | None]:
        if self.settings.nesting == "derived":
            done: dict[str, _Listed] = {}
            try:
                return await self._derived(groups, known, tell, done)
            except _DerivedRefused as exc:
                log.warning("google.derived_refused", error=str(exc), fallback="syncd expands nested groups")
            if tell.on and done:  # groups already announced stay as Google flattened them
                rest = await self._expanded([g for g in groups if g.id not in done], known, tell)
                return {g.id: done[g.id] if g.id in done else rest[g.id] for g in groups}
        return await self._expanded(groups, known, tell)

    # -- reads -------------------------------------------------------------------------------

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the domain in scope (see the module docstring); always complete, or an error.

        Users are listed first and announced to ``ctx.listener`` (with ``users = "members"``,
        as the member listings find them: :mod:`connectors.google_found`), then the groups, then
        each group as its members are final.
        """
        before = self._http.requests
        self._http.mark()
        digest = scope_digest(ctx.scope, customer=self.settings.customer, api_url=self.settings.api_url)
        previous, why = resume(
            ctx, digest, self._clock(), None, user_width=USER_WIDTH, group_width=GROUP_WIDTH, reshare=reshare_user
        )
        log.info("google.read", etags_from_last_read=previous is not None, why=why or None)
        skipped: list[Skipped] = []
        members_only = ctx.scope.users == "members"
        managers: dict[str, str] = {}  # a synced user's folded email -> id, once the users are final

        def user(user_id: str, packed: PackedUser) -> SourceUser:
            return unpack_user(user_id, packed, managers)

        announce = Announcer(ctx.listener, user=user, group=_unpack_group)
        kept = previous.users if previous is not None else {}
        del previous  # its groups (every membership of the last read) are not read again
        users = await self._users(kept, skipped)
        del kept  # the users it still holds are in ``users``
        if not members_only:
            managers.update(synced_managers(users))
            announce.users(users)
        groups = await self._groups(ctx.scope, skipped)
        announce.groups((group.id, _pack_group(group, [])) for group in groups)
        tell = Tell(announce, users, managers, members_only=members_only)
        listings = await self._memberships(groups, users, tell)
        directory = KeptDirectory(digest, self._clock())
        for group in groups:
            listing = listings[group.id]
            if listing is None:
                log.info("google.group_vanished", group=group.email)
                continue
            self._count_dropped(group, listing[0], skipped)
            directory.groups[group.id] = listing[1]
        directory.users = users
        if members_only:
            directory.prune_users(directory.member_ids())
            managers.update(synced_managers(directory.users))
        read = assemble(
            directory,
            user=user,
            group=_unpack_group,
            skipped=skipped,
            requests=self._http.requests - before,
            prefiltered=members_only,
            announce=announce,
        )
        log.info(
            "google.read_done",
            users=len(read.users),
            groups=len(read.groups),
            skipped=len(read.skipped),
            requests=read.requests,
        )
        return read

    @staticmethod
    def _count_dropped(group: GroupHead, members: Members, skipped: list[Skipped]) -> None:
        """Log and count, once for the group, the members that cannot be synced."""
        if not (members.everyone or members.outsiders or members.unreadable):
            return
        log.info(
            "google.members_dropped",
            group=group.email,
            everyone=members.everyone,
            outside_domain=members.outsiders,
            unreadable=members.unreadable,
        )
        parts = []
        if members.outsiders:
            parts.append(f"{members.outsiders} member(s) from outside the domain (no user record)")
        if members.everyone:
            parts.append("the 'everyone in the domain' (CUSTOMER) entry")
        if members.unreadable:
            parts.append(f"{members.unreadable} member row(s) without an id")
        skipped.append(Skipped(SkipKind.MEMBERSHIP, group.id, f"{' and '.join(parts)} in {group.email}: not synced"))


_Listed = tuple[Members, PackedGroup]
"""A group's member listing, and the group as kept: [name, email, description, member ids]."""


def _pack_group(group: GroupHead, members: list[str]) -> PackedGroup:
    return [group.name, group.email, group.description, members]


def _unpack_group(group_id: str, packed: PackedGroup) -> SourceGroup:
    return SourceGroup(id=group_id, name=packed[0], email=packed[1], description=packed[2], members=tuple(packed[3]))


def _closed(group_id: str, direct: Mapping[str, Members], gone: set[str]) -> bool:
    """Whether ``group_id`` and every group nested below it are listed (or known gone)."""
    seen: set[str] = set()
    stack = [group_id]
    while stack:
        current = stack.pop()
        if current in seen or current in gone:
            continue
        if current not in direct:
            return False
        seen.add(current)
        stack.extend(direct[current].groups)
    return True


def _build(settings: GoogleSettings, deps: Deps) -> GoogleSource:
    return GoogleSource(settings, deps)


register(SourceType("google", GoogleSettings, _build, "Google Workspace (service account with domain-wide delegation)"))
