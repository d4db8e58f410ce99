"""Reads: paging, user mapping, nesting flattened (derived or expanded), dropped members, scope, etags."""

from __future__ import annotations

import pytest
from structlog.testing import capture_logs

from tests.fakes.google import DIRECTORY, FakeGoogle
from tests.fakes.google_domain import expected_groups, populate
from tests.google.conftest import ADMIN, MakeSource, summary
from tests.reads import read


pytestmark = pytest.mark.anyio


async def test_users_come_500_a_page_with_trimmed_fields(fake: FakeGoogle, make_source: MakeSource) -> None:
    """600 users are read in two pages of maxResults=500 with a fields= selection, every user kept."""
    ids = {fake.add_user(f"u{i:03d}@example.com") for i in range(600)}

    result = await read(make_source())

    assert ids | {fake.user_by_email(ADMIN).id} == {u.id for u in result.users}  # type: ignore[union-attr]
    calls = fake.calls(f"{DIRECTORY}/users")
    assert len(calls) == 2
    assert all(c.params["maxResults"] == "500" and c.params["customer"] == "my_customer" for c in calls)
    assert calls[0].params["fields"].startswith("nextPageToken,users(")


async def test_a_user_maps_to_identity_center_fields(fake: FakeGoogle, make_source: MakeSource) -> None:
    """userName and email are primaryEmail, externalId the Google id, names from name{}, enterprise from
    organizations, externalIds and the manager relation (resolved to the manager's id)."""
    boss = fake.add_user("boss@example.com", given_name="Bo", family_name="Ss")
    worker = fake.add_user(
        "w@example.com",
        given_name="Wil",
        family_name="Ma",
        department="Eng",
        cost_center="CC9",
        title="Dev",
        employee_id="E42",
        manager="boss@example.com",
    )

    result = await read(make_source())

    user = next(u for u in result.users if u.id == worker)
    assert (user.user_name, user.email, user.given_name, user.family_name, user.display_name) == (
        "w@example.com",
        "w@example.com",
        "Wil",
        "Ma",
        "Wil Ma",
    )
    assert dict(user.enterprise) == {
        "department": "Eng",
        "cost_center": "CC9",
        "employee_number": "E42",
        "manager": boss,
    }


async def test_a_manager_who_is_not_synced_is_left_out(fake: FakeGoogle, make_source: MakeSource) -> None:
    """With users = "members", a manager outside every synced group is not named as manager."""
    fake.add_user("boss@example.com")
    worker = fake.add_user("w@example.com", manager="boss@example.com")
    group = fake.add_group("team@example.com")
    fake.add_member(group, worker)

    result = await read(make_source(), users="members")

    (user,) = result.users
    assert "manager" not in user.enterprise


@pytest.mark.parametrize(("flags", "active"), [({}, True), ({"suspended": True}, False), ({"archived": True}, False)])
async def test_suspended_and_archived_users_are_inactive(
    fake: FakeGoogle, make_source: MakeSource, flags: dict[str, bool], active: bool
) -> None:
    """Suspended and archived users are synced with active=false; others active."""
    user = fake.add_user("x@example.com", **flags)

    result = await read(make_source())

    assert {u.id: u.active for u in result.users}[user] is active


async def test_nested_groups_are_flattened_from_derived_membership(fake: FakeGoogle, make_source: MakeSource) -> None:
    """A group's users include its nested groups' users once each; GROUP rows are not members; one
    listing per synced group, with includeDerivedMembership=true."""
    top, middle = fake.add_group("top@example.com"), fake.add_group("middle@example.com")
    alice, bob = fake.add_user("alice@example.com"), fake.add_user("bob@example.com")
    fake.add_member(middle, alice, bob)
    fake.add_member(top, alice, middle)

    result = await read(make_source())

    _, groups = summary(result)
    assert groups == {"top": frozenset({alice, bob}), "middle": frozenset({alice, bob})}
    assert next(g for g in result.groups if g.name == "top").members.count(alice) == 1
    calls = fake.calls(f"{DIRECTORY}/groups/*/members")
    assert len(calls) == 2
    assert all(c.params["includeDerivedMembership"] == "true" and c.params["maxResults"] == "200" for c in calls)


async def test_members_come_200_a_page(fake: FakeGoogle, make_source: MakeSource) -> None:
    """A group of 250 members takes two member pages and keeps all 250."""
    group = fake.add_group("big@example.com")
    members = [fake.add_user(f"m{i:03d}@example.com") for i in range(250)]
    fake.add_member(group, *members)

    result = await read(make_source())

    assert set(summary(result)[1]["big"]) == set(members)
    assert len(fake.calls(f"{DIRECTORY}/groups/{group}/members")) == 2


async def test_customer_and_outside_members_are_dropped_and_counted_once_per_group(
    fake: FakeGoogle, make_source: MakeSource
) -> None:
    """CUSTOMER rows and members without a user record are not members; each group says so once."""
    group = fake.add_group("mixed@example.com")
    user = fake.add_user("in@example.com")
    fake.add_member(group, user)
    fake.add_customer_member(group)
    fake.add_external_member(group, "a@partner.example")
    fake.add_external_member(group, "b@partner.example", type="EXTERNAL")

    with capture_logs() as logs:
        result = await read(make_source())

    assert summary(result)[1] == {"mixed": frozenset({user})}
    (skip,) = [s for s in result.skipped if s.kind == "membership"]
    assert skip.id == group
    assert "2 member(s) from outside the domain" in skip.reason
    assert "CUSTOMER" in skip.reason
    dropped = [e for e in logs if e["event"] == "google.members_dropped"]
    assert [(e["group"], e["everyone"], e["outside_domain"]) for e in dropped] == [("mixed@example.com", 1, 2)]


