"""The plan as a person reads it: a diff, like ``terraform plan``.

``+`` creates, ``~`` changes (with the attributes that change: ``givenName: Bob → Robert``),
``-`` deletes; member changes one line per group; adoptions one line per kind, however many
there are; then a summary line ("3 to create, 1 to change, 1 to delete, 2 to adopt; 14 member
changes in 3 requests"). Pure functions from a :class:`~syncd.plan.Plan` to lines; the CLI
prints them with rich (colour on a terminal only), the JSON output reuses :func:`attribute_diff`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from syncd.assignments.permission_sets import differences
from syncd.changes import Action, Change, GroupChange, PermissionSetStep, UserChange, members_of
from syncd.members import request_count
from syncd.plan import ADOPTED, Plan


_CREATES = frozenset(
    {
        Action.CREATE_USER,
        Action.CREATE_GROUP,
        Action.CREATE_ASSIGNMENT,
        Action.CREATE_PERMISSION_SET,
        Action.CREATE_APPLICATION_ASSIGNMENT,
    }
)
_UPDATES = frozenset(
    {
        Action.UPDATE_USER,
        Action.UPDATE_GROUP,
        Action.DEACTIVATE_USER,
        Action.UPDATE_PERMISSION_SET,
        Action.PROVISION_PERMISSION_SET,
    }
)
_DELETES = frozenset(
    {
        Action.DELETE_USER,
        Action.DELETE_GROUP,
        Action.DELETE_ASSIGNMENT,
        Action.DELETE_PERMISSION_SET,
        Action.DELETE_APPLICATION_ASSIGNMENT,
    }
)
_MEMBERS = frozenset({Action.ADD_MEMBERS, Action.REMOVE_MEMBERS})
TAKES_AWAY = frozenset(_DELETES | {Action.DEACTIVATE_USER, Action.REMOVE_MEMBERS})
"""Changes that take access away: ``sync`` on a terminal asks before it applies them."""

_KIND = {
    Action.CREATE_USER: "user",
    Action.UPDATE_USER: "user",
    Action.DEACTIVATE_USER: "user",
    Action.DELETE_USER: "user",
    Action.CREATE_GROUP: "group",
    Action.UPDATE_GROUP: "group",
    Action.DELETE_GROUP: "group",
    Action.CREATE_ASSIGNMENT: "assignment",
    Action.DELETE_ASSIGNMENT: "assignment",
    Action.CREATE_PERMISSION_SET: "permission set",
    Action.UPDATE_PERMISSION_SET: "permission set",
    Action.PROVISION_PERMISSION_SET: "permission set",
    Action.DELETE_PERMISSION_SET: "permission set",
    Action.CREATE_APPLICATION_ASSIGNMENT: "application assignment",
    Action.DELETE_APPLICATION_ASSIGNMENT: "application assignment",
}


@dataclass(frozen=True, slots=True)
class Line:
    """One line of the diff: a sign (``+``, ``~``, ``-``, ``=``, or blank for detail), a style, the text."""

    sign: str
    style: str
    text: str

    def render(self) -> Text:
        """The line as rich text (its text is never read as markup)."""
        line = Text(f"  {self.sign} " if self.sign else "      ", style=self.style)
        line.append(self.text, style=self.style if self.sign else "dim")
        return line


def _show(value: Any) -> str:
    if value is None or value == "":
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
    return str(value)


def attribute_diff(change: Change) -> list[tuple[str, Any, Any]]:
    """``(attribute, before, after)`` for each attribute an update changes (empty when unknown)."""
    after: Mapping[str, Any] | None = None
    if isinstance(change, UserChange):
        after = change.user.payload()
    elif isinstance(change, GroupChange):
        after = change.group.payload()
    if after is None or not change.before:
        return []
    before = change.before
    keys = [k for k in after if k != "externalId"] + sorted(set(before) - set(after) - {"externalId"})
    return [(k, before.get(k), after.get(k)) for k in keys if before.get(k) != after.get(k)]


@dataclass(frozen=True, slots=True)
class Summary:
    """The plan's totals, as the summary line says them."""

    create: int
    change: int
    delete: int
    adopt: int
    member_changes: int
    member_requests: int
    writes: int

    def __str__(self) -> str:
        if not (self.create or self.change or self.delete or self.adopt or self.member_changes):
            return "No changes. Identity Center matches the source."
        text = (
            f"{self.create} to create, {self.change} to change, {self.delete} to delete, {self.adopt} to adopt; "
            f"{self.member_changes} member change{'s' if self.member_changes != 1 else ''}"
        )
        if self.member_requests:
            text += f" in {self.member_requests} request{'s' if self.member_requests != 1 else ''}"
        return text


def summarise(plan: Plan) -> Summary:
    """Count the plan the way the summary line reads."""
    create = change = delete = adopt = inline = 0
    adds: dict[str, int] = {}
    removes: dict[str, int] = {}
    for c in plan:
        if c.action in _CREATES:
            create += 1
            inline += len(members_of(c))
        elif c.action in _UPDATES:
            change += 1
        elif c.action in _DELETES:
            delete += 1
        elif c.action in (Action.ADOPT_USER, Action.ADOPT_GROUP) and c.reason.startswith(ADOPTED):
            adopt += 1
        elif c.action is Action.ADD_MEMBERS:
            adds[c.source_id] = adds.get(c.source_id, 0) + len(members_of(c))
        elif c.action is Action.REMOVE_MEMBERS:
            removes[c.source_id] = removes.get(c.source_id, 0) + len(members_of(c))
    requests = sum(request_count(plan).values())
    members = inline + sum(adds.values()) + sum(removes.values())
    return Summary(create, change, delete, adopt, members, requests, len(plan.writes))


