"""Access in people's terms: who can reach which account with which permission set, and through what.

Pure functions over values: :func:`effective` turns memberships and the assignments syncd made
into :class:`Grant` rows (one per person, account or application, permission set, group);
:func:`impact` says what a plan changes in them: who gains and who loses what, and two flags an
approver must not miss: someone losing their last way into an account, and someone new getting
an administrator-level permission set. Nothing here reads AWS, the cache or a source.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from syncd.changes import (
    Action,
    ApplicationAssignmentChange,
    AssignmentChange,
    GroupChange,
    GroupRemoval,
    MemberChange,
    UserChange,
    UserRemoval,
)
from syncd.model import ApplicationAssignment, Assignment
from syncd.plan import Plan
from syncd.state import AccessEvent, AuditEntry, AuditKind, CacheState


T = TypeVar("T")

__all__ = [
    "ADMIN_PATTERNS",
    "CSV_FIELDS",
    "AccessRules",
    "Directory",
    "Grant",
    "Impact",
    "access_entries",
    "directory_of",
    "effective",
    "grant_of",
    "impact",
    "rule_of",
]

CSV_FIELDS = ("user", "account", "account_id", "permission_set", "application", "via_group", "rule")
"""The columns of an access report, in the order an auditor's sheet reads them."""

ADMIN_PATTERNS: tuple[str, ...] = ("*Administrator*",)
"""Permission set names (globs, case-insensitive) taken as administrator-level by default."""


@dataclass(frozen=True, slots=True, order=True)
class Grant:
    """One way a person reaches something: a permission set on an account, or an application.

    ``account`` is the account's name (its id when the name is unknown), ``account_id`` its id;
    for an application both are empty and ``application`` names it. ``rule`` is the config table
    that asks for the assignment (``assignments.2``), when one does.
    """

    user: str
    account: str
    permission_set: str
    via_group: str
    rule: str = ""
    account_id: str = ""
    application: str = ""
    active: bool = field(default=True, compare=False)

    @property
    def target(self) -> tuple[str, str]:
        """What the grant reaches, regardless of the path: (account id or application, "")."""
        return (self.account_id, "") if not self.application else ("", self.application)

    def to_json(self) -> dict[str, Any]:
        """The row as ``--json`` and CSV show it, keys in :data:`CSV_FIELDS` order."""
        shown = asdict(self)
        return {key: shown[key] for key in CSV_FIELDS}


@dataclass(frozen=True, slots=True)
class AccessRules:
    """The config's view of access: the ``[[assignments]]`` and ``[[applications]]`` rules (to name
    the rule behind each grant) and the permission sets taken as administrator-level."""

    rules: Sequence[Any] = ()
    apps: Sequence[Any] = ()
    admin_patterns: Sequence[str] = ADMIN_PATTERNS


@dataclass(slots=True)
class Directory:
    """What :func:`effective` reads: users and groups by source id, members, and the assignments.

    ``users`` maps user source ids to (userName, active); ``groups`` group source ids to names;
    ``members`` group source ids to member user source ids.
    """

    users: Mapping[str, tuple[str, bool]]
    groups: Mapping[str, str]
    members: Mapping[str, AbstractSet[str]]
    assignments: Iterable[Assignment] = ()
    applications: Iterable[ApplicationAssignment] = ()


def rule_of(
    assignment: Assignment | ApplicationAssignment, group_name: str, rules: Sequence[Any], apps: Sequence[Any]
) -> str:
    """The first config table that asks for ``assignment`` (``assignments.N`` / ``applications.N``), or ""."""
    folded = group_name.casefold()
    if isinstance(assignment, ApplicationAssignment):
        for index, rule in enumerate(apps):
            named = rule.application in (assignment.application_arn, assignment.application_name)
            if named and fnmatch.fnmatchcase(folded, rule.group.casefold()):
                return f"applications.{index}"
        return ""
    for index, rule in enumerate(rules):
        if rule.pattern is not None:
            if rule.compiled().fullmatch(group_name):
                return f"assignments.{index}"
            continue
        same_set = rule.permission_set in (assignment.permission_set_arn, assignment.permission_set_name)
        targets = rule.accounts is None or assignment.account_id in rule.accounts
        if same_set and targets and fnmatch.fnmatchcase(folded, str(rule.group).casefold()):
            return f"assignments.{index}"
    return ""


