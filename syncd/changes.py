"""The steps of a plan: one small typed change per kind of object.

A :data:`Change` is one of

- :class:`UserChange`: a user the source holds, created, updated, deactivated or adopted;
- :class:`UserRemoval`: a user gone from the source, deactivated, deleted or forgotten;
- :class:`GroupChange`: a group the source holds, created (with members inline), updated or adopted;
- :class:`GroupRemoval`: a group gone from the source, retired (emptied), deleted or forgotten;
- :class:`MemberChange`: a batch of member adds or removes of one group;
- :class:`AssignmentChange`: an account assignment created or deleted (sso-admin);
- :class:`PermissionSetStep`: a permission set created, updated, adopted, re-provisioned,
  deleted or forgotten;
- :class:`ApplicationAssignmentChange`: an application assignment created or deleted.

Every kind has the shared surface (``action``, ``phase``, ``is_write``, ``label()``,
``source_id``, ``target_id``, ``before``, ``reason``), so a caller that reads only those needs
no ``isinstance``; a caller that reads a payload narrows with ``isinstance`` or ``match``.
Each kind holds exactly the payload its actions need: no field that one action leaves empty
and another asserts on.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from syncd.model import ApplicationAssignment, Assignment, Group, PermissionSetChange, User


class Action(enum.StrEnum):
    """What a change does."""

    ADOPT_USER = "adopt_user"
    ADOPT_GROUP = "adopt_group"
    FORGET_USER = "forget_user"
    FORGET_GROUP = "forget_group"
    RETIRE_GROUP = "retire_group"
    CREATE_USER = "create_user"
    UPDATE_USER = "update_user"
    DEACTIVATE_USER = "deactivate_user"
    CREATE_GROUP = "create_group"
    UPDATE_GROUP = "update_group"
    ADD_MEMBERS = "add_members"
    REMOVE_MEMBERS = "remove_members"
    DELETE_GROUP = "delete_group"
    DELETE_USER = "delete_user"
    CREATE_ASSIGNMENT = "create_assignment"
    DELETE_ASSIGNMENT = "delete_assignment"
    CREATE_PERMISSION_SET = "create_permission_set"
    UPDATE_PERMISSION_SET = "update_permission_set"
    PROVISION_PERMISSION_SET = "provision_permission_set"
    DELETE_PERMISSION_SET = "delete_permission_set"
    ADOPT_PERMISSION_SET = "adopt_permission_set"
    FORGET_PERMISSION_SET = "forget_permission_set"
    CREATE_APPLICATION_ASSIGNMENT = "create_application_assignment"
    DELETE_APPLICATION_ASSIGNMENT = "delete_application_assignment"


class Phase(enum.IntEnum):
    """When a change is applied; changes of one phase run concurrently."""

    RECORD = 0
    USERS = 1
    GROUPS = 2
    ADD_MEMBERS = 3
    REMOVE_MEMBERS = 4
    ASSIGNMENTS = 5
    DELETE_GROUPS = 6
    DELETE_USERS = 7


PHASE = {
    Action.ADOPT_USER: Phase.RECORD,
    Action.ADOPT_GROUP: Phase.RECORD,
    Action.FORGET_USER: Phase.RECORD,
    Action.FORGET_GROUP: Phase.RECORD,
    Action.RETIRE_GROUP: Phase.RECORD,
    Action.CREATE_USER: Phase.USERS,
    Action.UPDATE_USER: Phase.USERS,
    Action.DEACTIVATE_USER: Phase.USERS,
    Action.CREATE_GROUP: Phase.GROUPS,
    Action.UPDATE_GROUP: Phase.GROUPS,
    Action.ADD_MEMBERS: Phase.ADD_MEMBERS,
    Action.REMOVE_MEMBERS: Phase.REMOVE_MEMBERS,
    Action.DELETE_GROUP: Phase.DELETE_GROUPS,
    Action.DELETE_USER: Phase.DELETE_USERS,
    Action.CREATE_ASSIGNMENT: Phase.ASSIGNMENTS,
    Action.DELETE_ASSIGNMENT: Phase.ASSIGNMENTS,
    # The assignment manager orders these within its phase: permission sets are created and
    # updated before the assignments that use them, re-provisioned after, and deleted last.
    Action.CREATE_PERMISSION_SET: Phase.ASSIGNMENTS,
    Action.UPDATE_PERMISSION_SET: Phase.ASSIGNMENTS,
    Action.PROVISION_PERMISSION_SET: Phase.ASSIGNMENTS,
    Action.DELETE_PERMISSION_SET: Phase.ASSIGNMENTS,
    Action.ADOPT_PERMISSION_SET: Phase.ASSIGNMENTS,
    Action.FORGET_PERMISSION_SET: Phase.ASSIGNMENTS,
    Action.CREATE_APPLICATION_ASSIGNMENT: Phase.ASSIGNMENTS,
    Action.DELETE_APPLICATION_ASSIGNMENT: Phase.ASSIGNMENTS,
}

ACCESS = frozenset(action for action, phase in PHASE.items() if phase is Phase.ASSIGNMENTS)
"""Actions on AWS access (sso-admin), applied by the assignment manager."""

WRITES = frozenset(PHASE) - {
    Action.ADOPT_USER,
    Action.ADOPT_GROUP,
    Action.FORGET_USER,
    Action.FORGET_GROUP,
    Action.ADOPT_PERMISSION_SET,
    Action.FORGET_PERMISSION_SET,
    Action.RETIRE_GROUP,
}
"""Actions that send a request to Identity Center (SCIM or sso-admin); the rest only update the cache."""


class _Step:
    """What every kind of change shares: its phase and whether it writes (from ``action``)."""

    __slots__ = ()
    action: Action

    @property
    def phase(self) -> Phase:
        """The phase this change belongs to."""
        return PHASE[self.action]

    @property
    def is_write(self) -> bool:
        """Whether applying it sends a request to Identity Center."""
        return self.action in WRITES


class _NoBefore(_Step):
    """A change that keeps no earlier state of its own (``before`` is None)."""

    __slots__ = ()

    @property
    def before(self) -> None:
        """None: a member batch, a permission set (AWS's is in its ``current``) or an application
        assignment (the assignment says what was there) needs no copy of what was there."""
        return None


@dataclass(frozen=True, slots=True)
class UserChange(_Step):
    """A source user written to Identity Center: CREATE_USER, UPDATE_USER, DEACTIVATE_USER (the
    source says inactive) or ADOPT_USER (matched on a full resync, or already current).

    ``target_id`` is None for a create; ``before`` is what the cache or Identity Center held.
    """

    action: Action
    user: User
    target_id: str | None = None
    before: Mapping[str, Any] | None = None
    reason: str = ""

    @property
    def source_id(self) -> str:
        """The user's source id."""
        return self.user.source_id

    def label(self) -> str:
        """The userName."""
        return self.user.user_name


@dataclass(frozen=True, slots=True)
class _Removal(_Step):
    """An object gone from the source, at one step of its removal.

    ``before`` is what the cache held. ``gone_since`` is when it left the source, on the steps
    of a two-step delete (:mod:`syncd.grace`); None for a delete made at once.
    """

    action: Action
    source_id: str
    target_id: str
    before: Mapping[str, Any] | None = None
    reason: str = ""
    gone_since: datetime | None = None

    def label(self) -> str:
        """The name it had (userName or group name), else its source id."""
        if self.before:
            return str(self.before.get("userName") or self.before.get("displayName") or self.source_id)
        return self.source_id


@dataclass(frozen=True, slots=True)
class UserRemoval(_Removal):
    """A user gone from the source: DEACTIVATE_USER (the first step of a two-step delete),
    DELETE_USER, or FORGET_USER (gone from Identity Center too; only the record goes)."""


@dataclass(frozen=True, slots=True)
class GroupChange(_Step):
    """A source group written to Identity Center: CREATE_GROUP (``members``: the user source ids
    sent inline), UPDATE_GROUP or ADOPT_GROUP."""

    action: Action
    group: Group
    target_id: str | None = None
    members: tuple[str, ...] = ()
    before: Mapping[str, Any] | None = None
    reason: str = ""

    @property
    def source_id(self) -> str:
        """The group's source id."""
        return self.group.source_id

    def label(self) -> str:
        """The group's name."""
        return self.group.display_name


@dataclass(frozen=True, slots=True)
class GroupRemoval(_Removal):
    """A group gone from the source: RETIRE_GROUP (emptied, the first step of a two-step
    delete), DELETE_GROUP, or FORGET_GROUP (gone from Identity Center too)."""


@dataclass(frozen=True, slots=True)
class MemberChange(_NoBefore):
    """ADD_MEMBERS or REMOVE_MEMBERS: at most 100 user source ids of one group.

    ``group`` is the group as the source holds it, for its name; None when the group has left
    the source (its members are being removed).
    """

    action: Action
    source_id: str
    members: tuple[str, ...]
    target_id: str | None = None
    group: Group | None = None
    reason: str = ""

    def label(self) -> str:
        """The group's name, else its source id."""
        return self.group.display_name if self.group is not None else self.source_id


@dataclass(frozen=True, slots=True)
class AssignmentChange(_Step):
    """CREATE_ASSIGNMENT or DELETE_ASSIGNMENT of an account assignment.

    ``source_id`` is the group's; ``target_id`` its Identity Center id (the principal), None
    when unknown (a group created in this run, or an assignment gone from AWS already).
    """

    action: Action
    assignment: Assignment
    target_id: str | None = None
    before: Mapping[str, Any] | None = None
    reason: str = ""

    @property
    def source_id(self) -> str:
        """The group's source id."""
        return self.assignment.group

    def label(self) -> str:
        """The assignment, as people read it."""
        return self.assignment.describe()


@dataclass(frozen=True, slots=True)
class PermissionSetStep(_NoBefore):
    """A permission set created, updated, adopted, re-provisioned, deleted or forgotten.

    ``source_id`` is its name; ``target_id`` its ARN (None before it is created).
    """

    action: Action
    permission_set: PermissionSetChange
    target_id: str | None = None
    reason: str = ""

    @property
    def source_id(self) -> str:
        """The permission set's name."""
        return self.permission_set.name

    def label(self) -> str:
        """``permission set NAME``."""
        return self.permission_set.describe()


@dataclass(frozen=True, slots=True)
class ApplicationAssignmentChange(_NoBefore):
    """CREATE_APPLICATION_ASSIGNMENT or DELETE_APPLICATION_ASSIGNMENT.

    ``target_id`` is the group's Identity Center id (the principal); None when unknown, or for
    a delete of one gone from AWS already (only the record goes).
    """

    action: Action
    assignment: ApplicationAssignment
    target_id: str | None = None
    reason: str = ""

    @property
    def source_id(self) -> str:
        """The group's source id."""
        return self.assignment.group

    def label(self) -> str:
        """The application assignment, as people read it."""
        return self.assignment.describe()


Change = (
    UserChange
    | UserRemoval
    | GroupChange
    | GroupRemoval
    | MemberChange
    | AssignmentChange
    | PermissionSetStep
    | ApplicationAssignmentChange
)
"""One step of the plan (see this module's docstring)."""

AccessChange = AssignmentChange | PermissionSetStep | ApplicationAssignmentChange
"""A change to AWS access, applied by the assignment manager."""


def members_of(change: Change) -> tuple[str, ...]:
    """The user source ids a change carries: a member batch, or the members sent with a group create."""
    if isinstance(change, MemberChange | GroupChange):
        return change.members
    return ()


__all__ = [
    "ACCESS",
    "PHASE",
    "WRITES",
    "AccessChange",
    "Action",
    "ApplicationAssignmentChange",
    "AssignmentChange",
    "Change",
    "GroupChange",
    "GroupRemoval",
    "MemberChange",
    "PermissionSetStep",
    "Phase",
    "UserChange",
    "UserRemoval",
    "members_of",
]
