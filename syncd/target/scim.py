"""Identity Center's SCIM v2 endpoint, through scim2-client on httpx2.

The one seam to Identity Center's identities: tests pass a ``transport`` (or point ``url`` at
the emulator). Every request takes a slot from the shared :class:`~syncd.ratelimit.Pacer` and is
retried with backoff and jitter on 429, 5xx and network errors (the one retry policy,
:mod:`syncd.retry`, on stamina).

AWS quirks handled here, each with its source (``docs/references.md``):

* the console shows the endpoint with or without a trailing slash; joins need one [A.1];
* 409 bodies have no ``scimType`` and carry extra keys (``exceptionRequestId``, ``timeStamp``),
  so unknown attributes are ignored and errors keyed on the HTTP status [A.6];
* list pages use cursors whose alphabet (``[-a-zA-Z0-9+=/:_]``) scim2-models rejects, so pages
  are fetched raw and validated item by item; the first request carries an empty cursor and the
  cursor is URL-encoded when sent back [§A.3, §P.1];
* GET never returns group members: members are listed with ``groups.value eq`` [A.3, A.5];
* at most 100 member changes per PATCH, members as ``{"value": id}`` under path ``members``
  [A.5, DG:patchgroup];
* a group PATCH names each attribute by ``path``, one operation each: a path-less operation
  may modify a single attribute only [DG:patchgroup; goauthentik/authentik#12321];
* one email, marked primary [A.4, DG:createuser].

scim2-client and scim2-models (half a second to import) are loaded by the first write: a run with
nothing to write sends its one token check, and reads, as plain httpx2 requests without them.

A refused token is found with the fewest requests: :meth:`ScimTarget.probe` is one filtered read
that proves it, and until some request has had an authenticated answer the target sends one
request at a time. The first 401 or 403 ends the sending: every later call fails at once with the
same advice (fix ``target.scim_token``) instead of a burst of refused requests.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

import httpx2
import structlog

from syncd import model
from syncd.errors import (
    TargetAuthError,
    TargetConflict,
    TargetError,
    TargetNotFound,
    TargetUnavailable,
)
from syncd.live import LiveGroup, LiveUser
from syncd.memberset import MemberSet
from syncd.model import RequestStats
from syncd.ratelimit import Pacer
from syncd.retry import Backoff, RetryPolicy
from syncd.secrets import describe
from syncd.target.resources import live_user, user_resource


if TYPE_CHECKING:
    from pydantic import SecretStr
    from scim2_client.engines.httpx2 import AsyncSCIMClient
    from scim2_models import EnterpriseUser, ScimProvider, User


log = structlog.get_logger(__name__)

PROBE_USER_NAME = "syncd-token-check@example.invalid"  # RFC 2606: .invalid names no one
PAGE_SIZE = 100  # the largest `count` Identity Center accepts [DG:listusers]
BURST_SHARE = 0.75
"""The share of Identity Center's bucket (one second's worth, as the emulator's; the limits page,
https://docs.aws.amazon.com/singlesignon/latest/userguide/limits.html, gives only the 20/s) the
pacer spends at once after a stall. The quarter second kept back absorbs the jitter between our
sending and its counting: with the whole bucket, a catch-up on a loaded host drew a 429 from the
emulator in the benchmark."""


_BACKOFF = Backoff(initial=0.5, maximum=20.0, jitter=1.0)  # stamina's own defaults, as before


def normalise_base_url(url: str) -> str:
    """The endpoint with exactly one trailing slash, so relative joins keep ``/scim/v2``."""
    return url.rstrip("/") + "/"


def _provider() -> ScimProvider:
    from scim2_models import (
        EnterpriseUser,
        Group,
        ResourceType,
        ScimPolicy,
        ScimProvider,
        ServiceProviderConfig,
        User,
    )

    return ScimProvider(
        models=[User, EnterpriseUser, Group],
        resource_types=[ResourceType.from_resource(User[EnterpriseUser]), ResourceType.from_resource(Group)],
        config=ServiceProviderConfig(patch={"supported": True}, filter={"supported": True}),
        policy=ScimPolicy(unknown=ScimPolicy.Unknown.ignore),
    )


class _HttpStatusError(Exception):
    """A non-2xx answer to a request sent without scim2-client (list pages)."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status


class _NoAnswer(Exception):
    """A request sent without scim2-client that got no answer (its cause is the transport's error)."""


