"""Runs that die midway, and a target that throttles: the next run converges with no duplicates."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from syncd.cache import Cache
from syncd.emulator import running_emulator
from tests.conftest import TOKEN, Workspace, make_directory, writes_reached
from tests.integration.test_cli_sync import emulator_view, sync


@pytest.fixture
def slow_workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace whose emulator answers slowly, so a run can be killed in the middle."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    with running_emulator(token=TOKEN, latency=0.02) as emu:
        ws = Workspace(tmp_path, emu)
        ws.configure(rps=40)
        yield ws


def test_killed_run_resumes_without_duplicates(slow_workspace: Workspace) -> None:
    """A sync killed with SIGKILL mid-run is finished by the next run: no duplicate, nothing missing."""
    ws = slow_workspace
    ws.write(make_directory(80, {"eng": list(range(0, 80, 2)), "ops": list(range(1, 80, 2))}))
    enough = writes_reached(ws.emu, 30)
    env = {**os.environ, "SYNCD_TEST_SCIM_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--log-level", "WARNING", "sync", "--config", str(ws.config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert enough.wait(timeout=60), "the run never reached 30 writes"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    assert 0 < len(ws.emu.state.users) < 80, "the kill should land in the middle of the user phase"

    code, out = sync(ws)
    assert (0, "ok") == (code, out["status"])
    names = [u["userName"] for u in ws.emu.state.users]
    assert sorted(names) == sorted(set(names))
    assert 80 == len(names)
    view = emulator_view(ws)
    assert (40, 40) == (len(view["groups"]["eng"]), len(view["groups"]["ops"]))
    with Cache.open(ws.cache_url) as cache:
        statuses = [r.status for r in cache.runs()]
    assert ["ok", "interrupted"] == statuses


def test_pacing_keeps_throttling_rare(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Against Identity Center's 20 requests/s, the default pace lands every change with under 2% 429s."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    with running_emulator(token=TOKEN, requests_per_second=20) as emu:
        ws = Workspace(tmp_path, emu)
        ws.configure(rps=20)
        ws.write(make_directory(60, {"eng": list(range(60))}))
        code, out = sync(ws)
        assert (0, 60) == (code, len(emu.state.users))
        assert emu.stats.throttled <= 0.02 * emu.stats.total
        assert out["requests"]["target"] == emu.stats.total
