"""Incremental reads: only what changed is fetched, and the read returned is still complete."""

from __future__ import annotations

import json
from email.utils import parsedate_to_datetime
from typing import Any

import pytest

from syncd.errors import SourceError
from syncd.model import SourceRead
from tests.fakes.okta import FakeOkta, okta_time
from tests.okta.conftest import MakeSource, expected, read, summary


pytestmark = pytest.mark.anyio


def _org(fake: FakeOkta) -> dict[str, Any]:
    """Three groups of ten users, some overlap, plus two users in no group."""
    users = [fake.add_user(f"user{i}@example.com", firstName=f"U{i}") for i in range(32)]
    groups = {name: fake.add_group(name) for name in ("alpha", "beta", "gamma")}
    fake.add_member(groups["alpha"], *users[0:10])
    fake.add_member(groups["beta"], *users[10:20])
    fake.add_member(groups["gamma"], *users[15:30])
    return {"users": users, "groups": groups}


def _forget_requests(fake: FakeOkta) -> None:
    fake.requests.clear()
    fake.responses.clear()


async def _full_then_change(
    fake: FakeOkta, make_source: MakeSource, **scope: Any
) -> tuple[SourceRead, Any, dict[str, Any]]:
    org = _org(fake)
    source = make_source()
    first = await read(source, **scope)
    fake.advance(600)
    _forget_requests(fake)
    return first, source, org


async def test_one_membership_change_rereads_only_that_group(fake: FakeOkta, make_source: MakeSource) -> None:
    """After a user joins beta, the next read lists beta's members only and is complete and correct."""
    first, source, org = await _full_then_change(fake, make_source)
    fake.add_member(org["groups"]["beta"], org["users"][31])

    result = await read(source, full=False, state=first.state)

    assert fake.member_listings() == [org["groups"]["beta"]]
    assert next(c.params.get("filter", "") for c in fake.calls("/api/v1/users")).startswith("lastUpdated gt ")
    assert summary(result) == expected(fake)
    assert org["users"][31] in next(g.members for g in result.groups if g.id == org["groups"]["beta"])
    fresh = await read(make_source())
    assert summary(result) == summary(fresh)


async def test_nothing_changed_reads_no_members(fake: FakeOkta, make_source: MakeSource) -> None:
    """With no change, an incremental read costs one user request and one group request."""
    first, source, _ = await _full_then_change(fake, make_source)

    result = await read(source, full=False, state=first.state)

    assert fake.member_listings() == []
    assert result.requests == 2
    assert summary(result) == summary(first)


async def test_the_user_filter_starts_five_minutes_before_the_last_read(
    fake: FakeOkta, make_source: MakeSource
) -> None:
    """The filter starts at the server's Date when the previous read began, less a 5-minute overlap."""
    _org(fake)
    source = make_source()
    state: dict[str, Any] = {}
    filters: list[str] = []
    began: list[float] = []
    for run in range(3):
        _forget_requests(fake)
        result = await read(source, full=run == 0, state=state)
        began.append(parsedate_to_datetime(fake.responses[0].headers["date"]).timestamp())
        filters += [c.params["filter"] for c in fake.calls("/api/v1/users") if "filter" in c.params]
        state = result.state
        fake.advance(600)

    # Our clock is 90 s behind the fake's: a watermark from it would start 90 s earlier.
    assert filters == [f'lastUpdated gt "{okta_time(began[i] - 300)}"' for i in (0, 1)]


async def test_profile_and_status_changes_are_merged(fake: FakeOkta, make_source: MakeSource) -> None:
    """A suspended user and a renamed user come through the lastUpdated filter without member reads."""
    first, source, org = await _full_then_change(fake, make_source)
    fake.suspend(org["users"][3])
    fake.update_user(org["users"][4], login="renamed@example.com", department="Ops")

    result = await read(source, full=False, state=first.state)

    by_id = {u.id: u for u in result.users}
    assert by_id[org["users"][3]].active is False
    assert by_id[org["users"][4]].user_name == "renamed@example.com"
    assert by_id[org["users"][4]].enterprise == {"department": "Ops"}
    assert fake.member_listings() == []
    assert summary(result) == expected(fake)


async def test_a_new_user_appears(fake: FakeOkta, make_source: MakeSource) -> None:
    """A user created after the full read is in the next incremental read."""
    first, source, _ = await _full_then_change(fake, make_source)
    new = fake.add_user("new@example.com")

    result = await read(source, full=False, state=first.state)

    assert new in {u.id for u in result.users}
    assert summary(result) == expected(fake)


