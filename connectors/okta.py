"""Read users, groups and memberships from an Okta org through the Management API.

Only Okta's facts live here: endpoints, error advice and the read strategy, with its settings in
:mod:`connectors.okta_settings` and its records and statuses in :mod:`connectors.okta_records`;
HTTP, auth, paging, rate limits and the kept directory are :mod:`connectors.kit`'s. Sources are
Okta's developer documentation as ``docs/references.md`` §1 lists it.

Authentication: an SSWS API token, or (preferred) an OAuth 2.0 service app that signs a
``private_key_jwt`` client assertion and gets a one-hour access token by client credentials.

* **Full read** (first run, ``--full-resync``, scope changed, ``full_read_every`` elapsed):
  every user (``search=status pr``, which unlike the default listing includes DEPROVISIONED
  users, okta/okta-sdk-java#718), every group, and the members of every synced group, in
  parallel in the order listed. With ``users = "members"`` the user listing is skipped: members
  come back as full user objects (a user in several groups keeps the record of the first
  listing to end). The read tells ``ctx.listener`` the users once listed, the groups once
  listed, and each group once its members are (:mod:`connectors.kit.announce`); with
  ``users = "members"``, as each member listing ends, first its members not told before
  (``users_found``), then the group, so user creates start with the first listing.
* **Incremental read**: users with ``lastUpdated`` after the last watermark minus an overlap
  (the ``filter`` form returns DEPROVISIONED users too), the group list (one request per 200
  groups; it shows deleted and renamed groups), and members only of groups whose
  ``lastUpdated`` or ``lastMembershipUpdated`` moved, merged into the kept directory.
  A deleted user leaves no trace in the filter. A new user taking the login of a kept user this
  read did not return makes syncd look that user up by id (a 404 means deleted), so a rehire
  lands in the same run; with ``system_log = true`` the System Log's deletion events remove
  deleted users at once (a 403 is logged and not asked again until the next full read); the
  periodic full read removes the rest.

Statuses (§1.6): ACTIVE, RECOVERY, LOCKED_OUT and PASSWORD_EXPIRED are active; SUSPENDED and
DEPROVISIONED are synced with ``active=false``; STAGED and PROVISIONED are skipped with a
reason unless ``include_staged = true``, which syncs them disabled until Okta activates them;
any other status is skipped. Groups (§1.7): no nesting; BUILT_IN "Everyone" is skipped unless a
``[filters] groups`` pattern names it without wildcards; APP_GROUPs sync like OKTA_GROUPs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Container, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx2
import structlog

from connectors.base import Deps, ReadContext, SourceError, SourceType, register
from connectors.kit import (
    Announcer,
    Delta,
    FullReadNeeded,
    Http,
    KeptDirectory,
    KeySigner,
    LinkHeader,
    OAuthToken,
    PackedGroup,
    PackedUser,
    PrivateKeyJwt,
    RateLimitHeaders,
    StaticToken,
    collect,
    format_time,
    items,
    json_or_empty,
    member_listings,
    pages,
    parse_time,
    read_kept,
    scope_digest,
)
from connectors.okta_records import (
    GROUP_WIDTH,
    USER_WIDTH,
    GroupHead,
    pack_group,
    pack_user,
    parse_group,
    reshare_user,
    synced,
    unpack_group,
    unpack_user,
)
from connectors.okta_settings import DEFAULT_SCOPES, OktaSettings
from syncd.errors import SourceAuthError
from syncd.model import RequestStats, SkipKind, Skipped, SourceRead
from syncd.normalise import Scope


__all__ = ["DEFAULT_SCOPES", "OktaSettings", "OktaSource"]

log = structlog.get_logger(__name__)

PAGE_SIZE = "200"  # the users maximum; also what Okta recommends for groups and members
INCREMENTAL_OVERLAP = timedelta(minutes=5)  # the data is eventually consistent: overlap the watermark
ASSERTION_LIFETIME = 300  # seconds; Okta accepts at most one hour
_NO_DPOP = "turn off 'Require Demonstrating Proof of Possession' for the app"

# The scope each endpoint needs, for 403 messages that come without a www-authenticate scope
# (okta/okta-sdk-python openapi/management.yaml: listUsers, listGroups, listGroupUsers, listLogEvents).
_SCOPE_FOR_BUCKET = {
    "users": "okta.users.read",
    "user": "okta.users.read",
    "groups": "okta.groups.read",
    "group-users": "okta.groups.read",
    "logs": "okta.logs.read",
}
# System Log events that mean a user or group is gone for good ("Event types",
# https://developer.okta.com/docs/reference/api/event-types/).
DELETE_EVENTS = ("user.lifecycle.delete.completed", "group.lifecycle.delete.completed")


# --- the source -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Unchanged(Container[str]):
    """The users an incremental read keeps as the last read left them: kept, and neither
    updated (``delta.users``) nor deleted (``delta.removed_users``) since."""

    kept: Container[str]
    delta: Delta

    def __contains__(self, user_id: object) -> bool:
        return user_id in self.kept and user_id not in self.delta.users and user_id not in self.delta.removed_users


@dataclass(slots=True)
class _Members:
    """One group's member listing."""

    ids: list[str]
    users: dict[str, PackedUser]
    skipped: list[Skipped]


