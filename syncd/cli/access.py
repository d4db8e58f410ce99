"""``syncd access``: who can reach what, for access reviews (and, with ``--since``, what changed)."""

from __future__ import annotations

import enum
import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from syncd.cli.common import ConfigOption, fail, out


class Format(enum.StrEnum):
    """How ``syncd access`` prints its rows."""

    TABLE = "table"
    JSON = "json"
    CSV = "csv"


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; write it like 2026-11-30 or 2026-11-30T09:00") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def access(
    config: ConfigOption = None,
    user: Annotated[str | None, typer.Option("--user", help="Only this person (userName).")] = None,
    group: Annotated[str | None, typer.Option("--group", help="Only access through this group.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account (name or id).")] = None,
    permission_set: Annotated[str | None, typer.Option("--permission-set", help="Only this permission set.")] = None,
    fmt: Annotated[Format, typer.Option("--format", help="table, json or csv (headers a spreadsheet takes).")] = (
        Format.TABLE
    ),
    live: Annotated[
        bool,
        typer.Option(
            "--live", help="Read Identity Center's real assignments (sso-admin) and mark what syncd did not make."
        ),
    ] = False,
    since: Annotated[
        str | None, typer.Option("--since", metavar="DATE", help="List the access gained and lost since DATE.")
    ] = None,
) -> None:
    """Who has access to which account, with which permission set, through which group and rule.

    Computed from the cache and the rules; ``--live`` reads AWS instead and shows what was
    granted outside syncd; ``--since`` lists the changes runs made. Writes nothing.
    """
    from syncd import access_report
    from syncd import config as config_module
    from syncd.errors import SyncdError
    from syncd.wiring import open_cache

    when = _since(since)
    try:
        settings = config_module.load(config)
        cache = open_cache(settings, read_only=True)
        try:
            if when is not None:
                changes = [
                    c
                    for c in access_report.changes_since(cache, when)
                    if access_report.select(
                        [c.grant], user=user, group=group, account=account, permission_set=permission_set
                    )
                ]
                _print([c.to_json() for c in changes], fmt, ("at", "run_id", "change"), ("result",))
                return
            if live:
                _print([r.to_json() for r in _live(settings, cache, user, group, account, permission_set)], fmt)
                return
            grants = access_report.select(
                access_report.effective_grants(settings, cache),
                user=user,
                group=group,
                account=account,
                permission_set=permission_set,
            )
            _print([g.to_json() for g in grants], fmt)
        finally:
            cache.close()
    except SyncdError as exc:
        raise fail(exc) from None


def _live(
    settings: Any, cache: Any, user: str | None, group: str | None, account: str | None, permission_set: str | None
) -> list[Any]:
    import boto3

    from syncd.access_report import live_assignments, matches
    from syncd.assignments.aws import AwsAccess

    aws = AwsAccess.from_session(boto3.Session(), settings.aws)
    rows = live_assignments(
        cache, aws, accounts=lambda i, name: matches(i, account) or matches(name, account) if account else True
    )
    if user is not None:
        state = cache.load()
        sid = next((s for s, u in state.users.items() if u.user_name.casefold() == user.casefold()), None)
        via = {g.display_name for gs, g in state.groups.items() if sid is not None and sid in state.members.get(gs, ())}
        rows = [r for r in rows if (r.principal_type == "USER" and matches(r.principal, user)) or r.principal in via]
    return [
        r
        for r in rows
        if (group is None or (r.principal_type == "GROUP" and matches(r.principal, group)))
        and matches(r.permission_set, permission_set)
    ]


def _print(rows: list[dict[str, Any]], fmt: Format, first: tuple[str, ...] = (), last: tuple[str, ...] = ()) -> None:
    if fmt is Format.JSON:
        print(json.dumps(rows))
        return
    from syncd.access import CSV_FIELDS

    keys = list(rows[0]) if rows else [*first, *CSV_FIELDS, *last]
    if fmt is Format.CSV:
        import csv
        import sys

        writer = csv.DictWriter(sys.stdout, fieldnames=keys, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return
    from rich.table import Table
    from rich.text import Text

    table = Table(*(k.replace("_", " ") for k in keys), title=f"{len(rows)} rows")
    for row in rows:
        table.add_row(*(Text(str(row[k])) for k in keys))  # Text: a name like "[ops]" is not markup
    out().print(table)
