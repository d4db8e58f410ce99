"""A stateful fake of Google's Admin SDK Directory API, its token endpoint, IAM ``signJwt`` and STS.

Served through ``httpx2.MockTransport`` (:attr:`FakeGoogle.transport`) or over real HTTP with
:func:`tests.fakes.serve.serve` (:meth:`FakeGoogle.handler`). It follows the Directory API
reference (``admin.directory_v1`` discovery document) and its "Limits and Quotas",
"Troubleshoot error codes" and "Partial response" pages, rule by rule:

* lists answer ``{kind, etag, users|groups|members, nextPageToken}``; an empty page leaves the
  array key out entirely (firezone/firezone#8640, Netflix/dispatch#3132); ``nextPageToken`` is
  absent on the last page; a users page token is valid three days;
* ``maxResults``: users default 100, at most 500; groups and members default and at most 200;
  a value outside ``[1, max]`` is refused with 400 [assumed: refused rather than capped];
* ``/users`` and ``/groups`` need ``customer`` (``my_customer`` or the customer id) or
  ``domain``; ``/groups`` also takes ``userKey`` alone, never together with ``customer``;
* ``/groups/{groupKey}/members``: ``groupKey`` is the id, the email or an alias;
  ``includeDerivedMembership=true`` adds the users of nested groups *and keeps the GROUP rows*,
  without de-duplicating (slashdevops/idp-scim-sync ``internal/idp/idp.go`` drops GROUP rows and
  de-duplicates by id); ``roles`` filters; CUSTOMER rows (the whole domain: no email, the
  customer id as id) and members from outside the domain (a USER row whose id has no user
  record, or an EXTERNAL row) are data like any other;
* ``fields=`` trims the answer, and naming a field the resource lacks is 400;
* every resource and every list carries an ``etag`` that changes when its content does, and
  every response a ``Date`` by the fake's clock;
* auth: a Bearer token from :mod:`tests.fakes.google_auth`; 401 without a live one; 403
  ``insufficientPermissions`` without a scope the call needs; 403 "Not Authorized to access
  this resource/api" when the token acts as nobody (no ``sub``) or as a user without admin rights;
* quotas: 2,400 queries per minute per user (the impersonated admin) on the fake's clock, then
  403 ``userRateLimitExceeded``; at most :attr:`FakeGoogle.max_concurrent` requests in flight,
  then 429 ``rateLimitExceeded``; no rate-limit headers (none are documented).

Google rejects a group membership that would make a cycle; :meth:`FakeGoogle.add_member` does
too, unless told ``allow_cycle=True`` (the connector must survive one all the same).
Assumptions beyond the reference are marked **[assumed]**. The clock (:attr:`FakeGoogle.now`)
only moves when a test calls :meth:`FakeGoogle.advance` (or, ``live``, with the machine's).
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from email.utils import formatdate
from typing import Any
from urllib.parse import unquote

import httpx2

from tests.fakes.faults import Fault, due
from tests.fakes.google_auth import SCOPE_PREFIX, FakeAuthority, ServiceAccount
from tests.fakes.google_records import FakeGroup, FakeUser, Member
from tests.fakes.google_wire import (
    GROUPS_LIST,
    MEMBERS_LIST,
    NOT_AUTHORIZED,
    USERS_LIST,
    BadFields,
    Schema,
    apply_fields,
    error,
    etag_of,
    injected,
    page_size,
    parse_fields,
    rate_limited,
)


API_URL = "https://admin.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"
IAM_URL = "https://iamcredentials.googleapis.com"
STS_URL = "https://sts.googleapis.com"
DIRECTORY = "/admin/directory/v1"
USER_SCOPE = f"{SCOPE_PREFIX}admin.directory.user.readonly"
GROUP_SCOPE = f"{SCOPE_PREFIX}admin.directory.group.readonly"
MEMBER_SCOPE = f"{SCOPE_PREFIX}admin.directory.group.member.readonly"
READ_SCOPES = (USER_SCOPE, GROUP_SCOPE, MEMBER_SCOPE)
# Scopes each list method accepts (discovery document, users.list / groups.list / members.list).
_ACCEPTED = {
    "users": frozenset({USER_SCOPE, f"{SCOPE_PREFIX}admin.directory.user"}),
    "groups": frozenset({GROUP_SCOPE, f"{SCOPE_PREFIX}admin.directory.group"}),
    "members": frozenset(
        {
            MEMBER_SCOPE,
            GROUP_SCOPE,
            f"{SCOPE_PREFIX}admin.directory.group.member",
            f"{SCOPE_PREFIX}admin.directory.group",
        }
    ),
}
_STANDARD = frozenset({"fields", "prettyPrint", "alt", "key", "quotaUser"})
_PARAMS = {
    "users": _STANDARD
    | {
        "customer",
        "domain",
        "maxResults",
        "pageToken",
        "projection",
        "orderBy",
        "sortOrder",
        "showDeleted",
        "viewType",
    },
    "groups": _STANDARD | {"customer", "domain", "userKey", "maxResults", "pageToken", "orderBy", "sortOrder"},
    "members": _STANDARD | {"maxResults", "pageToken", "includeDerivedMembership", "roles"},
}
_PAGE = {"users": (100, 500), "groups": (200, 200), "members": (200, 200)}
USERS_TOKEN_LIFETIME = 3 * 86_400


@dataclass(frozen=True)
class Call:
    """A recorded request, simplified for assertions."""

    method: str
    path: str
    params: dict[str, str]


@dataclass
class _Token:
    listing: tuple[Any, ...]
    offset: int
    issued: float


class FakeGoogle:
    """The fake Workspace domain. Fill it with the helpers and hand :attr:`transport` to the connector.

    :param api_url, token_uri, iam_url, sts_url: where the services are served (default: Google's).
    :param quota_per_minute: Directory queries per minute per impersonated user.
    :param max_concurrent: Directory requests in flight before 429 ``rateLimitExceeded`` (None: no limit).
    :param live: the clock follows the machine's (for a client on real time, such as the CLI
        over HTTP); otherwise it only moves by :meth:`advance`.

    Set :attr:`refuse_derived` to make ``includeDerivedMembership=true`` answer 400.
    """

    def __init__(
        self,
        *,
        domain: str = "example.com",
        customer_id: str = "C03fake01",
        api_url: str = API_URL,
        token_uri: str = TOKEN_URI,
        iam_url: str = IAM_URL,
        sts_url: str = STS_URL,
        now: float = 1_750_000_000.0,
        quota_per_minute: int = 2400,
        max_concurrent: int | None = None,
        live: bool = False,
    ) -> None:
        self.domain = domain
        self.customer_id = customer_id
        self.api_url = api_url.rstrip("/")
        self.iam_url = iam_url.rstrip("/")
        self.sts_url = sts_url.rstrip("/")
        self.live = live
        self.now = time.time() if live else now
        self.quota_per_minute = quota_per_minute
        self.max_concurrent = max_concurrent
        self.auth = FakeAuthority(token_uri, self._is_user, lambda: self.now)
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.deleted: dict[str, FakeUser] = {}
        self.requests: list[httpx2.Request] = []
        self.responses: list[httpx2.Response] = []
        self.faults: list[Fault] = []
        self.before: Callable[[httpx2.Request], None] | None = None
        self.refuse_derived = False
        self.in_flight = 0
        self.peak_in_flight = 0
        self._quota: dict[str, tuple[float, int]] = {}
        self._tokens: dict[str, _Token] = {}
        self._ids = itertools.count(1)

    @property
    def token_uri(self) -> str:
        """The token endpoint's URL (the JWT audience it accepts)."""
        return self.auth.token_uri

    @property
    def transport(self) -> httpx2.MockTransport:
        """A transport that routes every request to the fake, letting requests overlap."""
        return httpx2.MockTransport(self.ahandler)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward."""
        self.now += seconds

    # -- directory helpers -----------------------------------------------------------------------

    def _is_user(self, email: str) -> bool:
        return self.user_by_email(email) is not None

    def user_by_email(self, email: str) -> FakeUser | None:
        """The user whose primary email or alias is ``email`` (case-insensitive)."""
        folded = email.casefold()
        for user in self.users.values():
            if user.email.casefold() == folded or folded in (a.casefold() for a in user.aliases):
                return user
        return None

    def add_user(
        self,
        email: str | None = None,
        *,
        given_name: str = "Given",
        family_name: str = "Family",
        suspended: bool = False,
        archived: bool = False,
        admin: bool = False,
        department: str | None = None,
        cost_center: str | None = None,
        title: str | None = None,
        employee_id: str | None = None,
        manager: str | None = None,
    ) -> str:
        """Add a user (``manager`` is the manager's email, as the ``manager`` relation holds it). Returns its id."""
        number = next(self._ids)
        user_id = str(100_000_000_000_000_000_000 + number * 7919)
        user = FakeUser(
            user_id,
            email or f"user{number}@{self.domain}",
            given_name,
            family_name,
            self.now,
            suspended,
            archived,
            admin,
        )
        self.users[user_id] = user
        self.update_user(
            user_id,
            department=department,
            cost_center=cost_center,
            title=title,
            employee_id=employee_id,
            manager=manager,
        )
        return user_id

    def update_user(self, user_id: str, **changes: Any) -> None:
        """Change a user: its own fields by name, or department/cost_center/title/employee_id/manager."""
        user = self.users[user_id]
        org_keys = {"department": "department", "cost_center": "costCenter", "title": "title"}
        org = dict(user.organizations[0]) if user.organizations else {"primary": True, "customType": ""}
        for key, value in changes.items():
            if key in org_keys:
                if value is None:
                    org.pop(org_keys[key], None)
                else:
                    org[org_keys[key]] = value
            elif key == "employee_id":
                user.external_ids = [{"value": value, "type": "organization"}] if value else []
            elif key == "manager":
                user.relations = [{"value": value, "type": "manager"}] if value else []
            else:
                assert hasattr(user, key), key
                setattr(user, key, value)
        user.organizations = [org] if set(org) - {"primary", "customType"} else []

    def delete_user(self, user_id: str) -> None:
        """Delete a user: it leaves the list (``showDeleted=true`` lists it) and every group."""
        user = self.users.pop(user_id)
        user.deleted = self.now
        self.deleted[user_id] = user
        for group in self.groups.values():
            group.members = [m for m in group.members if m.id != user_id]

    def add_group(self, email: str, name: str | None = None, *, description: str = "") -> str:
        """Add a group (``email`` is its address). Returns its id."""
        group_id = f"03{next(self._ids):013x}"
        self.groups[group_id] = FakeGroup(group_id, email, name or email.split("@")[0], description)
        return group_id

    def _reaches(self, start: str, goal: str) -> bool:
        stack, seen = [start], set()
        while stack:
            current = stack.pop()
            if current == goal:
                return True
            if current in seen or current not in self.groups:
                continue
            seen.add(current)
            stack.extend(m.id for m in self.groups[current].members if m.type == "GROUP")
        return False

    def add_member(self, group_id: str, *keys: str, role: str = "MEMBER", allow_cycle: bool = False) -> None:
        """Add users or groups (by id) to a group. A group that would make a cycle is refused,
        as Google refuses it, unless ``allow_cycle``."""
        group = self.groups[group_id]
        for key in keys:
            if key in self.users:
                member = Member("USER", key, self.users[key].email, role)
            else:
                nested = self.groups[key]
                if not allow_cycle and self._reaches(key, group_id):
                    raise ValueError(f"adding {nested.email} to {group.email} would make a cycle")
                member = Member("GROUP", key, nested.email, role)
            if all(m.id != key for m in group.members):
                group.members.append(member)

    def add_customer_member(self, group_id: str) -> None:
        """Make "everyone in the domain" a member (a CUSTOMER row: the customer id, no email)."""
        self.groups[group_id].members.append(Member("CUSTOMER", self.customer_id))

    def add_external_member(self, group_id: str, email: str, *, type: str = "USER") -> str:
        """Add someone from outside the domain: a row with an id no user record has. Returns the id."""
        member_id = str(200_000_000_000_000_000_000 + next(self._ids))
        self.groups[group_id].members.append(Member(type, member_id, email))
        return member_id

    def remove_member(self, group_id: str, key: str) -> None:
        """Remove a direct member (user, group, customer or external) by id."""
        group = self.groups[group_id]
        group.members = [m for m in group.members if m.id != key]

    # -- credentials helpers -----------------------------------------------------------------------

    def add_service_account(
        self, email: str = "syncd@syncd-test.iam.gserviceaccount.com", **kwargs: Any
    ) -> ServiceAccount:
        """A service account with a key (see :meth:`FakeAuthority.add_service_account`)."""
        return self.auth.add_service_account(email, **kwargs)

    def delegate(self, account: ServiceAccount, scopes: Iterable[str] = READ_SCOPES) -> None:
        """Authorise the account's client id for domain-wide delegation with ``scopes``."""
        self.auth.delegate(account.client_id, scopes)

    # -- faults and records ------------------------------------------------------------------------

    def inject(self, kind: str | int, *, on: int = 1, path: str | None = None, times: int = 1) -> None:
        """Fail the ``on``-th Directory request whose path starts with ``path`` (and ``times - 1`` more).

        ``kind``: ``"userRateLimitExceeded"`` (403), ``"quotaExceeded"`` (403),
        ``"rateLimitExceeded"`` (429), ``"notAuthorized"`` (403), ``"backendError"`` (503),
        ``"network"`` (a connection error), or an HTTP status.
        """
        self.faults.append(Fault(str(kind), on, path, times))

    def calls(self, path: str | None = None) -> list[Call]:
        """Recorded requests, optionally those whose path is ``path`` (``*`` matches one segment)."""
        pattern = re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$") if path is not None else None
        return [
            Call(r.method, r.url.path, dict(r.url.params.multi_items()))
            for r in self.requests
            if pattern is None or pattern.match(r.url.path)
        ]

    def member_listings(self) -> list[str]:
        """The group keys whose first member page was asked for, in order."""
        return [
            unquote(c.path.split("/")[5])
            for c in self.calls(f"{DIRECTORY}/groups/*/members")
            if "pageToken" not in c.params
        ]

    def directory_requests(self) -> int:
        """How many Directory API requests were made."""
        return sum(r.url.path.startswith(DIRECTORY) for r in self.requests)

    # -- HTTP --------------------------------------------------------------------------------------

    async def ahandler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request, letting others in flight meanwhile (to see concurrency)."""
        self.in_flight += 1
        self.peak_in_flight = max(self.peak_in_flight, self.in_flight)
        try:
            await asyncio.sleep(0)  # requests sent together overlap here, as on a network
            crowded = self.max_concurrent is not None and self.in_flight > self.max_concurrent
            if crowded and request.url.path.startswith(DIRECTORY):
                self.requests.append(request)
                response = error(
                    429, "Rate Limit Exceeded", "rateLimitExceeded", domain="usageLimits", state="RESOURCE_EXHAUSTED"
                )
                self.responses.append(response)
                return response
            return self.handler(request)
        finally:
            self.in_flight -= 1

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request the way Google would (and record both)."""
        if self.live:
            self.now = max(self.now, time.time())
        self.requests.append(request)
        if self.before is not None:
            self.before(request)
        response = self._route(request)
        response.headers["Date"] = formatdate(self.now, usegmt=True)
        self.responses.append(response)
        return response

    def _route(self, request: httpx2.Request) -> httpx2.Response:
        url = str(request.url.copy_with(query=None))
        if url == self.token_uri:
            return self.auth.token_endpoint(request)
        if url == f"{self.sts_url}/v1/token":
            return self.auth.sts_exchange(request)
        prefix = f"{self.iam_url}/v1/projects/-/serviceAccounts/"
        if url.startswith(prefix) and url.endswith(":signJwt") and request.method == "POST":
            return self.auth.sign_jwt(request, url[len(prefix) : -len(":signJwt")])
        if url.startswith(f"{self.api_url}{DIRECTORY}/"):
            return self._directory(request)
        return error(404, "Not Found", "notFound")

    def _directory(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path[len(DIRECTORY) :]
        if path == "/users":
            route, group_key = "users", None
        elif path == "/groups":
            route, group_key = "groups", None
        elif match := re.fullmatch(r"/groups/([^/]+)/members", path):
            route, group_key = "members", unquote(match.group(1))
        else:
            return error(404, "Not Found", "notFound")
        fault = due(self.faults, request)
        if fault is not None:
            return injected(fault.kind, request)
        if request.method != "GET":
            return error(405, "Method not allowed by the fake (it is read-only)", "badRequest")
        token = self.auth.bearer(request)
        if token is None:
            return error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
                "other valid authentication credential.",
                "authError",
                state="UNAUTHENTICATED",
                detail="Invalid Credentials",
                extra={"location": "Authorization", "locationType": "header"},
            )
        if not token.scopes & _ACCEPTED[route]:
            return error(
                403,
                "Request had insufficient authentication scopes.",
                "insufficientPermissions",
                state="PERMISSION_DENIED",
            )
        acting = self.user_by_email(token.subject or token.principal)
        if acting is None or not acting.admin or acting.suspended:
            return error(403, NOT_AUTHORIZED, "forbidden")
        spent = self._spend(acting.email)
        if spent is not None:
            return spent
        params = request.url.params
        unknown = sorted(set(params) - _PARAMS[route])
        if unknown:
            # [assumed] Google refuses query parameters a method does not define.
            return error(
                400,
                f'Invalid JSON payload received. Unknown name "{unknown[0]}": Cannot bind query parameter.',
                "badRequest",
                state="INVALID_ARGUMENT",
            )
        if route == "users":
            return self._list_users(params)
        if route == "groups":
            return self._list_groups(params)
        assert group_key is not None
        return self._list_members(group_key, params)

    def _spend(self, user: str) -> httpx2.Response | None:
        """Count one query against the user's per-minute quota; the 403 once it is spent."""
        start, used = self._quota.get(user, (self.now, 0))
        if self.now >= start + 60:
            start, used = self.now, 0
        if used >= self.quota_per_minute:
            return rate_limited()
        self._quota[user] = (start, used + 1)
        return None

    # -- listings ----------------------------------------------------------------------------------

    def _customer(self, params: Mapping[str, str]) -> httpx2.Response | None:
        """None when ``customer``/``domain`` name this domain; the 400 otherwise."""
        customer, domain = params.get("customer"), params.get("domain")
        if customer is None and domain is None:
            return error(400, "Bad Request", "badRequest")
        if customer is not None and customer not in {"my_customer", self.customer_id}:
            return error(400, "Bad Request", "badRequest")  # [assumed] another customer's id
        if domain is not None and domain.casefold() != self.domain.casefold():
            return error(400, "Bad Request", "badRequest")  # [assumed] a domain not of this customer
        return None

    def _page(
        self,
        route: str,
        kind: str,
        key: str,
        records: Sequence[Any],
        serialize: Callable[[Any], dict[str, Any]],
        params: Mapping[str, str],
        schema: Schema,
        lifetime: float | None = None,
    ) -> httpx2.Response:
        """One page of ``records``; only the page's records are serialised."""
        size = page_size(*_PAGE[route], params)
        if isinstance(size, httpx2.Response):
            return size
        try:
            selection = parse_fields(params["fields"], schema) if "fields" in params else None
        except BadFields as exc:
            return error(400, str(exc), "invalidParameter", extra={"location": "fields", "locationType": "parameter"})
        listing = (
            route,
            key,
            *sorted((k, v) for k, v in params.items() if k not in {"pageToken", "maxResults", "fields"}),
        )
        offset = 0
        if "pageToken" in params:
            token = self._tokens.get(params["pageToken"])
            expired = token is not None and lifetime is not None and self.now - token.issued > lifetime
            if token is None or token.listing != listing or expired:
                return error(400, "Invalid Page Token", "invalid", state="INVALID_ARGUMENT")  # [assumed] the wording
            offset = token.offset
        page = [serialize(record) for record in records[offset : offset + size]]
        body: dict[str, Any] = {"kind": kind}
        if page:
            body[key] = page
        if offset + size < len(records):
            next_token = secrets.token_urlsafe(18)
            self._tokens[next_token] = _Token(listing, offset + size, self.now)
            body["nextPageToken"] = next_token
        body = {"kind": kind, "etag": etag_of(body), **{k: v for k, v in body.items() if k != "kind"}}
        return httpx2.Response(200, json=apply_fields(body, selection))

    def _list_users(self, params: Mapping[str, str]) -> httpx2.Response:
        refused = self._customer(params)
        if refused is not None:
            return refused
        if params.get("projection", "basic") not in {"basic", "full"}:
            return error(400, "fake: only projection basic and full are implemented", "badRequest")
        if params.get("viewType", "admin_view") != "admin_view":
            return error(400, "fake: only viewType admin_view is implemented", "badRequest")
        pool = self.deleted if params.get("showDeleted") == "true" else self.users
        order = params.get("orderBy", "email")
        sort_key: Callable[[FakeUser], str] = {
            "email": lambda u: u.email.casefold(),
            "givenName": lambda u: u.given_name.casefold(),
            "familyName": lambda u: u.family_name.casefold(),
        }.get(order, lambda u: u.email.casefold())
        ordered = sorted(pool.values(), key=sort_key, reverse=params.get("sortOrder") == "DESCENDING")
        return self._page(
            "users",
            "admin#directory#users",
            "users",
            ordered,
            lambda u: u.to_json(self.customer_id),
            params,
            USERS_LIST,
            USERS_TOKEN_LIFETIME,
        )

    def _list_groups(self, params: Mapping[str, str]) -> httpx2.Response:
        user_key = params.get("userKey")
        if user_key is not None:
            if "customer" in params or "domain" in params:
                return error(400, "Bad Request", "badRequest")
            user = self.users.get(user_key) or self.user_by_email(user_key)
            if user is None:
                return error(404, "Resource Not Found: userKey", "notFound")
            groups = [g for g in self.groups.values() if any(m.id == user.id for m in g.members)]
        else:
            refused = self._customer(params)
            if refused is not None:
                return refused
            groups = list(self.groups.values())
        ordered = sorted(groups, key=lambda g: g.email.casefold())
        return self._page("groups", "admin#directory#groups", "groups", ordered, FakeGroup.to_json, params, GROUPS_LIST)

    def group_by_key(self, key: str) -> FakeGroup | None:
        """The group whose id, email or alias is ``key``."""
        if key in self.groups:
            return self.groups[key]
        folded = key.casefold()
        for group in self.groups.values():
            if group.email.casefold() == folded or folded in (a.casefold() for a in group.aliases):
                return group
        return None

    def member_rows(self, group: FakeGroup, *, derived: bool) -> list[tuple[Member, str]]:
        """The rows ``members.list`` answers (a member and its role), in order: direct members,
        and with ``derived`` the members of nested groups after each GROUP row (GROUP rows kept,
        duplicates not removed)."""
        rows: list[tuple[Member, str]] = []
        visited = {group.id}

        def walk(current: FakeGroup, top: bool) -> None:
            for member in current.members:
                rows.append((member, member.role if top else "MEMBER"))
                nested = self.groups.get(member.id) if member.type == "GROUP" else None
                if derived and nested is not None and nested.id not in visited:
                    visited.add(nested.id)
                    walk(nested, top=False)

        walk(group, top=True)
        return rows

    def _member_json(self, row: tuple[Member, str]) -> dict[str, Any]:
        member, role = row
        data: dict[str, Any] = {"kind": "admin#directory#member", "id": member.id, "role": role, "type": member.type}
        if member.email is not None:
            data["email"] = member.email
        user = self.users.get(member.id)
        if member.type in {"USER", "EXTERNAL"}:
            # [assumed] values other than ACTIVE (reference §2.2 could not confirm them).
            data["status"] = "SUSPENDED" if user is not None and user.suspended else "ACTIVE"
        if user is not None:
            data["email"] = user.email
        data["etag"] = etag_of(data)
        return data

    def _list_members(self, group_key: str, params: Mapping[str, str]) -> httpx2.Response:
        group = self.group_by_key(group_key)
        if group is None:
            return error(404, "Resource Not Found: groupKey", "notFound")
        derived = params.get("includeDerivedMembership", "false")
        if derived not in {"true", "false"}:
            return error(400, f"Invalid value '{derived}'. Values must be true or false", "invalid")
        if derived == "true" and self.refuse_derived:
            # [assumed] how a refusal would look (GAM-team/GAM#1210: support called it unsupported).
            return error(400, "Invalid Input: includeDerivedMembership", "invalid")
        rows = self.member_rows(group, derived=derived == "true")
        if "roles" in params:
            roles = {r.strip().upper() for r in params["roles"].split(",")}
            if not roles <= {"OWNER", "MANAGER", "MEMBER"}:
                return error(400, "Invalid Input: roles", "invalid")
            rows = [r for r in rows if r[1] in roles]
        return self._page(
            "members", "admin#directory#members", "members", rows, self._member_json, params, MEMBERS_LIST
        )
