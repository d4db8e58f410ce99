"""The ``syncd`` command.

Exit codes: 0 converged (or plan shown), 1 run failed, 2 configuration or usage error,
3 refused by the safety guard.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from syncd import config as config_module
from syncd import logging as syncd_logging
from syncd.errors import SyncdError
from syncd.report import print_result, runs_table


app = typer.Typer(
    name="syncd",
    help="Sync an identity provider into AWS IAM Identity Center, safely and with the fewest API calls.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="The cache database.", no_args_is_help=True)
app.add_typer(db_app, name="db")

out = Console(soft_wrap=False)
err = Console(stderr=True)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="The TOML config file (else $SYNCD_CONFIG, else ./syncd.toml).", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout instead of tables.")]


@app.callback()
def _main(
    log_level: Annotated[str, typer.Option("--log-level", help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
    log_json: Annotated[
        bool | None,
        typer.Option("--log-json/--log-console", help="Log format (default: JSON unless stderr is a terminal)."),
    ] = None,
) -> None:
    """Logs go to stderr; results to stdout."""
    syncd_logging.configure(log_level, json=log_json)


def _fail(exc: SyncdError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False)
    return typer.Exit(exc.exit_code)


def _run_sync(path: Path | None, *, full_resync: bool, dry_run: bool, allow_deletions: bool) -> Any:
    from syncd.app import build_engine, open_cache
    from syncd.engine import RunOptions
    from syncd.errors import CacheBusy
    from syncd.leader import acquire_leadership

    settings = config_module.load(path)
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

        async def go() -> Any:
            async with build_engine(settings, cache) as engine:
                return await engine.run(
                    RunOptions(full_resync=full_resync, dry_run=dry_run, allow_deletions=allow_deletions)
                )

        return asyncio.run(go())
    finally:
        if leadership is not None:
            leadership.release()
        cache.close()


@app.command()
def sync(
    config: ConfigOption = None,
    full_resync: Annotated[
        bool, typer.Option("--full-resync", help="Read Identity Center too: adopt matching objects and repair drift.")
    ] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Plan only; write nothing.")] = False,
    allow_deletions: Annotated[
        bool, typer.Option("--allow-deletions", help="Lift safety.max_deletes and max_member_removals for this run.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Push the differences between the source and Identity Center."""
    try:
        result = _run_sync(config, full_resync=full_resync, dry_run=dry_run, allow_deletions=allow_deletions)
    except SyncdError as exc:
        if as_json:
            print(json.dumps({"status": "failed", "dry_run": dry_run, "errors": [str(exc)]}))
        raise _fail(exc) from None
    if as_json:
        print(json.dumps(result.to_json()))
    else:
        print_result(out, result, show_plan=dry_run)
    raise typer.Exit(result.exit_code)


