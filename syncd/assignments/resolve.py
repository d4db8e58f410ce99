"""Rules × synced groups × the AWS directory → the assignments syncd wants. Pure, no I/O.

:class:`Directory` is what AWS holds that the rules refer to, read once per run by
:mod:`syncd.assignments.aws`. :func:`resolve` turns the rules into desired assignments and
raises :class:`~syncd.errors.AssignmentError` naming *every* permission set, account or OU that
does not exist, with the rule it came from, so that a run fails before any write.

Accounts that are not ACTIVE (suspended, closing) are never a target: ``all`` and ``ous`` skip
them, and a rule or group name that points at one gets a warning instead of an assignment.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from syncd.assignments.config import ACCOUNT_ID, AssignmentRule
from syncd.errors import AssignmentError
from syncd.model import Assignment, Group


__all__ = ["Account", "Directory", "Resolution", "resolve"]


@dataclass(frozen=True, slots=True)
class Account:
    """An account of the organisation. ``state`` is Organizations' State (ACTIVE, SUSPENDED, ...)."""

    id: str
    name: str
    state: str = "ACTIVE"

    @property
    def active(self) -> bool:
        """Whether access can be assigned in it."""
        return self.state == "ACTIVE"


@dataclass(frozen=True, slots=True)
class Directory:
    """What AWS holds that the rules refer to.

    ``permission_sets`` maps ARN → name; ``accounts`` holds every account of the organisation by
    id, in any state; ``ous`` maps each OU (or root) id a rule names, and that exists, to the ids
    of every account below it, nested OUs included.
    """

    instance_arn: str
    permission_sets: Mapping[str, str] = field(default_factory=dict)
    accounts: Mapping[str, Account] = field(default_factory=dict)
    ous: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def find_permission_set(self, ref: str) -> tuple[str | None, str]:
        """``(arn, "")`` for a name or ARN that exists, else ``(None, why)``.

        A name matches exactly, else case-insensitively when that picks a single permission set.
        """
        if ref.startswith("arn:"):
            return (ref, "") if ref in self.permission_sets else (None, "no such permission set ARN")
        exact = [arn for arn, name in self.permission_sets.items() if name == ref]
        if not exact:
            exact = [arn for arn, name in self.permission_sets.items() if name.casefold() == ref.casefold()]
        if len(exact) == 1:
            return exact[0], ""
        if exact:
            return None, f"several permission sets are named like it: {', '.join(sorted(exact))}"
        return None, "no permission set has that name"

    def find_account(self, ref: str) -> tuple[Account | None, str]:
        """``(account, "")`` for an id or name that exists, else ``(None, why)``.

        A name matches exactly, else case-insensitively when that picks a single account.
        Account names need not be unique in an organisation: an ambiguous name is refused.
        """
        if ACCOUNT_ID.fullmatch(ref):
            found = self.accounts.get(ref)
            return (found, "") if found else (None, "no account of the organisation has that id")
        named = [a for a in self.accounts.values() if a.name == ref]
        if not named:
            named = [a for a in self.accounts.values() if a.name.casefold() == ref.casefold()]
        if len(named) == 1:
            return named[0], ""
        if named:
            return None, f"several accounts are named like it ({', '.join(sorted(a.id for a in named))}); use the id"
        return None, "no account of the organisation has that name"

    def active_accounts(self) -> list[Account]:
        """Every ACTIVE account, by id."""
        return sorted((a for a in self.accounts.values() if a.active), key=lambda a: a.id)


@dataclass(slots=True)
class Resolution:
    """What the rules want: each desired assignment with why, and warnings for what was skipped."""

    desired: dict[Assignment, str] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


_Want = Callable[[Group, Account, str, str], None]
"""Adds one desired assignment: (group, account, permission set ARN, why)."""


def _key(index: int, field_name: str | None = None) -> str:
    return f"assignments.{index}" + (f".{field_name}" if field_name else "")


def _wants(rule: AssignmentRule, group: Group) -> bool:
    assert rule.group is not None
    return fnmatch.fnmatchcase(group.display_name.casefold(), rule.group.casefold())