def _scim2_errors() -> tuple[type[Exception], ...]:
    """scim2's error classes once a write has loaded it; none of them can be raised before."""
    if "scim2_client" not in sys.modules:
        return ()
    from scim2_client import SCIMClientException
    from scim2_models import SCIMException

    return (SCIMException, SCIMClientException)


def _is_network_error(exc: Exception) -> bool:
    if isinstance(exc, _NoAnswer):
        return True
    if "scim2_client" not in sys.modules:
        return False
    from scim2_client import RequestNetworkException

    return isinstance(exc, RequestNetworkException)


def _error_detail(response: httpx2.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    return str(body.get("detail", "")) if isinstance(body, dict) else response.text[:200]


def _is_retryable(exc: Exception) -> bool:
    if _is_network_error(exc):
        return True
    status = _status_of(exc)
    return status is not None and (status == 429 or status >= 500)


def _status_of(exc: Exception) -> int | None:
    if isinstance(exc, _HttpStatusError):
        return exc.status
    if "scim2_client" not in sys.modules:
        return None
    from scim2_client import UnexpectedStatusCodeException
    from scim2_models import SCIMException

    if isinstance(exc, SCIMException):
        return int(exc.status) if exc.status is not None else None
    if isinstance(exc, UnexpectedStatusCodeException):
        source = getattr(exc, "source", None)
        code = getattr(source, "status_code", None)
        return int(code) if code is not None else None
    return None


def _detail(exc: Exception) -> str:
    if "scim2_models" in sys.modules:
        from scim2_models import SCIMException

        if isinstance(exc, SCIMException):
            return str(exc.to_error().detail or exc)
    return str(exc)


class _Unanswered(httpx2.AsyncBaseTransport):
    """Counts a request whose connection failed or closed before an answer, as status 0.

    Answered requests are counted by the client's response hook; without this, a request that
    got no answer (and every retry of it) was missing from ``requests.target`` and the metrics.
    """

    def __init__(self, inner: httpx2.AsyncBaseTransport, stats: RequestStats) -> None:
        self._inner = inner
        self._stats = stats

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            return await self._inner.handle_async_request(request)
        except httpx2.TransportError:
            self._stats.count(request.method, 0)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()


class ScimTarget:
    """The Identity Center SCIM client syncd writes through.

    :param url: the SCIM endpoint, ``https://scim.<region>.amazonaws.com/<tenant>/scim/v2``.
    :param token: the bearer token (a ``SecretStr``: it is only ever put in the header).
    :param requests_per_second: the pace shared by every request of this target.
    :param transport: the seam for tests; None means real HTTP.
    :param remove_style: how member removals are written: ``"value"`` (Identity Center's form)
        or ``"filter"`` (RFC 7644 §3.5.2.2, for strict SCIM servers).
    """

    def __init__(
        self,
        url: str,
        token: SecretStr,
        *,
        requests_per_second: float = 20.0,
        transport: httpx2.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        retry_timeout: float = 120.0,
        attempts: int = 8,
        remove_style: Literal["value", "filter"] = "value",
    ) -> None:
        self.remove_style = remove_style
        self.stats = RequestStats()
        self.proven = False
        """True once Identity Center has answered a request without refusing the token."""
        self._first = asyncio.Lock()  # held by the one request in flight until the token is proven
        self._refused: TargetError | None = None  # why nothing more is sent (a 401/403, or the first request failed)
        self._user_ids: dict[str, str] = {}  # the ids of the last full user listing
        self.manager_id: Callable[[str], str | None] | None = None
        """Source id → Identity Center id of a manager, for the users this target sends (the run's)."""
        self.pacer = Pacer(requests_per_second, burst=max(1.0, BURST_SHARE * requests_per_second))
        self.retry_timeout = retry_timeout
        self.attempts = attempts
        self._http = httpx2.AsyncClient(
            base_url=normalise_base_url(url),
            headers={
                "Authorization": f"Bearer {token.get_secret_value()}",
                "Accept": "application/scim+json, application/json",
            },
            timeout=timeout,
            # The client's own limits do not apply to a transport it is given: the default one gets them.
            transport=_Unanswered(
                transport
                or httpx2.AsyncHTTPTransport(limits=httpx2.Limits(max_connections=32, max_keepalive_connections=32)),
                self.stats,
            ),
            event_hooks={"response": [self._count]},
        )
        self._client: AsyncSCIMClient | None = None

    @property
    def _scim(self) -> AsyncSCIMClient:
        """scim2-client on this target's connection pool, made (and scim2 imported) by the first write."""
        if self._client is None:
            from scim2_client.engines.httpx2 import AsyncSCIMClient

            self._client = AsyncSCIMClient(self._http, provider=_provider())
        return self._client

    @property
    def user_model(self) -> type[User[EnterpriseUser]]:
        """The SCIM user model with the enterprise extension, as the provider registers it."""
        user_model = self._scim.get_resource_model("User")
        assert user_model is not None  # registered by _provider()
        return user_model  # type: ignore[return-value]

    async def _count(self, response: httpx2.Response) -> None:
        self.stats.by_status[response.status_code] += 1
        self.stats.by_method[response.request.method] += 1
        if response.status_code not in (401, 403):
            self.proven = True
        if response.status_code == 429:
            self.pacer.on_throttled()
        elif response.status_code < 400:
            self.pacer.on_success()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    async def _call(self, what: str, factory: Any) -> Any:
        """Run ``factory()`` (a coroutine factory) paced and retried; map errors to syncd's.

        Until the token is proven, calls go one at a time; if that one is refused or cannot get
        through, the calls waiting behind it fail the same way without being sent.
        """
        if not self.proven:
            async with self._first:
                self._raise_if_refused(what)
                if not self.proven:
                    try:
                        return await self._send(what, factory)
                    except (TargetAuthError, TargetUnavailable) as exc:
                        self._refused = exc
                        raise
        self._raise_if_refused(what)
        try:
            return await self._send(what, factory)
        except TargetAuthError as exc:  # revoked mid-run: stop sending
            self._refused = exc
            raise

    def _raise_if_refused(self, what: str) -> None:
        refused = self._refused
        if refused is None:
            return
        reason = str(refused).split(": ", 1)[-1]  # without the earlier request's own subject
        raise type(refused)(f"{what}: not sent, an earlier request failed: {reason}", status=refused.status)

    async def _send(self, what: str, factory: Any) -> Any:
        async def paced() -> Any:
            await self.pacer.acquire()
            return await factory()

        policy = RetryPolicy(attempts=self.attempts, timeout=self.retry_timeout, backoff=_BACKOFF)
        try:
            return await policy.run(paced, on=_is_retryable)
        except Exception as exc:
            if not isinstance(exc, (_HttpStatusError, _NoAnswer, *_scim2_errors())):
                raise
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: Exception) -> TargetError:
        status = _status_of(exc)
        detail = _detail(exc)
        if _is_network_error(exc):
            return TargetUnavailable(f"{what}: Identity Center could not be reached ({describe(exc.__cause__ or exc)})")
        if status in (401, 403):
            return TargetAuthError(
                f"{what}: Identity Center refused the SCIM token ({status}); fix target.scim_token: the token"
                " may have expired (they last one year) or been revoked or replaced in the console"
                " (a wrong tenant in target.scim_url is refused the same way)",
                status=status,
            )
        if status == 404:
            return TargetNotFound(f"{what}: not found in Identity Center", status=status)
        if status == 409:
            return TargetConflict(f"{what}: {detail}", status=status)
        if status is not None and (status == 429 or status >= 500):
            return TargetUnavailable(f"{what}: Identity Center kept answering {status} ({detail})", status=status)
        return TargetError(f"{what}: Identity Center answered {status}: {detail}", status=status)

    async def probe(self) -> None:
        """One cheap authenticated read, to prove the token: ``GET /Users`` filtered on a userName nobody has.

        Identity Center answers an empty list [DG:listusers]; no user's data is read.

        Raises:
            TargetAuthError: the token is refused (401/403): the message says to fix ``target.scim_token``.
            TargetError: the URL answers, but not as Identity Center's SCIM endpoint does (a 404: fix
                ``target.scim_url``).
            TargetUnavailable: Identity Center cannot be reached, or keeps answering 429 or 5xx.
        """
        url = "Users?filter=" + quote(f'userName eq "{PROBE_USER_NAME}"', safe="")
        try:
            await self._call("check the SCIM token", lambda: self._get_json(url))
        except TargetNotFound:
            raise TargetError(
                f"check the SCIM token: {self._http.base_url} answered 404, so it is not Identity Center's SCIM"
                " endpoint; fix target.scim_url (copy the SCIM endpoint from the console: Settings, Identity"
                " source, Automatic provisioning)",
                status=404,
            ) from None

    # ----- users

    async def create_user(self, user: model.User) -> LiveUser:
        """POST /Users; returns the created user."""
        resource = user_resource(user, self.user_model, manager_id=self.manager_id)
        created = await self._call(f"create user {user.user_name!r}", lambda: self._scim.create(resource))
        return live_user(created.model_dump(mode="json", scim_ctx=None, by_alias=True))

    async def replace_user(self, target_id: str, user: model.User) -> None:
        """PUT /Users/{id} with the full desired state (a rename included: ids survive)."""
        resource = user_resource(user, self.user_model, target_id, manager_id=self.manager_id)
        await self._call(f"update user {user.user_name!r}", lambda: self._scim.replace(resource))

    async def deactivate_user(self, target_id: str) -> None:
        """PATCH ``active`` to false, with its path [DG:patchuser]: sign-in ends at once while the
        id, and the account assignments that point at it, stay (the first step of a two-step delete)."""
        from scim2_models import EnterpriseUser, PatchOp, PatchOperation, User

        op = PatchOp[User[EnterpriseUser]](
            operations=[PatchOperation[User[EnterpriseUser]](op="replace", path="active", value=False)]
        )
        await self._call(f"deactivate user {target_id}", lambda: self._scim.modify(self.user_model, target_id, op))

    async def delete_user(self, target_id: str) -> None:
        """DELETE /Users/{id}."""
        await self._call(f"delete user {target_id}", lambda: self._scim.delete(self.user_model, target_id))

    # ----- groups

    async def create_group(self, group: model.Group, member_ids: list[str]) -> LiveGroup:
        """POST /Groups with up to 100 members inline [DG:creategroup]."""
        from scim2_models import Group, GroupMember

        resource = Group(
            external_id=group.source_id,
            display_name=group.display_name,
            members=[GroupMember(value=m) for m in member_ids] or None,
        )
        created = await self._call(f"create group {group.display_name!r}", lambda: self._scim.create(resource))
        return LiveGroup(str(created.id), created.external_id, str(created.display_name))

    async def update_group(self, target_id: str, group: model.Group, before: Mapping[str, Any] | None = None) -> None:
        """PATCH what changed of displayName and externalId, in place: a rename keeps the id.

        One ``replace`` operation per changed attribute, each with its ``path``: Identity Center
        allows omitting ``path`` only for an operation that modifies a single attribute, and
        answers 400 otherwise [DG:patchgroup; goauthentik/authentik#12321]. ``before`` is what
        Identity Center holds (None: unknown, send both); when nothing differs no request is sent.
        """
        from scim2_models import Group, PatchOp, PatchOperation

        wanted = group.payload()
        operations = [
            PatchOperation[Group](op="replace", path=attr, value=wanted[attr])
            for attr in ("displayName", "externalId")
            if before is None or before.get(attr) != wanted[attr]
        ]
        if not operations:
            return
        op = PatchOp[Group](operations=operations)
        await self._call(f"update group {group.display_name!r}", lambda: self._scim.modify(Group, target_id, op))

    async def patch_members(self, target_id: str, *, add: list[str] = (), remove: list[str] = ()) -> None:  # type: ignore[assignment]
        """PATCH members: ``add``/``remove`` ops on path ``members``, at most 100 in all [DG:patchgroup]."""
        if len(add) + len(remove) > 100:
            raise ValueError("Identity Center takes at most 100 member changes per PATCH")
        from scim2_models import Group, PatchOp, PatchOperation

        operations = []
        if add:
            operations.append(PatchOperation[Group](op="add", path="members", value=[{"value": m} for m in add]))
        if remove and self.remove_style == "value":
            # What Identity Center accepts, as ssosync (internal/aws/client.go) and idp-scim-sync
            # (internal/scim/scim.go) send it; the RFC filter form is UNCONFIRMED there [A.5].
            operations.append(PatchOperation[Group](op="remove", path="members", value=[{"value": m} for m in remove]))
        elif remove:
            # RFC 7644 §3.5.2.2: a remove names its target with a path filter and carries no value.
            operations.extend(
                PatchOperation[Group](op="remove", path=f'members[value eq "{_quote_filter(m)}"]') for m in remove
            )
        op = PatchOp[Group](operations=operations)
        await self._call(f"change members of group {target_id}", lambda: self._scim.modify(Group, target_id, op))

    async def delete_group(self, target_id: str) -> None:
        """DELETE /Groups/{id}."""
        from scim2_models import Group

        await self._call(f"delete group {target_id}", lambda: self._scim.delete(Group, target_id))

    # ----- reads

    async def _pages(self, endpoint: str, filter_: str | None = None) -> AsyncIterator[list[dict[str, Any]]]:
        """Every page of a cursor-paged listing [DG:listusers, DG:listgroups].

        The query string is built by hand: the first request needs a bare ``cursor`` (URL
        encoders drop empty values) and later cursors may hold ``+``, ``/`` and ``=``.
        """
        cursor = ""
        while True:
            query = f"count={PAGE_SIZE}&cursor={quote(cursor, safe='')}"
            if filter_:
                query += f"&filter={quote(filter_, safe='')}"
            url = f"{endpoint}?{query}"
            raw = await self._call(f"list {endpoint}", lambda url=url: self._get_json(url))
            resources = raw.get("Resources") or []
            yield resources
            next_cursor = raw.get("nextCursor")
            if not next_cursor:
                return
            cursor = str(next_cursor)

    async def _get_json(self, url: str) -> dict[str, Any]:
        # scim2-client's query() validates cursors against RFC 3986 and rejects AWS's, so list
        # pages are plain httpx2 GETs; errors still map through _translate.
        try:
            response = await self._http.get(url)
        except httpx2.TransportError as exc:
            raise _NoAnswer(str(exc)) from exc
        if response.status_code >= 400:
            raise _HttpStatusError(response.status_code, _error_detail(response))
        body = response.json()
        if not isinstance(body, dict):
            raise TargetError(f"GET {url}: Identity Center returned something that is not a JSON object")
        return body

    async def list_users(
        self,
        *,
        expected: Mapping[str, model.User] | None = None,
        known_ids: Iterable[str] = (),
        owners: Mapping[str, str] | None = None,
    ) -> list[LiveUser]:
        """Every user in Identity Center.

        ``expected`` (source id → the user syncd will compare it with) and ``known_ids`` (user ids
        the caller already holds) only save memory: see :func:`live_user`. A full resync of 100k
        users would otherwise hold each one's attributes and ids twice.
        """
        ids = {i: i for i in known_ids}
        # Member listings name these users again: they share these id strings, and those they
        # read first (they may run beside this listing) are shared with it (a full resync of 500k
        # memberships would otherwise hold 500k more copies of them).
        self._user_ids = ids
        users: list[LiveUser] = []
        async for page in self._pages("Users"):
            users.extend(live_user(item, expected, ids, owners) for item in page)
        return users

    @property
    def user_ids(self) -> Mapping[str, str]:
        """The user ids of the last full listing (:meth:`list_users`, and the member listings after
        it), each mapped to itself: one string per id for whoever else holds them."""
        return self._user_ids

    def forget_user_ids(self) -> None:
        """Let the last listing's ids go (its users and member sets keep theirs)."""
        self._user_ids = {}

    async def list_groups(self) -> list[LiveGroup]:
        """Every group in Identity Center (members are never returned here)."""
        groups: list[LiveGroup] = []
        async for page in self._pages("Groups"):
            groups.extend(LiveGroup(str(g["id"]), g.get("externalId"), str(g.get("displayName", ""))) for g in page)
        return groups

    async def list_member_ids(self, group_id: str) -> MemberSet:
        """The ids of a group's members, via the ``groups.value eq`` users filter [DG:listusers]."""
        members: list[str] = []
        known = self._user_ids
        async for page in self._pages("Users", f'groups.value eq "{group_id}"'):
            members.extend(known.setdefault(user_id, user_id) for user_id in (str(u["id"]) for u in page))
        return MemberSet(members)

    async def find_user(self, *, external_id: str | None = None, user_name: str | None = None) -> LiveUser | None:
        """The user with that externalId, else that userName; None when neither exists."""
        for attr, value in (("externalId", external_id), ("userName", user_name)):
            if not value:
                continue
            async for page in self._pages("Users", f'{attr} eq "{_quote_filter(value)}"'):
                if page:
                    return live_user(page[0])
        return None

    async def find_group(self, *, external_id: str | None = None, display_name: str | None = None) -> LiveGroup | None:
        """The group with that externalId, else that displayName."""
        for attr, value in (("externalId", external_id), ("displayName", display_name)):
            if not value:
                continue
            async for page in self._pages("Groups", f'{attr} eq "{_quote_filter(value)}"'):
                if page:
                    g = page[0]
                    return LiveGroup(str(g["id"]), g.get("externalId"), str(g.get("displayName", "")))
        return None


def _quote_filter(value: str) -> str:
    """Escape a value for a SCIM filter string literal (RFC 7644 §3.4.2.2: JSON string rules)."""
    return value.replace("\\", "\\\\").replace('"', '\\"')
