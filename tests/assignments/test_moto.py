"""The assignment manager against moto's sso-admin and Organizations, recording in a real cache.

Each test plays the engine's part (tests/assignments/conftest.py ``sync_assignments``): plan
against what the cache says syncd made, apply, record each outcome.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import boto3
import pytest
from moto import mock_aws

from syncd.assignments.config import AssignmentRule, AwsConfig
from syncd.assignments.manager import AssignmentManager, build_assigner
from syncd.cache import Cache
from syncd.changes import Action
from syncd.config import Settings
from syncd.errors import AssignmentError
from tests.assignments.conftest import (
    GROUPS,
    Org,
    Writes,
    build_org,
    rules,
    snapshot,
    sync_assignments,
    targets,
)


HAND = "hand-made-group-id"


@pytest.fixture
def org(aws_env: None) -> Iterator[Org]:
    """A moto organisation (see conftest) in a fresh mock."""
    with mock_aws():
        yield build_org(boto3.Session())


def manager_for(org: Org, rule_list: list[AssignmentRule], cache: Cache) -> AssignmentManager:
    settings = Settings(
        source={"type": "file"},
        target={"scim_url": "https://scim.eu-west-1.amazonaws.com/x/scim/v2", "scim_token": "t"},
        assignments=rule_list,
    )
    manager = build_assigner(settings, cache, session=org.session)
    assert manager is not None
    return manager


def expected(org: Org, group_targets: dict[str, str]) -> set[tuple[str, str, str]]:
    return {
        ("prod", "AdministratorAccess", group_targets["g-platform"]),
        ("dev", "AdministratorAccess", group_targets["g-platform"]),
        ("eng-tools", "ReadOnly", group_targets["g-eng"]),
        ("team-a", "ReadOnly", group_targets["g-eng"]),
        ("sandbox", "PowerUser", group_targets["g-sandbox"]),
        ("dev", "ReadOnly", group_targets["g-dev-ro"]),
    }


def test_explicit_ou_and_pattern_rules_are_applied_in_one_run(org: Org, cache: Cache) -> None:
    """Two accounts, nested OUs (suspended account skipped) and a pattern: six assignments made and recorded."""
    snap = snapshot(org)
    group_targets = targets(snap)
    manager = manager_for(org, rules(org), cache)

    result = asyncio.run(sync_assignments(manager, snap, cache, group_targets))

    assert expected(org, group_targets) == org.held()
    assert (6, 6) == (result.count(Action.CREATE_ASSIGNMENT), len(result.outcomes))
    assert 6 == len(cache.assignments())
    assert {a.account_name for a in cache.assignments()} == {"prod", "dev", "eng-tools", "team-a", "sandbox"}
    audit = [entry for _, entry in cache.audit()]
    assert 6 == sum(
        1 for e in audit if (e.action, e.object_type, e.result[:2]) == ("create_assignment", "assignment", "ok")
    )


def test_the_next_run_makes_no_sso_admin_writes(org: Org, cache: Cache) -> None:
    """A second run with nothing changed plans nothing and sends no create or delete."""
    snap = snapshot(org)
    group_targets = targets(snap)
    asyncio.run(sync_assignments(manager_for(org, rules(org), cache), snap, cache, group_targets))
    again = manager_for(org, rules(org), cache)
    writes = Writes(again.aws.sso_admin)

    result = asyncio.run(sync_assignments(again, snap, cache, group_targets))

    assert ([], []) == (result.planned, writes.calls)


def test_removing_a_rule_deletes_only_what_syncd_made(org: Org, cache: Cache) -> None:
    """Dropping the explicit rule deletes its two assignments; hand-made ones on the same account stay."""
    snap = snapshot(org)
    group_targets = targets(snap)
    org.assign_by_hand("prod", "AdministratorAccess", HAND)  # a group syncd does not manage
    org.assign_by_hand("prod", "AdministratorAccess", group_targets["g-eng"])  # a synced group, given more by hand
    asyncio.run(sync_assignments(manager_for(org, rules(org), cache), snap, cache, group_targets))
    fewer = manager_for(org, rules(org)[1:], cache)
    writes = Writes(fewer.aws.sso_admin)

    result = asyncio.run(sync_assignments(fewer, snap, cache, group_targets))

    assert 2 == result.count(Action.DELETE_ASSIGNMENT)
    assert ["DeleteAccountAssignment"] * 2 == writes.calls
    held = org.held()
    assert ("prod", "AdministratorAccess", HAND) in held
    assert ("prod", "AdministratorAccess", group_targets["g-eng"]) in held
    assert not any(p == group_targets["g-platform"] and ps == "AdministratorAccess" for _, ps, p in held)
    assert 4 == len(cache.assignments())


def test_an_existing_assignment_a_rule_wants_is_never_claimed(org: Org, cache: Cache) -> None:
    """A hand-made assignment equal to a desired one is left alone, not recorded, and outlives its rule."""
    snap = snapshot(org)
    group_targets = targets(snap)
    org.assign_by_hand("eng-tools", "ReadOnly", group_targets["g-eng"])
    first = asyncio.run(sync_assignments(manager_for(org, rules(org), cache), snap, cache, group_targets))
    assert 5 == first.count(Action.CREATE_ASSIGNMENT)

    without_ou_rule = [rules(org)[0], rules(org)[2]]
    second = asyncio.run(sync_assignments(manager_for(org, without_ou_rule, cache), snap, cache, group_targets))

    deleted = {c.assignment.account_name for c, _ in second.outcomes if c.assignment is not None}
    assert {"team-a"} == deleted
    assert ("eng-tools", "ReadOnly", group_targets["g-eng"]) in org.held()


def test_a_deleted_group_loses_the_assignments_syncd_made(org: Org, cache: Cache) -> None:
    """A group gone from the source (still known to the cache) has its assignments deleted and forgotten."""
    snap = snapshot(org)
    group_targets = targets(snap)
    asyncio.run(sync_assignments(manager_for(org, rules(org), cache), snap, cache, group_targets))
    remaining = snapshot(org, {k: v for k, v in GROUPS.items() if k != "g-eng"})

    result = asyncio.run(sync_assignments(manager_for(org, rules(org), cache), remaining, cache, group_targets))

    assert {"its group is gone from the source"} == {c.reason for c in result.planned}
    assert 2 == result.count(Action.DELETE_ASSIGNMENT)
    assert not any(p == group_targets["g-eng"] for _, _, p in org.held())
    assert not any(a.group == "g-eng" for a in cache.assignments())


def test_an_assignment_deleted_by_hand_is_made_again(org: Org, cache: Cache) -> None:
    """Drift: a syncd-made assignment deleted outside syncd is created again on the next run."""
    snap = snapshot(org)
    group_targets = targets(snap)
    asyncio.run(sync_assignments(manager_for(org, rules(org), cache), snap, cache, group_targets))
    org.sso.delete_account_assignment(
        InstanceArn=org.instance_arn,
        TargetId=org.accounts["sandbox"],
        TargetType="AWS_ACCOUNT",
        PermissionSetArn=org.permission_sets["PowerUser"],
        PrincipalType="GROUP",
        PrincipalId=group_targets["g-sandbox"],
    )

    result = asyncio.run(sync_assignments(manager_for(org, rules(org), cache), snap, cache, group_targets))

    assert [("sandbox", None)] == [(c.assignment.account_name, e) for c, e in result.outcomes if c.assignment]
    assert "drift" in result.planned[0].reason
    assert expected(org, group_targets) == org.held()


def test_an_unknown_permission_set_fails_before_any_write(org: Org, cache: Cache) -> None:
    """A rule naming a permission set that does not exist raises, naming it, and nothing is written."""
    bad = [*rules(org), AssignmentRule(group="marketing", permission_set="AdminAccess", all=True)]
    manager = manager_for(org, bad, cache)
    writes = Writes(manager.aws.sso_admin)

    with pytest.raises(AssignmentError) as caught:
        asyncio.run(sync_assignments(manager, snapshot(org), cache, targets(snapshot(org))))

    assert "assignments.3.permission_set: permission set 'AdminAccess' does not exist" in str(caught.value)
    assert [] == writes.calls
    assert set() == org.held()
    assert set() == cache.assignments()


def test_an_unknown_ou_and_account_are_named(org: Org, cache: Cache) -> None:
    """An OU or account id that the organisation does not have is an error naming each."""
    bad = [
        AssignmentRule(group="engineers", permission_set="ReadOnly", ous=["ou-zzzz-zzzzzzzz"]),
        AssignmentRule(group="engineers", permission_set="ReadOnly", accounts=["999999999999"]),
    ]

    with pytest.raises(AssignmentError) as caught:
        asyncio.run(manager_for(org, bad, cache).plan(snapshot(org), set(), targets(snapshot(org))))

    assert "assignments.0.ous: OU ou-zzzz-zzzzzzzz does not exist" in str(caught.value)
    assert "assignments.1.accounts: account 999999999999 does not exist" in str(caught.value)


def test_the_instance_is_found_when_not_configured(org: Org) -> None:
    """Without [aws] instance_arn, list_instances finds moto's one instance and its identity store."""
    settings_aws = AwsConfig()
    from syncd.assignments.aws import AwsAccess

    access = AwsAccess.from_session(org.session, settings_aws)

    instance = access.instance()
    assert org.instance_arn == instance.arn
    assert instance.identity_store_id.startswith("d-")


