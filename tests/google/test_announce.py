"""Every Google read lists everything: it tells the run the users, the groups, then each group once final."""

from __future__ import annotations

import httpx2
import pytest

from syncd.errors import SourceError
from tests.announced import Recorder, assert_announced_the_read
from tests.fakes.google import DIRECTORY, FakeGoogle
from tests.fakes.google_domain import expected_groups, populate
from tests.google.conftest import MakeSource, summary
from tests.reads import read


pytestmark = pytest.mark.anyio


def _member_requests(fake: FakeGoogle) -> list[int]:
    """Positions in the fake's request log of every member-page request."""
    return [
        i
        for i, r in enumerate(fake.requests)
        if r.url.path.startswith(f"{DIRECTORY}/groups/") and "/members" in r.url.path
    ]


def _recorder(fake: FakeGoogle) -> Recorder:
    return Recorder(mark=lambda: len(fake.requests))


async def test_a_read_announces_exactly_what_it_returns(fake: FakeGoogle, make_source: MakeSource) -> None:
    """Users (managers named by id), groups, and each group's flattened members: announced as the read returns them."""
    populate(fake, users=200, groups=120, seed=3)
    recorder = _recorder(fake)

    result = await read(make_source(), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert recorder.users is not None
    assert any("manager" in u.enterprise for u in recorder.users)
    assert summary(result)[1] == expected_groups(fake)


async def test_users_come_before_members_and_groups_as_they_complete(fake: FakeGoogle, make_source: MakeSource) -> None:
    """users_read reaches the listener before the first member request reaches Google, members are
    listed in the order groups were, and the first group is announced before the last listing."""
    populate(fake, users=200, groups=120, seed=3)
    recorder = _recorder(fake)

    await read(make_source(), listener=recorder)

    members = _member_requests(fake)
    assert recorder.at("users") <= recorder.at("groups") <= members[0]
    assert recorder.listed is not None
    assert fake.member_listings() == [g.id for g in recorder.listed]
    assert recorder.group_marks()[0] <= members[-1]


@pytest.mark.parametrize("why", ["setting", "refused"])
async def test_expanded_nesting_announces_a_group_once_everything_below_it_is_listed(
    fake: FakeGoogle, make_source: MakeSource, why: str
) -> None:
    """Expanding nested groups here, a group is announced with the members the read returns, and flat
    groups are announced before the last direct listing (of the deepest groups)."""
    populate(fake, users=200, groups=120, seed=3)
    if why == "refused":
        fake.refuse_derived = True
    recorder = _recorder(fake)

    result = await read(make_source(nesting="expand") if why == "setting" else make_source(), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert summary(result)[1] == expected_groups(fake)
    assert recorder.group_marks()[0] <= _member_requests(fake)[-1]


async def test_groups_announced_before_google_refuses_derived_membership_keep_those_members(
    fake: FakeGoogle, make_source: MakeSource
) -> None:
    """Google answering some derived listings, then refusing: the groups already announced stay as
    announced, the others are expanded here, and the read holds exactly what was announced."""
    populate(fake, users=200, groups=120, seed=3)
    listed = 0

    def refuse_later(request: httpx2.Request) -> None:
        nonlocal listed
        if "/members" in request.url.path:
            listed += 1
            fake.refuse_derived = listed > 20

    fake.before = refuse_later
    recorder = _recorder(fake)

    result = await read(make_source(concurrency=1), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert summary(result)[1] == expected_groups(fake)
    plain = [c for c in fake.calls(f"{DIRECTORY}/groups/*/members") if "includeDerivedMembership" not in c.params]
    assert plain  # the rest were expanded here


@pytest.mark.parametrize("nesting", ["derived", "expand"])
async def test_members_mode_finds_users_as_their_groups_are_final(
    fake: FakeGoogle, make_source: MakeSource, nesting: str
) -> None:
    """With users = "members" members are found (each once, managers named by id) as their group's
    members are final, before the last member listing is answered and before their group; all as the
    read holds them, users_read (the pruned users) at the end."""
    populate(fake, users=200, groups=120, seed=3)
    recorder = _recorder(fake)

    result = await read(make_source(nesting=nesting), users="members", groups=("top-*", "team-*"), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert recorder.at("found") <= _member_requests(fake)[-1]
    assert recorder.group_marks()[0] <= _member_requests(fake)[-1]
    assert any("manager" in u.enterprise for u in recorder.found)
    assert recorder.at("users") == len(fake.requests)
    assert recorder.group_marks()[0] < len(fake.requests)


async def test_members_mode_holds_a_member_whose_manager_is_not_synced_yet(
    fake: FakeGoogle, make_source: MakeSource
) -> None:
    """With users = "members" a member whose manager is in the domain waits until the manager is found in
    a later group (its record then names the manager), or to the end when the manager is in no synced
    group; its group waits with it, and a group without such members is announced before."""
    d = fake.domain
    outside = fake.add_user(f"outside@{d}")
    boss = fake.add_user(f"boss@{d}")
    waits, released = fake.add_user(f"waits@{d}", manager=f"outside@{d}"), fake.add_user(f"w@{d}", manager=f"boss@{d}")
    plain = fake.add_user(f"plain@{d}")
    first, second = fake.add_group(f"first@{d}", "first"), fake.add_group(f"second@{d}", "second")
    fake.add_member(first, waits, released)
    fake.add_member(second, boss, plain)
    recorder = _recorder(fake)

    result = await read(make_source(concurrency=1), users="members", groups=("first", "second"), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert sorted(u.id for u in recorder.found) == sorted([boss, plain, released])
    assert outside not in {u.id for u in result.users}
    by_id = {u.id: u for u in result.users}
    assert by_id[released].enterprise["manager"] == boss
    assert "manager" not in by_id[waits].enterprise
    names = [name for name, _ in recorder.events]
    assert names.index(f"group:{second}") < names.index("users") < names.index(f"group:{first}")


async def test_a_read_that_fails_after_announcing_still_fails(fake: FakeGoogle, make_source: MakeSource) -> None:
    """A member listing that keeps failing after users and some groups were announced raises SourceError."""
    domain = populate(fake, users=200, groups=120, seed=3)
    fake.inject(500, on=1, path=f"{DIRECTORY}/groups/{domain.groups[60]}/members", times=10)
    recorder = _recorder(fake)

    with pytest.raises(SourceError, match="HTTP 500"):
        await read(make_source(max_retries=1, concurrency=1), listener=recorder)

    assert recorder.users is not None
    assert 0 < len(recorder.groups) < len(domain.groups)
