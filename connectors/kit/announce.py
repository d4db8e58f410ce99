"""Telling the run, during a full read, which parts of it are final (:class:`connectors.base.ReadListener`).

A full read that lists users first, then groups, then each group's members can say so as it
goes, and the run starts user creates, group creates and member adds while the rest is read.
What is announced must be what the read returns, unchanged; an :class:`Announcer` makes that
structural: it builds every announced record with the *same* ``user(...)`` and ``group(...)``
functions :func:`~connectors.kit.read.assemble` uses, from the same packed records, and
``assemble(..., announce=announcer)`` then returns the very objects announced, so that they
cannot differ. The steps, each optional and each at most once:

* :meth:`Announcer.users` once the user listing is done (every packed user; skipped ones are
  left out, as ``assemble`` leaves them out);
* :meth:`Announcer.found`, for a read that learns its users from group member listings
  (``filters.users = "members"``), as some users are final: those not announced before are told
  (``users_found``), each once, skipped ones left out; any number of calls, before
  :meth:`Announcer.users` (after it, a call does nothing);
* :meth:`Announcer.groups` once the group listing is done (each group's packed record with its
  member list empty: names, emails and descriptions are final, members are not);
* :meth:`Announcer.group` as soon as one group's *final* members are known (a connector whose
  members are final only at the end leaves this to ``assemble``). Until :meth:`Announcer.users`
  has announced every user, a group is held back until each of its members has been found, so
  that the listener always knows a group's members before the group (a member never found holds
  its group until the end of the read).

``assemble`` announces what the connector did not (all of it, for a connector that announces
nothing), so a full read read through the kit always tells the listener everything. It still
calls ``users_read`` at the end of a read that found its users one listing at a time (with every
user, the found ones being the very objects found), as :class:`connectors.base.ReadListener`
allows: a listener may take either. A user found must be in the read, unchanged (a connector
keeps the record it found, e.g. the first listing's when a user is in several), and a found
user's record may not depend on what is still unread (Google's managers wait for that); else
the read fails with :class:`AnnouncedDiffers`. Without a listener every step costs nothing.
Incremental reads do not announce: pass no announcer.

A group deleted between the group listing and its member listing (the member listing answers
404) is not in the read; it is the one difference from what :meth:`Announcer.groups` said, and
it is logged (``read.announced_group_gone``): the run then treats it as any group deleted in
the source, after the read.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from typing import TypeVar

import structlog

from connectors.base import ReadListener
from connectors.kit.kept import KeptDirectory, PackedGroup, PackedUser
from syncd.aio import bounded
from syncd.errors import SourceError
from syncd.model import Skipped, SourceGroup, SourceUser


__all__ = ["AnnouncedDiffers", "Announcer", "GroupMaker", "UserMaker", "member_listings"]

G = TypeVar("G")
L = TypeVar("L")

log = structlog.get_logger(__name__)

UserMaker = Callable[[str, PackedUser], SourceUser | Skipped]
"""``user(id, packed)``: the SourceUser of a packed user, or why it is skipped."""
GroupMaker = Callable[[str, PackedGroup], SourceGroup]
"""``group(id, packed)``: the SourceGroup of a packed group."""


class AnnouncedDiffers(SourceError):
    """A connector's bug: what it announced is not what its read holds, so the read fails (and
    the run, having been told otherwise, removes nothing)."""


class Announcer:
    """Announces the final parts of one full read to ``listener`` (None: nobody listens).

    ``user`` and ``group`` are the functions the read is assembled with; build the announcer
    once both are what ``assemble`` will get (e.g. after the user listing, when ``user`` needs
    every user's email to resolve managers).
    """

    def __init__(self, listener: ReadListener | None, *, user: UserMaker, group: GroupMaker) -> None:
        self.listener = listener
        self.user = user
        self.group_of = group
        self._user_ids: list[str] | None = None
        self._users: list[SourceUser | Skipped] = []
        self._found: dict[str, tuple[PackedUser, SourceUser | Skipped]] = {}
        self._listed: dict[str, SourceGroup] | None = None
        self._read: dict[str, tuple[PackedGroup, SourceGroup]] = {}
        self._held: dict[str, tuple[PackedGroup, set[str]]] = {}  # group -> (packed, members not found yet)
        self._holding: dict[str, list[str]] = {}  # user not found yet -> the groups it holds back

    @property
    def on(self) -> bool:
        """Whether anyone listens (connectors may skip work that only announcing needs)."""
        return self.listener is not None

    @property
    def users_announced(self) -> bool:
        """Whether :meth:`users` has announced the users."""
        return self._user_ids is not None

    def users(self, users: Mapping[str, PackedUser]) -> None:
        """Announce every user this read returns: ``users`` must be the read's final users (those
        found before among them, unchanged)."""
        if self.listener is None or self._user_ids is not None:
            return
        missing = next((user_id for user_id in self._found if user_id not in users), None)
        if missing is not None:
            raise AnnouncedDiffers(f"user {missing} was announced during the read but is not in it")
        self._user_ids = sorted(users)
        self._users = [self._final(user_id, users[user_id]) for user_id in self._user_ids]
        self.listener.users_read([made for made in self._users if isinstance(made, SourceUser)])
        self._release(list(self._holding))

    def found(self, users: Mapping[str, PackedUser]) -> None:
        """Announce the users of ``users`` not announced before: each is final, and the record
        given is the one the read will keep. Groups held back for them follow."""
        if self.listener is None or self._user_ids is not None:
            return
        new: list[SourceUser] = []
        ids: list[str] = []
        for user_id, packed in users.items():
            if user_id in self._found:
                continue
            made = self.user(user_id, packed)
            self._found[user_id] = (packed, made)
            ids.append(user_id)
            if isinstance(made, SourceUser):
                new.append(made)
        if new:
            self.listener.users_found(new)
        self._release(ids)

    def groups(self, groups: Iterable[tuple[str, PackedGroup]]) -> None:
        """Announce the read's groups, given as (id, packed record with an empty member list)."""
        if self.listener is None or self._listed is not None:
            return
        self._listed = {group_id: self.group_of(group_id, packed) for group_id, packed in groups}
        self.listener.groups_listed(list(self._listed.values()))

    def group(self, group_id: str, packed: PackedGroup) -> None:
        """Announce one group with its final members; ``packed`` is the record the read will keep.

        Before every user is announced, the group waits for its members not found yet."""
        if self.listener is None or self._listed is None or group_id in self._read or group_id in self._held:
            return
        if self._user_ids is None:
            waiting = {member for member in packed[-1] if member not in self._found}
            if waiting:
                self._held[group_id] = (packed, waiting)
                for member in waiting:
                    self._holding.setdefault(member, []).append(group_id)
                return
        made = self.group_of(group_id, packed)
        self._check_head(made)
        self._read[group_id] = (packed, made)
        self.listener.group_read(made)

    def _release(self, user_ids: Iterable[str]) -> None:
        """Announce the groups held back that no longer wait for any member (``user_ids`` are now known)."""
        ready: list[str] = []
        for user_id in user_ids:
            for group_id in self._holding.pop(user_id, ()):
                waiting = self._held[group_id][1]
                waiting.discard(user_id)
                if not waiting:
                    ready.append(group_id)
        for group_id in ready:
            packed, _ = self._held.pop(group_id)
            self.group(group_id, packed)

    def _final(self, user_id: str, packed: PackedUser) -> SourceUser | Skipped:
        """The read's user: the one found (checked unchanged), or made now."""
        found = self._found.get(user_id)
        if found is None:
            return self.user(user_id, packed)
        if found[0] is not packed and self.user(user_id, packed) != found[1]:
            raise AnnouncedDiffers(f"user {user_id} changed after it was announced")
        return found[1]

    # -- for assemble --------------------------------------------------------------------------

    def finish(self, directory: KeptDirectory) -> None:
        """Announce what is left, from the read's final directory (called by ``assemble``)."""
        if self.listener is None:
            return
        self.users(directory.users)
        self.groups((group_id, [*packed[:-1], []]) for group_id, packed in directory.groups.items())
        assert self._listed is not None
        gone = [group_id for group_id in self._listed if group_id not in directory.groups]
        if gone:
            log.info("read.announced_group_gone", groups=len(gone), first=gone[0])
        for group_id, packed in directory.groups.items():
            if group_id not in self._listed:
                raise AnnouncedDiffers(f"group {group_id} is in the read but was not announced with the others")
            self.group(group_id, packed)

    def made_users(self, directory: KeptDirectory) -> list[SourceUser | Skipped]:
        """The read's users in id order: those announced, or made now when nothing was."""
        if self._user_ids is None:
            return [self.user(user_id, directory.users[user_id]) for user_id in sorted(directory.users)]
        if self._user_ids != sorted(directory.users):
            raise AnnouncedDiffers("the users announced during the read are not the read's users")
        return self._users

    def made_group(self, group_id: str, packed: PackedGroup) -> SourceGroup:
        """The read's group: the one announced (checked unchanged), or made now."""
        announced = self._read.get(group_id)
        if announced is None:
            return self.group_of(group_id, packed)
        if announced[0] is not packed:
            made = self.group_of(group_id, packed)
            if made != announced[1]:
                raise AnnouncedDiffers(f"group {group_id} changed after it was announced")
        return announced[1]

    def _check_head(self, made: SourceGroup) -> None:
        assert self._listed is not None
        listed = self._listed.get(made.id)
        if listed is None or replace(made, members=(), groups=()) != listed:
            raise AnnouncedDiffers(f"group {made.id} differs from the group listing announced")


