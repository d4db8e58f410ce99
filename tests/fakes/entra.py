"""A stateful fake of Microsoft Graph v1.0 (directory reads) and of the Entra token endpoint,
served through ``httpx2.MockTransport``.

Each rule has a test in ``tests/entra/test_fake*.py``. Graph pages are cited beside each rule:

* lists come in the ``value`` envelope with ``@odata.context`` and an **absolute**
  ``@odata.nextLink`` carrying ``$skiptoken``; ``$top`` is 1–999 (default 100), anything else is
  400 "Invalid page size specified" ("Paging Microsoft Graph data"; Microsoft Q&A 1129204);
  a page may be empty and still have a next link (:attr:`FakeEntra.empty_first_page`);
* users carry only the default properties unless ``$select`` names others, so
  ``accountEnabled`` and ``userType`` are hidden by default; an unknown property is 400, one a
  collection cannot return is 501; ``$skip`` is refused ("List users");
* ``/groups/{id}/members`` are the direct members, ``/transitiveMembers`` the flattened ones
  (cycle-safe), each with ``@odata.type``: users, groups, devices, contacts, service
  principals; the casts ``/microsoft.graph.user`` (alias ``/graph.user``) and ``.group`` need
  ``ConsistencyLevel: eventual`` and ``$count=true`` on every page, ``@odata.count`` comes on
  the first page only ("List group transitive members", "Advanced query capabilities");
* without ``User.Read.All`` a member user comes back with limited information: ``@odata.type``
  and ``id``, every other property null ("directoryObject: getByIds"); an endpoint the token has
  no permission for is 403 ``Authorization_RequestDenied``;
* delta ("Use delta query to track changes", "user: delta", "group: delta"): the initial round
  and ``$deltatoken=latest``; ``$skiptoken`` next links until one page has the
  ``@odata.deltaLink`` (never both); query options only on the first call, encoded in the
  tokens; only ``$select`` ed properties are tracked; ``Prefer: return=minimal``; ``$filter``
  only ``id eq`` for up to 50 ids; ``$top``/``$orderby``/``$expand`` refused; removed objects as
  ``{"id", "@removed": {"reason": "changed"|"deleted"}}``; ``members@delta`` holding ids only
  (direct members), a large group repeated on several pages with one slice each; a token older
  than 7 days is 400 ``syncStateNotFound``; :meth:`FakeEntra.force_resync` answers 410 with a
  ``Location``;
* throttling ("Microsoft Graph service-specific throttling limits"): a resource-unit bucket per
  10 s (users 2, members 3, transitiveMembers 5, others 1; ``$select`` −1; minimum 1), every
  response with ``x-ms-resource-unit``, ``x-ms-throttle-limit-percentage`` above 80 %, 429
  ``TooManyRequests`` with ``x-ms-throttle-scope``, every other 429 without ``Retry-After``;
* error bodies ``{"error": {"code", "message", "innerError": {...}}}``; the token endpoint is
  :mod:`tests.fakes.entra_login`.

The fake's clock (:attr:`FakeEntra.now`) moves only by :meth:`FakeEntra.advance`.
Assumptions beyond the Graph pages are marked **[assumed]**.
"""

from __future__ import annotations

import itertools
import math
import re
import secrets
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any

import httpx2

from tests.fakes.entra_delta import DeltaBook
from tests.fakes.entra_login import App, FederatedCredential, Login


__all__ = ["FakeEntra", "FederatedCredential"]

