"""The fake Graph itself, rule by rule: it must refuse and hide what Graph refuses and hides."""

from __future__ import annotations

from typing import Any

import pytest

from tests.entra.conftest import body, graph
from tests.fakes.entra import FakeEntra


pytestmark = pytest.mark.anyio

CAST = {"ConsistencyLevel": "eventual"}


async def _all(fake: FakeEntra, path: str, params: dict[str, str], headers: dict[str, str] | None = None) -> list[Any]:
    """Every item of a listing, following the next links verbatim."""
    page = body(await graph(fake, path, params, headers))
    items = list(page["value"])
    while "@odata.nextLink" in page:
        page = body(await graph(fake, page["@odata.nextLink"], None, headers))
        items += page["value"]
    return items


async def test_lists_come_in_the_value_envelope_with_absolute_next_links(fake: FakeEntra) -> None:
    """Users are paged in {value, @odata.nextLink}; the link is absolute, carries $skiptoken, and gives the rest."""
    for i in range(5):
        fake.add_user(f"u{i}.x")

    page = body(await graph(fake, "/users", {"$top": "2", "$select": "id"}))

    assert set(page) == {"@odata.context", "@odata.nextLink", "value"}
    assert page["@odata.nextLink"].startswith(f"{fake.graph_url}/v1.0/users?")
    assert "$skiptoken=" in page["@odata.nextLink"].replace("%24", "$")
    ids = [u["id"] for u in await _all(fake, "/users", {"$top": "2", "$select": "id"})]
    assert ids == [u.id for u in fake.users()]


@pytest.mark.parametrize("top", ["0", "1000", "ten"])
async def test_top_outside_1_to_999_is_refused(fake: FakeEntra, top: str) -> None:
    """$top must be 1..999: anything else is 400 'Invalid page size specified'."""
    response = await graph(fake, "/users", {"$top": top})

    assert response.status_code == 400
    assert f"Invalid page size specified: '{top}'. Must be between 1 and 999 inclusive." in response.text


async def test_the_default_page_is_100(fake: FakeEntra) -> None:
    """Without $top a page holds 100 items; $top=999 holds up to 999."""
    for i in range(101):
        fake.add_user(f"u{i}.x")

    assert len(body(await graph(fake, "/users"))["value"]) == 100
    assert len(body(await graph(fake, "/users", {"$top": "999"}))["value"]) == 101


async def test_an_empty_page_may_still_have_a_next_link(fake: FakeEntra) -> None:
    """With empty_first_page the first page is empty but links to the data."""
    fake.add_user("a.b")
    fake.empty_first_page = True

    page = body(await graph(fake, "/users"))

    assert page["value"] == []
    assert "@odata.nextLink" in page
    assert len(await _all(fake, "/users", {})) == 1


async def test_users_carry_only_default_properties_unless_selected(fake: FakeEntra) -> None:
    """accountEnabled and userType are hidden by default; $select returns exactly what it names."""
    fake.add_user("a.b", enabled=False)

    default = body(await graph(fake, "/users"))["value"][0]
    chosen = body(await graph(fake, "/users", {"$select": "id,accountEnabled,userType"}))["value"][0]

    assert "accountEnabled" not in default
    assert "userType" not in default
    assert default["userPrincipalName"] == "a.b@contoso.onmicrosoft.com"
    assert set(chosen) == {"id", "accountEnabled", "userType"}
    assert chosen["accountEnabled"] is False


@pytest.mark.parametrize(("prop", "status"), [("nosuchthing", 400), ("aboutMe", 501)])
async def test_unknown_or_single_only_properties_are_refused(fake: FakeEntra, prop: str, status: int) -> None:
    """Selecting an unknown property is 400; one a collection cannot return (aboutMe) is 501."""
    fake.add_user("a.b")

    assert (await graph(fake, "/users", {"$select": f"id,{prop}"})).status_code == status


async def test_skip_is_not_supported(fake: FakeEntra) -> None:
    """$skip is refused with 400."""
    assert (await graph(fake, "/users", {"$skip": "10"})).status_code == 400


