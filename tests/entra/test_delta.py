"""Delta reads: only the delta links and the groups a change reaches are read; the result stays complete."""

from __future__ import annotations

from typing import Any

import pytest
import structlog

from connectors.entra_graph import merge_group_changes
from tests.entra.conftest import expected, read, summary
from tests.fakes.entra import FakeEntra


pytestmark = pytest.mark.anyio


def _tenant(fake: FakeEntra) -> dict[str, Any]:
    """aws-admins ⊃ aws-devs ⊃ (unsynced) contractors; sales alone; ten users."""
    users = [fake.add_user(f"user{i}.x") for i in range(10)]
    admins, devs = fake.add_group("aws-admins"), fake.add_group("aws-devs")
    contractors, sales = fake.add_group("contractors"), fake.add_group("aws-sales")
    fake.add_members(admins, users[0], devs)
    fake.add_members(devs, users[1], users[2], contractors)
    fake.add_members(contractors, users[3])
    fake.add_members(sales, users[4], users[5])
    return {"users": users, "admins": admins, "devs": devs, "contractors": contractors, "sales": sales}


SCOPE = ("aws-*",)


async def _first(fake: FakeEntra, make_source: Any, **settings: Any) -> tuple[Any, Any, dict[str, Any]]:
    ids = _tenant(fake)
    source = make_source(**settings)
    first = await read(source, groups=SCOPE)
    fake.advance(600)
    fake.requests.clear()
    return source, first, ids


def _paths(fake: FakeEntra) -> list[str]:
    return [c.path for c in fake.calls()]


async def test_nothing_changed_costs_two_delta_requests(fake: FakeEntra, make_source: Any) -> None:
    """With no change, a delta read is one users delta and one groups delta request, and the same read."""
    source, first, _ = await _first(fake, make_source)

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert _paths(fake) == ["/v1.0/users/delta", "/v1.0/groups/delta"]
    assert all("$deltatoken" in c.params for c in fake.calls())
    assert summary(result) == summary(first)


async def test_a_disabled_user_and_a_removed_member_are_read_by_delta(fake: FakeEntra, make_source: Any) -> None:
    """Disabling a user and removing a member re-reads only the group that changed and its synced parents."""
    source, first, ids = await _first(fake, make_source)
    fake.disable_user(ids["users"][4])
    fake.remove_members(ids["sales"], ids["users"][5])

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert fake.member_listings() == [ids["sales"]]
    assert "/v1.0/users" not in _paths(fake)
    assert summary(result) == expected(fake, groups=SCOPE)
    users, groups = summary(result)
    assert users[ids["users"][4]][1] is False
    assert groups[ids["sales"]][1] == {ids["users"][4]}


async def test_a_change_in_a_nested_group_reaches_the_groups_it_is_nested_into(
    fake: FakeEntra, make_source: Any
) -> None:
    """A user added to unsynced contractors (in aws-devs, in aws-admins) re-reads aws-devs and aws-admins only."""
    source, first, ids = await _first(fake, make_source)
    fake.add_members(ids["contractors"], ids["users"][9])

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert sorted(fake.member_listings()) == sorted([ids["admins"], ids["devs"]])
    _, groups = summary(result)
    assert ids["users"][9] in groups[ids["admins"]][1]
    assert ids["users"][9] in groups[ids["devs"]][1]
    assert summary(result) == expected(fake, groups=SCOPE)


async def test_a_new_nesting_is_followed_from_then_on(fake: FakeEntra, make_source: Any) -> None:
    """A group newly nested into a synced one is re-read with it, and its later changes reach that group."""
    source, first, ids = await _first(fake, make_source)
    newcomer = fake.add_group("new-team")
    fake.add_members(newcomer, ids["users"][7])
    fake.add_members(ids["sales"], newcomer)
    second = await read(source, groups=SCOPE, full=False, state=first.state)
    fake.requests.clear()
    fake.add_members(newcomer, ids["users"][8])

    third = await read(source, groups=SCOPE, full=False, state=second.state)

    assert fake.member_listings() == [ids["sales"]]
    assert summary(third) == expected(fake, groups=SCOPE)


