"""``syncd sync`` and ``syncd plan``: one run, applied or only shown."""

from __future__ import annotations

import asyncio
import enum
import gc
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from syncd.cli.common import ConfigOption, JsonOption, err, fail, out


if TYPE_CHECKING:
    from syncd.config import Settings
    from syncd.engine import Approve
    from syncd.model import Snapshot
    from syncd.plan import Plan
    from syncd.results import RunResult


class OnlyWhat(enum.StrEnum):
    """What ``--only`` may restrict a run to."""

    ASSIGNMENTS = "assignments"


FullResync = Annotated[
    bool, typer.Option("--full-resync", help="Read Identity Center too: adopt matching objects and repair drift.")
]
Only = Annotated[
    OnlyWhat | None,
    typer.Option(
        "--only",
        help="assignments: plan and apply access only (permission sets, account and application assignments)"
        " for the groups Identity Center already holds; no identity is written.",
    ),
]
Limit = Annotated[
    int | None,
    typer.Option("--limit", metavar="N", help="Show at most N rows of the plan (default: every row).", min=1),
]


def _run(
    settings: Settings,
    *,
    full_resync: bool,
    dry_run: bool,
    allow_deletions: bool,
    approve: Approve | None = None,
    progress: bool = False,
    only: OnlyWhat | None = None,
) -> RunResult:
    from syncd.engine import RunOptions
    from syncd.errors import CacheBusy
    from syncd.leader import acquire_leadership
    from syncd.wiring import build_engine, open_cache

    if only is OnlyWhat.ASSIGNMENTS and not (settings.assignments or settings.permission_sets or settings.applications):
        from syncd.errors import ConfigError

        raise ConfigError(
            "--only assignments: the config has no [[assignments]], [[permission_sets]] or [[applications]] to apply"
        )
    cache = open_cache(settings, read_only=dry_run)
    leadership = None
    try:
        if not dry_run:
            # A one-shot sync must not race a `syncd run` on the same cache: take the same lock.
            leadership = acquire_leadership(cache)
            if not leadership.poll():
                raise CacheBusy(
                    f"another syncd is syncing with cache {cache.url} (it holds the leader lock); "
                    "wait for it, or use `syncd plan` to look without writing"
                )

        async def go() -> RunResult:
            async with build_engine(settings, cache) as engine:
                options = RunOptions(
                    full_resync=full_resync,
                    dry_run=dry_run,
                    allow_deletions=allow_deletions,
                    approve=approve,
                    only_assignments=only is OnlyWhat.ASSIGNMENTS,
                )
                if not progress:
                    return await engine.run(options)
                from syncd.progress import TerminalProgress

                with TerminalProgress(err(), lambda: engine.target.pacer.rate) as bar:
                    return await engine.run(RunOptions(**{**_fields(options), "progress": bar}))

        with _few_collections():
            return asyncio.run(go())
    finally:
        if leadership is not None:
            leadership.release()
        cache.close()


_RUN_GC_THRESHOLD = (10_000, 10, 10)
"""The collector's thresholds during a run (Python's default is 700, 10, 10): the young generation
is collected less often; the older ones as often relative to it, so cyclic garbage that outlives
a young collection (a request's, while others are in flight) is still freed during a long run."""


@contextmanager
def _few_collections() -> Iterator[None]:
    """Spend less of a run in the cyclic garbage collector (a tenth of a second at 10k users).

    A run builds hundreds of thousands of objects that live until it ends and few cycles: the
    modules and settings made before it are frozen out of the collector's scans, and the young
    generation is collected every 10,000 allocations rather than every 700. The collector is as it
    was afterwards.
    """
    threshold = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(*_RUN_GC_THRESHOLD)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


def _fields(options: Any) -> dict[str, Any]:
    return {name: getattr(options, name) for name in options.__slots__}


def _print_plan(plan: Plan, *, limit: int | None, title: str = "") -> None:
    from syncd.access_view import impact_lines
    from syncd.plan_view import render

    # Access first: losing someone's last way into an account must not hide below the diff.
    for access_line in impact_lines(plan.access):
        out().print(access_line.render())
    for line in render(plan, limit=limit, title=title):
        out().print(line)


def _print_outcome(result: RunResult) -> None:
    from syncd.report import print_result

    print_result(out(), result)


def run_json(result: RunResult) -> dict[str, Any]:
    """``sync --json``: the run's object; a dry run's also lists the member PATCHes a sync would send
    (``member_requests``, packed by the function the applier uses, so the two cannot disagree)."""
    payload = result.to_json()
    if result.dry_run:
        from syncd.members import requests_by_group

        payload["member_requests"] = [group.to_json() for group in requests_by_group(result.plan)]
    return payload


def plan_json(result: RunResult) -> dict[str, Any]:
    """``plan --json``: the run's object plus every change, with attribute diffs for updates, and
    the member PATCHes (:func:`run_json`)."""
    from syncd.saved_plan import change_json

    payload = run_json(result)
    payload["plan"] = [change_json(c) for c in result.plan]
    return payload