async def test_guests_have_ext_upns_and_user_type_guest(fake: FakeEntra) -> None:
    """A guest's UPN has #EXT#, its mail is the outside address, userType is Guest."""
    fake.add_user("vera.visitor", guest=True)

    user = body(await graph(fake, "/users", {"$select": "userPrincipalName,mail,userType"}))["value"][0]

    assert "#EXT#@" in user["userPrincipalName"]
    assert (user["mail"], user["userType"]) == ("vera.visitor@partner.example", "Guest")


async def test_the_manager_is_expanded_on_request(fake: FakeEntra) -> None:
    """$expand=manager($select=id) adds the manager's id; a user without one has no manager key."""
    boss = fake.add_user("b.oss")
    worker = fake.add_user("w.orker", manager=boss)

    params = {"$select": "id", "$expand": "manager($select=id)"}
    users = {u["id"]: u for u in body(await graph(fake, "/users", params))["value"]}

    assert users[worker]["manager"] == {"@odata.type": "#microsoft.graph.user", "id": boss}
    assert "manager" not in users[boss]


async def test_members_are_direct_and_transitive_members_flattened(fake: FakeEntra) -> None:
    """/members lists direct members (a nested group as a group); /transitiveMembers all below, once, cycles too."""
    a, b = fake.add_user("a.a"), fake.add_user("b.b")
    outer, inner = fake.add_group("outer"), fake.add_group("inner")
    fake.add_members(outer, a, inner)
    fake.add_members(inner, b, outer)  # a cycle

    direct = await _all(fake, f"/groups/{outer}/members", {"$select": "id"})
    flat = await _all(fake, f"/groups/{outer}/transitiveMembers", {"$select": "id"})

    assert [(m["@odata.type"], m["id"]) for m in direct] == [
        ("#microsoft.graph.user", a),
        ("#microsoft.graph.group", inner),
    ]
    assert sorted(m["id"] for m in flat) == sorted([a, inner, b])


async def test_the_user_cast_needs_consistency_level_and_count_on_every_page(fake: FakeEntra) -> None:
    """/transitiveMembers/microsoft.graph.user without ConsistencyLevel + $count is 400, also on a next page."""
    group = fake.add_group("g")
    fake.add_members(group, *(fake.add_user(f"u{i}.x") for i in range(3)))
    path = f"/groups/{group}/transitiveMembers/microsoft.graph.user"

    assert (await graph(fake, path, {"$select": "id"})).status_code == 400
    assert (await graph(fake, path, {"$select": "id"}, CAST)).status_code == 400  # no $count
    first = body(await graph(fake, path, {"$select": "id", "$count": "true", "$top": "2"}, CAST))
    assert first["@odata.count"] == 3
    assert (await graph(fake, first["@odata.nextLink"])).status_code == 400  # header not resent
    second = body(await graph(fake, first["@odata.nextLink"], None, CAST))
    assert "@odata.count" not in second
    assert len(first["value"]) + len(second["value"]) == 3


async def test_the_user_cast_returns_only_users_and_accepts_the_short_alias(fake: FakeEntra) -> None:
    """Devices, contacts, service principals and groups are left out of the user cast; /graph.user works too."""
    group, inner = fake.add_group("g"), fake.add_group("inner")
    user = fake.add_user("u.x")
    fake.add_members(group, user, inner, fake.add_other("device", "d"), fake.add_other("orgContact", "c"))
    fake.add_members(inner, fake.add_other("servicePrincipal", "s"))
    params = {"$select": "id", "$count": "true"}

    for alias in ("microsoft.graph.user", "graph.user"):
        items = await _all(fake, f"/groups/{group}/transitiveMembers/{alias}", params, CAST)
        assert [(m["@odata.type"], m["id"]) for m in items] == [("#microsoft.graph.user", user)]
    every = await _all(fake, f"/groups/{group}/transitiveMembers", {"$select": "id"})
    assert {m["@odata.type"] for m in every} == {
        "#microsoft.graph.user",
        "#microsoft.graph.group",
        "#microsoft.graph.device",
        "#microsoft.graph.orgContact",
        "#microsoft.graph.servicePrincipal",
    }