TENANT_ID = "7f3c9a52-1d4e-4b8a-9c61-2e5f0a8b3d17"
PAGE_DEFAULT, PAGE_MAX = 100, 999
USER_DEFAULT = (
    "businessPhones",
    "displayName",
    "givenName",
    "id",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
)
USER_PROPERTIES = frozenset(
    {
        *USER_DEFAULT,
        "accountEnabled",
        "userType",
        "employeeId",
        "department",
        "companyName",
        "externalUserState",
        "creationType",
        "onPremisesImmutableId",
        "deletedDateTime",
        "createdDateTime",
    }
)
# Properties a user has but a collection cannot return: 501 ("List users").
USER_SINGLE_ONLY = frozenset({"aboutMe", "birthday", "hireDate", "interests", "mySite", "pastProjects", "skills"})
GROUP_PROPERTIES = (
    "id",
    "displayName",
    "description",
    "mail",
    "mailEnabled",
    "mailNickname",
    "securityEnabled",
    "groupTypes",
    "membershipRule",
    "onPremisesSyncEnabled",
    "createdDateTime",
)
OTHER_PROPERTIES = {
    "device": ("id", "displayName", "deviceId", "accountEnabled"),
    "orgContact": ("id", "displayName", "mail"),
    "servicePrincipal": ("id", "displayName", "appId"),
}
GROUP_READ = frozenset({"GroupMember.Read.All", "Group.Read.All", "Directory.Read.All"})
USER_READ = frozenset({"User.Read.All", "Directory.Read.All"})
COSTS = {"users": 2, "members": 3, "transitive": 5}
BUCKET_WINDOW = 10.0


@dataclass
class DirObject:
    """A directory object: a user, group, device, orgContact or servicePrincipal."""

    id: str
    type: str
    props: dict[str, Any]
    manager: str | None = None
    members: dict[str, None] = field(default_factory=dict)  # groups: direct members, in order


@dataclass
class Fault:
    """An injected failure on the ``on``-th request whose path starts with ``path``."""

    status: int | str  # an HTTP status, or "network"
    on: int
    path: str | None
    times: int
    retry_after: float | None
    seen: int = 0
    fired: int = 0


@dataclass(frozen=True)
class Call:
    """A recorded request, simplified for assertions."""

    method: str
    path: str
    params: dict[str, str]
    headers: Mapping[str, str]


@dataclass
class Cursor:
    """The rest of a listing, behind one ``$skiptoken``."""

    items: list[dict[str, Any]]
    top: int
    advanced: bool
    cost: int


