"""What a person reads after a run: a one-screen summary, ``status``'s runs and ``check``'s reading (rich).

The plan itself is drawn by :mod:`syncd.plan_view`. Text from outside (names, reasons, errors) goes
in as :class:`~rich.text.Text`, never as markup, so ``[source]`` in a message stays on screen.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text


if TYPE_CHECKING:
    from syncd.check import CheckResult
    from syncd.results import RunResult
    from syncd.state import RunRecord


def summary(result: RunResult) -> Table:
    """Counts, requests and outcome of a run (what it would change, for a plan or a refused run)."""
    applied = result.would_change is None
    counts = result.counts if applied else (result.would_change or {})
    if result.dry_run:
        title = f"Plan ({result.mode}): {result.status}"
    else:
        title = f"Run {result.run_id or ''}: {result.status} ({result.mode})"
    table = Table(title=title)
    table.add_column("changed" if applied else "would change")
    table.add_column("count", justify="right")
    for key, value in counts.items():
        if value:
            table.add_row(key.replace("_", " "), str(value))
    table.add_row(Text("requests to the source", style="dim"), str(result.requests.get("source", 0)))
    table.add_row(Text("requests to Identity Center", style="dim"), str(result.requests.get("target", 0)))
    table.add_row(Text("records skipped", style="dim"), str(len(result.skipped)))
    table.add_row(Text("seconds", style="dim"), f"{result.duration_s:.1f}")
    return table


def print_result(console: Console, result: RunResult) -> None:
    """The summary, then every skipped record and every error (never read as markup)."""
    console.print(summary(result))
    for skip in result.skipped:
        console.print(Text(f"skipped {skip.kind} {skip.id}: ", style="yellow") + Text(skip.reason))
    for error in result.errors:
        console.print(Text("error: ", style="bold red") + Text(error))


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
            Text((run.error or "")[:120]),
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
        groups.add_row(Text(group.display_name), str(len(group.members)))
    if len(ranked) > limit:
        groups.add_row(f"… {len(ranked) - limit} more", "")

    skipped = Table(title="Skipped records")
    skipped.add_column("kind")
    skipped.add_column("id")
    skipped.add_column("reason")
    for skip in snapshot.skipped[:limit]:
        skipped.add_row(skip.kind, Text(skip.id), Text(skip.reason))
    return [counts, groups, skipped] if snapshot.skipped else [counts, groups]