@app.command()
def plan(
    config: ConfigOption = None,
    full_resync: Annotated[
        bool, typer.Option("--full-resync", help="Plan a full resync (reads Identity Center).")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Show what a sync would change, without changing anything."""
    try:
        result = _run_sync(config, full_resync=full_resync, dry_run=True, allow_deletions=False)
    except SyncdError as exc:
        raise _fail(exc) from None
    if as_json:
        payload = result.to_json()
        payload["plan"] = [
            {
                "action": str(c.action),
                "object": c.label(),
                "source_id": c.source_id,
                "target_id": c.target_id,
                "members": len(c.members),
                "reason": c.reason,
            }
            for c in result.plan
        ]
        print(json.dumps(payload))
    else:
        print_result(out, result, show_plan=True)
    raise typer.Exit(0 if result.status in ("ok", "refused") else 1)


@app.command()
def run(config: ConfigOption = None) -> None:
    """Run as a daemon: sync at start and every [schedule] interval; serve /healthz, /readyz and /metrics.

    SIGTERM or SIGINT: stop after the changes in flight land (exit 0); SIGHUP: run now.
    """
    from syncd.daemon import run_daemon

    try:
        settings = config_module.load(config)
        code = run_daemon(settings)
    except SyncdError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@app.command()
def status(config: ConfigOption = None, as_json: JsonOption = False, limit: int = 10) -> None:
    """The last runs: mode, result, counts and errors."""
    from syncd.app import open_cache

    try:
        settings = config_module.load(config)
        cache = open_cache(settings)
    except SyncdError as exc:
        raise _fail(exc) from None
    from syncd.leader import read_record

    try:
        runs = cache.runs(limit)
        last_ok = cache.last_success()
        daemon = read_record(cache)
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
                        }
                        for r in runs
                    ],
                    "last_success": last_ok.finished_at.isoformat() if last_ok and last_ok.finished_at else None,
                    "leader": _leader_json(live),
                    "next_run": live.get("next_run") if live else None,
                    "next_full_resync": live.get("next_full_resync") if live else None,
                }
            )
        )
        return
    _print_daemon(live, daemon)
    if not runs:
        out.print("No runs yet. Start one with `syncd sync`.")
        return
    out.print(runs_table(runs))
    if last_ok and last_ok.finished_at:
        out.print(f"Last successful run finished at {last_ok.finished_at:%Y-%m-%d %H:%M:%S} UTC.")
    else:
        out.print("[yellow]No run has succeeded yet.[/]")


def _leader_json(record: dict[str, Any] | None) -> dict[str, Any] | None:
    if record is None:
        return None
    keys = ("id", "host", "pid", "since", "heartbeat_at", "http")
    return {k: record.get(k) for k in keys}


def _print_daemon(live: dict[str, Any] | None, last: dict[str, Any] | None) -> None:
    """The `syncd run` daemon: who leads, when it runs next; or that none is running."""
    if live is None:
        if last is not None and last.get("stopped_at"):
            out.print(f"No daemon is running (the last, {last.get('id')}, stopped at {last['stopped_at']}).")
        elif last is not None:
            out.print(f"[yellow]No daemon is running: {last.get('id')} stopped sending heartbeats.[/]")
        else:
            out.print("No daemon is running (start one with `syncd run`).")
        return
    out.print(f"Leader: {live.get('id')} (since {live.get('since')}, serving {live.get('http')}).")
    out.print(f"Next run: {live.get('next_run') or 'not scheduled'}; next full resync: {live.get('next_full_resync')}.")


@app.command()
def check(config: ConfigOption = None, as_json: JsonOption = False) -> None:
    """Read the source as a run would and show what was read; writes nothing anywhere."""
    from syncd.check import check_source
    from syncd.report import check_tables

    try:
        settings = config_module.load(config)
        result = asyncio.run(check_source(settings))
    except SyncdError as exc:
        raise _fail(exc) from None
    snapshot = result.snapshot
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
                }
            )
        )
        return
    for table in check_tables(result):
        out.print(table)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOption = None) -> None:
    """Apply the cache's migrations (``sync`` also does this on start)."""
    from syncd.cache import Cache

    try:
        settings = config_module.load(config)
        with Cache.open(settings.cache.url) as cache:
            before = cache.current_revision()
            cache.upgrade()
            after = cache.current_revision()
    except SyncdError as exc:
        raise _fail(exc) from None
    out.print(f"cache schema: {before or 'empty'} → {after}")


@app.command()
def emulator(
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    token: Annotated[
        str, typer.Option(help="Bearer token clients must send (env:NAME and file:PATH work).")
    ] = "env:SYNCD_EMULATOR_TOKEN",  # noqa: S107 - names a variable; it is not a token
    requests_per_second: Annotated[
        float | None, typer.Option("--requests-per-second", help="Throttle like Identity Center (20); default off.")
    ] = None,
    latency: Annotated[float, typer.Option(help="Seconds added to each answer.")] = 0.0,
) -> None:
    """Serve a local Identity Center SCIM endpoint, to try a config without AWS."""
    from syncd.emulator import serve
    from syncd.secrets import resolve

    try:
        secret = resolve(token)
    except ValueError as exc:
        err.print(f"[bold red]error:[/] --token: {exc}")
        raise typer.Exit(2) from None
    serve(host=host, port=port, token=secret, requests_per_second=requests_per_second, latency=latency)


@app.command()
def demo(
    workdir: Annotated[
        Path | None, typer.Option("--dir", help="Where to keep the demo's files (default: a new temporary folder).")
    ] = None,
) -> None:
    """Try syncd with nothing but this package: a local emulator and a sample directory."""
    from syncd.demo import run_demo

    if logging.getLogger().level < logging.ERROR:
        # The demo tells its own story on stdout (skipped records included); log lines would drown it.
        syncd_logging.configure("ERROR", json=False)
    raise typer.Exit(run_demo(out, workdir))


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SyncdError as exc:  # pragma: no cover - commands catch their own
        err.print(f"[bold red]error:[/] {exc}")
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