def graph_time(epoch: float) -> str:
    """Graph's timestamp form, ``2025-06-15T10:20:30Z``."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeEntra:
    """The fake tenant: build it, fill it with the helpers, hand :attr:`transport` to the connector."""

    def __init__(
        self,
        *,
        graph_url: str = "https://graph.microsoft.com",
        login_url: str = "https://login.microsoftonline.com",
        tenant_id: str = TENANT_ID,
        now: float = 1_750_000_000.0,
        resource_units: int = 8000,
    ) -> None:
        self.graph_url = graph_url.rstrip("/")
        self.login_url = login_url.rstrip("/")
        self.tenant_id = tenant_id
        self.domain = "contoso.onmicrosoft.com"
        self.now = now
        self.login = Login(tenant_id, self.login_url, self.graph_url)
        self.objects: dict[str, DirObject] = {}
        self.delta = DeltaBook(self)
        self.resource_units = resource_units
        self.throttle_percentage: float | None = None  # set to force the header on every response
        self.empty_first_page = False
        self.cast_leaks = False  # the reported cast bug: non-users slip through the user cast
        self.requests: list[httpx2.Request] = []
        self.responses: list[httpx2.Response] = []
        self.faults: list[Fault] = []
        self.before: Callable[[httpx2.Request], None] | None = None
        self._cursors: dict[str, Cursor] = {}
        self._bucket_start = now
        self._bucket_used = 0
        self._throttled = 0
        self._ids = itertools.count(1)

    @property
    def transport(self) -> httpx2.MockTransport:
        """A transport that routes every request to :meth:`handler`."""
        return httpx2.MockTransport(self.handler)

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward."""
        self.now += seconds

    def add_app(self, client_id: str, **credentials: Any) -> App:
        """Register an app (see :meth:`tests.fakes.entra_login.Login.add_app`)."""
        return self.login.add_app(client_id, **credentials)

    # -- directory helpers -------------------------------------------------------------------------

    def _new_id(self) -> str:
        return str(uuid.UUID(int=(next(self._ids) << 64) | secrets.randbits(64)))

    def users(self) -> list[DirObject]:
        """The users, in id order."""
        return [o for _, o in sorted(self.objects.items()) if o.type == "user"]

    def groups(self) -> list[DirObject]:
        """The groups, in id order."""
        return [o for _, o in sorted(self.objects.items()) if o.type == "group"]

    def add_user(
        self,
        name: str,
        *,
        enabled: bool = True,
        guest: bool = False,
        manager: str | None = None,
        **props: Any,
    ) -> str:
        """Add a member user ``name@<domain>`` (a guest: ``name_ext.example#EXT#@<domain>``). Returns its id."""
        user_id = self._new_id()
        given, _, family = name.partition(".")
        base: dict[str, Any] = {
            "id": user_id,
            "userPrincipalName": f"{name}@{self.domain}",
            "mail": f"{name}@contoso.com",
            "givenName": given.title() or None,
            "surname": family.title() or None,
            "displayName": f"{given.title()} {family.title()}".strip(),
            "accountEnabled": enabled,
            "userType": "Member",
            "businessPhones": [],
            "mobilePhone": None,
            "officeLocation": None,
            "preferredLanguage": None,
            "jobTitle": None,
            "employeeId": None,
            "department": None,
            "companyName": None,
            "externalUserState": None,
            "creationType": None,
            "onPremisesImmutableId": None,
            "deletedDateTime": None,
            "createdDateTime": graph_time(self.now),
        }
        if guest:
            base.update(
                userPrincipalName=f"{name}_partner.example#EXT#@{self.domain}",
                mail=f"{name}@partner.example",
                userType="Guest",
                externalUserState="Accepted",
                creationType="Invitation",
            )
        base.update(props)
        self.objects[user_id] = DirObject(user_id, "user", base, manager=manager)
        self.delta.created("users", user_id)
        return user_id

    def update_user(self, user_id: str, **props: Any) -> None:
        """Change user properties; tracked by delta."""
        user = self.objects[user_id]
        user.props.update(props)
        self.delta.changed("users", user_id, props)

    def disable_user(self, user_id: str) -> None:
        """``accountEnabled = false`` (there is no suspended state, "user resource type")."""
        self.update_user(user_id, accountEnabled=False)

    def set_manager(self, user_id: str, manager: str | None) -> None:
        """Set or clear a user's manager."""
        self.objects[user_id].manager = manager
        self.delta.changed("users", user_id, {"manager": manager})

    def delete_user(self, user_id: str, *, permanently: bool = False) -> None:
        """Delete a user (soft: ``@removed`` reason ``changed``; permanently: ``deleted``); it leaves its groups."""
        self._leave_groups(user_id)
        del self.objects[user_id]
        self.delta.removed("users", user_id, "deleted" if permanently else "changed")

    def add_group(self, name: str, *, description: str | None = None, **props: Any) -> str:
        """Add a security group. Returns its id."""
        group_id = self._new_id()
        base: dict[str, Any] = {
            "id": group_id,
            "displayName": name,
            "description": description,
            "mail": None,
            "mailEnabled": False,
            "mailNickname": re.sub(r"[^A-Za-z0-9]", "", name) or "group",
            "securityEnabled": True,
            "groupTypes": [],
            "membershipRule": None,
            "onPremisesSyncEnabled": None,
            "createdDateTime": graph_time(self.now),
            **props,
        }
        self.objects[group_id] = DirObject(group_id, "group", base)
        self.delta.created("groups", group_id)
        return group_id

    def update_group(self, group_id: str, **props: Any) -> None:
        """Change group properties (displayName, description ...); tracked by delta."""
        self.objects[group_id].props.update(props)
        self.delta.changed("groups", group_id, props)

    def delete_group(self, group_id: str, *, permanently: bool = False) -> None:
        """Delete a group; it leaves the groups it was nested into."""
        self._leave_groups(group_id)
        del self.objects[group_id]
        self.delta.removed("groups", group_id, "deleted" if permanently else "changed")

    def add_other(self, kind: str, name: str) -> str:
        """Add a device, orgContact or servicePrincipal (only ever seen as a group member)."""
        assert kind in OTHER_PROPERTIES, kind
        object_id = self._new_id()
        props: dict[str, Any] = {"id": object_id, "displayName": name}
        if kind == "device":
            props.update(deviceId=str(uuid.uuid4()), accountEnabled=True)
        elif kind == "orgContact":
            props["mail"] = f"{name}@vendor.example"
        else:
            props["appId"] = str(uuid.uuid4())
        self.objects[object_id] = DirObject(object_id, kind, props)
        return object_id

    def add_members(self, group_id: str, *member_ids: str) -> None:
        """Add direct members (users, groups or others) to a group."""
        group = self.objects[group_id]
        for member in member_ids:
            if member not in group.members:
                group.members[member] = None
                self.delta.membership(group_id, member, self.objects[member].type, added=True)

    def remove_members(self, group_id: str, *member_ids: str) -> None:
        """Remove direct members from a group."""
        group = self.objects[group_id]
        for member in member_ids:
            if member in group.members:
                del group.members[member]
                self.delta.membership(group_id, member, self.objects[member].type, added=False)

    def _leave_groups(self, object_id: str) -> None:
        for group in self.groups():
            if object_id in group.members:
                self.remove_members(group.id, object_id)

    def transitive(self, group_id: str) -> list[str]:
        """Every object nested below a group (groups included), each once, cycle-safe."""
        seen: dict[str, None] = {}
        stack = list(reversed(self.objects[group_id].members))
        while stack:
            object_id = stack.pop()
            if object_id in seen or object_id == group_id or object_id not in self.objects:
                continue
            seen[object_id] = None
            child = self.objects[object_id]
            if child.type == "group":
                stack.extend(reversed(child.members))
        return list(seen)

    # -- faults, records ---------------------------------------------------------------------------

    def inject(
        self,
        status: int | str,
        *,
        on: int = 1,
        path: str | None = None,
        times: int = 1,
        retry_after: float | None = None,
    ) -> None:
        """Fail the ``on``-th request (counting those whose path starts with ``path``) and the
        ``times - 1`` after it: an HTTP status (429, 503, 504 ... with ``Retry-After`` when
        ``retry_after`` is given), or ``"network"`` for a connection error."""
        self.faults.append(Fault(status, on, path, times, retry_after))

    def force_resync(self, kind: str) -> None:
        """Make every delta token of ``kind`` ("users" or "groups") answer 410 Gone."""
        self.delta.force_resync(kind)

    def calls(self, path: str | None = None) -> list[Call]:
        """The recorded Graph requests, optionally only those whose path matches ``path`` (``*``: a segment)."""
        pattern = re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$") if path else None
        out = []
        for request in self.requests:
            if request.url.path == self.login.token_path or (pattern and not pattern.match(request.url.path)):
                continue
            params = dict(request.url.params.multi_items())
            out.append(Call(request.method, request.url.path, params, request.headers))
        return out

    def member_listings(self) -> list[str]:
        """The group ids whose first transitive member page was requested, in order."""
        return [
            c.path.split("/")[3]
            for c in self.calls()
            if "/transitiveMembers" in c.path and "$skiptoken" not in c.params
        ]

    # -- HTTP --------------------------------------------------------------------------------------

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request the way Entra would (and record both)."""
        self.requests.append(request)
        if self.before is not None:
            self.before(request)
        response = self._handle(request)
        self.responses.append(response)
        return response

    def error(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> httpx2.Response:
        """Graph's error body (page "Microsoft Graph error responses and resource types")."""
        request_id = str(uuid.uuid4())
        body = {
            "error": {
                "code": code,
                "message": message,
                "innerError": {"date": graph_time(self.now), "request-id": request_id, "client-request-id": request_id},
            }
        }
        date = formatdate(self.now, usegmt=True)
        return httpx2.Response(status, json=body, headers={"Date": date, **(headers or {})})

    def _fault(self, request: httpx2.Request) -> Fault | None:
        for fault in self.faults:
            if fault.fired >= fault.times or (fault.path is not None and not request.url.path.startswith(fault.path)):
                continue
            fault.seen += 1
            if fault.seen >= fault.on:
                fault.fired += 1
                return fault
        return None

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        fault = self._fault(request)
        if fault is not None:
            if fault.status == "network":
                raise httpx2.ConnectError("fake: connection refused", request=request)
            status = int(fault.status)
            extra = {"Retry-After": str(math.ceil(fault.retry_after))} if fault.retry_after is not None else {}
            codes = {429: "TooManyRequests", 503: "serviceNotAvailable", 504: "UnknownError"}
            code = codes.get(status, "generalException")
            return self.error(status, code, "Injected failure.", extra)
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        if origin == self.login_url and request.url.path == self.login.token_path:
            return self.login.handle(request, self.now)
        if origin != self.graph_url or not request.url.path.startswith("/v1.0/"):
            return self.error(404, "Request_ResourceNotFound", f"No route for {request.url.path}.")
        if request.method != "GET":
            return self.error(405, "Request_BadRequest", "The fake serves reads only.")
        header = request.headers.get("authorization", "")
        token = self.login.tokens.get(header.removeprefix("Bearer ")) if header.startswith("Bearer ") else None
        if token is None or token.expires <= self.now:
            return self.error(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid.")
        from tests.fakes.entra_graph import route  # the Graph routes, kept apart to keep modules small

        return route(self, request, token.roles)

    # -- listing machinery (used by the routes) ----------------------------------------------------

    def charge(self, cost: int) -> dict[str, str] | httpx2.Response:
        """Spend resource units; the headers to add, or a 429 when the bucket is empty."""
        if self.now - self._bucket_start >= BUCKET_WINDOW:
            self._bucket_start, self._bucket_used = self.now, 0
        if self._bucket_used + cost > self.resource_units:
            self._throttled += 1
            headers = {
                "x-ms-throttle-scope": f"Tenant_Application/ReadWrite/{uuid.uuid4()}/{self.tenant_id}",
                "x-ms-throttle-information": "ResourceUnitLimitExceeded",
            }
            if self._throttled % 2:  # whether Graph always sends Retry-After is unconfirmed: test both
                headers["Retry-After"] = str(max(1, math.ceil(self._bucket_start + BUCKET_WINDOW - self.now)))
            return self.error(429, "TooManyRequests", "Too many requests.", headers)
        self._bucket_used += cost
        headers = {"x-ms-resource-unit": str(cost), "Date": formatdate(self.now, usegmt=True)}
        used = self.throttle_percentage or self._bucket_used / self.resource_units
        if used > 0.8:
            headers["x-ms-throttle-limit-percentage"] = f"{used:.1f}"
        return headers

    def page(
        self,
        request: httpx2.Request,
        context: str,
        items: list[dict[str, Any]] | None,
        *,
        top: int = PAGE_DEFAULT,
        advanced: bool = False,
        cost: int = 1,
        count: bool = False,
    ) -> httpx2.Response:
        """One page of a listing: the first (``items`` given) or the next (``$skiptoken``)."""
        token = request.url.params.get("$skiptoken")
        if token is not None:
            cursor = self._cursors.pop(token, None)
            if cursor is None:
                return self.error(400, "Request_BadRequest", "The specified page token value has expired.")
            if cursor.advanced and not is_advanced(request):
                return self.error(
                    400,
                    "Request_UnsupportedQuery",
                    "ConsistencyLevel: eventual and $count=true are required on every page of this query.",
                )  # [assumed] wording; the header is not carried in the next link ("Paging" page)
            items, top, advanced, cost = cursor.items, cursor.top, cursor.advanced, cursor.cost
            first = False
        else:
            assert items is not None
            first = True
        charged = self.charge(cost)
        if isinstance(charged, httpx2.Response):
            if token is not None:
                self._cursors[token] = Cursor(items, top, advanced, cost)
            return charged
        take = 0 if first and self.empty_first_page and items else top
        body: dict[str, Any] = {"@odata.context": f"{self.graph_url}/v1.0/$metadata#{context}"}
        if first and count:
            body["@odata.count"] = len(items)
        rest = items[take:]
        if rest:
            new = f"X'{secrets.token_hex(24).upper()}'"
            self._cursors[new] = Cursor(rest, top, advanced, cost)
            params = [(k, v) for k, v in request.url.params.multi_items() if k != "$skiptoken"]
            body["@odata.nextLink"] = str(request.url.copy_with(params=[*params, ("$skiptoken", new)]))
        body["value"] = items[:take]
        return httpx2.Response(200, json=body, headers=charged)


def is_advanced(request: httpx2.Request) -> bool:
    """Whether the request is an advanced query: ``ConsistencyLevel: eventual`` and ``$count=true``."""
    return (
        request.headers.get("consistencylevel", "").lower() == "eventual"
        and request.url.params.get("$count", "").lower() == "true"
    )


def names(items: Iterable[str]) -> str:
    """Comma-joined, for messages."""
    return ", ".join(items)
