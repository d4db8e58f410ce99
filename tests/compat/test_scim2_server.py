"""syncd's SCIM client against scim2-server, an independent SCIM implementation.

The emulator is ours; this checks that what we send is plain SCIM another server understands:
create, read, update (PUT), delete, group rename and membership PATCH. scim2-server follows the
RFC where Identity Center does not, so member removal uses the RFC's path-filter form here.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx2
import pytest
from pydantic import SecretStr
from scim2_models import Pagination, ScimProvider
from scim2_server.applications.wsgi import WSGIApplication
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config

from syncd.model import Group, User
from syncd.target.scim import ScimTarget


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output clean."""


@pytest.fixture
def scim2_server_url() -> Iterator[str]:
    """scim2-server with cursor pagination, served over real HTTP on a free port."""
    config = load_default_service_provider_config()
    config.pagination = Pagination(cursor=True, index=True, default_page_size=100, max_page_size=100)
    provider = ScimProvider.from_discovery(
        load_default_schemas().values(), load_default_resource_types().values(), config=config
    )
    app = WSGIApplication(InMemoryStorage(), provider, ScimService(provider, secret="compat-test"))
    server = make_server("127.0.0.1", 0, app, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v2"
    finally:
        server.shutdown()
        server.server_close()


def members_of(url: str, group_id: str) -> set[str]:
    """A group's members as scim2-server reports them on GET (Identity Center never does)."""
    body = httpx2.get(f"{url}/Groups/{group_id}").json()
    return {m["value"] for m in body.get("members") or []}


def test_crud_and_membership_patch(scim2_server_url: str) -> None:
    """Users and groups are created, read, updated, re-membered and deleted as scim2-server expects."""
    url = scim2_server_url

    async def scenario() -> dict[str, object]:
        target = ScimTarget(url, SecretStr("unused"), requests_per_second=1000, remove_style="filter")
        try:
            alice = await target.create_user(
                User("s1", "alice@example.com", "Alice A", "Alice", "A", email="alice@example.com")
            )
            bob = await target.create_user(User("s2", "bob@example.com", "Bob B", "Bob", "B", email="bob@example.com"))
            renamed = User(
                "s1",
                "alice.a@example.com",
                "Alice A",
                "Alice",
                "A",
                email="alice@example.com",
                enterprise=(("department", "R&D"),),
            )
            await target.replace_user(alice.target_id, renamed)
            group = await target.create_group(Group("g1", "eng"), [alice.target_id])
            await target.patch_members(group.target_id, add=[bob.target_id])
            after_add = members_of(url, group.target_id)
            await target.patch_members(group.target_id, remove=[alice.target_id])
            after_remove = members_of(url, group.target_id)
            await target.update_group(group.target_id, Group("g1", "engineering"))
            users = {u.external_id: u for u in await target.list_users()}
            groups = await target.list_groups()
            found = await target.find_user(user_name="bob@example.com")
            await target.delete_user(bob.target_id)
            await target.delete_group(group.target_id)
            left = (len(await target.list_users()), len(await target.list_groups()))
        finally:
            await target.aclose()
        return {
            "ids": (alice.target_id, bob.target_id),
            "after_add": after_add,
            "after_remove": after_remove,
            "alice": users["s1"].data,
            "groups": [(g.external_id, g.display_name) for g in groups],
            "found": found.target_id if found else None,
            "left": left,
        }

    result = asyncio.run(scenario())
    alice_id, bob_id = result["ids"]  # type: ignore[misc]
    assert {alice_id, bob_id} == result["after_add"]
    assert {bob_id} == result["after_remove"]
    assert ("alice.a@example.com", {"department": "R&D"}) == (
        result["alice"]["userName"],  # type: ignore[index]
        result["alice"]["enterprise"],  # type: ignore[index]
    )
    assert [("g1", "engineering")] == result["groups"]
    assert bob_id == result["found"]
    assert (1, 0) == result["left"]