def resolve(rules: Sequence[AssignmentRule], groups: Iterable[Group], directory: Directory) -> Resolution:
    """Every assignment the rules want for these groups.

    Raises:
        AssignmentError: a rule (or, for a pattern rule, a group name) names a permission set,
            account or OU that does not exist; the message lists each one with its rule.
    """
    groups = sorted(groups, key=lambda g: g.display_name)
    result = Resolution()
    problems: list[str] = []

    def want(group: Group, account: Account, arn: str, why: str) -> None:
        assignment = Assignment(
            group=group.source_id,
            account_id=account.id,
            permission_set_arn=arn,
            group_name=group.display_name,
            permission_set_name=directory.permission_sets.get(arn, ""),
            account_name=account.name,
        )
        previous = result.desired.get(assignment)
        result.desired[assignment] = f"{previous}; {why}" if previous else why

    for index, rule in enumerate(rules):
        if rule.pattern is not None:
            _resolve_pattern(index, rule, groups, directory, want, problems, result.warnings)
            continue
        assert rule.permission_set is not None
        arn, why_not = directory.find_permission_set(rule.permission_set)
        if arn is None:
            problems.append(
                f"{_key(index, 'permission_set')}: permission set {rule.permission_set!r} does not exist"
                f" in {directory.instance_arn} ({why_not})"
            )
        targets = _targets(index, rule, directory, problems, result.warnings)
        if arn is None:
            continue
        why = f"{_key(index)}: {rule.describe()}"
        for group in groups:
            if _wants(rule, group):
                for account in targets:
                    want(group, account, arn, why)

    if problems:
        raise AssignmentError(
            "the assignment rules name what AWS does not hold; nothing was changed:\n  " + "\n  ".join(problems)
        )
    return result


def _targets(
    index: int, rule: AssignmentRule, directory: Directory, problems: list[str], warnings: list[str]
) -> list[Account]:
    """The ACTIVE accounts an explicit rule targets (problems and warnings appended)."""
    if rule.all:
        return directory.active_accounts()
    ids: set[str] = set()
    if rule.accounts is not None:
        for account_id in rule.accounts:
            account = directory.accounts.get(account_id)
            if account is None:
                problems.append(
                    f"{_key(index, 'accounts')}: account {account_id} does not exist in the organisation"
                    " (or syncd's credentials cannot see it)"
                )
            elif not account.active:
                warnings.append(
                    f"{_key(index, 'accounts')}: account {account_id} ({account.name}) is {account.state};"
                    " no access is assigned in it"
                )
            else:
                ids.add(account_id)
    for ou in rule.ous or ():
        below = directory.ous.get(ou)
        if below is None:
            problems.append(f"{_key(index, 'ous')}: OU {ou} does not exist in the organisation")
            continue
        ids.update(i for i in below if i in directory.accounts and directory.accounts[i].active)
    return [directory.accounts[i] for i in sorted(ids)]


def _resolve_pattern(
    index: int,
    rule: AssignmentRule,
    groups: list[Group],
    directory: Directory,
    want: _Want,
    problems: list[str],
    warnings: list[str],
) -> None:
    pattern = rule.compiled()
    for group in groups:
        match = pattern.fullmatch(group.display_name)
        if match is None:
            continue
        account_ref, ps_ref = match.group("account"), match.group("permission_set")
        where = f"{_key(index, 'pattern')}: group {group.display_name!r}"
        account, account_why = directory.find_account(account_ref or "")
        arn, ps_why = directory.find_permission_set(ps_ref or "")
        if account is None:
            problems.append(f"{where} names account {account_ref!r}, which does not exist ({account_why})")
        if arn is None:
            problems.append(
                f"{where} names permission set {ps_ref!r}, which does not exist in {directory.instance_arn} ({ps_why})"
            )
        if account is None or arn is None:
            continue
        if not account.active:
            warnings.append(f"{where} names account {account.id} ({account.name}), which is {account.state}; skipped")
            continue
        want(group, account, arn, f"{_key(index)}: {rule.describe()}")
