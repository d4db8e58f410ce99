"""The group PATCH syncd sends: one operation per changed attribute, each with its path."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2
from pydantic import SecretStr

from syncd.model import Group
from syncd.target.scim import ScimTarget


def _sent(before: dict[str, Any] | None, group: Group) -> list[list[dict[str, Any]]]:
    """The Operations of every PATCH ``update_group`` sends for ``before`` → ``group``."""
    bodies: list[list[dict[str, Any]]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        bodies.append(json.loads(request.content)["Operations"])
        return httpx2.Response(204)

    async def run() -> None:
        target = ScimTarget("https://scim.example/scim/v2", SecretStr("t"), transport=httpx2.MockTransport(handler))
        try:
            await target.update_group("gid", group, before)
        finally:
            await target.aclose()

    asyncio.run(run())
    return bodies


def test_a_rename_sends_only_display_name_with_its_path() -> None:
    """A rename is one replace of path displayName; the unchanged externalId is not sent."""
    ops = _sent({"externalId": "g1", "displayName": "old"}, Group("g1", "new"))
    assert [[{"op": "replace", "path": "displayName", "value": "new"}]] == ops


def test_an_adoption_sets_external_id_alone() -> None:
    """An adopted group whose name already matches gets one replace of path externalId."""
    ops = _sent({"externalId": None, "displayName": "eng"}, Group("g1", "eng"))
    assert [[{"op": "replace", "path": "externalId", "value": "g1"}]] == ops


def test_both_changed_are_two_operations_each_with_a_path() -> None:
    """When both differ (or nothing is known), each attribute is its own operation, never one without path."""
    for before in ({"externalId": "x", "displayName": "old"}, None):
        (ops,) = _sent(before, Group("g1", "new"))
        assert [("displayName", "new"), ("externalId", "g1")] == [(o["path"], o["value"]) for o in ops]


def test_nothing_changed_sends_nothing() -> None:
    """A group Identity Center already holds as wanted costs no request."""
    assert [] == _sent({"externalId": "g1", "displayName": "eng"}, Group("g1", "eng"))
