"""Rules × groups × the AWS directory → desired assignments, and errors naming what does not exist."""

from __future__ import annotations

import pytest

from syncd.assignments.config import AssignmentRule
from syncd.assignments.resolve import Account, Directory, resolve
from syncd.errors import AssignmentError
from syncd.model import Assignment, Group


INSTANCE = "arn:aws:sso:::instance/ssoins-1234567890abcdef"
ADMIN = f"{INSTANCE}/ps-aaaaaaaaaaaaaaaa"
READ = f"{INSTANCE}/ps-bbbbbbbbbbbbbbbb"
POWER = f"{INSTANCE}/ps-cccccccccccccccc"
PROD, DEV, TOOLS, TEAM, OLD = "111111111111", "222222222222", "333333333333", "444444444444", "555555555555"
OU_ENG = "ou-root-engineer"

DIRECTORY = Directory(
    INSTANCE,
    permission_sets={ADMIN: "AdministratorAccess", READ: "ReadOnly", POWER: "PowerUser"},
    accounts={
        PROD: Account(PROD, "prod"),
        DEV: Account(DEV, "dev"),
        TOOLS: Account(TOOLS, "eng-tools"),
        TEAM: Account(TEAM, "team-a"),
        OLD: Account(OLD, "old", "SUSPENDED"),
    },
    ous={OU_ENG: frozenset({TOOLS, TEAM, OLD})},
)

PLATFORM = Group("g-platform", "aws-platform")
ENGINEERS = Group("g-eng", "Engineers")
PATTERN_BY_ID = Group("g-p1", f"aws-{DEV}-ReadOnly")
PATTERN_BY_NAME = Group("g-p2", "aws-prod-PowerUser")
OTHER = Group("g-other", "marketing")
GROUPS = [PLATFORM, ENGINEERS, PATTERN_BY_ID, PATTERN_BY_NAME, OTHER]
PATTERN = r"^aws-(?P<account>[\w-]+)-(?P<permission_set>[\w+=,.@-]+)$"


def keys(desired: dict[Assignment, str]) -> set[tuple[str, str, str]]:
    return {(a.group, a.account_id, a.permission_set_arn) for a in desired}


def test_explicit_rule_on_two_accounts() -> None:
    """A group glob × a permission set name × two accounts gives one assignment per account."""
    rule = AssignmentRule(group="AWS-PLAT*", permission_set="AdministratorAccess", accounts=[PROD, DEV])

    desired = resolve([rule], GROUPS, DIRECTORY).desired

    assert {("g-platform", PROD, ADMIN), ("g-platform", DEV, ADMIN)} == keys(desired)
    first = min(desired)
    assert ("aws-platform", "AdministratorAccess", "prod") == (
        first.group_name,
        first.permission_set_name,
        first.account_name,
    )
    assert "assignments.0: group 'AWS-PLAT*'" in desired[first]


def test_ou_rule_takes_every_active_account_below() -> None:
    """An OU rule covers the accounts of nested OUs too, but not suspended ones."""
    rule = AssignmentRule(group="Engineers", permission_set="ReadOnly", ous=[OU_ENG])

    assert {("g-eng", TOOLS, READ), ("g-eng", TEAM, READ)} == keys(resolve([rule], GROUPS, DIRECTORY).desired)


def test_all_takes_every_active_account() -> None:
    """all = true covers every ACTIVE account of the organisation."""
    rule = AssignmentRule(group="marketing", permission_set=READ, all=True)

    accounts = {a for _, a, _ in keys(resolve([rule], GROUPS, DIRECTORY).desired)}

    assert {PROD, DEV, TOOLS, TEAM} == accounts


def test_pattern_rule_reads_account_ids_and_names() -> None:
    """A pattern rule takes the account (id or name) and the permission set from each group name."""
    rule = AssignmentRule(pattern=PATTERN)

    desired = resolve([rule], GROUPS, DIRECTORY).desired

    assert {("g-p1", DEV, READ), ("g-p2", PROD, POWER)} == keys(desired)


def test_two_rules_wanting_the_same_assignment_give_one_with_both_reasons() -> None:
    """The same assignment from two rules is desired once; its reason names both rules."""
    rules = [
        AssignmentRule(group="aws-platform", permission_set="ReadOnly", accounts=[DEV]),
        AssignmentRule(group="aws-*", permission_set="ReadOnly", all=True),
    ]

    desired = resolve(rules, GROUPS, DIRECTORY).desired
    wanted = Assignment("g-platform", DEV, READ)

    assert "assignments.0" in desired[wanted]
    assert "assignments.1" in desired[wanted]


def test_unknown_names_are_all_reported_with_their_rules() -> None:
    """Unknown permission set, account and OU are each named with the rule's key, in one error."""
    rules = [
        AssignmentRule(group="aws-platform", permission_set="Admn", accounts=[PROD]),
        AssignmentRule(group="Engineers", permission_set="ReadOnly", accounts=["999999999999"]),
        AssignmentRule(group="Engineers", permission_set="ReadOnly", ous=["ou-root-missing1"]),
    ]

    with pytest.raises(AssignmentError) as caught:
        resolve(rules, GROUPS, DIRECTORY)

    message = str(caught.value)
    assert "assignments.0.permission_set: permission set 'Admn' does not exist" in message
    assert "assignments.1.accounts: account 999999999999 does not exist" in message
    assert "assignments.2.ous: OU ou-root-missing1 does not exist" in message
    assert "nothing was changed" in message


def test_an_unknown_permission_set_is_an_error_even_without_matching_groups() -> None:
    """A rule naming a missing permission set fails even when no group matches it yet."""
    rule = AssignmentRule(group="nobody-*", permission_set="Admn", all=True)

    with pytest.raises(AssignmentError, match="'Admn'"):
        resolve([rule], GROUPS, DIRECTORY)


def test_a_pattern_naming_what_does_not_exist_names_the_group() -> None:
    """A group name that points at an unknown account or permission set is an error naming the group."""
    groups = [Group("g-bad", "aws-nowhere-ReadOnly"), Group("g-bad2", "aws-prod-Nothing")]

    with pytest.raises(AssignmentError) as caught:
        resolve([AssignmentRule(pattern=PATTERN)], groups, DIRECTORY)

    message = str(caught.value)
    assert "assignments.0.pattern: group 'aws-nowhere-ReadOnly' names account 'nowhere'" in message
    assert "group 'aws-prod-Nothing' names permission set 'Nothing'" in message


def test_suspended_accounts_are_skipped_with_a_warning() -> None:
    """An explicit rule or a group name pointing at a suspended account warns and assigns nothing there."""
    rules = [
        AssignmentRule(group="aws-platform", permission_set="ReadOnly", accounts=[OLD, PROD]),
        AssignmentRule(pattern=PATTERN),
    ]
    groups = [PLATFORM, Group("g-old", "aws-old-ReadOnly")]

    resolution = resolve(rules, groups, DIRECTORY)

    assert {("g-platform", PROD, READ)} == keys(resolution.desired)
    assert 2 == len(resolution.warnings)
    assert all("SUSPENDED" in w for w in resolution.warnings)


def test_names_match_case_insensitively_only_when_unambiguous() -> None:
    """'readonly' finds ReadOnly; an account name two accounts share is refused, asking for the id."""
    twins = Directory(
        INSTANCE,
        permission_sets={READ: "ReadOnly"},
        accounts={PROD: Account(PROD, "shared"), DEV: Account(DEV, "shared")},
    )

    assert (READ, "") == twins.find_permission_set("readonly")
    found, why = twins.find_account("shared")
    assert found is None
    assert "use the id" in why