def test_a_configured_instance_that_does_not_exist_is_an_error(org: Org) -> None:
    """An instance_arn that list_instances does not show is an error naming the setting."""
    from syncd.assignments.aws import AwsAccess

    access = AwsAccess.from_session(
        org.session, AwsConfig(instance_arn="arn:aws:sso:::instance/ssoins-0000000000000000")
    )

    with pytest.raises(AssignmentError, match=r"matching \[aws\] instance_arn"):
        access.instance()


def test_no_rules_means_no_manager(aws_env: None, cache: Cache) -> None:
    """build_assigner returns None when the configuration has no [[assignments]]."""
    settings = Settings(
        source={"type": "file"},
        target={"scim_url": "https://scim.eu-west-1.amazonaws.com/x/scim/v2", "scim_token": "t"},
    )

    assert build_assigner(settings, cache) is None


def test_no_region_is_a_clear_error(aws_env: None, monkeypatch: pytest.MonkeyPatch, cache: Cache) -> None:
    """With no region anywhere, building the manager says to set [aws] region."""
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    settings = Settings(
        source={"type": "file"},
        target={"scim_url": "https://scim.eu-west-1.amazonaws.com/x/scim/v2", "scim_token": "t"},
        assignments=[AssignmentRule(group="g", permission_set="P", all=True)],
    )

    with pytest.raises(AssignmentError, match=r"set \[aws\] region"):
        build_assigner(settings, cache)
