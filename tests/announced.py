"""A recording :class:`connectors.base.ReadListener`, for the connector tests of writes during a read."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from syncd.model import SourceGroup, SourceRead, SourceUser


@dataclass
class Recorder:
    """Records every announcement in order, each with ``mark()`` at that moment (e.g. how many
    requests the fake had received), so that tests can place announcements among requests."""

    mark: Callable[[], int] = lambda: 0
    events: list[tuple[str, int]] = field(default_factory=list)
    users: list[SourceUser] | None = None
    found: list[SourceUser] = field(default_factory=list)
    listed: list[SourceGroup] | None = None
    groups: list[SourceGroup] = field(default_factory=list)

    def users_read(self, users: Sequence[SourceUser]) -> None:
        """Note the users (once only)."""
        assert self.users is None, "users_read was called twice"
        self.users = list(users)
        self.events.append(("users", self.mark()))

    def users_found(self, users: Sequence[SourceUser]) -> None:
        """Note users found before the whole set is known (each once only)."""
        for user in users:
            assert user.id not in {u.id for u in self.found}, f"user {user.id} was found twice"
            self.found.append(user)
        self.events.append(("found", self.mark()))

    def groups_listed(self, groups: Sequence[SourceGroup]) -> None:
        """Note the group list (once only, before any group)."""
        assert self.listed is None, "groups_listed was called twice"
        assert not self.groups, "groups_listed came after a group_read"
        self.listed = list(groups)
        self.events.append(("groups", self.mark()))

    def group_read(self, group: SourceGroup) -> None:
        """Note one group with its members (once per group, after the list)."""
        assert self.listed is not None, "group_read came before groups_listed"
        assert group.id not in {g.id for g in self.groups}, f"group {group.id} was announced twice"
        self.groups.append(group)
        self.events.append((f"group:{group.id}", self.mark()))

    def at(self, kind: str) -> int:
        """The mark of the first event of ``kind`` ("users", "groups", or "group" for any group)."""
        return next(mark for name, mark in self.events if name == kind or name.startswith(f"{kind}:"))

    def group_marks(self) -> list[int]:
        """The marks of every group_read, in order."""
        return [mark for name, mark in self.events if name.startswith("group:")]


def assert_announced_the_read(recorder: Recorder, read: SourceRead) -> None:
    """Every announcement equals the final read: its users (in order), its groups as listed
    (members aside), and each group with its members; nothing more, nothing less."""
    assert recorder.users == read.users
    assert recorder.listed is not None
    heads = [replace(g, members=(), groups=()) for g in read.groups]
    assert sorted(recorder.listed, key=lambda g: g.id) == sorted(heads, key=lambda g: g.id)
    assert sorted(recorder.groups, key=lambda g: g.id) == sorted(read.groups, key=lambda g: g.id)
    assert all(g.members == () for g in recorder.listed)
