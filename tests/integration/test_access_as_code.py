"""Access as code in one `syncd sync`: permission sets and application assignments from the config.

Identity Center's SCIM side is the project's emulator; AWS is moto_server with the sso-admin
APIs moto lacks (applications, tags, provisioning status) added by ``tests/fakes/aws_sso.py``.
"""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from syncd.cli import app
from tests.assignments.conftest import REGION, Org
from tests.conftest import Workspace, make_directory
from tests.fakes import aws_sso


runner = CliRunner()

POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Action": ["s3:GetObject"], "Resource": "arn:aws:s3:::data/*"}],
}
SAML = "arn:aws:sso::aws:applicationProvider/custom"


def application(org: Org, name: str) -> str:
    """A customer managed SAML 2.0 application made in the console; its ARN."""
    return str(
        org.sso.create_application(InstanceArn=org.instance_arn, ApplicationProviderArn=SAML, Name=name)[
            "ApplicationArn"
        ]
    )


def write_policy(ws: Workspace, policy: dict[str, Any]) -> None:
    (ws.root / "data-read.json").write_text(json.dumps(policy, indent=2), encoding="utf-8")


def configure(
    ws: Workspace,
    org: Org,
    *,
    data_read: bool = True,
    data_read_rule: bool = True,
    app_rule: bool = True,
    extra: str = "",
) -> None:
    text = f"""
[aws]
region = "{REGION}"

[[permission_sets]]
name = "S3FullAccess"
description = "Full access to S3"
managed_policies = ["AmazonS3FullAccess"]

[[assignments]]
group = "engineers"
permission_set = "S3FullAccess"
accounts = ["{org.accounts["prod"]}"]

[[assignments]]
group = "engineers"
permission_set = "S3FullAccess"
ous = ["{org.ou_eng}"]
"""
    if data_read:
        text += """
[[permission_sets]]
name = "DataRead"
session_duration = "8h"
inline_policy = "data-read.json"
"""
    if data_read_rule:
        text += f"""
[[assignments]]
group = "analysts"
permission_set = "DataRead"
accounts = ["{org.accounts["dev"]}"]
"""
    if app_rule:
        text += """
[[applications]]
application = "Salesforce"
group = "sales-*"
"""
    ws.configure(text + extra)


def directory() -> dict[str, Any]:
    data = make_directory(4)
    data["groups"] = [
        {"id": "g-eng", "name": "engineers", "members": ["u0000"], "groups": []},
        {"id": "g-analysts", "name": "analysts", "members": ["u0001"], "groups": []},
        {"id": "g-sales", "name": "sales-emea", "members": ["u0002"], "groups": []},
        {"id": "g-ops", "name": "operations", "members": ["u0003"], "groups": []},
    ]
    return data


def cli(ws: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    result = runner.invoke(app, ["--log-level", "WARNING", *args, "--config", str(ws.config), "--json"])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def permission_sets(org: Org) -> dict[str, str]:
    """Every permission set in AWS: name → ARN."""
    found = {}
    for page in org.sso.get_paginator("list_permission_sets").paginate(InstanceArn=org.instance_arn):
        for arn in page["PermissionSets"]:
            name = org.sso.describe_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=arn)
            found[name["PermissionSet"]["Name"]] = arn
    return found


def assigned(org: Org, arn: str) -> set[tuple[str, str]]:
    """(account name, principal id) of every assignment of permission set ``arn``."""
    names = {v: k for k, v in org.accounts.items()}
    held = set()
    for account, account_id in org.accounts.items():
        pages = org.sso.get_paginator("list_account_assignments").paginate(
            InstanceArn=org.instance_arn, AccountId=account_id, PermissionSetArn=arn
        )
        held.update((names[account_id], a["PrincipalId"]) for page in pages for a in page["AccountAssignments"])
        del account
    return held


def outdated(org: Org, arn: str) -> list[str]:
    return org.sso.list_accounts_for_provisioned_permission_set(
        InstanceArn=org.instance_arn, PermissionSetArn=arn, ProvisioningStatus="LATEST_PERMISSION_SET_NOT_PROVISIONED"
    )["AccountIds"]


def app_groups(org: Org, arn: str) -> set[str]:
    return {
        a["PrincipalId"] for a in org.sso.list_application_assignments(ApplicationArn=arn)["ApplicationAssignments"]
    }


def group_id(ws: Workspace, name: str) -> str:
    group = ws.emu.state.find_group(name)
    assert group is not None
    return str(group["id"])


def synced(ws: Workspace, org: Org) -> str:
    """The Salesforce app made by hand, the standard config, and a first sync that succeeded; the app's ARN."""
    salesforce = application(org, "Salesforce")
    ws.write(directory())
    write_policy(ws, POLICY)
    configure(ws, org)
    code, out = cli(ws, "sync")
    assert 0 == code, out
    return salesforce


def test_permission_sets_are_created_provisioned_and_assigned_in_one_run(workspace: Workspace, org: Org) -> None:
    """Configured permission sets are created, filled and assigned (account, OU) in one sync; plan shows it first."""
    salesforce = application(org, "Salesforce")
    workspace.write(directory())
    write_policy(workspace, POLICY)
    configure(workspace, org)
    aws_sso.CALLS.clear()

    code, shown = cli(workspace, "plan")
    assert 0 == code, shown
    actions = [(c["action"], c["object"]) for c in shown["plan"]]
    assert ("create_permission_set", "permission set S3FullAccess") in actions
    assert ("create_permission_set", "permission set DataRead") in actions
    assert 4 == sum(a == "create_assignment" for a, _ in actions)  # prod + eng-tools + team-a, and dev
    assert ("create_application_assignment", "sales-emea → application Salesforce") in actions
    assert [] == aws_sso.writes()
    assert {"AdministratorAccess", "ReadOnly", "PowerUser"} == set(permission_sets(org))

    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert 2 == out["changes"]["permission_sets_created"]
    assert 4 == out["changes"]["assignments_created"]
    assert 1 == out["changes"]["application_assignments_created"]
    arns = permission_sets(org)
    s3, data = arns["S3FullAccess"], arns["DataRead"]
    managed = org.sso.list_managed_policies_in_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=s3)
    assert ["arn:aws:iam::aws:policy/AmazonS3FullAccess"] == [p["Arn"] for p in managed["AttachedManagedPolicies"]]
    described = org.sso.describe_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=data)["PermissionSet"]
    assert "PT8H" == described["SessionDuration"]
    inline = org.sso.get_inline_policy_for_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=data)
    assert POLICY == json.loads(inline["InlinePolicy"])
    engineers, analysts = group_id(workspace, "engineers"), group_id(workspace, "analysts")
    assert {("prod", engineers), ("eng-tools", engineers), ("team-a", engineers)} == assigned(org, s3)
    assert {("dev", analysts)} == assigned(org, data)
    assert {group_id(workspace, "sales-emea")} == app_groups(org, salesforce)

    aws_sso.CALLS.clear()
    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert [] == aws_sso.writes()


def test_a_changed_inline_policy_is_updated_and_reprovisioned(workspace: Workspace, org: Org) -> None:
    """Editing the inline policy file updates the permission set and re-provisions it to the accounts it is on."""
    synced(workspace, org)
    data = permission_sets(org)["DataRead"]
    changed = {
        **POLICY,
        "Statement": [*POLICY["Statement"], {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}],
    }
    write_policy(workspace, changed)
    aws_sso.CALLS.clear()

    code, shown = cli(workspace, "plan")
    updates = [c for c in shown["plan"] if c["action"] == "update_permission_set"]
    assert ["permission set DataRead"] == [c["object"] for c in updates]
    assert "inline_policy: changed" in updates[0]["reason"]

    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert (1, 1) == (out["changes"]["permission_sets_updated"], out["changes"]["permission_sets_provisioned"])
    assert ["put_inline_policy_to_permission_set", "provision_permission_set"] == aws_sso.writes()
    inline = org.sso.get_inline_policy_for_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=data)
    assert changed == json.loads(inline["InlinePolicy"])
    assert [] == outdated(org, data)


def test_removing_a_permission_set_deletes_only_what_syncd_created(workspace: Workspace, org: Org) -> None:
    """A syncd-made permission set leaves AWS with its assignments once both leave the config; hand-made ones stay."""
    synced(workspace, org)
    data = permission_sets(org)["DataRead"]

    configure(workspace, org, data_read=False)
    aws_sso.CALLS.clear()
    code, out = cli(workspace, "sync")
    assert (1, "failed") == (code, out["status"])
    assert "DataRead" in out["errors"][0]
    assert "analysts" in out["errors"][0]
    assert [] == aws_sso.writes()
    assert "DataRead" in permission_sets(org)

    configure(workspace, org, data_read=False, data_read_rule=False)
    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert (1, 1) == (out["changes"]["assignments_deleted"], out["changes"]["permission_sets_deleted"])
    assert "DataRead" not in permission_sets(org)
    assert set() == assigned(org, data)
    assert {"AdministratorAccess", "ReadOnly", "PowerUser", "S3FullAccess"} == set(permission_sets(org))


def test_a_hand_made_permission_set_is_never_touched(workspace: Workspace, org: Org) -> None:
    """A config naming a permission set syncd did not create fails before any write; adopt = true takes it over."""
    application(org, "Salesforce")
    workspace.write(directory())
    write_policy(workspace, POLICY)
    configure(
        workspace, org, extra='\n[[permission_sets]]\nname = "PowerUser"\nmanaged_policies = ["PowerUserAccess"]\n'
    )
    aws_sso.CALLS.clear()
    code, out = cli(workspace, "sync")
    assert (1, "failed") == (code, out["status"])
    assert "permission_sets.2.name" in out["errors"][0]
    assert "adopt = true" in out["errors"][0]
    assert [] == aws_sso.writes()
    assert 0 == workspace.emu.stats.writes

    configure(
        workspace,
        org,
        extra='\n[[permission_sets]]\nname = "PowerUser"\nmanaged_policies = ["PowerUserAccess"]\nadopt = true\n',
    )
    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    power = org.permission_sets["PowerUser"]
    managed = org.sso.list_managed_policies_in_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=power)
    assert ["arn:aws:iam::aws:policy/PowerUserAccess"] == [p["Arn"] for p in managed["AttachedManagedPolicies"]]
    # AdministratorAccess and ReadOnly, never named, are as they were made.
    for name in ("AdministratorAccess", "ReadOnly"):
        arn = org.permission_sets[name]
        listed = org.sso.list_managed_policies_in_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=arn)
        assert [] == listed["AttachedManagedPolicies"]


def test_application_assignments_follow_the_rules(workspace: Workspace, org: Org) -> None:
    """Groups matching an [[applications]] rule get the app; dropping the rule removes only syncd's assignment."""
    salesforce = synced(workspace, org)
    sales, ops = group_id(workspace, "sales-emea"), group_id(workspace, "operations")
    org.sso.create_application_assignment(ApplicationArn=salesforce, PrincipalId=ops, PrincipalType="GROUP")

    configure(workspace, org, app_rule=False)
    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert 1 == out["changes"]["application_assignments_deleted"]
    assert {ops} == app_groups(org, salesforce)
    assert sales not in app_groups(org, salesforce)


def test_an_unknown_application_fails_before_any_write(workspace: Workspace, org: Org) -> None:
    """A rule naming an application the instance does not have stops the run, naming the rule."""
    workspace.write(directory())
    write_policy(workspace, POLICY)
    configure(workspace, org)
    aws_sso.CALLS.clear()
    code, out = cli(workspace, "sync")
    assert (1, "failed") == (code, out["status"])
    assert "applications.0.application" in out["errors"][0]
    assert "Salesforce" in out["errors"][0]
    assert [] == aws_sso.writes()


def test_an_account_that_joins_an_ou_is_covered_by_the_next_run(workspace: Workspace, org: Org) -> None:
    """A new account moved into an OU named by a rule gets the OU's assignments on the next sync."""
    synced(workspace, org)
    org.add_account("new", org.ou_team)

    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert 1 == out["changes"]["assignments_created"]
    assert ("new", group_id(workspace, "engineers")) in assigned(org, permission_sets(org)["S3FullAccess"])


def test_only_assignments_writes_access_and_no_identity(workspace: Workspace, org: Org) -> None:
    """`sync --only assignments` covers a new account and writes nothing to SCIM; a new group waits for a full run."""
    synced(workspace, org)
    org.add_account("late", org.ou_eng)
    data = directory()
    data["groups"].append({"id": "g-sales2", "name": "sales-apac", "members": ["u0000"], "groups": []})
    workspace.write(data)
    scim_writes = workspace.emu.stats.writes

    code, out = cli(workspace, "sync", "--only", "assignments")
    assert (0, "ok", "assignments") == (code, out["status"], out["mode"]), out["errors"]
    assert 1 == out["changes"]["assignments_created"]
    assert 0 == out["changes"]["application_assignments_created"]
    assert scim_writes == workspace.emu.stats.writes
    assert workspace.emu.state.find_group("sales-apac") is None

    code, out = cli(workspace, "sync")
    assert (0, 1, 1) == (code, out["changes"]["groups_created"], out["changes"]["application_assignments_created"])


def test_only_assignments_without_access_rules_is_a_config_error(workspace: Workspace) -> None:
    """--only assignments on a config that defines no access exits 2 and says what is missing."""
    workspace.write(directory())
    workspace.configure()
    code, out = cli(workspace, "sync", "--only", "assignments")
    assert 2 == code
    assert "[[assignments]], [[permission_sets]] or [[applications]]" in out["errors"][0]


def test_a_config_of_permission_sets_alone_is_applied_and_cleaned_up(workspace: Workspace, org: Org) -> None:
    """[[permission_sets]] without any assignment rule are created; dropping every access table deletes them."""
    workspace.write(directory())
    one = f'[aws]\nregion = "{REGION}"\n\n[[permission_sets]]\nname = "Lonely"\nmanaged_policies = ["ReadOnlyAccess"]\n'
    workspace.configure(one)
    code, out = cli(workspace, "sync")
    assert (0, 1) == (code, out["changes"]["permission_sets_created"]), out["errors"]
    assert "Lonely" in permission_sets(org)

    workspace.configure(f'[aws]\nregion = "{REGION}"\n')
    code, out = cli(workspace, "sync")
    assert (0, 1) == (code, out["changes"]["permission_sets_deleted"]), out["errors"]
    assert "Lonely" not in permission_sets(org)


def test_a_permission_set_half_made_is_finished_by_the_next_run(workspace: Workspace, org: Org) -> None:
    """A create whose policy attach fails leaves the set recorded as syncd's; the fixed config updates it next run."""
    workspace.write(directory())
    table = f'[aws]\nregion = "{REGION}"\n\n[[permission_sets]]\nname = "Half"\nmanaged_policies = ["{{policy}}"]\n'
    workspace.configure(table.format(policy="NoSuchManagedPolicy"))
    code, out = cli(workspace, "sync")
    assert (1, "failed") == (code, out["status"])
    assert "Half" in permission_sets(org)

    workspace.configure(table.format(policy="ReadOnlyAccess"))
    code, out = cli(workspace, "sync")
    assert (0, "ok") == (code, out["status"]), out["errors"]
    assert (0, 1) == (out["changes"]["permission_sets_created"], out["changes"]["permission_sets_updated"])
    arn = permission_sets(org)["Half"]
    listed = org.sso.list_managed_policies_in_permission_set(InstanceArn=org.instance_arn, PermissionSetArn=arn)
    assert ["arn:aws:iam::aws:policy/ReadOnlyAccess"] == [p["Arn"] for p in listed["AttachedManagedPolicies"]]
