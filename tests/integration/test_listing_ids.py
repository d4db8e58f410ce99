"""A full listing's Identity Center ids: one string per id for the users, member sets and cache that hold it."""

from __future__ import annotations

import asyncio

from pydantic import SecretStr

from syncd.target.scim import ScimTarget
from tests.conftest import TOKEN, Workspace, make_directory
from tests.integration.test_cli_sync import sync


def test_the_listing_ids_are_the_strings_its_users_and_member_sets_hold(workspace: Workspace) -> None:
    """user_ids maps each listed id to the very string its LiveUser and the member sets hold; forget drops them."""
    workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
    assert 0 == sync(workspace)[0]

    async def read() -> None:
        target = ScimTarget(workspace.emu.url, SecretStr(TOKEN))
        try:
            users = await target.list_users()
            (group,) = await target.list_groups()
            members = await target.list_member_ids(group.target_id)
            ids = target.user_ids
            assert sorted(ids) == sorted(u.target_id for u in users)
            assert all(ids[u.target_id] is u.target_id for u in users)
            assert all(ids[m] is m for m in members)
            assert sorted(members) == sorted(ids)
            target.forget_user_ids()
            assert {} == dict(target.user_ids)
        finally:
            await target.aclose()

    asyncio.run(read())
