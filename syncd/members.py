"""Member PATCHes: how a plan's member changes are packed into the requests syncd sends.

Pure functions, no I/O. The applier calls :func:`member_requests` after creates and recreations
(with the member changes planned again from what the cache then holds), and the plan view counts
the same requests (:func:`request_count`) and ``--json`` lists them (:func:`requests_by_group`),
so ``syncd plan`` shows what will be sent.

Identity Center takes at most 100 membership changes per PATCH [DG:patchgroup]. A group that
gains and loses members gets its removes in the spare room of its last add PATCH (after the
adds, in the same request), so a membership move inside one group costs one request, not two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from syncd.changes import Action, Change, MemberChange
from syncd.plan import MAX_MEMBER_CHANGES


@dataclass(frozen=True, slots=True)
class MemberRequest:
    """One PATCH of a group's members: adds first, then removes, at most 100 in all."""

    group: str
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()

    def as_change(self) -> MemberChange:
        """The change this request stands for, for failure reports."""
        action = Action.ADD_MEMBERS if self.add else Action.REMOVE_MEMBERS
        return MemberChange(action, self.group, self.add + self.remove)


def _chunks(items: list[str]) -> list[tuple[str, ...]]:
    return [tuple(items[i : i + MAX_MEMBER_CHANGES]) for i in range(0, len(items), MAX_MEMBER_CHANGES)]


def member_requests(changes: Iterable[Change]) -> tuple[list[list[MemberRequest]], list[list[MemberRequest]]]:
    """The PATCHes for ``changes`` (their member adds and removes), in two waves of per-group lists.

    The first wave holds every group with adds (its removes packed into the room of its last add
    request); the second, once the first has landed, the removes that did not fit. Within a
    group's list the requests go in order; different groups may go side by side.
    """
    adds: dict[str, list[str]] = {}
    removes: dict[str, list[str]] = {}
    for change in changes:
        if isinstance(change, MemberChange) and change.members:
            into = adds if change.action is Action.ADD_MEMBERS else removes
            into.setdefault(change.source_id, []).extend(change.members)
    first: list[list[MemberRequest]] = []
    for gsid, added in adds.items():
        requests = [MemberRequest(gsid, chunk) for chunk in _chunks(added)]
        room = MAX_MEMBER_CHANGES - len(requests[-1].add)
        leaving = removes.pop(gsid, [])
        if room and leaving:
            requests[-1] = MemberRequest(gsid, requests[-1].add, tuple(leaving[:room]))
            leaving = leaving[room:]
        if leaving:
            removes[gsid] = leaving
        first.append(requests)
    then = [[MemberRequest(gsid, (), chunk) for chunk in _chunks(left)] for gsid, left in removes.items()]
    return first, then


@dataclass(frozen=True, slots=True)
class GroupRequests:
    """One group's member PATCHes, in the order they are sent."""

    group: str
    name: str
    requests: tuple[MemberRequest, ...]

    def to_json(self) -> dict[str, Any]:
        """As ``plan --json`` and ``sync --dry-run --json`` list it (``member_requests``)."""
        return {
            "group": self.group,
            "name": self.name,
            "adds": sum(len(r.add) for r in self.requests),
            "removes": sum(len(r.remove) for r in self.requests),
            "request_count": len(self.requests),
            "requests": [{"add": list(r.add), "remove": list(r.remove)} for r in self.requests],
        }


def requests_by_group(changes: Iterable[Change]) -> list[GroupRequests]:
    """The PATCHes :func:`member_requests` packs for ``changes``, by group (in source id order).

    A group's requests are in the order they are sent: those of the first wave, then those of
    the second. Users are named by source id (a user this run creates has no other id yet).
    """
    changes = list(changes)
    names = {c.source_id: c.label() for c in changes if isinstance(c, MemberChange)}
    first, then = member_requests(changes)
    by_group: dict[str, list[MemberRequest]] = {}
    for batch in (*first, *then):
        for request in batch:
            by_group.setdefault(request.group, []).append(request)
    return [GroupRequests(gsid, names.get(gsid, gsid), tuple(sent)) for gsid, sent in sorted(by_group.items())]


def request_count(changes: Iterable[Change]) -> dict[str, int]:
    """How many PATCH requests each group's member changes take, as :func:`member_requests` packs them."""
    return {group.group: len(group.requests) for group in requests_by_group(changes)}
