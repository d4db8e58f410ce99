"""Leadership: a lock file on SQLite, an advisory lock on PostgreSQL, and the leader's record."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from syncd.cache import Cache
from syncd.errors import CacheBusy
from syncd.leader import FileLeadership, PostgresLeadership, acquire_leadership, publish, read_record


@pytest.fixture
def sqlite_cache(tmp_path: Path) -> Iterator[Cache]:
    """A migrated SQLite cache in a temporary folder."""
    with Cache.open(f"sqlite:///{tmp_path / 'syncd.db'}") as cache:
        cache.upgrade()
        yield cache


def test_a_second_holder_of_a_sqlite_cache_is_refused(sqlite_cache: Cache, tmp_path: Path) -> None:
    """The second lock on one SQLite cache fails with CacheBusy naming the holder and the way out."""
    first = acquire_leadership(sqlite_cache)
    assert isinstance(first, FileLeadership)
    assert first.poll()
    try:
        with pytest.raises(CacheBusy) as caught:
            acquire_leadership(sqlite_cache)
        message = str(caught.value)
        assert f"pid {os.getpid()}" in message
        assert str(tmp_path / "syncd.db.lock") in message
        assert "PostgreSQL" in message
    finally:
        first.release()
    second = acquire_leadership(sqlite_cache)
    assert second.is_leader
    second.release()
    second.release()  # twice is harmless


def test_an_in_memory_cache_always_leads() -> None:
    """A :memory: cache cannot be shared, so its process leads without a lock file."""
    with Cache.open("sqlite:///:memory:") as cache:
        leadership = acquire_leadership(cache)
        assert leadership.poll()


def test_the_leader_record_goes_stale_without_heartbeats(sqlite_cache: Cache) -> None:
    """read_record() says alive while heartbeats are fresh (3 periods), not after, nor once stopped."""
    publish(sqlite_cache, {"id": "host:1", "heartbeat_s": 10})
    record = read_record(sqlite_cache)
    assert record is not None
    assert (record["id"], record["alive"]) == ("host:1", True)
    later = datetime.now(UTC) + timedelta(seconds=31)
    assert not read_record(sqlite_cache, now=later)["alive"]  # type: ignore[index]
    publish(sqlite_cache, {"id": "host:1", "heartbeat_s": 10, "stopped_at": datetime.now(UTC).isoformat()})
    assert not read_record(sqlite_cache)["alive"]  # type: ignore[index]


@pytest.mark.postgres
def test_one_postgres_replica_leads_and_another_takes_over(pg_cache_url: str) -> None:
    """On PostgreSQL one of two replicas gets the lock; when it lets go, the other gets it."""
    with Cache.open(pg_cache_url) as cache_a, Cache.open(pg_cache_url) as cache_b:
        a, b = PostgresLeadership(cache_a), PostgresLeadership(cache_b)
        try:
            assert (True, False) == (a.poll(), b.poll())
            assert (True, False) == (a.poll(), b.poll())  # polling again changes nothing
            a.release()
            assert b.poll()
            assert not a.poll()
        finally:
            a.release()
            b.release()


@pytest.mark.postgres
def test_a_leader_whose_session_ends_knows_it_lost(pg_cache_url: str) -> None:
    """If the leader's database session is killed, its next poll reports the loss and a standby takes over."""
    with Cache.open(pg_cache_url) as cache_a, Cache.open(pg_cache_url) as cache_b:
        a, b = PostgresLeadership(cache_a), PostgresLeadership(cache_b)
        try:
            assert a.poll()
            with cache_b.engine.connect() as connection:
                killed = connection.execute(
                    sa.text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = 'syncd-leader' AND datname = current_database()"
                    )
                ).all()
            assert [(True,)] == [tuple(row) for row in killed]
            assert not a.poll()
            assert b.poll()
        finally:
            a.release()
            b.release()


@pytest.mark.postgres
def test_start_up_is_serialised_between_replicas(pg_cache_url: str) -> None:
    """While one replica holds the start-up lock (upgrading the schema), another's start waits for it."""
    with Cache.open(pg_cache_url) as cache_a, Cache.open(pg_cache_url) as cache_b:
        a, b = PostgresLeadership(cache_a), PostgresLeadership(cache_b)
        try:
            with a.starting(), cache_b.engine.connect() as probe:
                probe.exec_driver_sql("SET lock_timeout = '200ms'")
                with pytest.raises(sa.exc.OperationalError, match="lock timeout"):
                    probe.exec_driver_sql(f"SELECT pg_advisory_lock({0x73796E636453})")
            with b.starting():
                pass
        finally:
            a.release()
            b.release()
