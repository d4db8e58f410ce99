"""A full resync's read of Identity Center, made while the source is being read.

Users, groups and the member lists of the groups the cache knows are read as soon as the run
starts, side by side with the source (both are reads; the plan and the guard wait for both); the
member lists start once the groups are listed, while the users are still being paged.
The member lists of groups matched only once the source's snapshot is known (adopted by name
or externalId) are read after it (:func:`read_matched_members`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet

import structlog

from syncd.aio import bounded
from syncd.live import LiveGroup, LiveState, LiveUser
from syncd.matching import Matches
from syncd.model import User
from syncd.target.scim import ScimTarget


log = structlog.get_logger("syncd.live_read")

MEMBER_LISTS = 8
"""Member lists read side by side (the pacer sets the rate)."""


class Expected(Mapping[str, User]):
    """The source users live users are compared with: empty until the source's snapshot is built.

    The listing keeps a live user that equals its source user as a reference to it (see
    :class:`~syncd.live.LiveUser`): pages read after the snapshot is known save their copy at
    once, the others are swapped by :func:`share_equal_users`.
    """

    def __init__(self) -> None:
        self.users: Mapping[str, User] = {}

    def __getitem__(self, source_id: str) -> User:
        return self.users[source_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self.users)

    def __len__(self) -> int:
        return len(self.users)


async def list_live(
    target: ScimTarget, user_owners: Mapping[str, str], group_targets: Mapping[str, str], expected: Expected
) -> LiveState:
    """Users, groups, and the members of the cached groups Identity Center still holds.

    ``user_owners``: Identity Center id → source id of the cached users (managers are read back
    as source ids); ``group_targets``: source id → Identity Center id of the cached groups.
    """

    async def groups_and_members() -> tuple[list[LiveGroup], dict[str, AbstractSet[str]]]:
        # Member lists need only the group listing: they start while the users are still being paged
        # (one page at a time behind its cursor, 100 users a latency), not after.
        groups = await target.list_groups()
        present = {g.target_id for g in groups}
        ids = sorted({tid for tid in group_targets.values() if tid in present})
        members = await bounded(ids, target.list_member_ids, MEMBER_LISTS)
        return groups, dict(zip(ids, members, strict=True))

    users, (groups, members) = await asyncio.gather(
        target.list_users(expected=expected, known_ids=user_owners.keys(), owners=user_owners),
        groups_and_members(),
    )
    live = LiveState(users=users, groups=groups)
    live.members = members
    return live


async def read_matched_members(target: ScimTarget, live: LiveState, matches: Matches) -> None:
    """Read the member lists of the matched groups not read yet (those adopted by this run)."""
    ids = sorted({g.target_id for g in matches.groups.values()} - live.members.keys())
    if ids:
        members = await bounded(ids, target.list_member_ids, MEMBER_LISTS)
        live.members.update(zip(ids, members, strict=True))
    log.info(
        "target.read",
        users=len(live.users),
        groups=len(live.groups),
        member_lists=len(live.members),
        read_after=len(ids),
    )


def share_equal_users(live: LiveState, users: Mapping[str, User]) -> None:
    """Keep each live user that equals its source user as a reference to it (one copy, not two)."""
    for index, found in enumerate(live.users):
        user = users.get(found.external_id) if found.external_id is not None else None
        if user is not None and found.holds(user):
            live.users[index] = LiveUser(found.target_id, user.source_id, user.user_name, same=user)
