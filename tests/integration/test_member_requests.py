"""`--json` lists the member PATCHes a run will send, and the run then sends exactly those."""

from __future__ import annotations

import json
from typing import Any

import pytest
from typer.testing import CliRunner

from syncd.cli import app
from tests.conftest import Workspace, make_directory
from tests.integration.cli import sync


runner = CliRunner()


def _plan_json(workspace: Workspace, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["--log-level", "WARNING", *args, "--config", str(workspace.config), "--json"])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    document: dict[str, Any] = json.loads(lines[-1])
    return document


def _listed(document: dict[str, Any]) -> dict[str, list[tuple[list[str], list[str]]]]:
    """The listed requests by group source id, each as (user source ids added, removed)."""
    return {
        group["group"]: [(request["add"], request["remove"]) for request in group["requests"]]
        for group in document["member_requests"]
    }


class _Recorder:
    """The member PATCHes the emulator answers, by group externalId, in the order they came."""

    def __init__(self, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
        self.state = workspace.emu.state
        self.seen: list[tuple[str, Any]] = []
        real = self.state.patch_group

        def recording(group_id: str, body: Any) -> None:
            real(group_id, body)  # only a PATCH that was answered counts
            self.seen.append((group_id, body))

        monkeypatch.setattr(self.state, "patch_group", recording)

    def received(self) -> dict[str, list[tuple[list[str], list[str]]]]:
        source = {u["id"]: u["externalId"] for u in self.state.users}
        group_source = {g["id"]: g["externalId"] for g in self.state.groups}
        by_group: dict[str, list[tuple[list[str], list[str]]]] = {}
        for group_id, body in self.seen:
            add: list[str] = []
            remove: list[str] = []
            for op in body["Operations"]:
                if not str(op.get("path", "")).startswith("members"):
                    continue  # a rename, not a member change
                into = add if op["op"].lower() == "add" else remove
                if "value" in op:
                    into.extend(source[m["value"]] for m in op["value"])
                else:  # members[value eq "id"]
                    into.append(source[op["path"].split('"')[1]])
            if add or remove:
                by_group.setdefault(group_source[group_id], []).append((add, remove))
        self.seen.clear()
        return by_group


def test_the_listed_member_requests_are_the_ones_sent(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`plan --json` and `sync --dry-run --json` list each group's member PATCHes; the sync then sends exactly those."""
    recorder = _Recorder(workspace, monkeypatch)
    ids = [f"u{i:04d}" for i in range(400)]
    # First run: groups are created with 100 members inline; the rest follow in PATCHes.
    workspace.write(make_directory(400, {"all": list(range(230)), "ops": list(range(40)), "few": [1, 2]}))
    planned = _plan_json(workspace, "plan")
    assert {"g-all": [(ids[100:200], []), (ids[200:230], [])]} == _listed(planned)
    assert 0 == sync(workspace.config)[0]
    assert _listed(planned) == recorder.received()

    # Then "all" gains 130 and loses 15: the removes ride in the room of its last add PATCH;
    # "ops" only loses 5 (a PATCH once the adds have landed); "few" gains one.
    workspace.write(make_directory(400, {"all": list(range(15, 360)), "ops": list(range(5, 40)), "few": [1, 2, 3]}))
    dry = _plan_json(workspace, "sync", "--dry-run")
    planned = _plan_json(workspace, "plan")
    assert {
        "g-all": [(ids[230:330], []), (ids[330:360], ids[0:15])],
        "g-ops": [([], ids[0:5])],
        "g-few": [([ids[3]], [])],
    } == _listed(planned)
    assert _listed(dry) == _listed(planned)
    shown = {g["group"]: (g["name"], g["adds"], g["removes"], g["request_count"]) for g in planned["member_requests"]}
    assert {"g-all": ("all", 130, 15, 2), "g-ops": ("ops", 0, 5, 1), "g-few": ("few", 1, 0, 1)} == shown
    assert 0 == sync(workspace.config)[0]
    assert _listed(planned) == recorder.received()
