"""Named JSON values (kv) and timestamps that stay timezone-aware."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.cache import Cache
from syncd.cache.database import JsonText
from syncd.cache.tables import kv
from syncd.errors import CacheError


@pytest.mark.parametrize(
    "value",
    [
        {"okta": {"since": "2026-11-28T10:00:00.000Z", "cursor": None}},
        ["a", 1, 2.5, True, None],
        "plain text ✓",
        42,
    ],
    ids=["object", "list", "string", "number"],
)
def test_values_round_trip(cache: Cache, value: Any) -> None:
    """set_value then get_value returns an equal JSON value."""
    cache.set_value("connector.state", value)

    assert value == cache.get_value("connector.state")


@pytest.mark.parametrize("value", [{"ids": ["u1"], "users": [["a@example.com", None]]}, "plain text ✓", 42])
def test_a_value_serialised_ahead_reads_back_as_the_value(cache: Cache, value: Any) -> None:
    """A value written as JSON text made ahead (a run's connector state) reads back as the value itself."""
    cache.set_value("connector.state", JsonText(value))

    assert value == cache.get_value("connector.state")


def test_a_missing_key_reads_none(cache: Cache) -> None:
    """get_value of a key never set returns None."""
    assert cache.get_value("nothing.here") is None


def test_set_value_replaces_and_keeps_keys_apart(cache: Cache) -> None:
    """Setting a key again replaces its value; other keys keep theirs."""
    cache.set_value("a", {"v": 1})
    cache.set_value("b", {"v": 2})

    cache.set_value("a", {"v": 3})

    assert ({"v": 3}, {"v": 2}) == (cache.get_value("a"), cache.get_value("b"))


def test_a_non_json_value_is_refused(cache: Cache) -> None:
    """A value JSON cannot encode raises CacheError and leaves the old value in place."""
    cache.set_value("a", [1])

    with pytest.raises(CacheError, match="set_value"):
        cache.set_value("a", {"bad": object()})

    assert [1] == cache.get_value("a")


def test_timestamps_with_any_offset_read_back_as_utc(cache: Cache) -> None:
    """An aware time in another zone is stored as the same instant and read back in UTC."""
    paris = datetime(2026, 6, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with cache.engine.begin() as connection:
        connection.execute(kv.insert(), {"key": "t", "value": None, "updated_at": paris})

    with cache.engine.connect() as connection:
        stored = connection.execute(sa.select(kv.c.updated_at)).scalar_one()

    assert UTC == stored.tzinfo
    assert datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=UTC) == stored


def test_naive_timestamps_are_refused(cache: Cache) -> None:
    """A naive datetime is rejected rather than guessed at."""
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), cache.engine.begin() as connection:
        connection.execute(kv.insert(), {"key": "t", "value": None, "updated_at": datetime(2026, 6, 1, 12)})