async def test_a_staged_user_that_activates_appears(fake: FakeOkta, make_source: MakeSource) -> None:
    """A STAGED user, skipped at first, is synced once Okta activates it."""
    staged = fake.add_user(status="STAGED")
    source = make_source()
    first = await read(source)
    assert staged in {s.id for s in first.skipped}
    fake.advance(60)
    fake.set_status(staged, "ACTIVE")

    result = await read(source, full=False, state=first.state)

    assert [(u.id, u.active) for u in result.users] == [(staged, True)]
    assert result.skipped == []


async def test_group_deletion_and_rename_show_up_at_once(fake: FakeOkta, make_source: MakeSource) -> None:
    """The group list is read every time, so deleted groups vanish and renamed ones carry their new name."""
    first, source, org = await _full_then_change(fake, make_source)
    fake.delete_group(org["groups"]["alpha"])
    fake.rename_group(org["groups"]["beta"], "beta-renamed")

    result = await read(source, full=False, state=first.state)

    assert {g.name for g in result.groups} == {"beta-renamed", "gamma"}
    assert fake.member_listings() == [org["groups"]["beta"]]
    assert summary(result) == expected(fake)


async def test_a_deleted_user_lingers_until_the_next_full_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """Okta leaves no trace of a deleted user in the filter: it stays until a full read drops it."""
    first, source, org = await _full_then_change(fake, make_source)
    gone = org["users"][31]  # in no group
    fake.delete_user(gone)

    lingering = await read(source, full=False, state=first.state)
    full = await read(source, full=True, state=lingering.state)

    assert gone in {u.id for u in lingering.users}
    assert gone not in {u.id for u in full.users}
    assert summary(full) == expected(fake)


async def test_full_read_every_forces_a_full_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """Once full_read_every has passed since the last full read, an incremental request reads in full."""
    org = _org(fake)
    source = make_source(full_read_every="1h")
    first = await read(source)
    first_full_read = first.state["last_full_read"]  # the next read consumes the state it is given
    gone = org["users"][31]
    fake.delete_user(gone)
    fake.advance(1800)
    half = await read(source, full=False, state=first.state)
    assert gone in {u.id for u in half.users}
    assert half.state["last_full_read"] == first_full_read
    fake.advance(1801)
    _forget_requests(fake)

    result = await read(source, full=False, state=half.state)

    assert fake.calls("/api/v1/users")[0].params == {"search": "status pr", "limit": "200"}
    assert gone not in {u.id for u in result.users}
    assert result.state["last_full_read"] != first_full_read
    assert summary(result) == expected(fake)


async def test_members_mode_follows_joins_leaves_and_edits(fake: FakeOkta, make_source: MakeSource) -> None:
    """With users="members", joiners arrive with their group, leavers drop out, edits are merged."""
    first, source, org = await _full_then_change(fake, make_source, groups=("alpha", "beta"), users="members")
    outsider, leaver, edited = org["users"][31], org["users"][0], org["users"][12]
    fake.add_member(org["groups"]["alpha"], outsider)
    fake.remove_member(org["groups"]["alpha"], leaver)
    fake.update_user(edited, firstName="Edited")
    fake.update_user(org["users"][25], firstName="NotSynced")  # only in gamma, out of scope

    result = await read(source, groups=("alpha", "beta"), users="members", full=False, state=first.state)

    ids = {u.id for u in result.users}
    assert outsider in ids
    assert leaver not in ids
    assert next(u.given_name for u in result.users if u.id == edited) == "Edited"
    assert org["users"][25] not in ids
    assert result.prefiltered
    assert summary(result) == expected(fake, groups=("alpha", "beta"), users="members")
    assert fake.member_listings() == [org["groups"]["alpha"]]