def _change_lines(change: Change) -> Iterator[Line]:
    kind = _KIND[change.action]
    label = change.label()
    if label.startswith(f"{kind} "):  # a permission set's label names its kind already
        label = label[len(kind) + 1 :]
    if isinstance(change, PermissionSetStep) and change.action in _UPDATES:
        yield from _permission_set_lines(change, label)
        return
    if change.action in _CREATES:
        notes = []
        if isinstance(change, UserChange) and not change.user.active:
            notes.append("(inactive)")
        if members := members_of(change):
            notes.append(f"with {len(members)} member{'s' if len(members) != 1 else ''}")
        if change.reason:
            notes.append(f"({change.reason})")
        yield Line("+", "green", " ".join([kind, label, *notes]))
        return
    if change.action in _DELETES:
        yield Line("-", "red", f"{kind} {label}" + (f" ({change.reason})" if change.reason else ""))
        return
    note = " (deactivate)" if change.action is Action.DEACTIVATE_USER else ""
    diff = attribute_diff(change)
    reason = change.reason if change.reason.startswith("drift") or not diff else ""
    yield Line("~", "yellow", f"{kind} {label}{note}" + (f" ({reason})" if reason else ""))
    for key, before, after in diff:
        yield Line("", "", f"{key}: {_show(before)} → {_show(after)}")


def _permission_set_lines(change: PermissionSetStep, name: str) -> Iterator[Line]:
    resource = change.permission_set
    if change.action is Action.PROVISION_PERMISSION_SET:
        where = f"to {', '.join(resource.accounts)}" if resource.accounts else "to every account it is on"
        yield Line("~", "yellow", f"permission set {name} re-provisioned {where} ({change.reason})")
        return
    yield Line("~", "yellow", f"permission set {name}")
    if resource.current is not None and resource.spec is not None:
        for difference in differences(resource.current, resource.spec):
            yield Line("", "", difference)


def _member_lines(plan: Plan) -> Iterator[Line]:
    by_group: dict[str, tuple[str, int, int]] = {}
    counted = request_count(plan)
    for c in plan:
        if c.action in _MEMBERS:
            name, adds, removes = by_group.get(c.source_id, (c.label(), 0, 0))
            if c.action is Action.ADD_MEMBERS:
                adds += len(members_of(c))
            else:
                removes += len(members_of(c))
            by_group[c.source_id] = (name, adds, removes)
    for (name, adds, removes), gsid in sorted((shown, gsid) for gsid, shown in by_group.items()):
        parts = ([f"+{adds}"] if adds else []) + ([f"-{removes}"] if removes else [])
        requests = counted.get(gsid, 0)
        yield Line(
            "~",
            "yellow" if removes else "green",
            f"group {name} members {' '.join(parts)} ({requests} request{'s' if requests != 1 else ''})",
        )


def _adoption_lines(plan: Plan) -> Iterator[Line]:
    for action, kind in ((Action.ADOPT_USER, "user"), (Action.ADOPT_GROUP, "group")):
        count = sum(1 for c in plan if c.action is action and c.reason.startswith(ADOPTED))
        if count:
            yield Line(
                "=",
                "cyan",
                f"{count} {kind}{'s' if count != 1 else ''} already in Identity Center, adopted"
                f" (matched by externalId, else {'userName' if kind == 'user' else 'displayName'})",
            )


def diff_lines(plan: Plan, *, limit: int | None = None) -> list[Line]:
    """Every line of the diff, in the order of application; ``limit`` keeps the first rows."""
    lines = list(_adoption_lines(plan))
    rows = 0
    for change in plan:
        if change.action not in _KIND:
            continue
        if limit is not None and rows >= limit:
            rows += 1
            continue
        rows += 1
        lines.extend(_change_lines(change))
    lines.extend(_member_lines(plan))
    if limit is not None and rows > limit:
        lines.append(Line("", "", f"… {rows - limit} more (shown with a larger --limit, or all in --json)"))
    return lines


def render(plan: Plan, *, limit: int | None = None, title: str = "") -> Iterator[Text | str]:
    """The plan for rich: a heading, the diff, the summary line."""
    summary = summarise(plan)
    if title:
        yield Text(title, style="bold")
    yield from (line.render() for line in diff_lines(plan, limit=limit))
    yield Text(str(summary), style="bold")


def estimate(writes: int, requests_per_second: float) -> str:
    """The time ``writes`` take at the pacer's rate: "3,110 writes ≈ 2 min 36 s at 20 requests/s"."""
    seconds = math.ceil(writes / requests_per_second) if requests_per_second > 0 else 0
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    took = f"{hours} h {minutes} min" if hours else (f"{minutes} min {rest} s" if minutes else f"{rest} s")
    return f"{writes:,} write{'s' if writes != 1 else ''} ≈ {took} at {requests_per_second:g} requests/s"


__all__ = ["TAKES_AWAY", "Line", "Summary", "attribute_diff", "diff_lines", "estimate", "render", "summarise"]
