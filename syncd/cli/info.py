"""``syncd check``, ``syncd run``, ``syncd status`` and ``syncd db upgrade``."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import typer

from syncd.cli.common import ConfigOption, JsonOption, fail, out


MOST_SKIPPED = 0.5
"""``check`` fails (exit 1) when more than this share of the records read were skipped."""


def check(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Read the source as a run would, prove the Identity Center token with one read, and show what was read.

    Writes nothing anywhere. Exits 1 when most records would be skipped.
    """
    from syncd import config as config_module
    from syncd.check import check_source
    from syncd.errors import SyncdError
    from syncd.report import check_tables

    try:
        settings = config_module.load(config)
        result = asyncio.run(check_source(settings))
    except SyncdError as exc:
        raise fail(exc) from None
    snapshot = result.snapshot
    read = result.users_read + result.groups_read
    mostly_skipped = bool(read) and len(snapshot.skipped) > MOST_SKIPPED * read
    if as_json:
        print(
            json.dumps(
                {
                    "source": result.source_type,
                    "requests": result.requests,
                    "users_read": result.users_read,
                    "groups_read": result.groups_read,
                    "users": len(snapshot.users),
                    "active_users": sum(1 for u in snapshot.users.values() if u.active),
                    "groups": {g.display_name: len(g.members) for g in snapshot.groups.values()},
                    "skipped": [{"kind": s.kind, "id": s.id, "reason": s.reason} for s in snapshot.skipped],
                    "target": result.target,
                }
            )
        )
    else:
        for table in check_tables(result):
            out().print(table)
        if result.target:
            out().print(f"Identity Center: {result.target}")
    if mostly_skipped:
        from syncd.cli.common import error_line

        error_line(
            f"{len(snapshot.skipped)} of {read} records read would be skipped; fix the source or the filters"
            " (the reasons are listed above)"
        )
        raise typer.Exit(1)


def run(config: ConfigOption = None) -> None:
    """Run as a daemon: sync at start and every schedule.interval; serve /healthz, /readyz and /metrics.

    SIGTERM or SIGINT: stop after the changes in flight land (exit 0); SIGHUP: run now.
    """
    from syncd import config as config_module
    from syncd import logging as syncd_logging
    from syncd.daemon import run_daemon
    from syncd.errors import SyncdError

    syncd_logging.daemon_defaults()
    try:
        settings = config_module.load(config)
        code = run_daemon(settings)
    except SyncdError as exc:
        raise fail(exc) from None
    raise typer.Exit(code)


def status(
    config: ConfigOption = None,
    as_json: JsonOption = False,
    limit: int = typer.Option(10, "--limit", metavar="N", help="How many runs to list.", min=1),
) -> None:
    """The last runs: mode, result, counts and errors (needs only the [cache] settings)."""
    from syncd import config as config_module
    from syncd.errors import SyncdError
    from syncd.grace import pending_report
    from syncd.leader import read_record
    from syncd.report import runs_table
    from syncd.wiring import open_cache

    try:
        settings = config_module.load_cache_only(config)
        cache = open_cache(settings, read_only=True)
    except SyncdError as exc:
        raise fail(exc) from None
    try:
        runs = cache.runs(limit)
        access = {r.id: _access_counts(cache, r.id) for r in runs}
        last_ok = cache.last_success()
        daemon = read_record(cache)
        pending = pending_report(cache.pending_deletions(), settings.safety.delete_after)
    finally:
        cache.close()
    live = daemon if daemon is not None and daemon["alive"] else None
    if as_json:
        print(
            json.dumps(
                {
                    "runs": [
                        {
                            "id": r.id,
                            "started_at": r.started_at.isoformat(),
                            "finished_at": r.finished_at.isoformat() if r.finished_at else None,
                            "mode": r.mode,
                            "dry_run": r.dry_run,
                            "status": r.status,
                            "changes": r.counts,
                            "requests": r.requests,
                            "error": r.error,
                            "access": access[r.id],
                        }
                        for r in runs
                    ],
                    "last_success": last_ok.finished_at.isoformat() if last_ok and last_ok.finished_at else None,
                    "leader": _leader_json(live),
                    "next_run": live.get("next_run") if live else None,
                    "next_full_resync": live.get("next_full_resync") if live else None,
                    "pending_deletion": pending,
                }
            )
        )
        return
    _print_daemon(live, daemon)
    for item in pending:  # deletes in two steps (safety.delete_after)
        out().print(
            f"Pending deletion: {item['kind']} {item['name']!r} (gone from the source since {item['gone_since']}),"
            f" deleted by the first run after {item['delete_at']}.",
            markup=False,
        )
    if not runs:
        out().print("No runs yet. Start one with `syncd sync`.")
        return
    out().print(runs_table(runs))
    changed = [
        f"run {i}: {a['gained']} gained, {a['lost']} lost" for i, a in access.items() if a["gained"] or a["lost"]
    ]
    if changed:
        out().print("Access changed in " + "; ".join(changed) + " (`syncd access --since DATE` lists who and what).")
    if last_ok and last_ok.finished_at:
        out().print(f"Last successful run finished at {last_ok.finished_at:%Y-%m-%d %H:%M:%S} UTC.")
    else:
        out().print("No run has succeeded yet.", style="yellow")


def _access_counts(cache: Any, run_id: int) -> dict[str, int]:
    """How many grants a run gave and took away (its access impact, kept in the audit trail)."""
    from syncd.state import AccessEvent

    entries = cache.access_changes(run_id=run_id)
    gained = sum(1 for _, _, e in entries if e.action == AccessEvent.GAINED)
    return {"gained": gained, "lost": len(entries) - gained}


def _leader_json(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    keys = ("id", "host", "pid", "since", "heartbeat_at", "http")
    return {k: record.get(k) for k in keys}


def _print_daemon(live: dict[str, Any] | None, last: dict[str, Any] | None) -> None:
    """The `syncd run` daemon: who leads, when it runs next; or that none is running."""
    if live is None:
        if last is not None and last.get("stopped_at"):
            out().print(f"No daemon is running (the last, {last.get('id')}, stopped at {last['stopped_at']}).")
        elif last is not None:
            out().print(f"No daemon is running: {last.get('id')} stopped sending heartbeats.", style="yellow")
        else:
            out().print("No daemon is running (start one with `syncd run`).")
        return
    out().print(f"Leader: {live.get('id')} (since {live.get('since')}, serving {live.get('http')}).")
    out().print(
        f"Next run: {live.get('next_run') or 'not scheduled'}; next full resync: {live.get('next_full_resync')}."
    )


def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the cache's migrations (``sync`` also does this on start); needs only the [cache] settings."""
    from syncd import config as config_module
    from syncd.cache import Cache
    from syncd.errors import SyncdError

    try:
        settings = config_module.load_cache_only(config)
        with Cache.open(settings.cache.url) as cache:
            before = cache.current_revision()
            cache.upgrade()
            after = cache.current_revision()
    except SyncdError as exc:
        raise fail(exc) from None
    out().print(f"cache {cache.url}: schema {before or 'empty'} → {after}")
