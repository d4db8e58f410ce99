"""Assembling the :class:`~syncd.model.SourceRead` a connector returns from its kept directory."""

from __future__ import annotations

from collections.abc import Callable

from connectors.kit.kept import KeptDirectory, PackedGroup, PackedUser
from syncd.model import Skipped, SourceGroup, SourceRead, SourceUser


__all__ = ["assemble"]


def assemble(
    directory: KeptDirectory,
    *,
    user: Callable[[str, PackedUser], SourceUser | Skipped],
    group: Callable[[str, PackedGroup], SourceGroup],
    skipped: list[Skipped],
    requests: int,
    prefiltered: bool = False,
) -> SourceRead:
    """The read: users in id order (``user`` may skip one, with its reason), groups as kept,
    the records skipped while reading, the requests it cost, and the directory as next state.

    ``prefiltered``: the connector already limited users to members of synced groups.
    """
    read = SourceRead(skipped=skipped, prefiltered=prefiltered, requests=requests)
    for user_id in sorted(directory.users):
        made = user(user_id, directory.users[user_id])
        if isinstance(made, Skipped):
            read.skipped.append(made)
        else:
            read.users.append(made)
    read.groups.extend(group(group_id, packed) for group_id, packed in directory.groups.items())
    read.state = directory.dump()
    return read