async def test_removed_users_and_groups_leave_the_read(fake: FakeEntra, make_source: Any) -> None:
    """A deleted user is gone from users and groups; a deleted group is gone."""
    source, first, ids = await _first(fake, make_source)
    fake.delete_user(ids["users"][1])
    fake.delete_group(ids["sales"], permanently=True)

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    users, groups = summary(result)
    assert ids["users"][1] not in users
    assert ids["sales"] not in groups
    assert summary(result) == expected(fake, groups=SCOPE)


async def test_renames_move_groups_in_and_out_of_scope(fake: FakeEntra, make_source: Any) -> None:
    """Renamed into the filter: read and synced; renamed out: dropped; renamed within: members kept, not re-read."""
    source, first, ids = await _first(fake, make_source)
    fake.update_group(ids["contractors"], displayName="aws-contractors")
    fake.update_group(ids["sales"], displayName="sales")
    fake.update_group(ids["admins"], displayName="aws-administrators")

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert fake.member_listings() == [ids["contractors"]]
    assert summary(result) == expected(fake, groups=SCOPE)


async def test_members_delta_split_over_pages_is_merged(fake: FakeEntra, make_source: Any) -> None:
    """Eight members added at once, sent three per page, all arrive."""
    source, first, ids = await _first(fake, make_source)
    fake.delta.member_slice = 3
    newcomers = [fake.add_user(f"new{i}.x") for i in range(8)]
    fake.add_members(ids["sales"], *newcomers)

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert len(fake.calls("/v1.0/groups/delta")) == 3
    assert set(newcomers) <= summary(result)[1][ids["sales"]][1]
    assert summary(result) == expected(fake, groups=SCOPE)


async def test_replaying_a_delta_link_changes_nothing(fake: FakeEntra, make_source: Any) -> None:
    """Reading the same delta link twice (a run that failed after reading) gives the same result."""
    source, first, ids = await _first(fake, make_source)
    fake.remove_members(ids["devs"], ids["users"][2])

    once = await read(source, groups=SCOPE, full=False, state=first.state)
    twice = await read(source, groups=SCOPE, full=False, state=first.state)

    assert summary(once) == summary(twice) == expected(fake, groups=SCOPE)


@pytest.mark.parametrize("how", ["expired", "reset"])
async def test_an_expired_delta_link_falls_back_to_a_full_read(fake: FakeEntra, make_source: Any, how: str) -> None:
    """After 7 days (syncStateNotFound) or a 410, the same run reads everything, logs why, and ends the same."""
    source, first, ids = await _first(fake, make_source, full_read_every="30d")
    fake.remove_members(ids["sales"], ids["users"][4])
    if how == "expired":
        fake.advance(8 * 86400)
    else:
        fake.force_resync("users")

    with structlog.testing.capture_logs() as logs:
        result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert any(e["event"] == "entra.delta_expired" and e["log_level"] == "warning" for e in logs)
    assert "/v1.0/users" in _paths(fake)
    assert summary(result) == expected(fake, groups=SCOPE)
    fake.requests.clear()
    again = await read(source, groups=SCOPE, full=False, state=result.state)
    assert _paths(fake) == ["/v1.0/users/delta", "/v1.0/groups/delta"]
    assert summary(again) == summary(result)


async def test_a_state_without_delta_links_means_a_full_read(fake: FakeEntra, make_source: Any) -> None:
    """Kept state from another version (no delta links) is not trusted: a full read follows."""
    source, first, _ = await _first(fake, make_source)
    state = {k: v for k, v in first.state.items() if k != "users_delta"}

    result = await read(source, groups=SCOPE, full=False, state=state)

    assert "/v1.0/users" in _paths(fake)
    assert summary(result) == summary(first)


async def test_an_attribute_emptied_in_entra_is_emptied_in_the_read(fake: FakeEntra, make_source: Any) -> None:
    """A department cleared in Entra comes back by delta as no department, not the old one."""
    source, first, ids = await _first(fake, make_source)
    fake.update_user(ids["users"][0], department="Eng")
    second = await read(source, groups=SCOPE, full=False, state=first.state)
    fake.update_user(ids["users"][0], department=None)

    third = await read(source, groups=SCOPE, full=False, state=second.state)

    def department(result: Any) -> str | None:
        return next(dict(u.enterprise).get("department") for u in result.users if u.id == ids["users"][0])

    assert (department(second), department(third)) == ("Eng", None)