@pytest.mark.parametrize("why", ["setting", "refused"])
async def test_syncd_expands_nesting_itself_when_asked_or_refused(
    fake: FakeGoogle, make_source: MakeSource, why: str
) -> None:
    """With nesting = "expand", or when Google refuses derived membership, direct listings are expanded
    here to the same members, a cycle included, each group listed once."""
    domain = populate(fake, users=200, groups=120, seed=3)
    if why == "refused":
        fake.refuse_derived = True
    source = make_source(nesting="expand") if why == "setting" else make_source()

    result = await read(source)

    assert summary(result)[1] == expected_groups(fake)
    direct = [c for c in fake.calls(f"{DIRECTORY}/groups/*/members") if "pageToken" not in c.params]
    plain = [c for c in direct if "includeDerivedMembership" not in c.params]
    assert len(plain) == len(fake.groups) == len({c.path for c in plain})
    assert summary(result)[1]["cycle-a"] == summary(result)[1]["cycle-b"]
    assert domain.cycle


async def test_the_done_when_domain_is_read_exactly(fake: FakeGoogle, make_source: MakeSource) -> None:
    """2,000 users, 300 groups nested three deep with a cycle: every group holds exactly its flattened
    users, suspended and archived users are inactive, and no user is read one by one."""
    domain = populate(fake)

    result = await read(make_source())

    users, groups = summary(result)
    assert groups == expected_groups(fake)
    assert {uid for uid, (_, active) in users.items() if not active} == set(domain.suspended + domain.archived)
    assert len(users) == len(fake.users)
    assert fake.directory_requests() == 4 + 2 + 300 + 2  # users, groups, members, the big group's 2nd page


async def test_group_globs_match_the_name_or_the_email(fake: FakeGoogle, make_source: MakeSource) -> None:
    """[filters] groups takes a group whose name or whose email matches, and lists only those members."""
    by_name = fake.add_group("one@example.com", "aws-admins")
    by_email = fake.add_group("aws-readers@example.com", "Readers")
    fake.add_group("other@example.com", "Other")

    result = await read(make_source(), groups=("aws-*",))

    assert {g.id for g in result.groups} == {by_name, by_email}
    assert sorted(fake.member_listings()) == sorted([by_name, by_email])


async def test_members_mode_keeps_only_members_of_synced_groups_transitively(
    fake: FakeGoogle, make_source: MakeSource
) -> None:
    """users = "members" keeps the users of synced groups, nested ones included, and no one else."""
    synced, nested = fake.add_group("aws@example.com"), fake.add_group("inner@example.com")
    direct, deep, outsider = (fake.add_user(f"{n}@example.com") for n in ("direct", "deep", "outsider"))
    fake.add_member(nested, deep)
    fake.add_member(synced, direct, nested)

    result = await read(make_source(), groups=("aws",), users="members")

    assert {u.id for u in result.users} == {direct, deep}
    assert outsider not in {u.id for u in result.users}
    assert result.prefiltered


async def test_a_group_deleted_during_the_read_is_left_out(fake: FakeGoogle, make_source: MakeSource) -> None:
    """A group listed but gone (404) when its members are asked for is left out; the read goes on."""
    stays, goes = fake.add_group("stays@example.com"), fake.add_group("goes@example.com")

    def vanish(request: object) -> None:
        if goes in str(getattr(request, "url", "")):
            fake.groups.pop(goes, None)

    fake.before = vanish  # type: ignore[assignment]
    result = await read(make_source())

    assert [g.id for g in result.groups] == [stays]


async def test_member_listings_run_in_parallel_within_the_bound(fake: FakeGoogle, make_source: MakeSource) -> None:
    """Member listings of many groups overlap, never more than `concurrency` at once."""
    for i in range(20):
        fake.add_group(f"g{i}@example.com")

    await read(make_source(concurrency=4))

    assert fake.peak_in_flight == 4


async def test_unchanged_users_are_known_by_their_etag(fake: FakeGoogle, make_source: MakeSource) -> None:
    """Given the last read's state, users whose etag did not move are not parsed again; a changed one is."""
    changed = fake.add_user("c@example.com")
    fake.add_user("same@example.com")
    source = make_source()
    first = await read(source)
    fake.update_user(changed, department="Sales")

    with capture_logs() as logs:
        second = await read(source, full=False, state=first.state)

    (event,) = [e for e in logs if e["event"] == "google.users"]
    assert (event["users"], event["changed"]) == (3, 1)
    assert dict(next(u for u in second.users if u.id == changed).enterprise) == {"department": "Sales"}


@pytest.mark.parametrize("users", ["members", "all"])
async def test_a_member_id_is_the_users_own_string(fake: FakeGoogle, make_source: MakeSource, users: str) -> None:
    """A user in three groups is held as one id string: every group's member is the user record's own id."""
    people = [fake.add_user(f"p{i}@example.com") for i in range(3)]
    for name in ("eng", "ops", "staff"):
        fake.add_member(fake.add_group(f"{name}@example.com"), *people)

    result = await read(make_source(), users=users)

    by_id = {u.id: u.id for u in result.users}
    assert 3 == len(result.groups)
    assert all(member is by_id[member] for group in result.groups for member in group.members)
