"""A full read of Entra tells the run what is final as it goes: users, groups, then each transitive listing."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.errors import SourceError
from tests.announced import Recorder, assert_announced_the_read
from tests.fakes.entra import FakeEntra
from tests.reads import read


pytestmark = pytest.mark.anyio


def _tenant(fake: FakeEntra, groups: int = 12) -> list[str]:
    """``groups`` groups, each nesting the one before it, a guest, a disabled user, a device."""
    people = [fake.add_user(f"person{i}") for i in range(30)]
    fake.disable_user(people[1])
    guest = fake.add_user("gus.tee", guest=True)
    ids: list[str] = []
    for g in range(groups):
        group = fake.add_group(f"team-{g:02d}", description=f"team {g}")
        fake.add_members(group, *people[g : g + 4])
        if ids:
            fake.add_members(group, ids[-1])  # nested: transitive members include the whole chain below
        ids.append(group)
    fake.add_members(ids[0], guest, fake.add_other("device", "laptop"))
    return ids


def _member_requests(fake: FakeEntra) -> list[int]:
    return [i for i, r in enumerate(fake.requests) if "/transitiveMembers" in r.url.path]


def _recorder(fake: FakeEntra) -> Recorder:
    return Recorder(mark=lambda: len(fake.requests))


async def test_a_full_read_announces_exactly_what_it_returns(fake: FakeEntra, make_source: Any) -> None:
    """Users (the guest left out, as in the read), the synced groups, and each group's transitive users."""
    _tenant(fake)
    recorder = _recorder(fake)

    result = await read(make_source(), listener=recorder)

    assert_announced_the_read(recorder, result)
    assert recorder.users is not None
    assert "gus.tee" not in {str(u.user_name).split("@")[0] for u in recorder.users}
    assert len(recorder.groups) == 12


async def test_users_come_before_members_which_follow_the_group_listing(fake: FakeEntra, make_source: Any) -> None:
    """users_read and groups_listed reach the listener before the first transitive listing reaches Graph,
    the listings follow the order groups were listed, and the first group is announced before the last listing."""
    _tenant(fake, groups=20)
    recorder = _recorder(fake)

    await read(make_source(concurrency=4), listener=recorder)

    members = _member_requests(fake)
    assert recorder.at("users") <= recorder.at("groups") <= members[0]
    assert recorder.listed is not None
    assert fake.member_listings() == [g.id for g in recorder.listed]
    assert recorder.group_marks()[0] <= members[-1]


async def test_members_mode_finds_users_as_each_transitive_listing_ends(fake: FakeEntra, make_source: Any) -> None:
    """With users = "members" each group's members are found (each once) as its
    transitive listing ends, before the last listing is answered and before their group; all as the
    read holds them, users_read at the end."""
    _tenant(fake)
    recorder = _recorder(fake)

    result = await read(make_source(concurrency=2), users="members", groups=("team-0*",), listener=recorder)

    assert_announced_the_read(recorder, result)
    last_member_request = _member_requests(fake)[-1]
    assert recorder.at("found") <= last_member_request
    assert recorder.group_marks()[0] <= last_member_request
    assert sorted(u.id for u in recorder.found) == sorted(u.id for u in result.users)
    assert len(recorder.groups) == 10
    assert recorder.at("users") == len(fake.requests)
    assert recorder.group_marks()[0] < len(fake.requests)


async def test_a_delta_read_announces_nothing_unless_it_reads_in_full(fake: FakeEntra, make_source: Any) -> None:
    """A read by delta links tells the listener nothing; one whose delta link expired reads in full and announces."""
    ids = _tenant(fake)
    source = make_source()
    first = await read(source)
    fake.add_members(ids[3], fake.add_user("late.joiner"))
    quiet = Recorder()

    second = await read(source, full=False, state=first.state, listener=quiet)

    assert "late.joiner" in {str(u.user_name).split("@")[0] for u in second.users}
    assert quiet.events == []

    fake.force_resync("users")
    recorder = _recorder(fake)
    third = await read(source, full=False, state=second.state, listener=recorder)

    assert_announced_the_read(recorder, third)


async def test_a_read_that_fails_after_announcing_still_fails(fake: FakeEntra, make_source: Any) -> None:
    """A transitive listing that keeps failing after users and some groups were announced raises SourceError."""
    ids = _tenant(fake)
    fake.inject(500, path=f"/v1.0/groups/{ids[6]}/transitiveMembers", times=10)
    recorder = Recorder()

    with pytest.raises(SourceError, match="HTTP 500"):
        await read(make_source(max_retries=1, concurrency=1), listener=recorder)

    assert recorder.users is not None
    assert 0 < len(recorder.groups) < 12
