"""What a person reads after a run: the plan as a table and a one-screen summary (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from syncd.check import CheckResult
from syncd.engine import RunResult
from syncd.plan import Action, Change, Plan
from syncd.state import RunRecord


_STYLE = {
    Action.CREATE_USER: "green",
    Action.CREATE_GROUP: "green",
    Action.ADD_MEMBERS: "green",
    Action.UPDATE_USER: "yellow",
    Action.UPDATE_GROUP: "yellow",
    Action.ADOPT_USER: "cyan",
    Action.ADOPT_GROUP: "cyan",
    Action.DEACTIVATE_USER: "magenta",
    Action.REMOVE_MEMBERS: "red",
    Action.DELETE_USER: "bold red",
    Action.DELETE_GROUP: "bold red",
    Action.FORGET_USER: "dim",
    Action.FORGET_GROUP: "dim",
}


def _detail(change: Change) -> str:
    if change.action in (Action.ADD_MEMBERS, Action.REMOVE_MEMBERS):
        return f"{len(change.members)} member(s)"
    if change.action is Action.CREATE_GROUP and change.members:
        return f"with {len(change.members)} member(s) inline"
    return change.reason


def plan_table(plan: Plan, *, limit: int = 200) -> Table:
    """The plan, one row per change (member batches as one row each)."""
    table = Table(title=f"Plan: {len(plan.writes)} write(s) to Identity Center", show_lines=False)
    table.add_column("#", justify="right", style="dim")
    table.add_column("action")
    table.add_column("object")
    table.add_column("detail")
    for index, change in enumerate(plan.changes[:limit], start=1):
        style = _STYLE.get(change.action, "")
        table.add_row(str(index), f"[{style}]{change.action}[/]", change.label(), _detail(change))
    if len(plan.changes) > limit:
        table.add_row("…", f"{len(plan.changes) - limit} more", "", "")
    return table


def summary(result: RunResult) -> Table:
    """Counts, requests and outcome of a run."""
    verb = "would change" if result.would_change is not None else "changed"
    counts = result.would_change if result.would_change is not None else result.counts
    table = Table(
        title=f"Run {result.run_id or ''}: {result.status} ({result.mode}{', dry run' if result.dry_run else ''})"
    )
    table.add_column(verb)
    table.add_column("count", justify="right")
    for key, value in counts.items():
        if value:
            table.add_row(key.replace("_", " "), str(value))
    table.add_row("[dim]requests to the source[/]", str(result.requests.get("source", 0)))
    table.add_row("[dim]requests to Identity Center[/]", str(result.requests.get("target", 0)))
    table.add_row("[dim]records skipped[/]", str(len(result.skipped)))
    table.add_row("[dim]seconds[/]", f"{result.duration_s:.1f}")
    return table


def print_result(console: Console, result: RunResult, *, show_plan: bool) -> None:
    """The plan (when asked), the summary, and every error and skipped record."""
    if show_plan:
        console.print(plan_table(result.plan))
    console.print(summary(result))
    for skip in result.skipped[:50]:
        console.print(f"[yellow]skipped {skip.kind} {skip.id}:[/] {skip.reason}")
    for error in result.errors:
        console.print(f"[bold red]error:[/] {error}")


def runs_table(runs: list[RunRecord]) -> Table:
    """The last runs, newest first, for ``syncd status``."""
    table = Table(title="Last runs")
    for column in ("id", "started (UTC)", "mode", "status", "changes", "requests", "error"):
        table.add_column(column)
    for run in runs:
        changes = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in run.counts.items() if v) or "none"
        requests = f"source {run.requests.get('source', 0)}, target {run.requests.get('target', 0)}"
        table.add_row(
            str(run.id),
            run.started_at.strftime("%Y-%m-%d %H:%M:%S"),
            run.mode + (" (dry run)" if run.dry_run else ""),
            run.status,
            changes,
            requests,
            (run.error or "")[:120],
        )
    return table


def check_tables(result: CheckResult, *, limit: int = 50) -> list[Table]:
    """``syncd check``: counts, the synced groups with their member counts, and skipped records."""
    snapshot = result.snapshot
    counts = Table(title=f"Read from the {result.source_type} source ({result.requests} requests)")
    counts.add_column("")
    counts.add_column("read", justify="right")
    counts.add_column("to sync", justify="right")
    active = sum(1 for u in snapshot.users.values() if u.active)
    counts.add_row("users", str(result.users_read), f"{len(snapshot.users)} ({active} active)")
    counts.add_row("groups", str(result.groups_read), str(len(snapshot.groups)))
    counts.add_row("memberships", "", str(sum(len(g.members) for g in snapshot.groups.values())))
    counts.add_row("skipped records", "", str(len(snapshot.skipped)))

    groups = Table(title="Groups to sync (largest first)")
    groups.add_column("group")
    groups.add_column("members", justify="right")
    ranked = sorted(snapshot.groups.values(), key=lambda g: (-len(g.members), g.display_name))
    for group in ranked[:limit]:
        groups.add_row(group.display_name, str(len(group.members)))
    if len(ranked) > limit:
        groups.add_row(f"… {len(ranked) - limit} more", "")

    skipped = Table(title="Skipped records")
    skipped.add_column("kind")
    skipped.add_column("id")
    skipped.add_column("reason")
    for skip in snapshot.skipped[:limit]:
        skipped.add_row(skip.kind, skip.id, skip.reason)
    return [counts, groups, skipped] if snapshot.skipped else [counts, groups]