async def test_a_reread_group_keeps_its_unchanged_members_records(fake: FakeOkta, make_source: MakeSource) -> None:
    """A group re-read for a join holds its unchanged members as the last read left them (their
    records are not kept a second time from the member listing), and an edited member's new record."""
    org = _org(fake)
    fake.advance(3600)  # the users were last updated an hour before the first read, out of its overlap
    source = make_source()
    first = await read(source, groups=("alpha",), users="members")
    fake.advance(600)
    _forget_requests(fake)
    edited, joiner = org["users"][3], org["users"][31]
    fake.add_member(org["groups"]["alpha"], joiner)
    fake.update_user(edited, firstName="Edited")
    logins = {uid: packed[0] for uid, packed in zip(first.state["ids"], first.state["users"], strict=False)}

    result = await read(source, groups=("alpha",), users="members", full=False, state=first.state)

    assert fake.member_listings() == [org["groups"]["alpha"]]
    users = {u.id: u for u in result.users}
    unchanged = [uid for uid in org["users"][0:10] if uid != edited]
    assert all(users[uid].user_name is logins[uid] for uid in unchanged)
    assert ("Edited", True) == (users[edited].given_name, joiner in users)
    assert summary(result) == expected(fake, groups=("alpha",), users="members")


async def test_members_mode_drops_a_deleted_user_with_its_groups(fake: FakeOkta, make_source: MakeSource) -> None:
    """In members mode, deleting a user changes its groups' membership, so it drops out at once."""
    first, source, org = await _full_then_change(fake, make_source, users="members")
    fake.delete_user(org["users"][5])

    result = await read(source, users="members", full=False, state=first.state)

    assert org["users"][5] not in {u.id for u in result.users}
    assert summary(result) == expected(fake, users="members")


async def test_a_scope_change_forces_a_full_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """State read under another scope is not built upon: the read is full and matches the new scope."""
    first, source, _ = await _full_then_change(fake, make_source, groups=("alpha",), users="members")

    result = await read(source, groups=("beta",), users="members", full=False, state=first.state)

    assert fake.calls("/api/v1/users") == []  # members mode: a full read lists members, not users
    assert summary(result) == expected(fake, groups=("beta",), users="members")


@pytest.mark.parametrize(
    "state",
    [
        {"version": 99},
        {"version": 1, "users": [], "groups": {}},
        {"version": 1, "ids": ["00u1"], "users": [[1]], "groups": {}},
        {"version": 1, "ids": [], "users": [], "groups": {"00g1": ["g", None, None, None, [3]]}},
    ],
)
async def test_unusable_state_means_a_full_read(fake: FakeOkta, make_source: MakeSource, state: dict[str, Any]) -> None:
    """State from another version, or damaged, is ignored in favour of a full read."""
    _org(fake)

    result = await read(make_source(), full=False, state=state)

    assert fake.calls("/api/v1/users")[0].params["search"] == "status pr"
    assert summary(result) == expected(fake)


async def test_an_incremental_failure_fails_the_read(fake: FakeOkta, make_source: MakeSource) -> None:
    """A failed member re-read raises SourceError; no half-merged read is returned."""
    first, source, org = await _full_then_change(fake, make_source)
    fake.add_member(org["groups"]["gamma"], org["users"][0])
    fake.inject(400, on=1, path=f"/api/v1/groups/{org['groups']['gamma']}/users")

    with pytest.raises(SourceError):
        await read(source, full=False, state=first.state)


@pytest.mark.parametrize("membership", [False, True])
async def test_a_moved_group_timestamp_rereads_its_members(
    fake: FakeOkta, make_source: MakeSource, membership: bool
) -> None:
    """A group whose lastUpdated or lastMembershipUpdated moved has its members read again."""
    first, source, org = await _full_then_change(fake, make_source)
    fake.touch_group(org["groups"]["gamma"], membership=membership)

    result = await read(source, full=False, state=first.state)

    assert fake.member_listings() == [org["groups"]["gamma"]]
    assert summary(result) == summary(first)


async def test_a_state_read_back_from_json_holds_one_copy_of_each_shared_value(
    fake: FakeOkta, make_source: MakeSource
) -> None:
    """Users sharing a department name it with one string after their kept state comes back from its text."""
    users = [fake.add_user(f"dept{i}@example.com", department="Engineering", employeeNumber=str(i)) for i in range(3)]
    fake.add_member(fake.add_group("eng"), *users)
    fake.advance(600)  # last updated before the next read's overlap: it keeps their records
    source = make_source()
    first = await read(source)
    fake.advance(600)
    _forget_requests(fake)

    result = await read(source, full=False, state=json.loads(json.dumps(first.state)))

    kept = [u for u in result.users if u.id in users]
    assert len(kept) == 3
    assert fake.calls("/api/v1/users")[0].params.get("filter", "").startswith("lastUpdated gt ")
    assert len({id(u.enterprise["department"]) for u in kept}) == 1
    assert len({id(u.enterprise["employee_number"]) for u in kept}) == 3
