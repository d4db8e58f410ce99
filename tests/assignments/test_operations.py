"""apply(): asynchronous creates and deletes, polled to their end, bounded, retried, reported.

Against the fake sso-admin (tests/assignments/fakes.py): moto answers SUCCEEDED at once. The
manager's waits go through an injected sleep that records them and only yields to the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from syncd.assignments.manager import MAX_IN_FLIGHT, AssignmentManager, Backoff
from syncd.changes import Action, AssignmentChange, Change, UserChange
from syncd.model import Assignment, User
from syncd.ports import Assigner
from tests.assignments.fakes import INSTANCE, FakeSsoAdmin, Script, fake_access


PS = f"{INSTANCE}/ps-aaaaaaaaaaaaaaaa"


class Clock:
    """An injected sleep: records each wait, runs a hook, yields to the loop, never waits."""

    def __init__(self, hook: Callable[[], None] | None = None) -> None:
        self.waits: list[float] = []
        self.hook = hook

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        if self.hook is not None:
            self.hook()
        await asyncio.sleep(0)


def assignment(n: int, group: str = "g1") -> Assignment:
    return Assignment(group, f"{100000000000 + n}", PS, f"group-{group}", "Admin", f"acct-{n}")


def create(n: int, group: str = "g1", target: str | None = "tg-1") -> AssignmentChange:
    return AssignmentChange(Action.CREATE_ASSIGNMENT, assignment(n, group), target, reason="rule 0")


def delete(n: int, group: str = "g1", target: str | None = "tg-1") -> AssignmentChange:
    return AssignmentChange(Action.DELETE_ASSIGNMENT, assignment(n, group), target, reason="unwanted")


def manager(fake: FakeSsoAdmin, clock: Clock, **kwargs: object) -> AssignmentManager:
    return AssignmentManager([], fake_access(fake), sleep=clock, jitter=lambda: 1.0, **kwargs)  # type: ignore[arg-type]


def run(
    mgr: AssignmentManager, changes: list[Change], targets: dict[str, str] | None = None
) -> list[tuple[Change, str | None]]:
    outcomes: list[tuple[Change, str | None]] = []
    asyncio.run(mgr.apply(changes, targets or {"g1": "tg-1"}, lambda c, e: outcomes.append((c, e))))
    return outcomes


def test_an_operation_is_polled_until_it_succeeds() -> None:
    """IN_PROGRESS is checked again with growing waits until SUCCEEDED, then reported done."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(in_progress=3))

    outcomes = run(manager(fake, clock), [create(1)])

    assert [(create(1), None)] == outcomes
    assert ["create", "check", "check", "check"] == fake.calls
    assert [1.0, 1.5, 2.25] == clock.waits
    assert ("100000000001", PS, "tg-1") in fake.assigned


def test_poll_waits_stop_growing_at_the_cap() -> None:
    """Status checks wait poll_first × poll_factor^n, never more than poll_max."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(in_progress=5))
    backoff = Backoff(poll_first=2.0, poll_factor=2.0, poll_max=5.0)

    run(manager(fake, clock, backoff=backoff), [create(1)])

    assert [2.0, 4.0, 5.0, 5.0, 5.0] == clock.waits


def test_a_failed_operation_is_reported_with_its_reason_and_the_rest_go_on() -> None:
    """A FAILED create is reported with AWS's FailureReason; the other operations succeed."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script(
        "100000000002", PS, "tg-1", Script(in_progress=2, final="FAILED", reason="Number of roles exceeded the quota")
    )

    outcomes = dict(run(manager(fake, clock), [create(1), create(2), create(3), delete(4)]))

    assert None is outcomes[create(1)]
    assert None is outcomes[create(3)]
    assert None is outcomes[delete(4)]
    failed = outcomes[create(2)]
    assert failed is not None
    assert "FAILED: Number of roles exceeded the quota" in failed
    assert "group-g1 → Admin @ acct-2 (100000000002)" in failed


