"""The first run on an empty cache: a full read of Identity Center that adopts what is there."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from syncd import config
from syncd import engine as engine_module
from syncd import plan as plan_module
from syncd.cache import Cache
from syncd.changes import Change
from syncd.engine import RunOptions
from syncd.plan import Plan
from syncd.results import RunResult
from syncd.wiring import build_engine, open_cache
from tests.conftest import Workspace, make_directory
from tests.integration.test_cli_sync import sync


def _populate(ws: Workspace, users: int) -> None:
    """Identity Center already holds ``users`` of the source's users (made by hand or another tool)."""
    for i in range(users):
        ws.emu.state.add_user(
            user_name=f"user{i}@example.com",
            display_name=f"User Number{i}",
            given_name="User",
            family_name=f"Number{i}",
            email=f"user{i}@example.com",
        )


def test_first_plan_adopts_instead_of_creating(workspace: Workspace) -> None:
    """A plan on an empty cache reads Identity Center and plans adoptions, not creates, for users it holds."""
    _populate(workspace, 3)
    workspace.write(make_directory(4, {"eng": [0, 1, 2, 3]}))
    code, out = sync(workspace, "--dry-run")
    assert 0 == code
    assert (3, 1) == (out["would_change"]["users_adopted"], out["would_change"]["users_created"])


def test_first_sync_counts_adoptions_on_their_own(workspace: Workspace) -> None:
    """A first sync against a populated Identity Center reports users adopted, with no duplicate made."""
    _populate(workspace, 3)
    workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
    code, out = sync(workspace)
    assert (0, 3, 0) == (code, out["changes"]["users_adopted"], out["changes"]["users_created"])
    assert 3 == len(workspace.emu.state.users)
    code, out = sync(workspace)
    assert (0, 0) == (code, sum(out["changes"].values()))


def test_plan_does_not_create_the_cache_file(workspace: Workspace) -> None:
    """A dry run leaves no cache file behind and records no run."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    code, out = sync(workspace, "--dry-run")
    assert (0, None) == (code, out["run_id"])
    assert not (workspace.root / "syncd.db").exists()


@dataclass
class RecordingProgress:
    """A Progress that keeps what the engine told it."""

    planned_writes: int | None = None
    advanced: list[tuple[str, bool]] = field(default_factory=list)

    def planned(self, plan: Plan) -> None:
        self.planned_writes = len(plan.writes)

    def advance(self, change: Change, *, ok: bool) -> None:
        self.advanced.append((str(change.action), ok))


def _run(ws: Workspace, options: RunOptions) -> RunResult:
    settings = config.load(ws.config)
    cache = open_cache(settings)

    async def go() -> RunResult:
        async with build_engine(settings, cache) as engine:
            return await engine.run(options)

    try:
        return asyncio.run(go())
    finally:
        cache.close()


def test_progress_hears_every_planned_write(workspace: Workspace) -> None:
    """The progress hook is told the planned writes up front and each one as it lands."""
    workspace.write(make_directory(5, {"eng": [0, 1, 2], "ops": [3, 4]}))
    progress = RecordingProgress()
    result = _run(workspace, RunOptions(progress=progress))
    assert "ok" == result.status
    assert 7 == progress.planned_writes  # 5 users, 2 groups with their members inline
    assert progress.planned_writes == len(progress.advanced)
    assert all(ok for _, ok in progress.advanced)


def test_approve_hook_can_refuse_before_any_write(workspace: Workspace) -> None:
    """A run whose approve hook answers with a reason is refused, writes nothing, and says why."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    result = _run(workspace, RunOptions(approve=lambda plan, snapshot: "the operator said no"))
    assert ("refused", ["the operator said no"], 0) == (result.status, result.errors, workspace.emu.stats.writes)
    assert 0 == sum(result.counts.values())
    assert result.would_change is not None
    assert 2 == result.would_change["users_created"]


def test_a_full_resync_matches_live_objects_once(workspace: Workspace, monkeypatch: Any) -> None:
    """A full resync pairs source and live objects once: reading members, planning and access share the matches."""
    _populate(workspace, 3)
    workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
    calls: list[int] = []
    real = plan_module.match_live

    def counted(*args: Any) -> Any:
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(plan_module, "match_live", counted)
    monkeypatch.setattr(engine_module, "match_live", counted)
    code, out = sync(workspace, "--full-resync")
    assert (0, 3) == (code, out["changes"]["users_adopted"])
    assert 1 == len(calls)


def test_a_full_resync_lets_equal_live_users_text_go_before_the_cache_loads(
    workspace: Workspace, monkeypatch: Any
) -> None:
    """On a full resync, Identity Center users equal to their source users hold no text when the cache loads."""
    workspace.write(make_directory(4, {"eng": [0, 1, 2, 3]}))
    assert 0 == sync(workspace)[0]
    held: list[int] = []
    real = engine_module.share_equal_users

    def noted(live: Any, users: Any) -> None:
        real(live, users)
        held.append(sum(1 for u in live.users if u._text is not None))

    loads: list[int] = []
    real_load = Cache.load

    def load(self: Cache, **kwargs: Any) -> Any:
        if not kwargs.get("lean"):
            loads.append(len(held))
        return real_load(self, **kwargs)

    monkeypatch.setattr(engine_module, "share_equal_users", noted)
    monkeypatch.setattr(Cache, "load", load)
    code, out = sync(workspace, "--full-resync")
    assert (0, 0) == (code, sum(out["changes"].values()))
    assert loads == [1]  # the final load came after the sharing
    assert held == [0]