async def test_a_new_group_deleted_before_its_members_are_read_is_left_out(fake: FakeEntra, make_source: Any) -> None:
    """A group that delta reports as new but that is gone (404) when its members are read is not synced."""
    source, first, _ = await _first(fake, make_source)
    newcomer = fake.add_group("aws-new")
    fake.add_members(newcomer, fake.add_user("new.x"))

    def delete_it(request: Any) -> None:
        if f"/groups/{newcomer}/transitiveMembers" in request.url.path:
            fake.delete_group(newcomer)

    fake.before = delete_it

    result = await read(source, groups=SCOPE, full=False, state=first.state)

    assert newcomer not in summary(result)[1]


async def test_with_users_members_delta_keeps_to_members(fake: FakeEntra, make_source: Any) -> None:
    """users = "members": a joiner's record comes with its group's listing, a leaver goes, outsiders stay out."""
    ids = _tenant(fake)
    source = make_source()
    first = await read(source, groups=SCOPE, users="members")
    outsider, joiner, leaver = ids["users"][8], ids["users"][9], ids["users"][5]
    fake.update_user(outsider, department="Ops")
    fake.update_user(joiner, jobTitle="New")
    fake.add_members(ids["sales"], joiner)
    fake.remove_members(ids["sales"], leaver)
    fake.disable_user(ids["users"][0])

    result = await read(source, groups=SCOPE, users="members", full=False, state=first.state)

    users = {u.id: u for u in result.users}
    assert outsider not in users
    assert leaver not in users
    assert users[joiner].user_name == "user9.x@contoso.onmicrosoft.com"
    assert users[ids["users"][0]].active is False
    assert set(users) == set().union(*(members for _, members in expected(fake, groups=SCOPE)[1].values()))


def test_a_full_reads_group_round_keeps_only_the_nesting() -> None:
    """Merged for a full read, a groups delta keeps nested groups and drops user members (listed transitively)."""
    page = [
        {
            "id": "g1",
            "displayName": "aws-admins",
            "members@delta": [
                {"@odata.type": "#microsoft.graph.user", "id": "u1"},
                {"@odata.type": "#microsoft.graph.group", "id": "g2"},
            ],
        }
    ]
    full = merge_group_changes(page, nesting_only=True)
    assert {"g2": "group"} == full.groups["g1"].added
    assert {"u1": "user", "g2": "group"} == merge_group_changes(page).groups["g1"].added
    second = [{"id": "g1", "members@delta": [{"@odata.type": "#microsoft.graph.group", "id": "g3"}]}]
    more = merge_group_changes(second, full)
    assert {"g2", "g3"} == set(more.groups["g1"].added)  # pages merged one at a time into the same round


async def test_a_reread_groups_listing_packs_only_its_new_members(
    fake: FakeEntra, make_source: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """users = "members": re-reading a changed group packs its joiner's record, not those the state holds."""
    import connectors.entra as entra

    ids = _tenant(fake)
    source = make_source()
    first = await read(source, groups=SCOPE, users="members")
    fake.advance(600)
    fake.requests.clear()
    joiner = ids["users"][9]
    fake.add_members(ids["sales"], joiner)
    fake.update_user(ids["users"][4], department="Ops")  # a kept member of the same group, changed
    packed: list[str] = []
    real = entra.pack_user

    def counting(item: Any, manager: Any) -> Any:
        packed.append(item.get("id"))
        return real(item, manager)

    monkeypatch.setattr(entra, "pack_user", counting)

    result = await read(source, groups=SCOPE, users="members", full=False, state=first.state)

    assert fake.member_listings() == [ids["sales"]]
    assert packed == [joiner]
    fresh = await read(make_source(), groups=SCOPE, users="members")  # the same records, from a full read
    assert {u.id: u for u in result.users} == {u.id: u for u in fresh.users}
    assert dict(next(u for u in result.users if u.id == ids["users"][4]).enterprise)["department"] == "Ops"
