"""Two `syncd run` replicas on one PostgreSQL cache: one syncs, the other stands by and takes over."""

from __future__ import annotations

import itertools
import signal
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from syncd.cache import Cache
from syncd.leader import read_record
from tests.conftest import Workspace
from tests.daemon.conftest import Proc, free_port, metric, probe, runs, schedule, wait_for


INTERVAL = 3.0


@pytest.mark.postgres
def test_one_replica_syncs_and_the_other_takes_over_when_it_dies(
    workspace: Workspace,
    directory: Callable[..., dict[str, Any]],
    spawn: Callable[..., Proc],
    pg_cache_url: str,
) -> None:
    """Only one of two replicas is leader and syncs; after kill -9 the other leads and syncs within one interval."""
    workspace.cache_url = pg_cache_url
    workspace.write(directory(6, {"eng": [0, 1, 2]}))
    config = workspace.configure(schedule(interval=f"{INTERVAL:g}s"))
    ports = [free_port(), free_port()]
    replicas = [spawn(config, SYNCD_HTTP__LISTEN=f"127.0.0.1:{port}") for port in ports]

    def leaders() -> list[float | None]:
        return [metric(port, "syncd_leader") for port in ports]

    def both_serving() -> list[float] | None:
        values = leaders()
        return [v for v in values if v is not None] if None not in values else None

    roles = wait_for(both_serving, what="both replicas to serve")
    assert [0.0, 1.0] == sorted(roles)
    lead = roles.index(1.0)
    leader, standby = replicas[lead], replicas[1 - lead]
    leader_port, standby_port = ports[lead], ports[1 - lead]
    wait_for(lambda: (metric(leader_port, 'syncd_runs_total{status="ok"}') or 0) >= 1, what="the leader's first run")
    assert 0 == metric(standby_port, 'syncd_runs_total{status="ok"}'), "the standby must not sync"
    standby_ready = probe(standby_port, "/readyz")
    assert standby_ready is not None
    assert (200, "standby") == (standby_ready.status_code, standby_ready.json()["role"])
    assert [1.0, 0.0] == [metric(leader_port, "syncd_leader"), metric(standby_port, "syncd_leader")]

    before = len(runs(pg_cache_url))
    killed_at = datetime.now(UTC)
    leader.signal(signal.SIGKILL)
    leader.wait()
    wait_for(lambda: metric(standby_port, "syncd_leader") == 1, what="the standby to lead")
    wait_for(
        lambda: (metric(standby_port, 'syncd_runs_total{status="ok"}') or 0) >= 1, what="the new leader's first run"
    )
    # Within one interval, by construction rather than by the clock: the standby tries the lock
    # every heartbeat (at most half the interval), and its first run as leader starts at once,
    # not on its own schedule.
    with Cache.open(pg_cache_url) as cache:
        record = read_record(cache)
    assert record is not None
    assert standby.pid == record["pid"]
    assert record["heartbeat_s"] <= INTERVAL / 2
    acquired, requested = standby.logged("leader.acquired"), standby.logged("run.requested")
    assert acquired is not None
    assert requested is not None
    assert "became leader" == requested["why"]
    assert acquired["timestamp"] <= requested["timestamp"]

    history = runs(pg_cache_url)
    assert len(history) > before
    taken_over = [r for r in history if r.started_at >= killed_at]
    assert taken_over
    assert "ok" == taken_over[0].status
    assert all(r.status != "running" for r in history if r.started_at < killed_at), "stale runs are closed"
    for earlier, later in itertools.pairwise(history):
        assert earlier.finished_at is not None
        assert earlier.finished_at <= later.started_at, f"runs {earlier.id} and {later.id} overlap"
    names = [u["userName"] for u in workspace.emu.state.users]
    assert 6 == len(names) == len(set(names))

    standby.signal(signal.SIGTERM)
    assert 0 == standby.wait()
