"""Identities and account assignments in one `syncd sync`: emulator for SCIM, moto_server for AWS."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from syncd.cli import app
from tests.assignments.conftest import PATTERN, REGION, Org
from tests.conftest import Workspace, make_directory
from tests.integration.test_two_step_deletes import age


runner = CliRunner()


def configure(
    ws: Workspace,
    org: Org,
    *,
    explicit_rule: bool = True,
    permission_set: str = "AdministratorAccess",
    max_deletes: str = "10%",
) -> None:
    rules = f"""
[aws]
region = "{REGION}"

[[assignments]]
group = "engineers"
permission_set = "ReadOnly"
ous = ["{org.ou_eng}"]

[[assignments]]
pattern = '{PATTERN}'
"""
    if explicit_rule:
        rules += f"""
[[assignments]]
group = "aws-platform"
permission_set = "{permission_set}"
accounts = ["{org.accounts["prod"]}", "{org.accounts["dev"]}"]
"""
    ws.configure(rules, max_deletes=max_deletes)


def directory(org: Org) -> dict[str, Any]:
    data = make_directory(4)
    names = ["aws-platform", "engineers", "aws-sandbox-PowerUser", f"aws-{org.accounts['dev']}-ReadOnly", "marketing"]
    data["groups"] = [
        {"id": f"g{i}", "name": name, "members": [f"u{i % 4:04d}"], "groups": []} for i, name in enumerate(names)
    ]
    return data


def sync(ws: Workspace) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["--log-level", "WARNING", "sync", "--config", str(ws.config), "--json"])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def principal(ws: Workspace, name: str) -> str:
    group = ws.emu.state.find_group(name)
    assert group is not None
    return str(group["id"])


def test_rules_apply_with_identities_then_rest(workspace: Workspace, org: Org) -> None:
    """Explicit, nested-OU and pattern rules land in the same run as the groups; the next run changes nothing."""
    workspace.write(directory(org))
    configure(workspace, org)
    shown = runner.invoke(app, ["--log-level", "WARNING", "plan", "--config", str(workspace.config), "--json"])
    planned = [c["object"] for c in json.loads(shown.stdout)["plan"] if c["action"] == "create_assignment"]
    assert 6 == len(planned)
    assert "aws-platform → AdministratorAccess @ prod" in " ".join(planned)
    assert (0, set()) == (workspace.emu.stats.writes, org.held())
    code, out = sync(workspace)
    assert (0, "ok") == (code, out["status"]), out["errors"]
    platform, engineers = principal(workspace, "aws-platform"), principal(workspace, "engineers")
    sandbox = principal(workspace, "aws-sandbox-PowerUser")
    dev_ro = principal(workspace, f"aws-{org.accounts['dev']}-ReadOnly")
    assert {
        ("prod", "AdministratorAccess", platform),
        ("dev", "AdministratorAccess", platform),
        ("eng-tools", "ReadOnly", engineers),
        ("team-a", "ReadOnly", engineers),
        ("sandbox", "PowerUser", sandbox),
        ("dev", "ReadOnly", dev_ro),
    } == org.held()
    assert (5, 6) == (out["changes"]["groups_created"], out["changes"]["assignments_created"])

    code, out = sync(workspace)
    assert (0, 0, 0) == (code, out["changes"]["assignments_created"], out["changes"]["assignments_deleted"])
    assert 6 == len(org.held())


def test_removing_a_rule_deletes_only_what_syncd_made(workspace: Workspace, org: Org) -> None:
    """Dropping the explicit rule deletes its two assignments; a hand-made one on the same account stays."""
    workspace.write(directory(org))
    configure(workspace, org)
    assert 0 == sync(workspace)[0]
    marketing = principal(workspace, "marketing")
    org.assign_by_hand("prod", "AdministratorAccess", marketing)
    configure(workspace, org, explicit_rule=False, max_deletes="50%")
    code, out = sync(workspace)
    assert (0, 2) == (code, out["changes"]["assignments_deleted"])
    held = org.held()
    assert ("prod", "AdministratorAccess", marketing) in held
    assert not any(p == principal(workspace, "aws-platform") for _, _, p in held)


def test_unknown_permission_set_fails_before_any_write(workspace: Workspace, org: Org) -> None:
    """A rule naming a permission set that does not exist fails the run, naming it, with nothing written."""
    workspace.write(directory(org))
    configure(workspace, org, permission_set="NoSuchSet")
    code, out = sync(workspace)
    assert (1, "failed") == (code, out["status"])
    assert "NoSuchSet" in out["errors"][0]
    assert (0, set()) == (workspace.emu.stats.writes, org.held())


def test_losing_too_many_assignments_is_refused(workspace: Workspace, org: Org) -> None:
    """Dropping a rule that would delete 2 of the 6 assignments syncd made passes 10%: refused, exit 3, none deleted."""
    workspace.write(directory(org))
    configure(workspace, org)
    assert 0 == sync(workspace)[0]
    configure(workspace, org, explicit_rule=False)
    code, out = sync(workspace)
    assert (3, "refused") == (code, out["status"])
    assert "2 of 6 account and application assignments syncd made would be deleted" in out["errors"][0]
    assert 6 == len(org.held())


def test_a_group_pending_deletion_keeps_its_assignments(workspace: Workspace, org: Org) -> None:
    """A group gone from the source keeps its account assignments through delete_after; they go with the group."""
    data = directory(org)
    workspace.write(data)
    configure(workspace, org)
    assert 0 == sync(workspace)[0]
    platform = principal(workspace, "aws-platform")
    workspace.write({**data, "groups": [g for g in data["groups"] if g["name"] != "aws-platform"]})
    code, out = sync(workspace)
    assert (0, 0, 0) == (code, out["changes"]["assignments_deleted"], out["changes"]["groups_deleted"]), out["errors"]
    assert 2 == sum(1 for *_, p in org.held() if p == platform)
    age(workspace, "groups")
    code, out = sync(workspace)
    assert (0, 2, 1) == (code, out["changes"]["assignments_deleted"], out["changes"]["groups_deleted"]), out["errors"]
    assert not any(p == platform for *_, p in org.held())