def test_at_most_ten_operations_are_in_flight() -> None:
    """25 operations that stay IN_PROGRESS: 10 outstanding at most, and 10 are reached."""
    fake = FakeSsoAdmin()
    fake.hold.clear()
    extra_checks: list[int] = []

    def release_once_full() -> None:
        # Keep everything IN_PROGRESS for 50 more checks after 10 are out, so an 11th would show.
        if fake.in_flight >= MAX_IN_FLIGHT or len(extra_checks) > 5000:
            extra_checks.append(1)
        if len(extra_checks) >= 50:
            fake.hold.set()

    clock = Clock(release_once_full)
    changes = [create(n) for n in range(25)]

    outcomes = run(manager(fake, clock), changes)

    assert MAX_IN_FLIGHT == fake.max_in_flight
    assert 25 == len(outcomes)
    assert all(error is None for _, error in outcomes)
    assert 25 == fake.calls.count("create")


def test_the_bound_is_configurable() -> None:
    """max_in_flight=1 runs operations one after another."""
    fake, clock = FakeSsoAdmin(), Clock()
    for n in range(4):
        fake.script(f"{100000000000 + n}", PS, "tg-1", Script(in_progress=2))

    run(manager(fake, clock, max_in_flight=1), [create(n) for n in range(4)])

    assert 1 == fake.max_in_flight


def test_conflict_and_throttling_are_retried_with_backoff() -> None:
    """ConflictException then ThrottlingException on create are retried; the create then succeeds."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(submit_errors=["ConflictException", "ThrottlingException"]))

    outcomes = run(manager(fake, clock), [create(1)])

    assert [(create(1), None)] == outcomes
    assert 3 == fake.calls.count("create")
    assert [1.0, 2.0] == clock.waits


def test_retries_that_run_out_are_reported() -> None:
    """A ConflictException that persists past every attempt is reported with the code; nothing raises."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(submit_errors=["ConflictException"] * 10))

    outcomes = run(manager(fake, clock, backoff=Backoff(retry_attempts=3, retry_max=1.5)), [create(1)])

    ((_, error),) = outcomes
    assert error is not None
    assert "ConflictException: scripted (still, after 3 attempts)" in error
    assert [1.0, 1.5] == clock.waits


def test_an_error_that_is_not_passing_is_reported_at_once() -> None:
    """A ValidationException is not retried: reported with its code, the other operations go on."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(submit_errors=["ValidationException"]))

    outcomes = dict(run(manager(fake, clock), [create(1), create(2)]))

    assert "ValidationException" in (outcomes[create(1)] or "")
    assert None is outcomes[create(2)]
    assert [] == clock.waits


def test_access_denied_stops_new_operations() -> None:
    """After AccessDeniedException no new operation starts; the rest are reported not attempted."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000000", PS, "tg-1", Script(submit_errors=["AccessDeniedException"]))

    outcomes = run(manager(fake, clock, max_in_flight=1), [create(0), create(1), create(2)])

    assert 1 == fake.calls.count("create")
    errors = [error or "" for _, error in outcomes]
    assert "AccessDeniedException" in errors[0]
    assert all("not attempted: an earlier operation was refused: AccessDeniedException" in e for e in errors[1:])


