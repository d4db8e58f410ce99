"""Writes during the read (``[safety] write_during_read``): what is final, and what is safe to send early.

Pure functions, no I/O. While a source is still reading, the parts it has announced as final
(:class:`connectors.base.ReadListener`) make a *partial snapshot*; the plan for it against the
cache is filtered down to the changes that the final plan would make the same way and that
remove nothing: recording adoptions, and creating users, groups and memberships. Everything
else (updates, deactivations, deletions, member removals, access) waits for the whole read and
the guard.

The partial snapshot is built so that each record in it equals the final one:

* a group counts only once it and every group nested under it have been read;
* a group whose name another listed group shares (case-folded) waits: which of the two is kept
  is decided over the whole read;
* users are normalised together, as with ``filters.users = "all"``, so a userName or email that
  two users share goes to the one the final snapshot keeps, whatever the filter;
* with ``filters.users = "members"`` only members of complete groups are in, and a user whose
  manager is not among them waits (the final record would name the manager; an early one could not).

With ``filters.users = "members"`` a round need not wait for every user (``users_read``): the
connectors learn users from group member listings and announce each group's members
(``users_found``) before the group, so the users are those found, members of complete groups.
Two things only the whole read can tell are then handled so that the early record stays final:

* a later user may share a found user's userName or email (case-folded). The tie goes to the
  user Identity Center already holds: the rounds and the final
  :func:`syncd.normalise.build_snapshot` get as ``prefer`` the users the cache holds, those the
  early rounds created among them; the later user is skipped with the usual reason, so an early
  create is never the loser of a tie (never deactivated or deleted for it), in this run or the
  next. Between two users Identity Center holds, or two it does not, the smallest id wins, as before;
* a manager not among the found users may be found later: a user whose manager the found users
  do not resolve waits, unless the manager is free text with a space in it (no userName holds
  one, nor any connector's id), which no later user can resolve either.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet

from syncd.changes import Action, Change, GroupChange, MemberChange, UserChange
from syncd.model import Group, Snapshot, SourceGroup, SourceRead, SourceUser, User
from syncd.normalise import Scope, build_snapshot, clean_text
from syncd.plan import ADOPTED
from syncd.state import CacheState


def complete_groups(listed: Iterable[str], read: Mapping[str, SourceGroup]) -> set[str]:
    """The ids of the read groups below which every listed group has been read too.

    A listed group not read yet blocks every group it is nested in, however deep; a nested id
    that names no listed group blocks nothing (the final read has no such group either).
    """
    parents: dict[str, list[str]] = {}
    for group in read.values():
        for child in group.groups:
            parents.setdefault(child, []).append(group.id)
    blocked: set[str] = set()
    stack = [gid for gid in listed if gid not in read]
    while stack:
        gid = stack.pop()
        if gid in blocked:
            continue
        blocked.add(gid)
        stack.extend(parents.get(gid, ()))
    return read.keys() - blocked


ROUND_SHARE = 20
"""Rounds wait for at most a twentieth of the listed groups: see :func:`round_due`."""


def round_due(listed: int, complete_before: int, complete_now: int, *, users_known: bool) -> bool:
    """Whether a round after the first is worth its cost: every user has just become known, or
    enough groups have become complete since the last round: half as many as were complete then
    (the first rounds come quickly, so writes start while the read is young), and never more
    than a twentieth of the ``listed`` groups (at least one).

    Each round normalises and plans every announced user, so a round per group read would cost
    users × groups: 10^9 normalisations for a full resync of a 100k-user, 10k-group org with
    nothing to write. This way 10k groups make under 40 rounds, and what the rounds leave when
    the read ends (under a twentieth of the groups) the final pass sends.
    """
    step = max(1, min(complete_before // 2, listed // ROUND_SHARE))
    return users_known or complete_now - complete_before >= step


def _contested_names(groups: Iterable[SourceGroup], scope: Scope) -> set[str]:
    """Case-folded names that more than one listed group in scope holds."""
    seen: set[str] = set()
    contested: set[str] = set()
    for group in groups:
        name = clean_text(group.name).casefold()
        if not group.id or not name or not scope.wants_group(clean_text(group.name), group.email):
            continue
        (contested if name in seen else seen).add(name)
    return contested


def _manager(user: User) -> str | None:
    return dict(user.enterprise).get("manager") if user.enterprise else None


def _unsettled_managers(users: Sequence[SourceUser], snapshot: Snapshot) -> set[str]:
    """Users whose manager only the whole read can resolve (``users`` are some of the read's users).

    The manager is named, but none of ``users`` is it: a user found later may be (by id or
    userName). Free text with a space in it can be neither, and stays unresolved for good.
    """
    waiting: set[str] = set()
    for raw in users:
        named = clean_text(raw.enterprise.get("manager")) if raw.enterprise else ""
        user = snapshot.users.get(raw.id)
        if user is None or not named or named == raw.id or _manager(user) is not None:
            continue
        if not any(ch.isspace() for ch in named):
            waiting.add(raw.id)
    return waiting


def partial_snapshot(
    users: Sequence[SourceUser],
    listed: Sequence[SourceGroup],
    read: Mapping[str, SourceGroup],
    scope: Scope,
    *,
    every: bool = True,
    prefer: AbstractSet[str] = frozenset(),
) -> Snapshot:
    """The part of the final snapshot already known: the users announced, and the complete groups.

    ``users`` is every user the read will return (``users_read``), or with ``every=False`` and
    ``scope.users == "members"`` those found so far (``users_found``); ``listed`` every group it
    will return (``groups_listed``), ``read`` those whose members are known (``group_read``).
    ``prefer``: the users Identity Center holds (the cache's, with those earlier rounds created),
    who keep a userName or email they share with another (as the final snapshot gets them).
    """
    if not every and scope.users != "members":
        raise ValueError("a partial snapshot of some users needs filters.users = 'members'")
    complete = complete_groups((g.id for g in listed), read)
    # Nested groups out of scope still count through their parents: build from every complete group.
    records = [read[g.id] for g in listed if g.id in complete]
    snapshot = build_snapshot(SourceRead(users=list(users), groups=records), Scope(scope.groups, "all"), prefer=prefer)
    contested = _contested_names(listed, scope)
    groups = {gid: g for gid, g in snapshot.groups.items() if g.display_name.casefold() not in contested}
    if scope.users == "members":
        wanted: set[str] = set()
        for group in groups.values():
            wanted.update(group.members)
        if not every:
            wanted -= _unsettled_managers(users, snapshot)
        while True:
            waiting = {uid for uid in wanted if (m := _manager(snapshot.users[uid])) is not None and m not in wanted}
            if not waiting:
                break
            wanted -= waiting
        kept = {uid: u for uid, u in snapshot.users.items() if uid in wanted}
        groups = {
            gid: g if g.members <= kept.keys() else dataclasses.replace(g, members=g.members & kept.keys())
            for gid, g in groups.items()
        }
        return Snapshot(users=kept, groups=groups)
    return Snapshot(users=snapshot.users, groups=groups)


def _held_users(
    state: CacheState, snapshot: Snapshot, creates: Sequence[UserChange]
) -> tuple[dict[str, str], dict[str, str]]:
    """Who holds, in the cache, each case-folded userName and email the ``creates`` would take
    (source ids): only those, not every cached user's (two maps of 100k names a round).

    A user the cache loaded without its payload holds the email a lean load kept for it
    (``state.emails``), or else (unchanged at the source) the one the snapshot gives it.
    """
    wanted_names = {c.user.user_name.casefold() for c in creates}
    wanted_emails = {c.user.email.casefold() for c in creates if c.user.email}
    names: dict[str, str] = {}
    emails: dict[str, str] = {}
    for sid, cached in state.users.items():
        name = cached.user_name.casefold()
        if name in wanted_names:
            names[name] = sid
        email = cached.data.get("email") if cached.data else state.emails.get(sid)
        if email is None and sid in snapshot.users:
            email = snapshot.users[sid].email
        if email and (folded := str(email).casefold()) in wanted_emails:
            emails[folded] = sid
    return names, emails


def _held_by_other(held: Mapping[str, str], key: str | None, source_id: str) -> bool:
    owner = held.get(key.casefold()) if key else None
    return owner is not None and owner != source_id


def loses_members(state: CacheState, snapshot: Snapshot, group_id: str, *, every_user: bool) -> bool:
    """Whether the final pass will remove a member of the group: then its adds wait for that
    pass too, where adds and removes share one PATCH (up to 100 changes); early they would cost
    two. The cache has a member that the group's final members lack, and that member stays a
    user (a user gone from the source keeps its memberships until its delete drops them).
    With ``every_user`` (``filters.users = "all"``, every user read) the snapshot tells who
    stays; otherwise any member lacking counts (it may be a user not found yet).
    """
    group = snapshot.groups.get(group_id)
    if group is None:
        return True
    return any(
        member not in group.members and (not every_user or member in snapshot.users)
        for member in state.members.get(group_id, ())
    )


def early_changes(
    changes: Iterable[Change], state: CacheState, snapshot: Snapshot, *, every_user: bool = False
) -> list[Change]:
    """The changes of a partial snapshot's plan that may be applied before the read ends.

    Kept: adoptions (recorded, nothing sent), user and group creates, member adds. A create
    whose userName or email (or group name) the cache gives another object waits for the final
    pass (a rehire, a rename onto a freed name: only it may free the name), and so does a user
    whose manager's create waits. Everything else waits: it may remove, or it is not final.
    A group that also loses members keeps its adds for the final pass too
    (:func:`loses_members`; ``every_user``: the snapshot holds every user of the read).
    """
    changes = list(changes)
    # Who holds the names the round's user creates would take.
    creates = [c for c in changes if isinstance(c, UserChange) and c.action is Action.CREATE_USER]
    names, emails = _held_users(state, snapshot, creates) if creates else ({}, {})
    group_names: dict[str, str] | None = None
    kept: list[Change] = []
    waiting_users: set[str] = set()
    users: list[UserChange] = []
    for change in changes:
        match change:
            case UserChange(action=Action.ADOPT_USER) | GroupChange(action=Action.ADOPT_GROUP):
                if change.reason == ADOPTED:
                    kept.append(change)
            case UserChange(action=Action.CREATE_USER, user=user):
                if _held_by_other(names, user.user_name, user.source_id) or _held_by_other(
                    emails, user.email, user.source_id
                ):
                    waiting_users.add(user.source_id)
                else:
                    users.append(change)
            case GroupChange(action=Action.CREATE_GROUP, group=group):
                if group_names is None:
                    group_names = {cached.display_name.casefold(): sid for sid, cached in state.groups.items()}
                if not _held_by_other(group_names, group.display_name, group.source_id):
                    kept.append(change)
            case MemberChange(action=Action.ADD_MEMBERS):
                if not loses_members(state, snapshot, change.source_id, every_user=every_user):
                    kept.append(change)
            case _:
                pass  # it may remove, or it is not final yet
    # A user is created naming its manager's Identity Center id: one whose manager waits, waits too.
    while True:
        more = {c.source_id for c in users if _manager(c.user) in waiting_users}
        if not more:
            break
        waiting_users |= more
        users = [c for c in users if c.source_id not in more]
    return sorted([*kept, *users], key=lambda c: c.phase)


def member_snapshot(snapshot: Snapshot, known: AbstractSet[str]) -> Snapshot:
    """The partial snapshot cut to the groups whose current members are known (``known``: source ids).

    Early member adds go only to those: a group adopted on a full resync has its members read
    after the read, so adding to it now could send members it already has.
    """
    groups: dict[str, Group] = {gid: g for gid, g in snapshot.groups.items() if gid in known}
    return Snapshot(users=snapshot.users, groups=groups)
