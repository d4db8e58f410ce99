"""Full reads of an Entra tenant: what is asked of Graph, and what comes back."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.errors import SourceAuthError
from syncd.normalise import Scope, build_snapshot
from tests.entra.conftest import CLIENT_ID, CLIENT_SECRET, expected, read, summary
from tests.fakes.entra import FakeEntra


pytestmark = pytest.mark.anyio


def _tenant(fake: FakeEntra) -> dict[str, str]:
    """Two synced groups, one nested in the other, a guest, a disabled user, a device."""
    ann, bob, cy = fake.add_user("ann.lee"), fake.add_user("bob.ray", enabled=False), fake.add_user("cy.dee")
    guest = fake.add_user("gus.tee", guest=True)
    outer, inner, other = fake.add_group("aws-admins"), fake.add_group("aws-devs"), fake.add_group("marketing")
    device = fake.add_other("device", "laptop")
    fake.add_members(outer, ann, inner, device, guest)
    fake.add_members(inner, bob, cy)
    fake.add_members(other, cy)
    return {"ann": ann, "bob": bob, "cy": cy, "guest": guest, "outer": outer, "inner": inner, "other": other}


async def test_a_full_read_flattens_nesting_and_leaves_guests_out(fake: FakeEntra, make_source: Any) -> None:
    """Users by UPN with accountEnabled as active; groups with every nested user; the guest skipped."""
    ids = _tenant(fake)

    result = await read(make_source())

    assert summary(result) == expected(fake)
    users, groups = summary(result)
    assert users[ids["bob"]] == ("bob.ray@contoso.onmicrosoft.com", False)
    assert groups[ids["outer"]][1] == {ids["ann"], ids["bob"], ids["cy"], ids["guest"]}
    assert ids["guest"] not in users
    assert any(s.id == ids["guest"] and "guest" in s.reason for s in result.skipped)


async def test_users_are_read_with_select_top_999_and_the_manager(fake: FakeEntra, make_source: Any) -> None:
    """The user listing names every property it needs, asks 999 a page and expands the manager's id."""
    _tenant(fake)

    await read(make_source())

    (call,) = fake.calls("/v1.0/users")
    assert call.params["$top"] == "999"
    assert call.params["$expand"] == "manager($select=id)"
    assert {"id", "userPrincipalName", "accountEnabled", "userType", "employeeId"} <= set(
        call.params["$select"].split(",")
    )


async def test_members_are_read_by_the_user_cast_with_consistency_level_on_every_page(
    fake: FakeEntra, make_source: Any
) -> None:
    """Each synced group's transitive users come from the cast, with ConsistencyLevel and $count on every page."""
    ids = _tenant(fake)
    fake.empty_first_page = True  # so every listing has a second page

    result = await read(make_source())

    listings = [c for c in fake.calls() if "/transitiveMembers/" in c.path]
    assert {c.path.split("/")[3] for c in listings} == {ids["outer"], ids["inner"], ids["other"]}
    assert len(listings) == 6
    assert all(c.headers.get("consistencylevel") == "eventual" and c.params["$count"] == "true" for c in listings)
    assert summary(result) == expected(fake)


async def test_non_users_in_a_cast_are_skipped_and_counted(fake: FakeEntra, make_source: Any) -> None:
    """When the cast lets a device through, it is skipped with a reason, not taken for a user."""
    ids = _tenant(fake)
    fake.cast_leaks = True

    result = await read(make_source())

    devices = [s for s in result.skipped if s.kind == "membership" and "device" in s.reason]
    assert [s.id.split("/")[0] for s in devices] == [ids["outer"]]
    assert summary(result) == expected(fake)


async def test_group_filters_read_only_matching_groups(fake: FakeEntra, make_source: Any) -> None:
    """With [filters] groups = ["aws-*"], marketing's members are never listed."""
    ids = _tenant(fake)

    result = await read(make_source(), groups=("aws-*",))

    assert set(fake.member_listings()) == {ids["outer"], ids["inner"]}
    assert summary(result) == expected(fake, groups=("aws-*",))


