"""Fixtures for the assignment tests: fake AWS credentials, a moto organisation, a cache, a run.

The organisation (moto, docs/references.md §C.3)::

    root ── prod, dev, sandbox
     └── Engineering (OU) ── eng-tools, closed (SUSPENDED)
          └── Team A (nested OU) ── team-a

and three permission sets in moto's pre-created Identity Center instance: AdministratorAccess,
ReadOnly and PowerUser. moto does not check that principals exist, so group ids are made up.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from syncd.assignments.config import AssignmentRule
from syncd.assignments.manager import AssignmentManager
from syncd.cache import Cache
from syncd.changes import Action, Change
from syncd.model import Group, Snapshot


if TYPE_CHECKING:
    from types_boto3_sso_admin.client import SSOAdminClient

REGION = "eu-west-1"


@dataclass
class Org:
    """The organisation and permission sets a test runs against."""

    session: boto3.Session
    instance_arn: str
    root: str
    ou_eng: str
    ou_team: str
    accounts: dict[str, str] = field(default_factory=dict)
    permission_sets: dict[str, str] = field(default_factory=dict)

    @property
    def sso(self) -> SSOAdminClient:
        """An sso-admin client of its own (for arranging and checking, not the one under test)."""
        return self.session.client("sso-admin", region_name=REGION)

    def assign_by_hand(self, account: str, permission_set: str, principal_id: str) -> None:
        """An assignment made outside syncd (the console, another tool)."""
        self.sso.create_account_assignment(
            InstanceArn=self.instance_arn,
            TargetId=self.accounts[account],
            TargetType="AWS_ACCOUNT",
            PermissionSetArn=self.permission_sets[permission_set],
            PrincipalType="GROUP",
            PrincipalId=principal_id,
        )

    def add_account(self, name: str, parent: str) -> str:
        """A new account, moved below ``parent`` (an OU or root id), as when one joins the organisation."""
        orgs = self.session.client("organizations", region_name=REGION)
        created = orgs.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        orgs.move_account(AccountId=created["AccountId"], SourceParentId=self.root, DestinationParentId=parent)
        self.accounts[name] = created["AccountId"]
        return str(created["AccountId"])

    def held(self) -> set[tuple[str, str, str]]:
        """Every (account name, permission set name, principal id) AWS holds."""
        found: set[tuple[str, str, str]] = set()
        for account, account_id in self.accounts.items():
            for name, arn in self.permission_sets.items():
                pages = self.sso.get_paginator("list_account_assignments").paginate(
                    InstanceArn=self.instance_arn, AccountId=account_id, PermissionSetArn=arn
                )
                for page in pages:
                    found.update((account, name, a["PrincipalId"]) for a in page["AccountAssignments"])
        return found


def build_org(session: boto3.Session) -> Org:
    """Create the organisation of this module's docstring in whatever AWS ``session`` reaches."""
    orgs = session.client("organizations", region_name=REGION)
    sso = session.client("sso-admin", region_name=REGION)
    orgs.create_organization(FeatureSet="ALL")
    root = orgs.list_roots()["Roots"][0]["Id"]
    ou_eng = orgs.create_organizational_unit(ParentId=root, Name="Engineering")["OrganizationalUnit"]["Id"]
    ou_team = orgs.create_organizational_unit(ParentId=ou_eng, Name="Team A")["OrganizationalUnit"]["Id"]
    instance_arn = sso.list_instances()["Instances"][0]["InstanceArn"]
    org = Org(session, instance_arn, root, ou_eng, ou_team)
    for name, parent in (
        ("prod", root),
        ("dev", root),
        ("sandbox", root),
        ("eng-tools", ou_eng),
        ("closed", ou_eng),
        ("team-a", ou_team),
    ):
        status = orgs.create_account(Email=f"{name}@example.com", AccountName=name)["CreateAccountStatus"]
        account_id = status["AccountId"]
        if parent != root:
            orgs.move_account(AccountId=account_id, SourceParentId=root, DestinationParentId=parent)
        org.accounts[name] = account_id
    orgs.close_account(AccountId=org.accounts["closed"])
    for name in ("AdministratorAccess", "ReadOnly", "PowerUser"):
        created = sso.create_permission_set(Name=name, InstanceArn=instance_arn)
        org.permission_sets[name] = created["PermissionSet"]["PermissionSetArn"]
    return org


GROUPS = {
    "g-platform": "aws-platform",
    "g-eng": "engineers",
    "g-sandbox": "aws-sandbox-PowerUser",
    "g-dev-ro": "aws-{dev}-ReadOnly",
    "g-marketing": "marketing",
}
"""Synced groups, source id → name (``{dev}`` becomes the dev account's id)."""

PATTERN = r"^aws-(?P<account>[\w-]+?)-(?P<permission_set>[\w+=,.@]+)$"


def rules(org: Org) -> list[AssignmentRule]:
    """An explicit rule on two accounts, an OU rule over nested OUs, and a pattern rule."""
    return [
        AssignmentRule(
            group="aws-platform",
            permission_set="AdministratorAccess",
            accounts=[org.accounts["prod"], org.accounts["dev"]],
        ),
        AssignmentRule(group="Engineers", permission_set="ReadOnly", ous=[org.ou_eng]),
        AssignmentRule(pattern=PATTERN),
    ]


def snapshot(org: Org, groups: dict[str, str] | None = None) -> Snapshot:
    """A snapshot holding ``groups`` (default: all of GROUPS)."""
    chosen = GROUPS if groups is None else groups
    return Snapshot(groups={sid: Group(sid, name.format(dev=org.accounts["dev"])) for sid, name in chosen.items()})


def targets(snap: Snapshot) -> dict[str, str]:
    """Made-up Identity Center ids for the groups of ``snap``."""
    return {sid: f"9067729b3d-{sid}" for sid in snap.groups}


@pytest.fixture
def cache(tmp_path: Path) -> Iterator[Cache]:
    """A migrated SQLite cache."""
    with Cache.open(f"sqlite:///{tmp_path / 'syncd.db'}") as opened:
        opened.upgrade()
        yield opened


class Writes:
    """Counts the sso-admin write calls a client sends (botocore's before-call event)."""

    def __init__(self, client: Any) -> None:
        self.calls: list[str] = []
        for operation in ("CreateAccountAssignment", "DeleteAccountAssignment"):
            client.meta.events.register(f"before-call.sso-admin.{operation}", self._seen)

    def _seen(self, model: Any, **_: Any) -> None:
        self.calls.append(model.name)


@dataclass
class RunResult:
    """What one simulated run planned and how each operation ended."""

    planned: list[Change]
    outcomes: list[tuple[Change, str | None]]

    def count(self, action: Action) -> int:
        """Operations of this action that succeeded."""
        return sum(1 for change, error in self.outcomes if change.action is action and error is None)


async def sync_assignments(
    manager: AssignmentManager, snap: Snapshot, cache: Cache, group_targets: dict[str, str]
) -> RunResult:
    """What the engine does with an Assigner: plan against the cache's record, apply, record each outcome."""
    planned = await manager.plan(snap, cache.assignments(), group_targets)
    outcomes: list[tuple[Change, str | None]] = []

    def on_done(change: Change, error: str | None) -> None:
        outcomes.append((change, error))
        manager.record(change, error)

    await manager.apply(planned, group_targets, on_done)
    return RunResult(planned, outcomes)
