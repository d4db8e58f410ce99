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
from syncd.errors import CacheError
from syncd.state import AuditEntry, CachedUser
from tests.conftest import TOKEN, Hold, Workspace, make_directory
from tests.integration.test_cli_sync import emulator_view, sync


def test_killed_run_resumes_without_duplicates(workspace: Workspace, hold_writes: Hold) -> None:
    """A sync killed with SIGKILL mid-run is finished by the next run: no duplicate, nothing missing."""
    ws = workspace
    ws.write(make_directory(80, {"eng": list(range(0, 80, 2)), "ops": list(range(1, 80, 2))}))
    gate = hold_writes(ws.emu, 30)  # the run is held at its 30th write while it is killed
    env = {**os.environ, "SYNCD_TEST_SCIM_TOKEN": TOKEN}
    proc = subprocess.Popen(
        [sys.executable, "-m", "syncd", "--log-level", "WARNING", "sync", "--config", str(ws.config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert gate.reached.wait(timeout=120), "the run never reached 30 writes"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=120)
        gate.release()
    assert 30 <= len(ws.emu.state.users) < 80, "the kill lands in the middle of the user phase"

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


def test_adoption_after_a_lost_answer_names_the_run_that_created_it(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A create that landed but whose answer was never recorded is adopted next run, tied to the run that sent it."""
    workspace.write(make_directory(1))
    sync(workspace)
    workspace.emu.state.add_user(user_name="user2@example.com", display_name="Hand", given_name="H", family_name="M")
    workspace.write(make_directory(3))
    recorded = Cache.put_user

    def dies_after_the_post(self: Cache, user: CachedUser, audit: AuditEntry | None = None) -> None:
        raise CacheError("the process stopped here")

    monkeypatch.setattr(Cache, "put_user", dies_after_the_post)
    code, first = sync(workspace)
    assert (1, 3) == (code, len(workspace.emu.state.users))
    monkeypatch.setattr(Cache, "put_user", recorded)
    code, out = sync(workspace)
    assert (0, "ok", 3) == (code, out["status"], len(workspace.emu.state.users)), out["errors"]
    with Cache.open(workspace.cache_url) as cache:
        adoptions = {e.source_id: e.result for _, e in cache.audit(run_id=out["run_id"]) if e.action == "adopt_user"}
        sent = [e.source_id for _, e in cache.audit(run_id=first["run_id"]) if e.result == "sent"]
    assert ["u0001", "u0002"] == sorted(sent)
    assert f"created by run {first['run_id']}" in adoptions["u0001"]
    assert "ok: adopted after 409" == adoptions["u0002"]
