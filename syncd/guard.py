"""The safety guard: refuse a run that would delete or deactivate too much.

Peers' worst failure is an IdP outage read as "everyone left" (awslabs/ssosync#194, #268;
slashdevops/idp-scim-sync#70). A source read that fails already stops the run before any write
(the engine); this guard catches the read that succeeds but is wrong, such as an empty group list.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from syncd.plan import Action, Plan


@dataclass(frozen=True, slots=True)
class Limit:
    """``safety.max_deletes``: an absolute number, or a percentage of the managed objects.

    A percentage is rounded up, so a small directory can still lose one object per run.
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
            return math.ceil(managed * self.value / 100)
        return int(self.value)

    def __str__(self) -> str:
        return f"{self.value:g}%" if self.percent else f"{int(self.value)}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the guard found; ``refused`` is empty when the plan may run."""

    user_removals: int
    group_removals: int
    users_allowed: int
    groups_allowed: int
    refused: str = ""


def check(plan: Plan, limit: Limit, *, allow_deletions: bool = False) -> Verdict:
    """Check a plan against the deletion limit (``--allow-deletions`` lifts it for one run)."""
    user_removals = sum(1 for c in plan if c.action in (Action.DELETE_USER, Action.DEACTIVATE_USER))
    group_removals = sum(1 for c in plan if c.action is Action.DELETE_GROUP)
    users_allowed = limit.allowed(plan.managed_users)
    groups_allowed = limit.allowed(plan.managed_groups)
    problems = []
    if user_removals > users_allowed:
        problems.append(
            f"{user_removals} of {plan.managed_users} managed users would be deleted or deactivated"
            f" (the limit is {users_allowed}, safety.max_deletes = {limit})"
        )
    if group_removals > groups_allowed:
        problems.append(
            f"{group_removals} of {plan.managed_groups} managed groups would be deleted"
            f" (the limit is {groups_allowed}, safety.max_deletes = {limit})"
        )
    refused = ""
    if problems and not allow_deletions:
        refused = (
            "; ".join(problems) + ". Nothing was changed. If the source really lost them, run `syncd plan` to review,"
            " then `syncd sync --allow-deletions` once, or raise safety.max_deletes."
        )
    return Verdict(user_removals, group_removals, users_allowed, groups_allowed, refused)
