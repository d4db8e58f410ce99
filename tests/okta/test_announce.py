"""A full read tells the run what is final as it goes: users, the group list, then each group."""

from __future__ import annotations

import httpx2
import pytest

from syncd.errors import SourceError
from tests.announced import Recorder, assert_announced_the_read
from tests.fakes.okta import FakeOkta
from tests.okta.conftest import MakeSource, read


pytestmark = pytest.mark.anyio


def _org(fake: FakeOkta, groups: int = 12) -> list[str]:
    users = [fake.add_user(f"u{i}@example.com", department="Eng") for i in range(30)]
    fake.add_user("staged@example.com", status="STAGED")
    fake.suspend(users[0])
    ids = []
    for g in range(groups):
        group = fake.add_group(f"team-{g:02d}", description=f"team {g}")
        fake.add_member(group, *users[g : g + 5])
        ids.append(group)
    big = fake.add_group("everybody")
    fake.add_member(big, *[fake.add_user(f"many{i}@example.com") for i in range(250)])  # two member pages
    return [*ids, big]


def _member_requests(fake: FakeOkta) -> list[int]:
    """Positions in the fake's request log of every member-page request."""
    return [i for i, r in enumerate(fake.requests) if r.url.path.endswith("/users") and "/groups/" in r.url.path]


async def test_a_full_read_announces_exactly_what_it_returns(fake: FakeOkta, make_source: MakeSource) -> None:
    """Users (a STAGED one left out, as in the read), every group listed, and each group with its
    members: each announcement equals the final read, and every group is announced."""
    _org(fake)
    recorder = Recorder(mark=lambda: len(fake.requests))

    result = await read(make_source(), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert recorder.users is not None
    assert "staged@example.com" not in {u.user_name for u in recorder.users}
    assert len(recorder.groups) == 13


async def test_users_and_groups_are_announced_before_any_member_listing(
    fake: FakeOkta, make_source: MakeSource
) -> None:
    """users_read and groups_listed reach the listener before the first member request reaches Okta,
    and members are listed in the order the groups were."""
    _org(fake)
    recorder = Recorder(mark=lambda: len(fake.requests))

    await read(make_source(), listener=recorder)

    first_member_request = _member_requests(fake)[0]
    assert recorder.at("users") <= first_member_request
    assert recorder.at("groups") <= first_member_request
    assert recorder.events[0][0] == "users"
    assert recorder.listed is not None
    assert fake.member_listings() == [g.id for g in recorder.listed]


async def test_groups_are_announced_as_their_members_arrive(fake: FakeOkta, make_source: MakeSource) -> None:
    """The first group is announced before the last member listing is answered, not all at the end."""
    _org(fake, groups=20)
    recorder = Recorder(mark=lambda: len(fake.requests))

    await read(make_source(concurrency=4), listener=recorder)

    last_member_request = _member_requests(fake)[-1]
    marks = recorder.group_marks()
    assert len(marks) == 21
    assert marks[0] <= last_member_request


async def test_members_mode_finds_users_as_each_member_listing_ends(fake: FakeOkta, make_source: MakeSource) -> None:
    """With users = "members" each group's members are found (each once) as its listing ends, before
    the last member listing is answered and before their group; all equal to the read, users_read at the end."""
    _org(fake, groups=20)
    recorder = Recorder(mark=lambda: len(fake.requests))

    result = await read(make_source(concurrency=4), users="members", groups=("team-*",), listener=recorder)

    assert_announced_the_read(recorder, result)
    last_member_request = _member_requests(fake)[-1]
    assert recorder.at("found") <= last_member_request
    assert recorder.group_marks()[0] <= last_member_request
    assert sorted(u.id for u in recorder.found) == sorted(u.id for u in result.users)
    assert len(recorder.groups) == 20
    assert recorder.at("users") == len(fake.requests)
    assert recorder.group_marks()[0] < len(fake.requests)
    assert recorder.events[recorder.events.index(("groups", recorder.at("groups"))) + 1][0] == "found"


async def test_members_mode_keeps_the_record_found_first(fake: FakeOkta, make_source: MakeSource) -> None:
    """A user renamed in Okta between two of its groups' member listings: the read holds the record
    announced with the first group (the change comes with the next read), and does not fail."""
    users = [fake.add_user(f"u{i}@example.com") for i in range(3)]
    first, second = fake.add_group("team-a"), fake.add_group("team-b")
    fake.add_member(first, *users)
    fake.add_member(second, users[0])

    def rename_after_first_listing(request: httpx2.Request) -> None:
        if request.url.path == f"/api/v1/groups/{second}/users":
            fake.update_user(users[0], firstName="Renamed")

    fake.before = rename_after_first_listing
    recorder = Recorder(mark=lambda: len(fake.requests))

    result = await read(make_source(concurrency=1), users="members", groups=("team-*",), listener=recorder)

    assert_announced_the_read(recorder, result)
    renamed = next(u for u in result.users if u.id == users[0])
    assert renamed.given_name != "Renamed"
    assert [u.id for u in recorder.found] == users


async def test_an_incremental_read_announces_nothing(fake: FakeOkta, make_source: MakeSource) -> None:
    """A read that builds on the kept directory tells the listener nothing (the run takes it whole)."""
    groups = _org(fake)
    source = make_source()
    first = await read(source)
    fake.advance(60)
    fake.add_member(groups[0], fake.add_user("late@example.com"))
    recorder = Recorder()

    second = await read(source, full=False, state=first.state, listener=recorder)

    assert "late@example.com" in {u.user_name for u in second.users}
    assert recorder.events == []


async def test_a_read_that_fails_after_announcing_still_fails(fake: FakeOkta, make_source: MakeSource) -> None:
    """A member listing that keeps failing after users and some groups were announced raises SourceError."""
    groups = _org(fake)
    fake.inject(500, on=1, path=f"/api/v1/groups/{groups[6]}/users", times=10)
    recorder = Recorder()

    with pytest.raises(SourceError, match="HTTP 500"):
        await read(make_source(max_retries=1, concurrency=1), listener=recorder)

    assert recorder.users is not None
    assert 0 < len(recorder.groups) < 13