async def test_cast_leaks_lets_non_users_through(fake: FakeEntra) -> None:
    """The reported cast bug (microsoft-graph-docs #11881): with cast_leaks a device comes back from the user cast."""
    group = fake.add_group("g")
    fake.add_members(group, fake.add_other("device", "d"))
    fake.cast_leaks = True

    items = await _all(fake, f"/groups/{group}/transitiveMembers/microsoft.graph.user", {"$count": "true"}, CAST)

    assert [m["@odata.type"] for m in items] == ["#microsoft.graph.device"]


async def test_without_user_read_all_users_are_refused_and_members_limited(fake: FakeEntra) -> None:
    """With only GroupMember.Read.All: 403 Authorization_RequestDenied on /users, limited-information members."""
    fake.login.apps.clear()
    from tests.entra.conftest import CLIENT_ID, CLIENT_SECRET

    fake.add_app(CLIENT_ID, secret=CLIENT_SECRET, roles=["GroupMember.Read.All"])
    group = fake.add_group("g")
    user = fake.add_user("u.x")
    fake.add_members(group, user)

    denied = await graph(fake, "/users")
    members = body(await graph(fake, f"/groups/{group}/members", {"$select": "id,userPrincipalName"}))["value"]

    assert (denied.status_code, denied.json()["error"]["code"]) == (403, "Authorization_RequestDenied")
    assert members == [{"@odata.type": "#microsoft.graph.user", "id": user, "userPrincipalName": None}]


async def test_without_a_group_permission_groups_are_refused(fake: FakeEntra) -> None:
    """An app with only User.Read.All gets 403 on /groups and /groups/delta."""
    from tests.entra.conftest import CLIENT_ID, CLIENT_SECRET

    fake.add_app(CLIENT_ID, secret=CLIENT_SECRET, roles=["User.Read.All"])

    for path in ("/groups", "/groups/delta"):
        response = await graph(fake, path)
        assert (response.status_code, response.json()["error"]["code"]) == (403, "Authorization_RequestDenied")


async def test_without_admin_consent_the_token_has_no_permissions(fake: FakeEntra) -> None:
    """Permissions granted but not admin-consented do not reach the token: /users is 403."""
    from tests.entra.conftest import CLIENT_ID, CLIENT_SECRET

    fake.add_app(CLIENT_ID, secret=CLIENT_SECRET, consented=False)

    assert (await graph(fake, "/users")).status_code == 403


async def test_an_unknown_group_is_404(fake: FakeEntra) -> None:
    """Members of a group that does not exist: 404 Request_ResourceNotFound."""
    response = await graph(fake, "/groups/00000000-0000-0000-0000-000000000000/members")

    assert (response.status_code, response.json()["error"]["code"]) == (404, "Request_ResourceNotFound")


async def test_error_bodies_have_graphs_shape(fake: FakeEntra) -> None:
    """Errors are {"error": {code, message, innerError: {date, request-id, client-request-id}}}."""
    error = (await graph(fake, "/users", {"$top": "0"})).json()["error"]

    assert set(error) == {"code", "message", "innerError"}
    assert {"date", "request-id", "client-request-id"} <= set(error["innerError"])


async def test_the_generated_tenant_has_what_the_done_when_needs() -> None:
    """build_tenant makes 2,000 users, 300 groups, nesting three deep, guests, one disabled user and a device member."""
    from tests.fakes.entra_tenant import build_tenant

    fake = FakeEntra()
    tenant = build_tenant(fake)

    assert (len(tenant.users), len(tenant.groups)) == (2000, 300)
    assert tenant.guests
    assert all(fake.objects[g].props["userType"] == "Guest" for g in tenant.guests)
    assert fake.objects[tenant.disabled].props["accountEnabled"] is False
    chain = fake.transitive(tenant.groups["team-030"])
    assert tenant.groups["team-032"] in chain
    assert tenant.device in fake.transitive(tenant.groups["team-001"])