def effective(
    directory: Directory,
    *,
    rules: Sequence[Any] = (),
    apps: Sequence[Any] = (),
    users: AbstractSet[str] | None = None,
) -> set[Grant]:
    """Every grant of the people in ``users`` (default: everyone), through the assignments syncd made."""
    by_group: dict[str, list[Assignment | ApplicationAssignment]] = {}
    every: list[Assignment | ApplicationAssignment] = [*directory.assignments, *directory.applications]
    for assignment in every:
        by_group.setdefault(assignment.group, []).append(assignment)
    grants: set[Grant] = set()
    for group, assigned in by_group.items():
        group_name = directory.groups.get(group) or assigned[0].group_name or group
        for member in directory.members.get(group, ()):
            if users is not None and member not in users:
                continue
            name, active = directory.users.get(member, (member, True))
            for assignment in assigned:
                grants.add(_grant(name, active, group_name, assignment, rule_of(assignment, group_name, rules, apps)))
    return grants


def _grant(user: str, active: bool, group: str, assignment: Assignment | ApplicationAssignment, rule: str) -> Grant:
    if isinstance(assignment, ApplicationAssignment):
        app = assignment.application_name or assignment.application_arn
        return Grant(user, "", "", group, rule, application=app, active=active)
    ps = assignment.permission_set_name or assignment.permission_set_arn.rsplit("/", 1)[-1]
    return Grant(
        user, assignment.account_name or assignment.account_id, ps, group, rule, assignment.account_id, active=active
    )


@dataclass(slots=True)
class Impact:
    """What a plan changes in people's access."""

    gained: list[Grant] = field(default_factory=list)
    lost: list[Grant] = field(default_factory=list)
    last_path: list[Grant] = field(default_factory=list)
    """Lost grants that were the person's last way into that account or application."""
    new_admins: list[Grant] = field(default_factory=list)
    """Gained grants of an administrator-level permission set to someone who did not have it."""

    def __bool__(self) -> bool:
        return bool(self.gained or self.lost)

    def to_json(self) -> dict[str, Any]:
        """``{"gained": [...], "lost": [...], "flags": [...]}`` for ``--json`` and the run's record."""
        flags = [{"flag": "last_path", **g.to_json()} for g in self.last_path] + [
            {"flag": "new_admin", **g.to_json()} for g in self.new_admins
        ]
        return {"gained": [g.to_json() for g in self.gained], "lost": [g.to_json() for g in self.lost], "flags": flags}


def _after(directory: Directory, plan: Plan) -> tuple[Directory, set[str]]:
    """The directory as it will be once ``plan`` is applied, and the users whose access may change."""
    users = dict(directory.users)
    groups = dict(directory.groups)
    members: dict[str, set[str]] = {}
    assignments = set(directory.assignments)
    applications = set(directory.applications)
    touched: set[str] = set()
    touched_groups: set[str] = set()

    def members_of(group: str) -> set[str]:
        if group not in members:
            members[group] = set(directory.members.get(group, ()))
        return members[group]

    for change in plan:
        action = change.action
        match change:
            case UserChange(user=user) if action is Action.CREATE_USER or action is Action.UPDATE_USER:
                users[change.source_id] = (user.user_name, user.active)
                touched.add(change.source_id)
            case UserChange() | UserRemoval() if action in (Action.DEACTIVATE_USER, Action.DELETE_USER):
                name = users.get(change.source_id, (change.label(), True))[0]
                users[change.source_id] = (name, False)
                touched.add(change.source_id)
            case GroupChange(group=created, members=inline) if action is Action.CREATE_GROUP:
                groups[change.source_id] = created.display_name
                members_of(change.source_id).update(inline)
                touched.update(inline)
            case MemberChange(members=batch) if action is Action.ADD_MEMBERS:
                members_of(change.source_id).update(batch)
                touched.update(batch)
            case MemberChange(members=batch):
                members_of(change.source_id).difference_update(batch)
                touched.update(batch)
            case GroupRemoval() if action is Action.DELETE_GROUP:
                touched_groups.add(change.source_id)
                members_of(change.source_id).clear()
            case AssignmentChange(assignment=assignment):
                _hold(assignments, assignment, action is Action.CREATE_ASSIGNMENT)
                touched_groups.add(change.source_id)
            case ApplicationAssignmentChange(assignment=application):
                _hold(applications, application, action is Action.CREATE_APPLICATION_ASSIGNMENT)
                touched_groups.add(change.source_id)
    for group in touched_groups:
        touched.update(directory.members.get(group, ()))
        touched.update(members.get(group, ()))
    merged = {**directory.members, **members}
    return Directory(users, groups, merged, assignments, applications), touched


