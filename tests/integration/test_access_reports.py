"""Access in people's terms: plans that say who gains or loses what, and `syncd access` reports.

Identity Center's SCIM side is the project's emulator; AWS is moto_server (with the sso-admin
APIs moto lacks added by tests/fakes/aws_sso.py).
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from typer.testing import CliRunner

from syncd.cli import app
from tests.assignments.conftest import REGION, Org
from tests.conftest import Workspace, make_directory


runner = CliRunner()


def configure(ws: Workspace, org: Org) -> None:
    ws.configure(
        f"""
[aws]
region = "{REGION}"

[[assignments]]
group = "platform-admins"
permission_set = "AdministratorAccess"
accounts = ["{org.accounts["prod"]}", "{org.accounts["dev"]}"]

[[assignments]]
group = "engineers"
permission_set = "ReadOnly"
accounts = ["{org.accounts["dev"]}"]
""",
        max_deletes="100%",
    )


def directory(admins: list[int]) -> dict[str, Any]:
    return make_directory(4, {"platform-admins": admins, "engineers": [1, 2], "marketing": [3]})


def invoke(ws: Workspace, *args: str) -> Any:
    return runner.invoke(app, ["--log-level", "WARNING", *args, "--config", str(ws.config)])


def as_json(ws: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    result = invoke(ws, *args, "--json")
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def test_a_plan_says_who_loses_administrator_access_by_name(workspace: Workspace, org: Org) -> None:
    """Removing a user from the admin group is shown as losing AdministratorAccess on both accounts, first."""
    workspace.write(directory(admins=[0, 1]))
    configure(workspace, org)
    assert 0 == as_json(workspace, "sync")[0]
    workspace.write(directory(admins=[1]))
    writes = workspace.emu.stats.writes

    shown = invoke(workspace, "plan")
    assert 0 == shown.exit_code, shown.output
    text = shown.stdout
    assert "user0@example.com loses their last access to account prod" in text
    assert "user0@example.com loses their last access to account dev" in text
    assert "user0@example.com loses AdministratorAccess on prod" in text
    assert text.index("loses their last access") < text.index("group platform-admins members")

    code, planned = as_json(workspace, "plan")
    assert 0 == code
    lost = {
        (g["user"], g["account"], g["permission_set"], g["via_group"], g["rule"]) for g in planned["access"]["lost"]
    }
    assert {
        ("user0@example.com", "prod", "AdministratorAccess", "platform-admins", "assignments.0"),
        ("user0@example.com", "dev", "AdministratorAccess", "platform-admins", "assignments.0"),
    } == lost
    assert [] == planned["access"]["gained"]
    assert writes == workspace.emu.stats.writes


def test_a_new_administrator_is_flagged(workspace: Workspace, org: Org) -> None:
    """Adding someone to the admin group flags a new administrator; an engineer who keeps dev loses no last path."""
    workspace.write(directory(admins=[0]))
    configure(workspace, org)
    assert 0 == as_json(workspace, "sync")[0]
    workspace.write(directory(admins=[0, 2]))
    code, planned = as_json(workspace, "plan")
    assert 0 == code
    flags = {(f["flag"], f["user"], f["account"]) for f in planned["access"]["flags"]}
    assert {("new_admin", "user2@example.com", "prod"), ("new_admin", "user2@example.com", "dev")} == flags
    assert "user2@example.com gains administrator access" in invoke(workspace, "plan").stdout


def test_a_run_keeps_its_access_changes_and_access_since_lists_them(workspace: Workspace, org: Org) -> None:
    """After a sync, `syncd access --since` lists what who gained or lost, in which run."""
    workspace.write(directory(admins=[0]))
    configure(workspace, org)
    code, first = as_json(workspace, "sync")
    assert 0 == code
    workspace.write(directory(admins=[]))
    code, second = as_json(workspace, "sync")
    assert (0, 2) == (code, len(second["access"]["lost"]))

    result = invoke(workspace, "access", "--since", "2000-01-01", "--format", "json")
    assert 0 == result.exit_code, result.output
    rows = json.loads(result.stdout)
    lost = [(r["change"], r["user"], r["account"], r["run_id"]) for r in rows if r["change"] == "lost"]
    assert sorted(lost) == [
        ("lost", "user0@example.com", "dev", second["run_id"]),
        ("lost", "user0@example.com", "prod", second["run_id"]),
    ]
    gained_runs = {r["run_id"] for r in rows if r["change"] == "gained"}
    assert {first["run_id"]} == gained_runs
    status = invoke(workspace, "status", "--json")
    by_run = {r["id"]: r["access"] for r in json.loads(status.stdout)["runs"]}
    assert {"gained": 0, "lost": 2} == by_run[second["run_id"]]


def test_access_for_an_account_as_csv_lists_everyone_and_through_what(workspace: Workspace, org: Org) -> None:
    """`syncd access --account dev --format csv` lists each person with access to dev, the permission set and group."""
    workspace.write(directory(admins=[0]))
    configure(workspace, org)
    assert 0 == as_json(workspace, "sync")[0]
    result = invoke(workspace, "access", "--account", "dev", "--format", "csv")
    assert 0 == result.exit_code, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert ["user", "account", "account_id", "permission_set", "application", "via_group", "rule"] == list(rows[0])
    assert {
        ("user0@example.com", "AdministratorAccess", "platform-admins"),
        ("user1@example.com", "ReadOnly", "engineers"),
        ("user2@example.com", "ReadOnly", "engineers"),
    } == {(r["user"], r["permission_set"], r["via_group"]) for r in rows}
    assert {org.accounts["dev"]} == {r["account_id"] for r in rows}


def test_access_live_shows_an_assignment_made_by_hand(workspace: Workspace, org: Org) -> None:
    """`syncd access --live` reads AWS and marks an assignment someone made by hand as not managed by syncd."""
    workspace.write(directory(admins=[0]))
    configure(workspace, org)
    assert 0 == as_json(workspace, "sync")[0]
    marketing = workspace.emu.state.find_group("marketing")
    assert marketing is not None
    org.assign_by_hand("prod", "PowerUser", str(marketing["id"]))
    result = invoke(workspace, "access", "--live", "--account", "prod", "--format", "json")
    assert 0 == result.exit_code, result.output
    rows = json.loads(result.stdout)
    by_hand = [r for r in rows if r["permission_set"] == "PowerUser"]
    assert [("marketing", "prod", False)] == [(r["principal"], r["account"], r["managed_by_syncd"]) for r in by_hand]
    admin = [r for r in rows if r["permission_set"] == "AdministratorAccess"]
    assert [("platform-admins", True)] == [(r["principal"], r["managed_by_syncd"]) for r in admin]
