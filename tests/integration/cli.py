"""What the CLI tests share: run `syncd sync --json`, and read what the emulator holds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from syncd.cli import app
from syncd.emulator import RunningEmulator


runner = CliRunner()


def sync(config: Path, *args: str) -> tuple[int, dict[str, Any]]:
    """Run `syncd sync --json` on ``config``: its exit code and the JSON summary it printed."""
    result = runner.invoke(app, ["--log-level", "WARNING", "sync", "--config", str(config), "--json", *args])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def idc_view(emu: RunningEmulator) -> tuple[dict[str, tuple[str, bool]], dict[str, frozenset[str]]]:
    """Identity Center's users by externalId (userName, active) and groups by name (member externalIds)."""
    by_id = {u["id"]: u["externalId"] for u in emu.state.users}
    users = {u["externalId"]: (u["userName"], u["active"]) for u in emu.state.users}
    groups = {g["displayName"]: frozenset(by_id[m] for m in emu.state.members(g["id"])) for g in emu.state.groups}
    return users, groups
