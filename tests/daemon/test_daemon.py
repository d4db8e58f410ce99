"""The daemon in a thread of the test process: schedule, overlap, on-demand runs, full resyncs, stopping."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from syncd.cache import Cache
from syncd.cli import app
from syncd.leader import read_record
from tests.conftest import Hold, Workspace
from tests.daemon.conftest import PATIENCE, ThreadDaemon, probe, runs, schedule, wait_for
from tests.integration.test_cli_sync import sync


Start = Callable[[Path], ThreadDaemon]


def test_it_syncs_at_start_and_then_on_each_interval(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """The first run starts at once and the next ones follow every interval, never sooner; a source change lands."""
    workspace.write(directory(3, {"eng": [0, 1, 2]}))
    before_start = datetime.now(UTC)
    daemon = thread_daemon(workspace.configure(schedule(interval="1s")))
    wait_for(lambda: len(workspace.emu.state.users) == 3, what="the first run to create 3 users")
    workspace.write(directory(4, {"eng": [0, 1, 2, 3]}))
    wait_for(
        lambda: any(r.status == "ok" and r.counts["users_created"] == 1 for r in runs(workspace.cache_url)),
        what="a later run to pick up the new user",
    )
    assert 0 == daemon.stop()
    assert 4 == len(workspace.emu.state.users)
    done = runs(workspace.cache_url)
    assert len(done) >= 2
    assert all(r.status == "ok" for r in done[:-1]), [(r.status, r.error) for r in done]
    # The schedule fires at start, start + 1 s, start + 2 s, ...; a run never starts before its
    # time (one that falls due during another is skipped), so the k-th run starts k seconds or
    # more after the daemon did. How much later depends on the machine's load: not checked.
    early = [
        (k, (r.started_at - before_start).total_seconds())
        for k, r in enumerate(done)
        if r.started_at < before_start + k * timedelta(seconds=1)
    ]
    assert not early, f"runs started before their interval came: {early}"


def test_the_first_run_is_incremental_when_a_full_resync_is_recent(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """After a recent successful full resync the start run is incremental; with none, it is a full resync."""
    workspace.write(directory(2))
    assert 0 == sync(workspace, "--full-resync")[0]
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
    wait_for(lambda: len(runs(workspace.cache_url)) == 2, what="the start run")
    daemon.stop()
    assert ["full", "incremental"] == [r.mode for r in runs(workspace.cache_url)]


def test_a_full_resync_comes_at_its_own_time(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """A full resync falls due on full_resync_every, not on the next interval: the run is pulled forward."""
    workspace.write(directory(2))
    daemon = thread_daemon(workspace.configure(schedule(interval="1h", full_resync_every="1s")))
    # The interval is an hour: a second run within the test's patience was pulled forward.
    wait_for(lambda: len(runs(workspace.cache_url)) >= 2, what="the second full resync")
    daemon.stop()
    first, second = runs(workspace.cache_url)[:2]
    assert ("full", "full") == (first.mode, second.mode)  # the first: no full resync had succeeded yet
    assert second.started_at - first.started_at >= timedelta(seconds=1), "not before full_resync_every"


def test_a_run_due_while_one_is_going_is_skipped_and_counted(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start, hold_writes: Hold
) -> None:
    """Runs never overlap: one asked for mid-run is skipped (syncd_runs_skipped_total), not queued."""
    workspace.write(directory(20))
    gate = hold_writes(workspace.emu, 5)  # the run is held at its 5th write until the skip is seen
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
    assert gate.reached.wait(PATIENCE), "the first run never got going"
    daemon.daemon.trigger()
    skipped = wait_for(lambda: _skips(daemon), what="the skip to be counted")
    assert 1 == skipped
    assert ["running"] == [r.status for r in runs(workspace.cache_url)]
    gate.release()
    wait_for(lambda: runs(workspace.cache_url)[-1].status != "running", what="the run to end")
    # Not queued: what `syncd status` shows as the next run is an interval away.
    wait_for(lambda: _next_run(workspace) > datetime.now(UTC) + timedelta(minutes=30), what="the next run published")
    assert 1 == len(runs(workspace.cache_url)), "the skipped run must not have been queued"
    daemon.daemon.trigger()  # the run has ended: a run starts at once
    wait_for(lambda: len(runs(workspace.cache_url)) == 2, what="the triggered run")
    daemon.stop()
    first, second = runs(workspace.cache_url)
    assert "ok" == first.status
    assert first.finished_at is not None
    assert first.finished_at <= second.started_at
    assert 1 == _skips(daemon)


def test_a_run_asked_for_as_one_ends_is_started_not_skipped(
    workspace: Workspace,
    directory: Callable[..., dict[str, Any]],
    thread_daemon: Start,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A run asked for after the last one ended, while its job is still returning, starts then; none is skipped."""
    workspace.write(directory(2))
    daemon = ThreadDaemon(workspace.configure(schedule(interval="1h")))
    in_tail, go_on = threading.Event(), threading.Event()
    observe = daemon.daemon.metrics.observe

    def held_observe(*args: Any, **kwargs: Any) -> None:  # runs after the run ended, before its job returns
        observe(*args, **kwargs)
        if not in_tail.is_set():
            in_tail.set()
            go_on.wait(PATIENCE)

    monkeypatch.setattr(daemon.daemon.metrics, "observe", held_observe)
    daemon.start()
    try:
        assert in_tail.wait(PATIENCE), "the first run never ended"
        assert "ok" == runs(workspace.cache_url)[0].status
        daemon.daemon.trigger()
        wait_for(lambda: "maximum number of running instances" in caplog.text, what="the scheduler to refuse")
        go_on.set()
        wait_for(lambda: len(runs(workspace.cache_url)) == 2, what="the run asked for")
    finally:
        go_on.set()
        daemon.stop()
    assert 0 == _skips(daemon)


