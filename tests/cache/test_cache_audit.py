"""The audit trail: written with its change in one transaction, tagged with the run."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd.cache import Cache
from syncd.errors import CacheError
from syncd.state import AuditEntry, CachedGroup, CachedUser


ALICE = CachedUser("00u1", "t-alice", "alice@example.com", "d1", {"userName": "alice@example.com"})
ENG = CachedGroup("00g1", "tg-eng", "Engineering", "d-eng")


def _entry(action: str, source_id: str = "00u1", result: str = "ok") -> AuditEntry:
    return AuditEntry(action, "user", source_id, "t-alice", None, {"userName": "alice@example.com"}, result)


def test_a_write_and_its_audit_entry_land_together(cache: Cache) -> None:
    """put_user with an audit entry stores both; audit() returns the entry exactly."""
    entry = AuditEntry("update_user", "user", "00u1", "t-alice", {"active": True}, {"active": False}, "ok")

    cache.put_user(ALICE, entry)

    assert [entry] == [e for _, e in cache.audit()]
    assert ALICE.source_id in cache.load().users


def test_a_failed_write_leaves_no_audit_entry(cache: Cache) -> None:
    """When the state write fails, its audit entry is not written either."""
    cache.put_user(ALICE)
    clash = CachedUser("00u2", ALICE.target_id, "bob@example.com", "d2")

    with pytest.raises(CacheError):
        cache.put_user(clash, _entry("create_user", "00u2"))

    assert [] == cache.audit()


def test_a_failed_audit_write_undoes_the_change(cache: Cache) -> None:
    """When the audit entry cannot be written, the state change is rolled back too."""
    unserialisable = AuditEntry("create_user", "user", "00u1", "t-alice", None, {"oops": object()})

    with pytest.raises(CacheError, match="put_user"):
        cache.put_user(ALICE, unserialisable)

    assert {} == cache.load().users
    assert [] == cache.audit()


@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda c, e: c.put_user(ALICE, e), id="put_user"),
        pytest.param(lambda c, e: c.forget_user(ALICE.source_id, e), id="forget_user"),
        pytest.param(lambda c, e: c.put_group(ENG, e), id="put_group"),
        pytest.param(lambda c, e: c.forget_group(ENG.source_id, e), id="forget_group"),
        pytest.param(lambda c, e: c.add_memberships(ENG.source_id, [ALICE.source_id], e), id="add_memberships"),
        pytest.param(lambda c, e: c.remove_memberships(ENG.source_id, [ALICE.source_id], e), id="remove_memberships"),
        pytest.param(lambda c, e: c.record(e), id="record"),
    ],
)
def test_every_write_records_its_audit_entry(cache: Cache, write: object) -> None:
    """Each write method that takes an audit entry stores it."""
    cache.put_user(ALICE)
    cache.put_group(ENG)
    entry = AuditEntry("some_action", "membership", ENG.source_id, ENG.target_id, {"n": 0}, {"n": 1})

    write(cache, entry)  # type: ignore[operator]

    assert [entry] == [e for _, e in cache.audit()]


def test_entries_are_tagged_with_the_current_run(cache: Cache) -> None:
    """Entries written during a run carry its id; entries after finish_run carry none."""
    first = cache.start_run("full", dry_run=False)
    cache.put_user(ALICE, _entry("create_user"))
    cache.record(_entry("update_user", result="failed: 409 conflict"))
    cache.finish_run(first, "ok", {}, {}, None)
    cache.record(_entry("drift_seen", result="drift: userName"))
    second = cache.start_run("incremental", dry_run=False)
    cache.record(_entry("delete_user"))

    assert ["update_user", "create_user"] == [e.action for _, e in cache.audit(run_id=first)]
    assert ["delete_user"] == [e.action for _, e in cache.audit(run_id=second)]
    assert ["delete_user", "drift_seen", "update_user", "create_user"] == [e.action for _, e in cache.audit()]
    assert cache.current_run_id == second


def test_audit_is_newest_first_and_limited(cache: Cache) -> None:
    """audit(limit=n) returns the n newest entries, newest first."""
    for i in range(7):
        cache.record(_entry(f"action_{i}"))

    assert ["action_6", "action_5", "action_4"] == [e.action for _, e in cache.audit(limit=3)]


def test_audit_times_are_aware_utc(cache: Cache) -> None:
    """Each entry's time is when it was written, timezone-aware UTC."""
    before = datetime.now(UTC)
    cache.record(_entry("create_user"))
    after = datetime.now(UTC)

    [(at, _)] = cache.audit()

    assert UTC == at.tzinfo
    assert before <= at <= after


def test_audit_payloads_keep_nulls_and_dates(cache: Cache) -> None:
    """before=None stays None, nested JSON survives, and datetimes are stored as ISO 8601 text."""
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    entry = AuditEntry("adopt_group", "group", None, None, None, {"members": ["a", "b"], "seen": when}, "ok")

    cache.record(entry)

    [(_, stored)] = cache.audit()
    assert (None, None, None) == (stored.source_id, stored.target_id, stored.before)
    assert {"members": ["a", "b"], "seen": "2026-01-02T03:04:05+00:00"} == stored.after
