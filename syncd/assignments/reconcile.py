"""Desired, existing and syncd-made assignments → CREATE_ASSIGNMENT and DELETE_ASSIGNMENT changes. Pure.

The ownership rule: syncd deletes an assignment only when it created it (it is in the cache)
and no rule wants it any more. An assignment made by someone else is never deleted, even when
it matches a rule that is later removed; one that a rule wants and that exists already (by
hand, or from before syncd) is left as it is and not claimed.

A group about to be deleted is not in the snapshot, so nothing wants its assignments: they are
deleted in the ASSIGNMENTS phase, before the DELETE_GROUPS phase removes the group.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from typing import Any

from syncd.changes import Action, AssignmentChange
from syncd.model import Assignment


__all__ = ["before", "reconcile"]


def before(assignment: Assignment, principal_id: str | None) -> dict[str, Any]:
    """The assignment as the audit trail and ``plan --json`` show it."""
    return {
        "group": assignment.group,
        "group_name": assignment.group_name,
        "principal_id": principal_id,
        "account_id": assignment.account_id,
        "account_name": assignment.account_name,
        "permission_set_arn": assignment.permission_set_arn,
        "permission_set_name": assignment.permission_set_name,
    }


def reconcile(
    desired: Mapping[Assignment, str],
    existing: Mapping[Assignment, str],
    made: Iterable[Assignment],
    group_targets: Mapping[str, str],
    *,
    synced_groups: Container[str],
    frozen_accounts: Container[str] = frozenset(),
) -> list[AssignmentChange]:
    """The changes that take AWS from ``existing`` to ``desired`` without touching what others made.

    Args:
        desired: every assignment the rules want, with why (the rule).
        existing: the assignments AWS holds now for groups syncd manages, in the (account,
            permission set) pairs that were read, each with its principal (Identity Center group) id.
        made: the assignments syncd created, from the cache.
        group_targets: group source id → Identity Center id, where it exists already.
        synced_groups: source ids of the groups in the snapshot (to say why a delete happens).
        frozen_accounts: accounts not to touch (not ACTIVE): syncd-made assignments there stay.

    Returns:
        Creates (``target_id`` the group's Identity Center id when known), then deletes. A delete
        whose ``target_id`` is None is a record-only change: syncd made it, but it is gone from
        AWS already, so only the cache record is dropped.
    """
    changes: list[AssignmentChange] = []
    made_set = set(made)
    for assignment in sorted(desired):
        if assignment in existing or assignment.account_id in frozen_accounts:
            continue
        reason = desired[assignment]
        if assignment in made_set:
            reason += "; drift: syncd made it, and it was deleted outside syncd"
        changes.append(
            AssignmentChange(Action.CREATE_ASSIGNMENT, assignment, group_targets.get(assignment.group), reason=reason)
        )
    for assignment in sorted(made_set - desired.keys()):
        if assignment.account_id in frozen_accounts:
            continue
        principal = existing.get(assignment)
        why = "no rule wants it any more" if assignment.group in synced_groups else "its group is gone from the source"
        if principal is None and assignment.group not in group_targets:
            why += "; the group is no longer in Identity Center, so only syncd's record is dropped"
        elif principal is None:
            why += "; already gone from AWS, only syncd's record is dropped"
        changes.append(
            AssignmentChange(
                Action.DELETE_ASSIGNMENT, assignment, principal, before=before(assignment, principal), reason=why
            )
        )
    return changes