def test_a_revoked_token_fails_the_next_run_though_nothing_changed(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """A token revoked with nothing to change: the next run fails after one request, saying to fix target.scim_token."""
    workspace.write(directory(2))
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
    wait_for(lambda: [r.status for r in runs(workspace.cache_url)] == ["ok"], what="the first run")
    workspace.emu.app.rotate_token("a-new-token-from-the-console")
    daemon.daemon.trigger()
    wait_for(lambda: len(runs(workspace.cache_url)) == 2 and runs(workspace.cache_url)[-1].finished_at, what="run 2")
    daemon.stop()
    second = runs(workspace.cache_url)[-1]
    assert ("failed", 1) == (second.status, second.requests["target"])
    assert "fix target.scim_token" in (second.error or "")


def test_a_plan_beside_a_running_sync_leaves_its_run_running(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start, hold_writes: Hold
) -> None:
    """`syncd plan` while the daemon's run is going neither marks that run interrupted nor records a run."""
    workspace.write(directory(20))
    gate = hold_writes(workspace.emu, 3)
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
    assert gate.reached.wait(PATIENCE), "the run never got going"
    planned = CliRunner().invoke(app, ["--log-level", "WARNING", "plan", "--config", str(workspace.config)])
    assert 0 == planned.exit_code, planned.output
    assert ["running"] == [r.status for r in runs(workspace.cache_url)], "only the lock's holder closes runs"
    gate.release()
    wait_for(lambda: runs(workspace.cache_url)[-1].status != "running", what="the run to end")
    daemon.stop()
    assert ["ok"] == [r.status for r in runs(workspace.cache_url)]


def _next_run(workspace: Workspace) -> datetime:
    with Cache.open(workspace.cache_url) as cache:
        record = read_record(cache)
    return (
        datetime.fromisoformat(record["next_run"])
        if record and record["next_run"]
        else datetime.min.replace(tzinfo=UTC)
    )


def _skips(daemon: ThreadDaemon) -> float:
    return sum(
        daemon.daemon.metrics.registry.get_sample_value("syncd_runs_skipped_total", {"mode": m}) or 0
        for m in ("incremental", "full")
    )


def test_stopping_mid_run_lets_changes_land_and_records_interrupted(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start, hold_writes: Hold
) -> None:
    """stop() mid-run: writes in flight finish and are recorded, the run ends interrupted, serve() returns 0."""
    workspace.write(directory(80))
    gate = hold_writes(workspace.emu, 20)
    with capture_logs() as events:
        daemon = thread_daemon(workspace.configure(schedule(interval="1h")))
        assert gate.reached.wait(PATIENCE), "the run never got going"
        daemon.daemon.stop()
        wait_for(lambda: any(e["event"] == "run.stop_requested" for e in events), what="the run to be told to stop")
        gate.release()  # the writes in flight land now, after the stop
        assert 0 == daemon.join()
    assert ["interrupted"] == [r.status for r in runs(workspace.cache_url)]
    with Cache.open(workspace.cache_url) as cache:
        cached = {u.target_id for u in cache.load().users.values()}
    created = {u["id"] for u in workspace.emu.state.users}
    assert 20 <= len(created) < 80
    assert created == cached, "every user Identity Center holds is in the cache: nothing in flight was lost"


def test_readiness_and_the_leader_record(
    workspace: Workspace, directory: Callable[..., dict[str, Any]], thread_daemon: Start
) -> None:
    """/readyz turns 200 after a successful run; the leader's record names it and its next run."""
    workspace.write(directory(2))
    daemon = thread_daemon(workspace.configure(schedule(interval="1h")))

    def ready_answer() -> httpx2.Response | None:
        response = probe(daemon.port, "/readyz")
        return response if response is not None and response.status_code == 200 else None

    ready = wait_for(ready_answer, what="/readyz to be 200")
    assert "leader" == ready.json()["role"]
    with Cache.open(workspace.cache_url) as cache:
        record = read_record(cache)
    assert record is not None
    assert record["alive"]
    assert record["id"] == daemon.daemon.identity
    assert record["next_run"] is not None
    daemon.stop()
    with Cache.open(workspace.cache_url) as cache:
        stopped = read_record(cache)
    assert stopped is not None
    assert not stopped["alive"]
    assert stopped["stopped_at"]
