"""The read routes of the fake Graph: users, groups, members, transitive members and their casts.

The rules, with their Graph pages, are listed in :mod:`tests.fakes.entra`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import httpx2

from tests.fakes.entra import (
    COSTS,
    GROUP_PROPERTIES,
    GROUP_READ,
    OTHER_PROPERTIES,
    PAGE_DEFAULT,
    PAGE_MAX,
    USER_DEFAULT,
    USER_PROPERTIES,
    USER_READ,
    USER_SINGLE_ONLY,
    DirObject,
    is_advanced,
)


if TYPE_CHECKING:
    from tests.fakes.entra import FakeEntra

DENIED = "Insufficient privileges to complete the operation."
_CASTS = {
    "microsoft.graph.user": "user",
    "graph.user": "user",
    "microsoft.graph.group": "group",
    "graph.group": "group",
}
_FILTER_TERM = re.compile(r"^(accountEnabled) eq (true|false)$|^(userType) eq '(Member|Guest)'$")
_EXPAND_MANAGER = re.compile(r"^manager(\(\$select=([A-Za-z,]+)\))?$")


def route(fake: FakeEntra, request: httpx2.Request, roles: frozenset[str]) -> httpx2.Response:
    """Dispatch one authenticated Graph GET."""
    parts = request.url.path.removeprefix("/v1.0/").strip("/").split("/")
    params = request.url.params
    if "$skip" in params:
        return fake.error(400, "Request_BadRequest", "'$skip' is not supported by the service.")
    if parts[0] == "users" and not roles & USER_READ:
        return fake.error(403, "Authorization_RequestDenied", DENIED)
    if parts[0] == "groups" and not roles & GROUP_READ:
        return fake.error(403, "Authorization_RequestDenied", DENIED)
    if len(parts) == 2 and parts[0] in {"users", "groups"} and parts[1] in {"delta", "microsoft.graph.delta"}:
        return fake.delta.serve(parts[0], request)
    if parts == ["users"]:
        return _list_users(fake, request)
    if parts == ["groups"]:
        return _list_groups(fake, request)
    if len(parts) in {3, 4} and parts[0] == "groups" and parts[2] in {"members", "transitiveMembers"}:
        return _list_members(fake, request, parts, roles)
    return fake.error(400, "Request_BadRequest", f"Resource not found for the segment '{parts[-1]}'.")


def _top(fake: FakeEntra, request: httpx2.Request) -> int | httpx2.Response:
    raw = request.url.params.get("$top")
    if raw is None:
        return PAGE_DEFAULT
    value = int(raw) if raw.isdigit() else -1
    if not 1 <= value <= PAGE_MAX:
        return fake.error(
            400,
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {PAGE_MAX} inclusive.",
        )
    return value


def _select(
    fake: FakeEntra, request: httpx2.Request, type_name: str, known: frozenset[str]
) -> list[str] | httpx2.Response | None:
    raw = request.url.params.get("$select")
    if raw is None:
        return None
    names = [s.strip() for s in raw.split(",") if s.strip()]
    for name in names:
        if type_name == "user" and name in USER_SINGLE_ONLY:
            return fake.error(
                501, "NotImplemented", f"The property '{name}' is not supported for a collection of users."
            )  # [assumed] wording; the 501 itself is from "List users"
        if name not in known:
            return fake.error(
                400,
                "Request_BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.{type_name}'.",
            )
    return names


def _cost(base: int, request: httpx2.Request, top: int) -> int:
    cost = base - ("$select" in request.url.params) + ("$expand" in request.url.params) - (top < 20)
    return max(1, cost)


def _user_json(user: DirObject, select: list[str] | None) -> dict[str, Any]:
    return {name: user.props.get(name) for name in (select or USER_DEFAULT)}


def _list_users(fake: FakeEntra, request: httpx2.Request) -> httpx2.Response:
    top = _top(fake, request)
    if isinstance(top, httpx2.Response):
        return top
    select = _select(fake, request, "user", USER_PROPERTIES)
    if isinstance(select, httpx2.Response):
        return select
    users = fake.users()
    raw_filter = request.url.params.get("$filter")
    if raw_filter is not None:
        terms = [_FILTER_TERM.match(t.strip()) for t in raw_filter.split(" and ")]
        if not all(terms):
            return fake.error(501, "NotImplemented", f"fake: the filter {raw_filter!r} is not implemented")
        for term in terms:
            assert term is not None
            if term.group(1):
                users = [u for u in users if u.props["accountEnabled"] is (term.group(2) == "true")]
            else:
                users = [u for u in users if u.props["userType"] == term.group(4)]
    expand = request.url.params.get("$expand")
    manager_select: list[str] | None = None
    if expand is not None:
        found = _EXPAND_MANAGER.match(expand)
        if not found:
            return fake.error(400, "Request_BadRequest", f"Parsing OData Select and Expand failed: {expand}")
        manager_select = found.group(2).split(",") if found.group(2) else None
    items = []
    for user in users:
        item = _user_json(user, select)
        if expand is not None and user.manager in fake.objects:
            manager = fake.objects[user.manager]
            item["manager"] = {"@odata.type": "#microsoft.graph.user", **_user_json(manager, manager_select)}
        items.append(item)
    context = f"users({','.join(select)})" if select else "users"
    return fake.page(request, context, items, top=top, cost=_cost(COSTS["users"], request, top))


def _list_groups(fake: FakeEntra, request: httpx2.Request) -> httpx2.Response:
    top = _top(fake, request)
    if isinstance(top, httpx2.Response):
        return top
    select = _select(fake, request, "group", frozenset(GROUP_PROPERTIES))
    if isinstance(select, httpx2.Response):
        return select
    if "$filter" in request.url.params or "$expand" in request.url.params:
        return fake.error(501, "NotImplemented", "fake: $filter and $expand on groups are not implemented")
    items = [{n: g.props.get(n) for n in (select or GROUP_PROPERTIES)} for g in fake.groups()]
    context = f"groups({','.join(select)})" if select else "groups"
    return fake.page(request, context, items, top=top, cost=_cost(1, request, top))


def member_json(fake: FakeEntra, obj: DirObject, select: list[str] | None, roles: frozenset[str]) -> dict[str, Any]:
    """A member as a directoryObject with ``@odata.type``; limited information when the token may not read it."""
    if obj.type == "user":
        names = list(select or USER_DEFAULT)
        readable = bool(roles & USER_READ)
    elif obj.type == "group":
        names = [n for n in (select or GROUP_PROPERTIES) if n in GROUP_PROPERTIES]
        readable = True
    else:
        names = [n for n in (select or OTHER_PROPERTIES[obj.type]) if n in OTHER_PROPERTIES[obj.type]]
        readable = "Directory.Read.All" in roles
    item: dict[str, Any] = {"@odata.type": f"#microsoft.graph.{obj.type}", "id": obj.id}
    for name in names:
        if name != "id":
            item[name] = obj.props.get(name) if readable else None
    return item


def _list_members(fake: FakeEntra, request: httpx2.Request, parts: list[str], roles: frozenset[str]) -> httpx2.Response:
    group = fake.objects.get(parts[1])
    if group is None or group.type != "group":
        return fake.error(
            404,
            "Request_ResourceNotFound",
            f"Resource '{parts[1]}' does not exist or one of its queried reference-property objects are not present.",
        )
    cast = None
    if len(parts) == 4:
        cast = _CASTS.get(parts[3])
        if cast is None:
            return fake.error(400, "Request_BadRequest", f"Resource not found for the segment '{parts[3]}'.")
        if not is_advanced(request):
            # "List group transitive members": OData casts need the advanced query parameters.
            return fake.error(
                400,
                "Request_UnsupportedQuery",
                "This query requires the ConsistencyLevel header set to eventual and $count=true.",
            )  # [assumed] wording
    top = _top(fake, request)
    if isinstance(top, httpx2.Response):
        return top
    known = frozenset({*USER_PROPERTIES, *GROUP_PROPERTIES, *(n for v in OTHER_PROPERTIES.values() for n in v)})
    select = _select(fake, request, cast or "directoryObject", known)
    if isinstance(select, httpx2.Response):
        return select
    transitive = parts[2] == "transitiveMembers"
    ids = fake.transitive(group.id) if transitive else [m for m in group.members if m in fake.objects]
    members = [fake.objects[i] for i in ids]
    if cast is not None and not (cast == "user" and fake.cast_leaks):
        members = [m for m in members if m.type == cast]
    items = [member_json(fake, m, select, roles) for m in members]
    count = request.url.params.get("$count", "").lower() == "true"
    base = COSTS["transitive" if transitive else "members"]
    return fake.page(
        request,
        "directoryObjects",
        items,
        top=top,
        advanced=cast is not None,
        cost=_cost(base, request, top),
        count=count and is_advanced(request),
    )