async def test_users_members_reads_only_members_of_synced_groups(fake: FakeEntra, make_source: Any) -> None:
    """With users = "members" there is no user listing: the member listings bring whole records, members only."""
    ids = _tenant(fake)
    fake.add_user("lo.ner")
    scope = Scope(groups=("aws-admins",), users="members")

    result = await read(make_source(), groups=scope.groups, users="members")

    assert fake.calls("/v1.0/users") == []
    assert {u.id for u in result.users} == {ids["ann"], ids["bob"], ids["cy"]}
    assert result.prefiltered
    assert {u.id: (u.user_name, u.active) for u in result.users}[ids["bob"]] == (
        "bob.ray@contoso.onmicrosoft.com",
        False,
    )
    assert set(build_snapshot(result, scope).users) == {ids["ann"], ids["bob"], ids["cy"]}


async def test_guests_are_synced_by_mail_when_asked(fake: FakeEntra, make_source: Any) -> None:
    """include_guests = true keeps guests, with their mail as userName."""
    ids = _tenant(fake)

    users, _ = summary(await read(make_source(include_guests=True)))

    assert users[ids["guest"]] == ("gus.tee@partner.example", True)


async def test_username_attribute_mail(fake: FakeEntra, make_source: Any) -> None:
    """username_attribute = "mail" takes userName from mail; a user without mail is skipped with a reason."""
    ids = _tenant(fake)
    fake.update_user(ids["cy"], mail=None)

    result = await read(make_source(username_attribute="mail"))

    users, _ = summary(result)
    assert users[ids["ann"]] == ("ann.lee@contoso.com", True)
    assert ids["cy"] not in users
    assert any(s.id == ids["cy"] and "no mail" in s.reason for s in result.skipped)


async def test_enterprise_attributes_come_from_graph(fake: FakeEntra, make_source: Any) -> None:
    """employeeId, department and companyName become the enterprise attributes."""
    user = fake.add_user("em.ployee", employeeId="E1", department="Eng", companyName="Contoso")

    result = await read(make_source())

    (record,) = [u for u in result.users if u.id == user]
    assert dict(record.enterprise) == {"employee_number": "E1", "department": "Eng", "organization": "Contoso"}


@pytest.mark.parametrize(
    ("roles", "missing"), [(["GroupMember.Read.All"], "User.Read.All"), (["User.Read.All"], "GroupMember.Read.All")]
)
async def test_a_missing_permission_is_named(fake: FakeEntra, make_source: Any, roles: list[str], missing: str) -> None:
    """403 Authorization_RequestDenied becomes an error naming the permission and admin consent."""
    fake.add_app(CLIENT_ID, secret=CLIENT_SECRET, roles=roles)
    _tenant(fake)

    with pytest.raises(SourceAuthError, match=rf"{missing} with admin consent"):
        await read(make_source())


async def test_limited_information_members_name_user_read_all(fake: FakeEntra, make_source: Any) -> None:
    """Members that come back with only id and type (no User.Read.All) stop the read with the permission named."""
    _tenant(fake)

    def drop_user_read(request: Any) -> None:
        if "/transitiveMembers/" in request.url.path:
            for token in fake.login.tokens.values():
                token.roles = frozenset({"GroupMember.Read.All"})

    fake.before = drop_user_read

    with pytest.raises(SourceAuthError, match=r"limited information.*User\.Read\.All"):
        await read(make_source())


async def test_a_group_deleted_during_the_read_is_left_out(fake: FakeEntra, make_source: Any) -> None:
    """A group that is gone (404) when its members are listed is not synced, and the read goes on."""
    ids = _tenant(fake)

    def delete_inner(request: Any) -> None:
        if request.url.path.endswith(f"{ids['inner']}/transitiveMembers/microsoft.graph.user"):
            fake.delete_group(ids["inner"])

    fake.before = delete_inner

    _, groups = summary(await read(make_source()))

    assert ids["inner"] not in groups
    assert ids["outer"] in groups


async def test_a_member_id_is_the_users_own_string(fake: FakeEntra, make_source: Any) -> None:
    """A user in several groups is held as one id string: every group's member is the user record's own id."""
    _tenant(fake)

    result = await read(make_source())

    by_id = {u.id: u.id for u in result.users}
    members = [member for group in result.groups for member in group.members if member in by_id]
    assert len(members) > len(by_id)
    assert all(member is by_id[member] for member in members)
