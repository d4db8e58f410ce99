"""No configured secret leaks: every output of successful, failing and killed runs is scanned for each one.

The SCIM token is read from a file ending in a newline and the Okta token from a variable ending
in one (as ``echo > file`` and Kubernetes secrets leave them). Every command logs JSON at DEBUG;
what is scanned: stdout (``--json`` included) and stderr of each command and of a ``syncd run``
process killed mid-run, its ``/metrics`` mid-run and after a run, the SQLite cache's bytes
(database and WAL) and every row of every table of a PostgreSQL cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from syncd import config as config_module
from syncd import logging as syncd_logging
from syncd.cache import Cache
from syncd.cli import app
from syncd.emulator import RunningEmulator, running_emulator
from syncd.engine import RunOptions
from syncd.results import RunResult
from syncd.wiring import build_engine
from tests.conftest import TOKEN, Hold, Workspace, make_directory
from tests.daemon.conftest import PATIENCE, Proc, free_port, metric, probe, wait_for
from tests.fakes.okta import FakeOkta
from tests.fakes.serve import serve
from tests.pg import throwaway_database


BIG = {"users": 10_000, "groups": 10_000, "group-users": 10_000, "token": 1000, "other": 1000}


@dataclass
class World:
    """The emulator, the fake Okta org, the secrets and everything the runs printed."""

    root: Path
    emu: RunningEmulator
    okta: FakeOkta
    scim_token: str
    okta_token: str
    token_file: Path
    seen: list[tuple[str, bytes]] = field(default_factory=list)
    users: int = 0

    def config(self, cache_url: str, *, name: str = "syncd.toml", scim_url: str | None = None, token: str = "") -> Path:
        """A config reading Okta into the emulator; ``token`` replaces the SCIM token reference."""
        path = self.root / name
        path.write_text(
            f"""
[source]
type = "okta"
[source.okta]
url = "{self.okta.url}"
token = "env:SYNCD_LEAK_OKTA_TOKEN"

[target]
scim_url = "{scim_url or self.emu.url}"
scim_token = "{token or "file:" + str(self.token_file)}"
requests_per_second = 1000

[cache]
url = "{cache_url}"

[schedule]
interval = "1h"

