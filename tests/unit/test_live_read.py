"""A full resync's read of Identity Center overlaps its own parts: member lists do not wait for the user listing."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

from syncd.live import LiveGroup, LiveUser
from syncd.live_read import Expected, list_live
from syncd.memberset import MemberSet
from syncd.target.scim import ScimTarget


class PagedTarget:
    """Users in ten pages, each a turn of the event loop (a cursor waits for the page before it); groups in one."""

    def __init__(self) -> None:
        self.events: list[str] = []

    async def list_users(self, **_: Any) -> list[LiveUser]:
        for page in range(10):
            await asyncio.sleep(0)
            self.events.append(f"users page {page}")
        self.events.append("users listed")
        return []

    async def list_groups(self) -> list[LiveGroup]:
        self.events.append("groups listed")
        return [LiveGroup("t1", "g1", "one"), LiveGroup("t2", "g2", "two")]

    async def list_member_ids(self, group_id: str) -> MemberSet:
        self.events.append(f"members of {group_id}")
        return MemberSet([f"{group_id}-member"])


def test_member_lists_start_while_users_are_still_being_paged() -> None:
    """The members of cached groups are read as soon as the groups are listed, before the last user page."""
    target = PagedTarget()
    group_targets: Mapping[str, str] = {"g1": "t1", "g2": "t2", "gone": "t3"}  # t3 was deleted by hand

    live = asyncio.run(list_live(cast(ScimTarget, target), {}, group_targets, Expected()))

    assert target.events.index("members of t1") < target.events.index("users listed")
    assert {"t1", "t2"} == live.members.keys()  # a group Identity Center no longer holds is not read
    assert [g.target_id for g in live.groups] == ["t1", "t2"]
