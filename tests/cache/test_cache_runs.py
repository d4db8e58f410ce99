"""Runs: start, finish, stale runs of a dead process, and the newest success."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from syncd.cache import Cache
from syncd.errors import CacheError


def test_a_run_starts_running(cache: Cache) -> None:
    """start_run records a "running" run with its mode, dry-run flag and an aware UTC start time."""
    before = datetime.now(UTC)
    run_id = cache.start_run("full", dry_run=True)

    [run] = cache.runs()

    assert (run_id, "full", True, "running") == (run.id, run.mode, run.dry_run, run.status)
    assert (None, {}, {}, None) == (run.finished_at, run.counts, run.requests, run.error)
    assert UTC == run.started_at.tzinfo
    assert before <= run.started_at <= datetime.now(UTC)
    assert run_id == cache.current_run_id


def test_finish_run_records_the_outcome(cache: Cache) -> None:
    """finish_run stores status, counts, request counts, error and an aware finish time."""
    run_id = cache.start_run("incremental", dry_run=False)

    cache.finish_run(run_id, "failed", {"users_created": 3}, {"POST /Users": 3, "GET /Users": 1}, "boom")

    [run] = cache.runs()
    assert ("failed", {"users_created": 3}, {"POST /Users": 3, "GET /Users": 1}, "boom") == (
        run.status,
        run.counts,
        run.requests,
        run.error,
    )
    assert run.finished_at is not None
    assert UTC == run.finished_at.tzinfo
    assert run.started_at <= run.finished_at
    assert cache.current_run_id is None


def test_finishing_an_unknown_run_fails(cache: Cache) -> None:
    """finish_run of a run id the cache does not hold raises CacheError."""
    with pytest.raises(CacheError, match="no such run"):
        cache.finish_run(4242, "ok", {}, {}, None)


def test_runs_are_newest_first_and_limited(cache: Cache) -> None:
    """runs(limit=n) returns the n newest runs, newest first."""
    ids = []
    for _ in range(5):
        run_id = cache.start_run("incremental", dry_run=False)
        cache.finish_run(run_id, "ok", {}, {}, None)
        ids.append(run_id)

    assert ids[::-1][:3] == [r.id for r in cache.runs(limit=3)]


def test_stale_runs_are_interrupted(cache: Cache, other_cache: Cache) -> None:
    """Runs another (dead) process left "running" become "interrupted"; this cache's own run is left alone."""
    dead = other_cache.start_run("full", dry_run=False)
    done = other_cache.start_run("incremental", dry_run=False)
    other_cache.finish_run(done, "ok", {}, {}, None)
    ours = cache.start_run("incremental", dry_run=False)

    assert 1 == cache.interrupt_stale_runs()

    runs = {r.id: r for r in cache.runs()}
    assert ("interrupted", "ok", "running") == (runs[dead].status, runs[done].status, runs[ours].status)
    assert runs[dead].finished_at is not None
    assert runs[dead].error is not None
    assert 0 == cache.interrupt_stale_runs()


def test_interrupt_with_no_run_of_our_own(cache: Cache, other_cache: Cache) -> None:
    """At start-up, before any run of its own, every "running" run is interrupted."""
    other_cache.start_run("full", dry_run=False)
    other_cache.start_run("full", dry_run=True)

    assert 2 == cache.interrupt_stale_runs()
    assert {"interrupted"} == {r.status for r in cache.runs()}


def test_last_success_skips_failures_and_dry_runs(cache: Cache) -> None:
    """last_success is the newest "ok" run that was not a dry run (unless dry runs are asked for)."""
    assert cache.last_success() is None
    good = cache.start_run("full", dry_run=False)
    cache.finish_run(good, "ok", {"users_created": 1}, {}, None)
    failed = cache.start_run("incremental", dry_run=False)
    cache.finish_run(failed, "failed", {}, {}, "target unavailable")
    dry = cache.start_run("incremental", dry_run=True)
    cache.finish_run(dry, "ok", {}, {}, None)
    cache.start_run("incremental", dry_run=False)  # still running

    last = cache.last_success()
    assert last is not None
    assert (good, {"users_created": 1}) == (last.id, last.counts)
    with_dry = cache.last_success(include_dry_runs=True)
    assert with_dry is not None
    assert dry == with_dry.id


def test_a_run_whose_finish_failed_is_interrupted_later(cache: Cache) -> None:
    """If finish_run cannot write, the run stops being current, so interrupt_stale_runs catches it."""
    run_id = cache.start_run("full", dry_run=False)

    with pytest.raises(CacheError):
        cache.finish_run(run_id, "ok", {"bad": object()}, {}, None)  # type: ignore[dict-item]

    assert cache.current_run_id is None
    assert 1 == cache.interrupt_stale_runs()
    assert "interrupted" == cache.runs()[0].status