async def member_listings(
    groups: Sequence[G],
    listing: Callable[[G], Awaitable[L | None]],
    limit: int,
    *,
    pack: Callable[[G, L], tuple[str, PackedGroup]],
    announce: Announcer | None = None,
    users: Callable[[G, L], Mapping[str, PackedUser]] | None = None,
) -> list[tuple[L, PackedGroup] | None]:
    """Each group's member listing, ``limit`` at a time, started in the order of ``groups`` (the
    order they were listed, so the first listed are the first complete); as soon as one ends,
    ``pack(group, listing)`` gives its (id, packed record), ``users(group, listing)`` (for reads
    whose member listings carry the users' records, ``filters.users = "members"``) gives its
    members as the read keeps them, and ``announce`` is told those users (found), then the group.

    The results are in the order of ``groups``: the listing and the packed record, or None where
    ``listing`` found the group gone. The first failure ends every listing and is raised.
    Announce only members that are final when their own listing ends (e.g. transitive ones).
    """

    async def one(group: G) -> tuple[L, PackedGroup] | None:
        found = await listing(group)
        if found is None:
            return None
        group_id, packed = pack(group, found)
        kept = users(group, found) if users is not None else None
        if announce is not None:
            if kept:
                announce.found(kept)
            announce.group(group_id, packed)
        return found, packed

    return await bounded(groups, one, limit)