def plan(
    config: ConfigOption = None,
    full_resync: FullResync = False,
    as_json: JsonOption = False,
    out_file: Annotated[
        Path | None,
        typer.Option("--out", metavar="FILE", help="Save the plan, for `syncd sync --plan FILE` to apply exactly."),
    ] = None,
    detailed_exitcode: Annotated[
        bool,
        typer.Option(
            "--detailed-exitcode", help="Exit 0 when there is nothing to change, 2 when there is, 3 refused, 1 error."
        ),
    ] = False,
    limit: Limit = None,
    only: Only = None,
) -> None:
    """Show what a sync would change, as a diff, without changing anything (nothing is recorded)."""
    from syncd import config as config_module
    from syncd.errors import SyncdError

    captured: list[tuple[Plan, Snapshot]] = []

    def keep(plan_: Plan, snapshot: Snapshot) -> None:
        captured.append((plan_, snapshot))

    try:
        settings = config_module.load(config)
        from syncd.check import prove_target

        # A wrong token or URL fails here (exit 2), not as a green plan that only a sync would refute.
        asyncio.run(prove_target(settings))
        result = _run(settings, full_resync=full_resync, dry_run=True, allow_deletions=False, approve=keep, only=only)
    except SyncdError as exc:
        raise fail(exc) from None
    if as_json:
        print(json.dumps(plan_json(result)))
    else:
        _print_plan(result.plan, limit=limit)
        _print_outcome(result)
    if result.status == "ok" and out_file is not None and captured:
        from syncd.saved_plan import write

        plan_, snapshot = captured[0]
        write(out_file, plan_, snapshot, mode=result.mode, config=config)
        err().print(f"Saved the plan to {out_file}; apply exactly it with `syncd sync --plan {out_file}`.")
    if result.status != "ok":
        raise typer.Exit(result.exit_code)
    raise typer.Exit(2 if detailed_exitcode and len(result.plan) else 0)


def _show_and_confirm(limit: int | None, *, ask: bool) -> Callable[[Plan, Snapshot], str | None]:
    """On a terminal: show the plan, and (unless ``--yes``) ask before applying one that takes anything away."""
    from syncd.plan_view import TAKES_AWAY, summarise

    def show(plan_: Plan, snapshot: Snapshot) -> str | None:
        if not len(plan_):
            return None
        _print_plan(plan_, limit=limit, title="Plan")
        removals = sum(1 for c in plan_ if c.action in TAKES_AWAY)
        if not removals or not ask:
            return None
        question = f"{summarise(plan_)}. Apply it, with {removals} change(s) that delete or take access away?"
        if typer.confirm(question, default=False, err=True):
            return None
        return "not applied: declined at the prompt (nothing was changed; --yes applies without asking)"

    return show


def _chain(*checks: Approve | None) -> Approve | None:
    present = [c for c in checks if c is not None]
    if not present:
        return None

    def run_all(plan_: Plan, snapshot: Snapshot) -> str | None:
        for check in present:
            reason = check(plan_, snapshot)
            if reason:
                return reason
        return None

    return run_all


def sync(
    config: ConfigOption = None,
    full_resync: FullResync = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan only; write nothing (same as `syncd plan`).")
    ] = False,
    allow_deletions: Annotated[
        bool, typer.Option("--allow-deletions", help="Lift safety.max_deletes and max_member_removals for this run.")
    ] = False,
    saved: Annotated[
        Path | None,
        typer.Option(
            "--plan",
            metavar="FILE",
            help="Apply exactly this saved plan (`syncd plan --out FILE`); refused if the source or Identity Center"
            " moved since.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before deleting (on a terminal).")] = False,
    as_json: JsonOption = False,
    limit: Limit = None,
    only: Only = None,
) -> None:
    """Push the differences between the source and Identity Center.

    On a terminal it shows the plan first and asks before deleting anything; a progress bar
    with an estimate follows the writes.
    """
    from syncd import config as config_module
    from syncd.errors import SyncdError

    interactive = not as_json and not dry_run and sys.stdin.isatty() and out().is_terminal
    try:
        settings = config_module.load(config)
        approve = None
        if saved is not None:
            from syncd.saved_plan import SavedPlan

            saved_plan = SavedPlan.read(saved)
            full_resync = full_resync or saved_plan.mode == "full"
            approve = saved_plan.check
        result = _run(
            settings,
            full_resync=full_resync,
            dry_run=dry_run,
            allow_deletions=allow_deletions,
            approve=_chain(approve, _show_and_confirm(limit, ask=not yes) if interactive else None),
            progress=not as_json and err().is_terminal,
            only=only,
        )
    except SyncdError as exc:
        if as_json:
            print(json.dumps({"status": "failed", "dry_run": dry_run, "errors": [str(exc)]}))
        raise fail(exc) from None
    if as_json:
        print(json.dumps(run_json(result)))
    else:
        if dry_run:
            _print_plan(result.plan, limit=limit)
        _print_outcome(result)
    raise typer.Exit(result.exit_code)