[http]
listen = "127.0.0.1:{free_port()}"
""",
            encoding="utf-8",
        )
        return path

    def env(self) -> dict[str, str]:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
        environment["SYNCD_LEAK_OKTA_TOKEN"] = self.okta_token + "\n"
        return environment

    def cli(self, config: Path, *args: str) -> tuple[int, dict[str, Any] | None, str]:
        """``syncd --log-json --log-level DEBUG <args> --config <config>`` in this process; keep what it printed.

        In-process so that retries skip their waits (the suite's stamina test mode); the daemon
        below is a real process.
        """
        result = CliRunner(env={"SYNCD_LEAK_OKTA_TOKEN": self.okta_token + "\n"}).invoke(
            app, ["--log-json", "--log-level", "DEBUG", *args, "--config", str(config)]
        )
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        self.seen += [(f"stdout of {args}", result.stdout_bytes), (f"stderr of {args}", result.stderr_bytes)]
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        return result.exit_code, json.loads(lines[-1]) if lines else None, result.stderr

    def daemon(self, config: Path) -> Proc:
        """``syncd run`` (JSON logs to a file, read after it ends)."""
        return Proc(config, self.root / f"daemon-{len(self.seen)}.log", self.env())

    def scrape(self, port: int) -> None:
        response = probe(port, "/metrics")
        assert response is not None
        assert response.status_code == 200
        self.seen.append((f"/metrics on {port}", response.content))

    def change(self) -> None:
        """A new user in the synced group, so the next run writes."""
        self.okta.advance(300)
        self.users += 1
        user = self.okta.add_user(f"person{self.users}@example.com", firstName="P", lastName=str(self.users))
        self.okta.add_member(self.group, user)

    @property
    def group(self) -> str:
        return next(gid for gid, g in self.okta.groups.items() if g.profile["name"] == "aws-engineers")

    def leaks(self, secret: str) -> list[str]:
        needle = secret.encode()
        return [where for where, data in self.seen if needle in data]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """Fresh random secrets (a hit can only be a leak), the emulator and a fake Okta org with three users."""
    scim_token = f"scim-{secrets.token_urlsafe(24)}"
    okta_token = f"00T{secrets.token_urlsafe(24)}"
    token_file = tmp_path / "scim_token"
    token_file.write_text(scim_token + "\n", encoding="utf-8")
    with running_emulator(token=scim_token) as emu, serve() as served:
        okta = FakeOkta(url=served.url, token=okta_token, limits=BIG)
        served.handler = okta.handler
        okta.add_group("aws-engineers")
        w = World(tmp_path, emu, okta, scim_token, okta_token, token_file)
        for _ in range(3):
            w.change()
        yield w


def test_no_secret_appears_in_any_output_cache_or_metrics(world: World, hold_writes: Hold) -> None:
    """Tokens ending in a newline work, and across ok, failing and killed runs neither token is printed or stored."""
    w = world
    cache_url = f"sqlite:///{w.root / 'syncd.db'}"
    config = w.config(cache_url)

    code, out, _ = w.cli(config, "sync", "--json")
    assert (0, "ok") == (code, out and out["status"]), "a token with a trailing newline works"
    assert 3 == len(w.emu.state.users)
    assert 0 == w.cli(config, "plan", "--json")[0]
    assert 0 == w.cli(config, "status", "--json")[0]

    # Identity Center refuses the token (revoked in the console) while there is something to write.
    w.change()
    w.emu.app.rotate_token("another-token-entirely")
    code, out, _ = w.cli(config, "sync", "--json")
    assert (4, "failed") == (code, out and out["status"])
    assert "target.scim_token" in " ".join(out["errors"] if out else [])
    w.emu.app.rotate_token(w.scim_token)

    # Okta refuses its token.
    w.okta.token = "00T-some-other-token"
    assert 4 == w.cli(config, "sync", "--json")[0]
    w.okta.token = w.okta_token

    # Identity Center cannot be reached at all: the transport's own exception text is involved.
    unreachable = w.config(cache_url, name="unreachable.toml", scim_url=f"http://127.0.0.1:{free_port()}/scim/v2/")
    w.change()
    code, out, _ = w.cli(unreachable, "sync", "--json")
    assert (5, "failed") == (code, out and out["status"])

    # The daemon: a run that lands, /metrics, then a run killed with SIGKILL mid-way.
    w.change()
    proc = w.daemon(config)
    try:
        port = int(config.read_text().split('listen = "127.0.0.1:')[1].split('"')[0])
        wait_for(lambda: (metric(port, 'syncd_runs_total{status="ok"}') or 0) >= 1, what="the daemon's run")
        w.scrape(port)
        w.change()
        held = hold_writes(w.emu, w.emu.stats.writes + 1)
        proc.signal(signal.SIGHUP)
        assert held.reached.wait(PATIENCE), "the second run never wrote"
        w.scrape(port)
        proc.signal(signal.SIGKILL)
        proc.wait()
        held.release()
    finally:
        proc.kill()
    w.seen.append(("daemon stderr", proc.log.read_bytes()))
    code, out, _ = w.cli(config, "sync", "--json")
    assert (0, "ok") == (code, out and out["status"]), "the run after the kill finishes the work"

    # Secrets that are refused at load: exit 2 naming the key, the value never echoed.
    inner = "scim-first-part-1a2b3c\nscim-second-part-4d5e6f"
    (w.root / "inner").write_text(inner + "\n", encoding="utf-8")
    code, _, stderr = w.cli(w.config(cache_url, name="inner.toml", token=f"file:{w.root / 'inner'}"), "sync")
    assert 2 == code
    assert "target.scim_token" in stderr
    (w.root / "accented").write_text("scim-café-7g8h9i\n", encoding="utf-8")
    code, _, stderr = w.cli(w.config(cache_url, name="accented.toml", token=f"file:{w.root / 'accented'}"), "sync")
    assert 2 == code
    assert "target.scim_token" in stderr
    assert "Traceback" not in stderr

    for suffix in ("", "-wal"):
        path = w.root / f"syncd.db{suffix}"
        if path.exists():
            w.seen.append((path.name, path.read_bytes()))
    assert w.leaks(w.scim_token) == [] == w.leaks(w.okta_token)
    for part in (*inner.split("\n"), "scim-café-7g8h9i"):
        assert [] == w.leaks(part), part
    assert w.seen, "something was scanned"
    w.seen.append(("the token file itself", w.token_file.read_bytes()))
    assert ["the token file itself"] == w.leaks(w.scim_token), "the scan finds a secret where there is one"


@pytest.mark.postgres
def test_no_secret_reaches_a_postgresql_cache(world: World) -> None:
    """With a PostgreSQL cache, no row of any table holds a token after ok and failing runs."""
    w = world
    with throwaway_database("syncd_test_leaks_") as url:
        config = w.config(url)
        assert 0 == w.cli(config, "sync", "--json")[0]
        w.change()
        w.emu.app.rotate_token("another-token-entirely")
        assert 4 == w.cli(config, "sync", "--json")[0]
        w.emu.app.rotate_token(w.scim_token)
        w.okta.token = "00T-some-other-token"
        assert 4 == w.cli(config, "sync", "--json")[0]
        engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        try:
            with engine.connect() as connection:
                tables = sa.inspect(connection).get_table_names()
                for table in tables:
                    rows = connection.exec_driver_sql(f'SELECT * FROM "{table}"').all()
                    w.seen.append((f"table {table}", repr(rows).encode()))
        finally:
            engine.dispose()
    assert {"runs", "audit", "users"} <= {where.removeprefix("table ") for where, _ in w.seen}
    assert w.leaks(w.scim_token) == [] == w.leaks(w.okta_token)


class _HeaderQuotingTransport(httpx2.AsyncBaseTransport):
    """A transport failing the way h11 does on a bad header: its message quotes the header value."""

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        raise httpx2.LocalProtocolError(f"Illegal header value {request.headers['authorization'].encode()!r}")


def test_a_transport_error_quoting_the_token_is_scrubbed_everywhere(
    workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    """When the HTTP library's own error quotes the Authorization header, errors, runs.error and logs show ***."""
    workspace.write(make_directory(2))
    settings = config_module.load(workspace.config)
    syncd_logging.configure("DEBUG", json=True)

    async def go() -> RunResult:
        with Cache.open(workspace.cache_url) as cache:
            cache.upgrade()
            async with build_engine(settings, cache, target_transport=_HeaderQuotingTransport()) as engine:
                return await engine.run(RunOptions())

    result = asyncio.run(go())
    assert "failed" == result.status
    assert "Illegal header value b'Bearer ***'" in " ".join(result.errors)
    with Cache.open(workspace.cache_url) as cache:
        recorded = cache.runs(1)[0].error or ""
    assert "Bearer ***" in recorded
    logged = capsys.readouterr().err
    assert "Bearer ***" in logged
    for text in (" ".join(result.errors), recorded, logged):
        assert TOKEN not in text
