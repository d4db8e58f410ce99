"""The safety guard: refuse a run that would delete or deactivate too much, or remove too much access.

Peers' worst failure is an IdP outage read as "everyone left" (awslabs/ssosync#194, #268;
slashdevops/idp-scim-sync#70). A source read that fails already stops the run before any removal
(the engine); this guard catches the read that succeeds but is wrong, such as an empty group list
or groups that all come back without members: access comes through group memberships, so member
removals are counted too (``safety.max_member_removals``), against the managed memberships, and
so are deletions of the account and application assignments syncd made (``safety.max_deletes``).

The base of a percentage is what syncd manages once the run's adoptions are counted (a first
run that adopts a suspended user deactivates one of one, not one of zero). A percentage above 0
of a small base still allows one change: 10% of 5 users is 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from syncd.changes import Action, GroupRemoval, MemberChange, UserRemoval
from syncd.plan import Plan


@dataclass(frozen=True, slots=True)
class Limit:
    """``safety.max_deletes`` / ``max_member_removals``: a number, or a percentage of the managed objects.

    A percentage is rounded up and, unless it is 0%, allows at least one, so a small (or, on a
    first run, empty) directory can still lose one object per run.
    """

    value: float
    percent: bool

    @classmethod
    def parse(cls, raw: str | int | float) -> Limit:
        """Parse ``10``, ``"10"`` or ``"10%"``; ValueError with the accepted forms otherwise."""
        text = str(raw).strip()
        percent = text.endswith("%")
        number = text.rstrip("%").strip()
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"{raw!r} is neither a number nor a percentage such as '10%'") from None
        if value < 0 or (percent and value > 100):
            raise ValueError(f"{raw!r} must be between 0 and 100% or a non-negative number")
        if not percent and value != int(value):
            raise ValueError(f"{raw!r} must be a whole number of objects")
        return cls(value, percent)

    def allowed(self, managed: int) -> int:
        """How many of ``managed`` objects one run may delete or deactivate."""
        if self.percent:
            return max(1, math.ceil(managed * self.value / 100)) if self.value > 0 else 0
        return int(self.value)

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{int(self.value)}"


DEFAULT_MEMBER_LIMIT = Limit(10, percent=True)
"""``safety.max_member_removals`` when unset: 10% of the managed memberships."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the guard found; ``refused`` is empty when the plan may run."""

    user_removals: int
    group_removals: int
    users_allowed: int
    groups_allowed: int
    refused: str = ""
    member_removals: int = 0
    members_allowed: int = 0
    access_removals: int = 0
    access_allowed: int = 0


def check(
    plan: Plan, limit: Limit, *, member_limit: Limit = DEFAULT_MEMBER_LIMIT, allow_deletions: bool = False
) -> Verdict:
    """Check a plan against the limits (``--allow-deletions`` lifts them for one run)."""
    # The delete that ends a grace period is not counted again: its first step (deactivating
    # the user, emptying the group) was, and took the access away already (syncd.grace).
    user_removals = sum(
        1
        for c in plan
        if c.action is Action.DEACTIVATE_USER
        or (isinstance(c, UserRemoval) and c.action is Action.DELETE_USER and c.gone_since is None)
    )
    group_removals = sum(
        1 for c in plan if isinstance(c, GroupRemoval) and c.action is Action.DELETE_GROUP and c.gone_since is None
    )
    member_removals = sum(
        len(c.members) for c in plan if isinstance(c, MemberChange) and c.action is Action.REMOVE_MEMBERS
    )
    users_allowed = limit.allowed(plan.managed_users)
    groups_allowed = limit.allowed(plan.managed_groups)
    members_allowed = member_limit.allowed(plan.managed_memberships)
    # Access that goes with a group whose grace period is over granted nothing: it had no members.
    graced = {
        c.source_id
        for c in plan
        if isinstance(c, GroupRemoval) and c.action is Action.DELETE_GROUP and c.gone_since is not None
    }
    access_removals = sum(
        1
        for c in plan
        if c.action in (Action.DELETE_ASSIGNMENT, Action.DELETE_APPLICATION_ASSIGNMENT) and c.source_id not in graced
    )
    access_allowed = limit.allowed(plan.managed_access)
    problems = []
    keys = []
    if user_removals > users_allowed:
        problems.append(
            f"{user_removals} of {plan.managed_users} managed users would be deleted or deactivated"
            f" (the limit is {users_allowed}, safety.max_deletes = {limit})"
        )
        keys.append("safety.max_deletes")
    if group_removals > groups_allowed:
        problems.append(
            f"{group_removals} of {plan.managed_groups} managed groups would be deleted"
            f" (the limit is {groups_allowed}, safety.max_deletes = {limit})"
        )
        keys.append("safety.max_deletes")
    if member_removals > members_allowed:
        problems.append(
            f"{member_removals} of {plan.managed_memberships} managed group memberships would be removed"
            f" (the limit is {members_allowed}, safety.max_member_removals = {member_limit})"
        )
        keys.append("safety.max_member_removals")
    if access_removals > access_allowed:
        problems.append(
            f"{access_removals} of {plan.managed_access} account and application assignments syncd made would be"
            f" deleted (the limit is {access_allowed}, safety.max_deletes = {limit})"
        )
        keys.append("safety.max_deletes")
    refused = ""
    if problems and not allow_deletions:
        refused = (
            "; ".join(problems) + ". Nothing was changed. If the source really lost them, run `syncd plan` to review,"
            f" then `syncd sync --allow-deletions` once, or raise {' and '.join(dict.fromkeys(keys))}."
        )
    return Verdict(
        user_removals,
        group_removals,
        users_allowed,
        groups_allowed,
        refused,
        member_removals,
        members_allowed,
        access_removals,
        access_allowed,
    )