def test_an_operation_stuck_in_progress_is_reported_after_the_poll_limit() -> None:
    """An operation still IN_PROGRESS after poll_limit checks is reported failed, naming the request."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(in_progress=100))

    ((_, error),) = run(manager(fake, clock, backoff=Backoff(poll_limit=4)), [create(1)])

    assert error is not None
    assert "still IN_PROGRESS after 4 status checks (request req-1)" in error


def test_a_failed_delete_keeps_the_change_reported() -> None:
    """A FAILED delete is reported with its reason (the engine then keeps syncd's record)."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(final="FAILED", reason="internal error"))

    ((_, error),) = run(manager(fake, clock), [delete(1)])

    assert "delete group-g1 → Admin @ acct-1 (100000000001) FAILED: internal error" in (error or "")


def test_deleting_what_aws_no_longer_holds_succeeds() -> None:
    """ResourceNotFoundException on delete means the assignment is gone already: reported done."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.script("100000000001", PS, "tg-1", Script(submit_errors=["ResourceNotFoundException"]))

    assert [(delete(1), None)] == run(manager(fake, clock), [delete(1)])


def test_a_record_only_delete_sends_nothing() -> None:
    """A delete without target (gone from AWS already) is reported done with no AWS call."""
    fake, clock = FakeSsoAdmin(), Clock()

    assert [(delete(1, target=None), None)] == run(manager(fake, clock), [delete(1, target=None)])
    assert [] == fake.calls


def test_a_group_without_an_identity_center_id_is_reported() -> None:
    """A create for a group whose create failed (no id) is reported and sends nothing."""
    fake, clock = FakeSsoAdmin(), Clock()

    ((_, error),) = run(manager(fake, clock), [create(1, group="g9", target=None)])

    assert "the group has no Identity Center id" in (error or "")
    assert [] == fake.calls


def test_a_group_that_got_its_id_this_run_gets_it_in_the_reported_change() -> None:
    """A create planned before the group existed is sent with the id from apply's group_targets."""
    fake, clock = FakeSsoAdmin(), Clock()

    outcomes = run(manager(fake, clock), [create(1, group="g2", target=None)], {"g2": "tg-new"})

    assert [("tg-new", None)] == [(change.target_id, error) for change, error in outcomes]
    assert ["list", "create"] == fake.calls


def test_an_assignment_made_outside_syncd_is_not_claimed() -> None:
    """If the group's assignment already exists when apply looks, nothing is sent and nothing reported."""
    fake, clock = FakeSsoAdmin(), Clock()
    fake.assigned.add(("100000000001", PS, "tg-adopted"))

    outcomes = run(manager(fake, clock), [create(1, group="g2", target=None)], {"g2": "tg-adopted"})

    assert [] == outcomes
    assert ["list"] == fake.calls


def test_an_on_done_failure_stops_new_operations_and_is_raised() -> None:
    """If recording an outcome fails, no new operation starts and apply raises it after the others end."""
    fake, clock = FakeSsoAdmin(), Clock()
    seen: list[Change] = []

    def on_done(change: Change, error: str | None) -> None:
        seen.append(change)
        raise RuntimeError("cache is gone")

    mgr = manager(fake, clock, max_in_flight=1)
    with pytest.raises(RuntimeError, match="cache is gone"):
        asyncio.run(mgr.apply([create(1), create(2), create(3)], {"g1": "tg-1"}, on_done))

    assert 1 == fake.calls.count("create")
    assert "not attempted" not in str(seen[0])


def test_apply_refuses_changes_that_are_not_assignments() -> None:
    """Handing apply a user change is a programming error, refused before any call."""
    fake, clock = FakeSsoAdmin(), Clock()

    with pytest.raises(TypeError, match="not an assignment change"):
        run(manager(fake, clock), [UserChange(Action.CREATE_USER, User("u1", "u1@example.com", "U", "U", "One"))])
    assert [] == fake.calls


def test_the_manager_is_the_engines_assigner() -> None:
    """AssignmentManager satisfies the engine's Assigner protocol (checked by mypy on this line)."""
    assigner: Assigner = manager(FakeSsoAdmin(), Clock())

    assert callable(assigner.plan)
    assert callable(assigner.apply)


def test_a_stop_request_starts_no_new_operation() -> None:
    """After request_stop, the operation in flight ends and is reported; the rest are not attempted."""
    fake = FakeSsoAdmin()
    mgr: AssignmentManager

    def stop_on_first_check() -> None:
        mgr.request_stop()

    clock = Clock(stop_on_first_check)
    fake.script("100000000000", PS, "tg-1", Script(in_progress=1))
    mgr = manager(fake, clock, max_in_flight=1)

    outcomes = run(mgr, [create(0), create(1), create(2)])

    assert 1 == fake.calls.count("create")
    assert None is outcomes[0][1]
    assert all("not attempted: the run was asked to stop" in (error or "") for _, error in outcomes[1:])
