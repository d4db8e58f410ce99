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
    found_at: dict[str, int] = field(default_factory=dict)
    """Each user found, by id: the index in ``events`` of the users_found that brought it."""
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
            self.found_at[user.id] = len(self.events)
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
    """Every announcement equals the final read: its users (in order), each user found (once)
    as the read holds it, its groups as listed (members aside), and each group with its members;
    nothing more, nothing less; and every member of a group that the read returns was announced
    (found, or in users_read) before that group's group_read."""
    by_id = {user.id: user for user in read.users}
    assert all(by_id.get(user.id) == user for user in recorder.found), "a user found is not the read's"
    if recorder.users is None:
        assert sorted(u.id for u in recorder.found) == sorted(by_id)
    else:
        assert recorder.users == read.users
    users_at = next((i for i, (name, _) in enumerate(recorder.events) if name == "users"), len(recorder.events))
    for index, (name, _) in enumerate(recorder.events):
        if not name.startswith("group:") or index > users_at:
            continue
        group = next(g for g in recorder.groups if g.id == name.removeprefix("group:"))
        late = [m for m in group.members if m in by_id and recorder.found_at.get(m, index) >= index]
        assert not late, f"group {group.id} was announced before its members {late[:3]}"
    assert recorder.listed is not None
    heads = [replace(g, members=(), groups=()) for g in read.groups]
    assert sorted(recorder.listed, key=lambda g: g.id) == sorted(heads, key=lambda g: g.id)
    assert sorted(recorder.groups, key=lambda g: g.id) == sorted(read.groups, key=lambda g: g.id)
    assert all(g.members == () for g in recorder.listed)
