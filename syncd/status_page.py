"""The daemon's read-only status page: ``/`` and ``/runs/<id>`` on ``http.listen``.

Server-rendered HTML with no external assets and no JavaScript: the last runs with their
changes and access impact, what the next run would do, the access matrix (groups × accounts ×
permission sets syncd assigned), the SCIM token's days left, and the daemon's role. Every value
is escaped (a group named ``<script>`` is shown as text), and the Content-Security-Policy
forbids scripts anyway. Nothing from the configuration is shown except the token's expiry date,
so no secret can appear. It is served on ``http.listen`` only (127.0.0.1 by default): put it
behind a reverse proxy with authentication to share it (see the README).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from syncd.cache import Cache
from syncd.state import AccessEvent, AuditKind, RunRecord


__all__ = ["CSP", "StatusPage"]

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'none'; form-action 'none'; frame-ancestors 'none'"
"""No script, no outside resource, no form: the page is only read."""

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
h1{font-size:1.4em}h2{font-size:1.1em;margin-top:2em}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f3f3f3}.ok{color:#060}.failed,.refused{color:#a00}.interrupted{color:#a60}.muted{color:#777}
"""

_RUN_PATH = re.compile(r"/runs/(\d+)")


def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if moment else ""


def _table(headers: Iterable[str], rows: Iterable[Iterable[str]], empty: str) -> str:
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    if not body:
        return f'<p class="muted">{_e(empty)}</p>'
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _facts(rows: Iterable[tuple[str, Any]]) -> str:
    """A two-column table of named facts (names as row headers)."""
    body = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in rows)
    return f"<table><tbody>{body}</tbody></table>"


def _counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v) or "no changes"


class StatusPage:
    """Renders the pages from the cache (read when a page is asked for) and the daemon's readiness."""

    def __init__(
        self,
        cache: Cache,
        readiness: Callable[[], tuple[bool, dict[str, Any]]],
        *,
        token_expires: date | None = None,
        today: Callable[[], date] = lambda: datetime.now(UTC).date(),
    ) -> None:
        """Read ``cache``; ``readiness`` is the daemon's /readyz answer (role, last success)."""
        self.cache = cache
        self.readiness = readiness
        self.token_expires = token_expires
        self.today = today

    def __call__(self, path: str) -> tuple[int, str] | None:
        """``(status, html)`` for ``/`` and ``/runs/<id>``; None for a path that is not a page."""
        if path in ("/", "/index.html"):
            return 200, self._page("syncd", self._index())
        match = _RUN_PATH.fullmatch(path)
        if match is None:
            return None
        run = next((r for r in self.cache.runs(1000) if r.id == int(match.group(1))), None)
        if run is None:
            return 404, self._page("syncd: no such run", f"<p>No run {_e(match.group(1))}.</p>")
        return 200, self._page(f"syncd: run {run.id}", self._run(run))

    def _page(self, title: str, body: str) -> str:
        return (
            "<!doctype html><html lang=en><head><meta charset=utf-8>"
            f"<title>{_e(title)}</title><style>{_STYLE}</style></head>"
            f'<body><h1>{_e(title)}</h1><p><a href="/">status</a> · <a href="/metrics">metrics</a></p>{body}'
            "</body></html>"
        )

    def _daemon(self) -> str:
        ready, details = self.readiness()
        rows = [("Ready", "yes" if ready else "no"), *((k.replace("_", " "), v) for k, v in details.items())]
        if self.token_expires is not None:
            days = (self.token_expires - self.today()).days
            rows.append(("SCIM token", f"expires {self.token_expires.isoformat()} ({days} days left)"))
        else:
            rows.append(("SCIM token", "expiry not configured (set target.scim_token_expires)"))
        return _facts(rows)

    def _index(self) -> str:
        runs = self.cache.runs(20)
        access = {r.id: self.cache.access_changes(run_id=r.id) for r in runs}
        rows = []
        for run in runs:
            changes = access[run.id]
            gained = sum(1 for _, _, e in changes if e.action == AccessEvent.GAINED)
            lost = len(changes) - gained
            rows.append(
                (
                    f'<a href="/runs/{run.id}">{run.id}</a>',
                    _e(_when(run.started_at)),
                    _e(run.mode),
                    f'<span class="{_e(run.status)}">{_e(run.status)}</span>',
                    _e(_counts(run.counts)),
                    _e(f"{gained} gained, {lost} lost" if changes else ""),
                    _e(run.error or ""),
                )
            )
        return (
            "<h2>Daemon</h2>"
            + self._daemon()
            + "<h2>Last runs</h2>"
            + _table(("Run", "Started", "Mode", "Result", "Changes", "Access", "Error"), rows, "No run yet.")
            + "<h2>Next run</h2><p>"
            "What the next run would do is shown by <code>syncd plan</code> (a plan is not recorded, so this page"
            " cannot show it).</p>" + "<h2>Access matrix</h2>" + self._matrix()
        )

    def _matrix(self) -> str:
        cells: dict[tuple[str, str], set[str]] = {}
        accounts: dict[str, str] = {}
        for a in self.cache.assignments():
            label = a.account_name or a.account_id
            accounts[a.account_id] = label
            cells.setdefault((a.group_name or a.group, a.account_id), set()).add(
                a.permission_set_name or a.permission_set_arn.rsplit("/", 1)[-1]
            )
        apps: dict[str, set[str]] = {}
        for app in self.cache.application_assignments():
            apps.setdefault(app.group_name or app.group, set()).add(app.application_name or app.application_arn)
        groups = sorted({g for g, _ in cells} | set(apps))
        order = sorted(accounts, key=lambda i: accounts[i])
        headers = ["Group", *(f"{accounts[i]} ({i})" if accounts[i] != i else i for i in order)]
        if apps:
            headers.append("Applications")
        rows = []
        for group in groups:
            row = [_e(group), *(_e(", ".join(sorted(cells.get((group, i), ())))) for i in order)]
            if apps:
                row.append(_e(", ".join(sorted(apps.get(group, ())))))
            rows.append(row)
        return _table(headers, rows, "syncd has assigned no access.")

    def _run(self, run: RunRecord) -> str:
        facts = [
            ("Started", _when(run.started_at)),
            ("Finished", _when(run.finished_at)),
            ("Mode", run.mode),
            ("Result", run.status),
            ("Changes", _counts(run.counts)),
            ("Requests", ", ".join(f"{k} {v}" for k, v in run.requests.items())),
            ("Error", run.error or ""),
        ]
        access_rows = []
        for _, _, entry in self.cache.access_changes(run_id=run.id):
            grant = entry.after or {}
            what = grant.get("application") or f"{grant.get('permission_set', '')} on {grant.get('account', '')}"
            access_rows.append(
                (
                    _e("gained" if entry.action == AccessEvent.GAINED else "lost"),
                    _e(grant.get("user")),
                    _e(what),
                    _e(grant.get("via_group")),
                    _e(grant.get("rule")),
                    _e(grant.get("flag", "")),
                )
            )
        audit = [
            (_e(_when(at)), _e(e.action), _e(e.object_type), _e(e.source_id), _e(e.result))
            for at, e in self.cache.audit(run_id=run.id, limit=200)
            if e.object_type != AuditKind.ACCESS
        ]
        return (
            _facts(facts)
            + "<h2>Access</h2>"
            + _table(("", "Person", "Access", "Through", "Rule", "Flag"), access_rows, "No one's access changed.")
            + "<h2>Changes (the newest 200)</h2>"
            + _table(("When", "Action", "Object", "Source id", "Result"), audit, "Nothing was changed.")
        )
