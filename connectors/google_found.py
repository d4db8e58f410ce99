"""Telling the run Google's users as they are final, with ``filters.users = "members"``.

Google lists every user first, but with ``users = "members"`` only members of synced groups are
synced, and a user's manager is named only when the manager is synced too: a user's record is
final once its groups say whether its manager is a member of some synced group. :class:`Tell`
stands between the read and its :class:`~connectors.kit.announce.Announcer`: as each group's
flattened members are final, those members become synced; a member whose manager is unknown to
the domain, or already synced, is announced at once (``users_found``), and one whose manager is
not synced yet waits for the manager's first group (or the end of the read, when it has none).
The announcer holds a group back until its members are announced, so the group follows them.
"""

from __future__ import annotations

from collections.abc import Mapping

from connectors.google_records import PackedUser, fold
from connectors.kit import Announcer, PackedGroup


__all__ = ["Tell", "managers"]

_EMAIL, _MANAGER = 0, 6  # in google_records' packed user


def managers(users: Mapping[str, PackedUser]) -> dict[str, str]:
    """Each user's folded email -> its id, to name managers by id."""
    return {fold(packed[_EMAIL]): user_id for user_id, packed in users.items()}


class Tell:
    """Announces each group once its members are final; with ``members_only``, those members first.

    ``users``: every user Google listed. ``synced``: the folded email -> id map of synced users
    that ``unpack_user`` names managers with; with ``members_only`` it is filled here as members
    are found (at the end of the read it is every member's, as before).
    """

    def __init__(
        self, announce: Announcer, users: Mapping[str, PackedUser], synced: dict[str, str], *, members_only: bool
    ) -> None:
        self.announce = announce
        self.on = announce.on
        self._members_only = members_only and announce.on
        self._users = users
        self._synced = synced
        self._emails: dict[str, str | None] = {}  # every listed user's folded email (None: two users share it)
        if self._members_only:
            for user_id, packed in users.items():
                email = fold(packed[_EMAIL])
                self._emails[email] = None if email in self._emails else user_id
        self._members: set[str] = set()
        self._waiting: dict[str, list[str]] = {}  # a manager not synced yet -> the members it holds

    def group(self, group_id: str, packed: PackedGroup) -> None:
        """Announce one group with its final (flattened) members."""
        if self._members_only:
            self._found(packed[-1])
        self.announce.group(group_id, packed)

    def _found(self, members: list[str]) -> None:
        new = [member for member in members if member not in self._members]
        self._members.update(new)
        for member in new:
            self._synced[fold(self._users[member][_EMAIL])] = member
        ready: list[str] = []
        for member in new:
            ready += self._waiting.pop(member, ())
            boss = self._users[member][_MANAGER]
            folded = boss.casefold() if isinstance(boss, str) else None
            if folded is None or folded not in self._emails or self._emails[folded] in self._members:
                ready.append(member)  # no manager, one from outside the domain's users, or one synced
            elif self._emails[folded] is None:
                continue  # two users share the manager's email: final only at the end
            else:
                self._waiting.setdefault(str(self._emails[folded]), []).append(member)
        if ready:
            self.announce.found({member: self._users[member] for member in ready})
