"""`syncd --help` and a command's `--help` load only the CLI: not the engine, the cache, nor any connector."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


HEAVY = (
    "syncd.engine",
    "syncd.wiring",
    "syncd.applier",
    "syncd.config",
    "syncd.cache",
    "syncd.target",
    "syncd.assignments",
    "connectors",
    "sqlalchemy",
    "alembic",
    "boto3",
    "botocore",
    "httpx2",
    "scim2_client",
    "scim2_models",
    "apscheduler",
    "prometheus_client",
)
"""Modules (and packages, with everything under them) that only a running command needs."""

_WRAPPER = """
import contextlib, io, json, runpy, sys
sys.argv = ["syncd", *json.loads(sys.argv[1])]
shown = io.StringIO()
with contextlib.redirect_stdout(shown):
    try:
        runpy.run_module("syncd", run_name="__main__")
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "help": shown.getvalue(), "modules": sorted(sys.modules)}))
"""


def _help(*args: str) -> tuple[int, str, list[str]]:
    """Run ``python -m syncd <args>`` in a fresh interpreter; its exit code, what it printed, and what it imported."""
    done = subprocess.run([sys.executable, "-c", _WRAPPER, json.dumps(list(args))], capture_output=True, text=True)
    answer = json.loads(done.stdout.splitlines()[-1])
    return answer["code"], answer["help"], answer["modules"]


def _heavy(modules: list[str]) -> list[str]:
    return [m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY)]


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        (("--help",), "Commands:"),
        (("sync", "--help"), "--full-resync"),
        (("plan", "-h"), "--detailed-exitcode"),
        (("run", "--help"), "daemon"),
    ],
)
def test_help_imports_no_engine_cache_or_connector(args: tuple[str, ...], shown: str) -> None:
    """Help, of syncd and of a command, prints without the engine, SQLAlchemy, boto3, httpx2 or a connector."""
    code, text, modules = _help(*args)
    assert (0, True) == (code, shown in text)
    assert [] == _heavy(modules)
    assert "syncd.cli" in modules  # the wrapper did run syncd's CLI


def test_a_command_that_runs_does_import_past_the_cli() -> None:
    """The check above can fail: `syncd check` (refused here: no config) loads the config and the connector seam."""
    code, _, modules = _help("check", "--config", "/nonexistent/syncd.toml")
    assert 2 == code
    assert {"syncd.config", "connectors.base"} <= set(_heavy(modules))
