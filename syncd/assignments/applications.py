"""``[[applications]]`` rules × synced groups × what AWS holds → application assignment changes. Pure.

The ownership rule is the one of account assignments (:mod:`syncd.assignments.reconcile`):
syncd deletes an application assignment only when it created it (the cache) and no rule wants it
any more; one that exists already (made in the console, or before syncd) is left as it is and not
claimed; one syncd made that someone removed is created again.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from syncd.assignments.config import ApplicationRule
from syncd.changes import Action, ApplicationAssignmentChange
from syncd.model import ApplicationAssignment, Group


__all__ = ["AppResolution", "reconcile_applications", "resolve_applications"]


@dataclass(slots=True)
class AppResolution:
    """What the rules want (assignment → why), and the rule errors that stop the run before any write."""

    desired: dict[ApplicationAssignment, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    covered: set[str] = field(default_factory=set)
    """ARNs of the applications some rule names."""


def _find(ref: str, applications: Mapping[str, str]) -> tuple[str | None, str]:
    """``(arn, "")`` for an application ARN or name that exists once, else ``(None, why)``."""
    if ref.startswith("arn:"):
        return (ref, "") if ref in applications else (None, "no application has this ARN in the instance")
    named = [arn for arn, name in applications.items() if name == ref]
    if not named:
        named = [arn for arn, name in applications.items() if name.casefold() == ref.casefold()]
    if len(named) == 1:
        return named[0], ""
    if named:
        return None, f"{len(named)} applications are named {ref!r}; write the ARN of the one you mean"
    known = ", ".join(sorted(repr(n) for n in applications.values())[:10]) or "none"
    return None, f"no application named {ref!r} (the instance has: {known})"


def resolve_applications(
    rules: Sequence[ApplicationRule], groups: Iterable[Group], applications: Mapping[str, str]
) -> AppResolution:
    """Every application assignment the rules want for these groups; ``applications`` maps ARN → name."""
    result = AppResolution()
    groups = sorted(groups, key=lambda g: g.display_name)
    for index, rule in enumerate(rules):
        arn, why = _find(rule.application, applications)
        if arn is None:
            result.errors.append(f"applications.{index}.application: {why}")
            continue
        result.covered.add(arn)
        pattern = rule.group.casefold()
        for group in groups:
            if fnmatch.fnmatchcase(group.display_name.casefold(), pattern):
                assignment = ApplicationAssignment(group.source_id, arn, group.display_name, applications[arn])
                result.desired.setdefault(assignment, f"applications.{index}: {rule.describe()}")
    return result


def reconcile_applications(
    desired: Mapping[ApplicationAssignment, str],
    existing: Mapping[ApplicationAssignment, str],
    made: Iterable[ApplicationAssignment],
    group_targets: Mapping[str, str],
) -> list[ApplicationAssignmentChange]:
    """CREATE and DELETE_APPLICATION_ASSIGNMENT changes.

    ``existing`` maps the assignments AWS holds for known groups to their principal id; ``made``
    are syncd's (the cache); ``group_targets`` maps group source ids to Identity Center ids.
    """
    made = set(made)
    changes: list[ApplicationAssignmentChange] = []
    for assignment, why in sorted(desired.items()):
        if assignment in existing:
            continue
        reason = f"{why}; removed outside syncd, created again" if assignment in made else why
        changes.append(
            ApplicationAssignmentChange(
                Action.CREATE_APPLICATION_ASSIGNMENT, assignment, group_targets.get(assignment.group), reason=reason
            )
        )
    for assignment in sorted(made - set(desired)):
        changes.append(
            ApplicationAssignmentChange(
                Action.DELETE_APPLICATION_ASSIGNMENT,
                assignment,
                # None: gone from AWS already, so only the record goes.
                existing.get(assignment),
                reason="no rule wants it any more",
            )
        )
    return changes