def _hold(items: set[T], item: T, held: bool) -> None:
    """Add ``item`` to ``items`` when ``held``, else take it away (a create, or a delete)."""
    if held:
        items.add(item)
    else:
        items.discard(item)


def _admin(grant: Grant, patterns: Sequence[str]) -> bool:
    name = grant.permission_set.casefold()
    return bool(name) and any(fnmatch.fnmatchcase(name, p.casefold()) for p in patterns)


def impact(
    directory: Directory,
    plan: Plan,
    *,
    rules: Sequence[Any] = (),
    apps: Sequence[Any] = (),
    admin_patterns: Sequence[str] = ADMIN_PATTERNS,
) -> Impact:
    """Who gains and who loses what if ``plan`` is applied to ``directory``.

    Only people a change can reach are computed (members of groups whose members or assignments
    change, users created, deactivated or deleted), so a plan of a few changes costs little at
    100k users. A deactivated or deleted person loses every grant: they can no longer sign in.
    """
    after, touched = _after(directory, plan)
    if not touched:
        return Impact()

    def usable(grants: set[Grant]) -> set[Grant]:
        return {g for g in grants if g.active}

    before = usable(effective(directory, rules=rules, apps=apps, users=touched))
    now = usable(effective(after, rules=rules, apps=apps, users=touched))
    result = Impact(gained=sorted(now - before), lost=sorted(before - now))
    reach_after = {(g.user, g.target) for g in now}
    result.last_path = [g for g in result.lost if (g.user, g.target) not in reach_after]
    had_admin = {(g.user, g.target, g.permission_set) for g in before}
    result.new_admins = [
        g for g in result.gained if _admin(g, admin_patterns) and (g.user, g.target, g.permission_set) not in had_admin
    ]
    # One row per (person, target, permission set) in the flags: several groups may give the same.
    result.last_path = _unique(result.last_path, lambda g: (g.user, g.target))
    result.new_admins = _unique(result.new_admins, lambda g: (g.user, g.target, g.permission_set))
    return result


def _unique(grants: list[Grant], key: Any) -> list[Grant]:
    seen: set[Any] = set()
    kept = []
    for grant in grants:
        if key(grant) not in seen:
            seen.add(key(grant))
            kept.append(grant)
    return kept


def directory_of(
    state: CacheState,
    users: Mapping[str, Any],
    assignments: Iterable[Assignment],
    applications: Iterable[ApplicationAssignment],
) -> Directory:
    """The access directory of what the cache says Identity Center holds.

    ``users`` are the source's users of this run (their ``active``), where the cache keeps no
    payload for unchanged ones; a user the source no longer has reads its cached ``active``.
    """

    def person(source_id: str) -> tuple[str, bool]:
        cached = state.users[source_id]
        current = users.get(source_id)
        if current is not None and current.user_name == cached.user_name:
            return cached.user_name, bool(current.active)
        data = cached.data if isinstance(cached.data, Mapping) else {}
        return cached.user_name, bool(data.get("active", True))

    return Directory(
        users={sid: person(sid) for sid in state.users},
        groups={sid: g.display_name for sid, g in state.groups.items()},
        members=state.members,
        assignments=list(assignments),
        applications=list(applications),
    )


def access_entries(result: Impact, status: str) -> list[AuditEntry]:
    """The audit entries of a run's access impact: ``access_gained`` / ``access_lost``, one per grant."""
    outcome = "ok" if status == "ok" else f"planned; the run ended {status}, so it may not all have landed"
    flagged = {id(g): "last_path" for g in result.last_path} | {id(g): "new_admin" for g in result.new_admins}
    entries = []
    for action, grants in ((AccessEvent.GAINED, result.gained), (AccessEvent.LOST, result.lost)):
        for grant in grants:
            shown = grant.to_json()
            if id(grant) in flagged:
                shown["flag"] = flagged[id(grant)]
            entries.append(AuditEntry(action, AuditKind.ACCESS, grant.user, None, None, shown, outcome))
    return entries


def grant_of(data: Mapping[str, Any]) -> Grant:
    """A grant back from its JSON (``Grant.to_json``), e.g. read from the audit trail."""
    return Grant(
        user=str(data.get("user", "")),
        account=str(data.get("account", "")),
        permission_set=str(data.get("permission_set", "")),
        via_group=str(data.get("via_group", "")),
        rule=str(data.get("rule", "")),
        account_id=str(data.get("account_id", "")),
        application=str(data.get("application", "")),
    )