class OktaSource:
    """Reads an Okta org; see the module docstring for what each read does."""

    def __init__(self, settings: OktaSettings, deps: Deps | None = None) -> None:
        deps = deps or Deps()
        self.settings = settings
        self._clock = deps.clock
        self._http = Http(
            deps,
            provider="Okta",
            limits=RateLimitHeaders(),
            max_retries=settings.max_retries,
            error=self._error,
            headers={"User-Agent": "syncd-okta-connector"},
        )
        self._pager = LinkHeader("Okta")
        self.stats: RequestStats = self._http.stats  # by status; a failed read leaves its requests here
        self._oauth: OAuthToken | None = None
        if settings.token is not None:
            self._http.auth = StaticToken(settings.token, "SSWS")  # "Core Okta API › Authentication"
        else:
            assert settings.client_id is not None
            assert settings.signing_key is not None
            grant = PrivateKeyJwt(
                settings.client_id, KeySigner(settings.signing_key), settings.scopes, lifetime=ASSERTION_LIFETIME
            )
            self._oauth = OAuthToken(
                self._http, f"{settings.url}/oauth2/v1/token", grant, clock=deps.clock, explain=self._refusal
            )
            self._http.auth = self._oauth

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- Okta's error advice -----------------------------------------------------------------

    def _refusal(self, status: int, body: Mapping[str, Any]) -> SourceAuthError:
        """Why the token endpoint gave no access token, and what fixes it."""
        if status == 200:
            return SourceAuthError(
                f"Okta's token endpoint returned a {body.get('token_type')!r} token, not a Bearer token; "
                f"syncd does not support DPoP: {_NO_DPOP}"
            )
        error = str(body.get("error") or "unknown_error")
        description = str(body.get("error_description") or "no description")
        prefix = (
            f"Okta refused an access token to service app {self.settings.client_id} "
            f"(HTTP {status}, {error}: {description})"
        )
        advice = {
            "invalid_scope": f"grant the scopes {' '.join(self.settings.scopes)} to the app (Okta API Scopes tab) "
            "or fix source.okta.scopes",
            "invalid_dpop_proof": f"the app requires DPoP, which syncd does not support; {_NO_DPOP}",
            "use_dpop_nonce": f"the app requires DPoP, which syncd does not support; {_NO_DPOP}",
            "invalid_client": "the client credentials are invalid; check client_id, that the app uses public "
            "key / private key client authentication, and that its public key matches private_key (and key_id)",
        }.get(error)
        return SourceAuthError(f"{prefix}: {advice}" if advice else prefix)

    def _error(self, response: httpx2.Response, bucket: str) -> SourceError:
        """Turn an Okta error response into a SourceError, branching on errorCode only
        ("Error codes", https://developer.okta.com/docs/reference/error-codes/)."""
        body = json_or_empty(response)
        if not isinstance(body, dict):
            body = {}
        code = str(body.get("errorCode") or "no errorCode")
        summary = str(body.get("errorSummary") or response.reason_phrase)
        where = f"{response.request.method} {response.request.url.path}"
        status = response.status_code
        if status == 403 and bucket == "logs":
            return _LogsForbidden(f"Okta refused {where} (HTTP 403, {code}: {summary})")
        if status == 401:
            if self._oauth is None:
                return SourceAuthError(
                    f"Okta rejected the API token (HTTP 401, {code}: {summary}): the token is invalid, "
                    "revoked, or expired after 30 days unused; create a new one (Security › API › Tokens) "
                    "and set source.okta.token"
                )
            return SourceAuthError(
                f"Okta rejected the OAuth access token of service app {self.settings.client_id} even "
                f"after fetching a new one (HTTP 401, {code}: {summary}): the token is invalid for this "
                "org; check url and that the app is active"
            )
        if status == 403:
            # An OAuth token without the scope gets `www-authenticate: Bearer ...,
            # error="insufficient_scope", scope="okta.users.read"` (RFC 6750 §3; error E0000006).
            challenge = dict(re.findall(r'(\w+)="([^"]*)"', response.headers.get("www-authenticate", "")))
            scope = challenge.get("scope") or _SCOPE_FOR_BUCKET.get(bucket, "the right scope")
            if self._oauth is not None and challenge.get("error") == "insufficient_scope":
                return SourceAuthError(
                    f"Okta refused {where} (HTTP 403, {code}: {summary}): the access token lacks the "
                    f"scope {scope}; grant it to the service app (Okta API Scopes tab) and list it in "
                    "source.okta.scopes"
                )
            if self._oauth is not None:
                # The token has the scope, but scopes only work together with an admin role.
                return SourceAuthError(
                    f"Okta refused {where} (HTTP 403, {code}: {summary}): the service app needs the scope "
                    f"{scope} and an admin role that may read it; assign it one such as Read-only "
                    "Administrator (the app's Admin roles tab)"
                )
            return SourceAuthError(
                f"Okta refused {where} (HTTP 403, {code}: {summary}): the admin who created the API "
                f"token lacks the permission ({scope}); use a token created by a Read-only Administrator "
                "or higher"
            )
        return SourceError(f"Okta answered {where} with HTTP {status} ({code}: {summary})")

    # -- listings ------------------------------------------------------------------------------

    async def _list(
        self, path: str, params: Mapping[str, str], bucket: str, *, missing_ok: bool = False
    ) -> list[Any] | None:
        return await collect(
            self._http,
            f"{self.settings.url}{path}",
            self._pager,
            params=params,
            bucket=bucket,
            what=path,
            missing_ok=missing_ok,
        )

    def _each(self, path: str, params: Mapping[str, str], bucket: str) -> AsyncIterator[Any]:
        return items(self._http, f"{self.settings.url}{path}", self._pager, params=params, bucket=bucket, what=path)

    async def _users(self, params: Mapping[str, str], skipped: list[Skipped]) -> dict[str, PackedUser]:
        users: dict[str, PackedUser] = {}
        # Packed a page at a time: the whole listing as decoded JSON would be ~3.6 kB a user.
        async for item in self._each("/api/v1/users", {**params, "limit": PAGE_SIZE}, "users"):
            packed = pack_user(item, "in the user listing")
            if isinstance(packed, Skipped):
                skipped.append(packed)
            else:
                users[packed[0]] = packed[1]
        return users

    async def _groups(self, scope: Scope, skipped: list[Skipped]) -> list[GroupHead]:
        wanted: list[GroupHead] = []
        async for item in self._each("/api/v1/groups", {"limit": PAGE_SIZE}, "groups"):
            group = parse_group(item)
            if isinstance(group, Skipped):
                skipped.append(group)
            elif synced(scope, group):
                wanted.append(group)
        return wanted

    async def _members(
        self, group_id: str, *, records: bool = True, kept: Container[str] = frozenset()
    ) -> _Members | None:
        """A group's members (with ``records``, their user objects packed too, but for the users in
        ``kept``, whose records the read has); None when the group was deleted meanwhile.

        Only ``limit`` and ``after`` work on this endpoint (okta/okta-sdk-python#245).
        """
        path = f"/api/v1/groups/{quote(group_id, safe='')}/users"
        members: _Members | None = None
        # Packed a page at a time: a 30k-member group's full user objects are ~100 MB as decoded JSON.
        async for page in pages(
            self._http,
            f"{self.settings.url}{path}",
            self._pager,
            params={"limit": PAGE_SIZE},
            bucket="group-users",
            what=path,
            missing_ok=True,
        ):
            members = members or _Members([], {}, [])
            for item in page.items:
                packed = pack_user(item, f"in the members of group {group_id}")
                if isinstance(packed, Skipped):
                    members.skipped.append(
                        Skipped(
                            SkipKind.MEMBERSHIP, f"{group_id}/{packed.id}", f"member record skipped: {packed.reason}"
                        )
                    )
                    continue
                members.ids.append(packed[0])
                if records and packed[0] not in kept:
                    members.users[packed[0]] = packed[1]
            del page  # 200 decoded user records: not held while the next page is asked for
        if members is None:
            log.info("okta.group_vanished", group=group_id)
        return members

    async def _user(self, user_id: str) -> tuple[str, PackedUser] | Skipped | None:
        """One user by id ("Retrieve a user"); None when Okta no longer has it (404)."""
        response = await self._http.get(
            f"{self.settings.url}/api/v1/users/{quote(user_id, safe='')}", bucket="user", missing_ok=True
        )
        if response is None:
            return None
        return pack_user(json_or_empty(response), "looked up by id")

    # -- reads -------------------------------------------------------------------------------

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the org in scope: full or incremental (see the module docstring); always complete."""
        started = self._clock()
        digest = scope_digest(ctx.scope, url=self.settings.url)
        return await read_kept(
            ctx,
            self._http,
            name="okta",
            digest=digest,
            full_read_every=self.settings.full_read_every,
            user_width=USER_WIDTH,
            group_width=GROUP_WIDTH,
            full=lambda skipped, announce: self._full_read(ctx.scope, digest, started, skipped, announce),
            incremental=lambda kept, skipped: self._incremental_read(ctx.scope, kept, skipped),
            user=lambda uid, packed: unpack_user(uid, packed, self.settings.include_staged),
            group=unpack_group,
            prefiltered=ctx.scope.users == "members",
            reshare=reshare_user,
        )

    def _began(self, fallback: float) -> str:
        """The watermark: the server's clock when this read's first response was sent (ours if unknown)."""
        return format_time(self._http.began if self._http.began is not None else fallback)

    async def _full_read(
        self, scope: Scope, digest: str, started: float, skipped: list[Skipped], announce: Announcer
    ) -> KeptDirectory:
        users: dict[str, PackedUser] = {}
        if scope.users != "members":
            # The default listing leaves DEPROVISIONED users out; `search=status pr` returns every
            # status (okta/okta-sdk-java#718). Users come first: their creates start at once.
            users = await self._users({"search": "status pr"}, skipped)
            announce.users(users)
        groups = await self._groups(scope, skipped)
        announce.groups((group.id, pack_group(group, [])) for group in groups)
        kept: dict[str, PackedGroup] = {}
        await self._reread(groups, scope, kept, users, skipped, announce)
        return KeptDirectory(
            scope=digest, last_full_read=started, marks={"watermark": self._began(started)}, users=users, groups=kept
        )

    async def _reread(
        self,
        groups: list[GroupHead],
        scope: Scope,
        kept: dict[str, PackedGroup],
        users: dict[str, PackedUser],
        skipped: list[Skipped],
        announce: Announcer | None = None,
        unchanged: Container[str] = frozenset(),
    ) -> None:
        """Read the members of ``groups`` into ``kept`` (and, with users="members", ``users``:
        a user already there keeps its record), in the order listed, announcing each group as its
        members arrive (with users="members", its members not announced before first).

        ``unchanged``: users whose kept record stands (an incremental read's users not updated
        since the watermark): their records in the member listings are not kept again. A 1%
        change re-reads the groups it touched, which at 100k users hold most of them.

        A group gone between its listing and its member listing is left out.
        """

        def found(group: GroupHead, members: _Members) -> dict[str, PackedUser]:
            # A user in several groups keeps the record of the first listing to end: the one announced.
            made = {user_id: users.setdefault(user_id, packed) for user_id, packed in members.users.items()}
            # The listing is kept until every group is read: one record per user is enough, not
            # one per membership (500k packed records at 100k users).
            members.users = {}
            return made

        records = scope.users == "members"  # else the user listing has every record
        listings = await member_listings(
            groups,
            lambda group: self._members(group.id, records=records, kept=unchanged),
            self.settings.concurrency,
            pack=lambda group, members: (group.id, pack_group(group, members.ids)),
            announce=announce,
            users=found if scope.users == "members" else None,
        )
        for group, listing in zip(groups, listings, strict=True):
            if listing is None:
                continue
            members, kept[group.id] = listing
            skipped.extend(members.skipped)

    async def _incremental_read(self, scope: Scope, previous: KeptDirectory, skipped: list[Skipped]) -> KeptDirectory:
        try:
            watermark = parse_time(str(previous.marks.get("watermark")))
        except ValueError:
            raise FullReadNeeded("the kept state is unusable (no watermark)") from None
        since = format_time(watermark - INCREMENTAL_OVERLAP.total_seconds())
        fallback = self._clock()
        delta = Delta()
        # The `filter` form with lastUpdated also returns DEPROVISIONED users.
        delta.users = await self._users({"filter": f'lastUpdated gt "{since}"'}, skipped)
        await self._deletions(previous, since, delta)
        await self._claimed_logins(previous, delta, skipped)

        groups = await self._groups(scope, skipped)
        listed = {group.id for group in groups}
        delta.removed_groups |= {gid for gid in previous.groups if gid not in listed}
        stale: list[GroupHead] = []
        for group in groups:
            old = previous.groups.get(group.id)
            if old is not None and old[2] == group.last_updated and old[3] == group.last_membership_updated:
                delta.groups[group.id] = pack_group(group, old[4])
            else:
                stale.append(group)
        # A member kept from the last read and not updated since keeps its record (an update moves
        # lastUpdated, which the user query above reads); one deleted meanwhile, per the log, does not.
        unchanged = _Unchanged(previous.users, delta)
        await self._reread(stale, scope, delta.groups, delta.users, skipped, unchanged=unchanged)
        previous.apply(delta)
        if scope.users == "members":  # users outside synced groups leave with their last group
            previous.prune_users(previous.member_ids())
        previous.groups = {gid: previous.groups[gid] for gid in sorted(previous.groups)}
        previous.marks["watermark"] = self._began(fallback)
        log.info("okta.incremental", changed_users=len(delta.users), reread_groups=len(stale), since=since)
        return previous

    async def _deletions(self, previous: KeptDirectory, since: str, delta: Delta) -> None:
        """Users and groups the System Log says were deleted since ``since`` (a bounded query:
        ``since`` and ``until`` make it finite; polling would always have a next page)."""
        if not self.settings.system_log or previous.marks.get("system_log") == "forbidden":
            return
        query = " or ".join(f'eventType eq "{event}"' for event in DELETE_EVENTS)
        until = format_time(max(self._http.server_now(), parse_time(since)))
        params = {"since": since, "until": until, "filter": query, "limit": "1000"}
        try:
            events = await self._list("/api/v1/logs", params, "logs") or []
        except _LogsForbidden as exc:
            log.warning(
                "okta.system_log_unavailable",
                error=str(exc),
                advice="grant okta.logs.read (or use a token that may read the System Log) to see deletions "
                "at once; until the next full read, deleted users stay",
            )
            previous.marks["system_log"] = "forbidden"
            return
        for event in events:
            targets = event.get("target") if isinstance(event, dict) else None
            for target in targets if isinstance(targets, list) else ():
                if not isinstance(target, dict) or not isinstance(target.get("id"), str):
                    continue
                if event.get("eventType") == DELETE_EVENTS[0] and target.get("type") == "User":
                    if target["id"] in previous.users and target["id"] not in delta.users:
                        delta.removed_users.add(target["id"])
                elif event.get("eventType") == DELETE_EVENTS[1] and target.get("type") == "UserGroup":
                    delta.removed_groups.add(target["id"])
        if delta.removed_users:
            log.info("okta.deleted_users", count=len(delta.removed_users), source="System Log")

    async def _claimed_logins(self, previous: KeptDirectory, delta: Delta, skipped: list[Skipped]) -> None:
        """A new user whose login a kept user still holds: look that one up; a 404 means deleted.

        Okta frees a login only when its user is deleted, and a deleted user leaves no trace in
        the incremental filter; without this a rehire would be a duplicate userName until the
        next full read.
        """
        holders = {
            str(packed[0]).casefold(): uid
            for uid, packed in previous.users.items()
            if packed[0] is not None and uid not in delta.users and uid not in delta.removed_users
        }
        claimed = [
            holders[str(packed[0]).casefold()]
            for uid, packed in delta.users.items()
            if uid not in previous.users and packed[0] is not None and str(packed[0]).casefold() in holders
        ]
        for holder in claimed:
            found = await self._user(holder)
            if found is None:
                log.info("okta.user_deleted", user=holder, why="its login was claimed by a new user")
                delta.removed_users.add(holder)
            elif isinstance(found, Skipped):
                skipped.append(found)
            else:
                delta.users[found[0]] = found[1]


class _LogsForbidden(SourceAuthError):
    """The credentials may not read the System Log: the read goes on without it."""


def _build(settings: OktaSettings, deps: Deps) -> OktaSource:
    return OktaSource(settings, deps)


register(SourceType("okta", OktaSettings, _build, "Okta org (API token or OAuth service app)"))
