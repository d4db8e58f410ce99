"""Member PATCH packing: the requests the applier sends are the ones the plan view counts."""

from __future__ import annotations

from syncd.changes import Action, MemberChange
from syncd.members import MemberRequest, member_requests, request_count
from syncd.plan import Plan
from syncd.plan_view import summarise


def ids(prefix: str, count: int) -> tuple[str, ...]:
    """``count`` made-up user source ids."""
    return tuple(f"{prefix}{i}" for i in range(count))


def test_removes_ride_in_the_room_of_the_last_add_patch() -> None:
    """A group gaining 150 and losing 30 members takes two PATCHes: 100 adds, then 50 adds with the 30 removes."""
    first, then = member_requests(
        [
            MemberChange(Action.ADD_MEMBERS, "g", ids("a", 150)),
            MemberChange(Action.REMOVE_MEMBERS, "g", ids("r", 30)),
        ]
    )
    assert [[MemberRequest("g", ids("a", 150)[:100]), MemberRequest("g", ids("a", 150)[100:], ids("r", 30))]] == first
    assert [] == then


def test_removes_that_do_not_fit_go_in_a_second_wave() -> None:
    """Removes beyond the last add PATCH's room, and removes of a group with no adds, go after every add."""
    first, then = member_requests(
        [
            MemberChange(Action.ADD_MEMBERS, "g", ids("a", 95)),
            MemberChange(Action.REMOVE_MEMBERS, "g", ids("r", 10)),
            MemberChange(Action.REMOVE_MEMBERS, "h", ids("x", 250)),
        ]
    )
    assert [[MemberRequest("g", ids("a", 95), ids("r", 10)[:5])]] == first
    by_group = {batch[0].group: batch for batch in then}  # groups' batches run side by side, in any order
    assert {
        "g": [MemberRequest("g", (), ids("r", 10)[5:])],
        "h": [MemberRequest("h", (), chunk) for chunk in _chunks(ids("x", 250))],
    } == by_group
    assert {"g": 2, "h": 3} == request_count(
        [
            MemberChange(Action.ADD_MEMBERS, "g", ids("a", 95)),
            MemberChange(Action.REMOVE_MEMBERS, "g", ids("r", 10)),
            MemberChange(Action.REMOVE_MEMBERS, "h", ids("x", 250)),
        ]
    )


def test_the_plan_summary_counts_the_requests_that_will_be_sent() -> None:
    """The summary's request count is the number of PATCHes member_requests packs for the plan's member changes."""
    changes = [
        MemberChange(Action.ADD_MEMBERS, "g", ids("a", 100)),
        MemberChange(Action.ADD_MEMBERS, "g", ids("b", 20)),
        MemberChange(Action.REMOVE_MEMBERS, "g", ids("r", 90)),
        MemberChange(Action.REMOVE_MEMBERS, "h", ids("x", 1)),
    ]
    first, then = member_requests(changes)
    sent = sum(len(batch) for batch in (*first, *then))
    assert 4 == sent  # g: 100 adds; 20 adds + 80 removes; 10 removes. h: 1 remove
    assert sent == summarise(Plan(changes)).member_requests


def _chunks(items: tuple[str, ...]) -> list[tuple[str, ...]]:
    """``items`` in runs of 100, as Identity Center takes them."""
    return [items[i : i + 100] for i in range(0, len(items), 100)]
