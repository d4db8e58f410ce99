"""Named JSON values (kv) and timestamps that stay timezone-aware."""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
import sqlalchemy as sa

from syncd.cache import Cache
from syncd.cache.database import JsonText, json_dumps
from syncd.cache.migrate import downgrade
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


BIG_STATE = {
    "version": 1,
    "ids": [f"u{i}" for i in range(2_500)],
    "users": [[f"user{i}@example.com", None, {"department": "Eng ✓"}, i % 2 == 0] for i in range(2_500)],
    "groups": {f"g{i}": [f"group {i}", [*range(i, i + 1_200)]] for i in range(3)},
    "marks": {"watermark": "2026-12-02T08:00:00.000Z", "empty": [], "nothing": {}},
}


@pytest.mark.parametrize(
    "value",
    [{"ids": ["u1"], "users": [["a@example.com", None]]}, BIG_STATE, [], {}, "plain text ✓", 42],
    ids=["small", "big", "empty-list", "empty-object", "string", "number"],
)
def test_a_value_serialised_ahead_reads_back_as_the_value(cache: Cache, value: Any) -> None:
    """A value written as JSON text made ahead (a run's connector state) reads back as the value itself."""
    cache.set_value("connector.state", JsonText(value))

    assert value == cache.get_value("connector.state")


def test_text_made_ahead_is_the_text_of_the_value() -> None:
    """The JSON text made ahead, in slices, is exactly the one-piece encoding (long lists, keys that are not text)."""
    value = {**BIG_STATE, "odd keys": {1: "one", None: "none", False: [None] * 1_001, 2.5: "half"}}

    assert json_dumps(value) == JsonText(value).text


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


def test_a_value_serialised_ahead_is_stored_compressed(cache: Cache) -> None:
    """A connector's state written as JsonText is stored as a zlib stream, far smaller than its
    text, with no JSON copy beside it; a plain value is stored as JSON, with nothing packed."""
    cache.set_value("connector.state", JsonText(BIG_STATE))
    cache.set_value("checked", {"at": "2026-12-03T08:00:00+00:00"})

    with cache.engine.connect() as connection:
        rows = {
            key: (value, packed)
            for key, value, packed in connection.execute(sa.select(kv.c.key, kv.c.value, kv.c.packed))
        }
    value, packed = rows["connector.state"]
    assert value is None
    assert BIG_STATE == json.loads(zlib.decompress(packed).decode())
    assert len(packed) * 4 < len(json_dumps(BIG_STATE).encode())
    assert ({"at": "2026-12-03T08:00:00+00:00"}, None) == rows["checked"]


def test_a_plain_value_replaces_a_packed_one(cache: Cache) -> None:
    """Writing a plain value under a key that held a compressed one leaves only the plain value."""
    cache.set_value("connector.state", JsonText(BIG_STATE))
    cache.set_value("connector.state", {"version": 1})

    assert {"version": 1} == cache.get_value("connector.state")
    with cache.engine.connect() as connection:
        assert connection.execute(sa.select(kv.c.packed)).scalar_one() is None


def test_a_downgrade_unpacks_the_state_for_the_older_syncd(cache: Cache) -> None:
    """Downgrading the schema to 0004 puts a compressed state back into ``value``, as syncd 0004 reads it."""
    cache.set_value("connector.state", JsonText(BIG_STATE))

    downgrade(cache.engine, "0004")

    with cache.engine.connect() as connection:
        assert "packed" not in {c["name"] for c in sa.inspect(connection).get_columns("kv")}
        assert (
            BIG_STATE
            == connection.execute(sa.select(sa.column("value", sa.JSON())).select_from(sa.table("kv"))).scalar_one()
        )
    cache.upgrade()
    assert BIG_STATE == cache.get_value("connector.state")
