"""Objects pending deletion (`safety.delete_after`): when they left the source is kept and listed."""

from __future__ import annotations

from datetime import UTC, datetime

from syncd.cache import Cache
from syncd.model import digest
from syncd.state import CachedGroup, CachedUser, Current


LEFT = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def test_gone_since_round_trips_and_is_listed(cache: Cache) -> None:
    """A user and a group marked gone load with that time and are listed oldest first; others are not."""
    data = {"userName": "a@example.com", "active": False}
    cache.put_user(CachedUser("u1", "t1", "a@example.com", digest(data), data, gone_since=LEFT))
    cache.put_user(CachedUser("u2", "t2", "b@example.com", "d2", {"userName": "b@example.com"}))
    cache.put_group(CachedGroup("g1", "tg1", "ops", "dg", gone_since=LEFT.replace(hour=10)))
    state = cache.load()
    assert (LEFT, None, LEFT.replace(hour=10)) == (
        state.users["u1"].gone_since,
        state.users["u2"].gone_since,
        state.groups["g1"].gone_since,
    )
    assert [("user", "u1", "a@example.com", "t1", LEFT), ("group", "g1", "ops", "tg1", LEFT.replace(hour=10))] == (
        cache.pending_deletions()
    )


def test_a_pending_user_is_loaded_with_its_data_even_when_unchanged(cache: Cache) -> None:
    """A user pending deletion whose digest equals the source's still loads its data and its time (it returns)."""
    data = {"userName": "a@example.com", "active": False}
    cache.put_user(CachedUser("u1", "t1", "a@example.com", digest(data), data, gone_since=LEFT))
    loaded = cache.load(current={"u1": Current("u1", "a@example.com", digest(data))}).users["u1"]
    assert (LEFT, data) == (loaded.gone_since, dict(loaded.data))
