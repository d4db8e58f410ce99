"""Fixtures for the emulator's tests: a running emulator and an httpx2 client speaking to it."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import httpx2
import pytest

from syncd.emulator import RunningEmulator, running_emulator


EMU_TOKEN = "emulator-test-token"
USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE_URN = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
PATCH_URN = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_URN = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def emu() -> Iterator[RunningEmulator]:
    """An unthrottled emulator on a free port."""
    with running_emulator(token=EMU_TOKEN) as running:
        yield running


@pytest.fixture
def scim(emu: RunningEmulator) -> Iterator[httpx2.Client]:
    """A client with the right bearer token and the emulator's base URL."""
    with httpx2.Client(base_url=emu.url, headers={"Authorization": f"Bearer {EMU_TOKEN}"}, timeout=10) as client:
        yield client


@pytest.fixture
def user_body() -> Callable[..., dict[str, Any]]:
    """Build a valid POST /Users body; keyword arguments override or add top-level attributes."""

    def build(n: int = 0, **overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "schemas": [USER_URN],
            "userName": f"user{n}@example.com",
            "displayName": f"User {n}",
            "name": {"givenName": "User", "familyName": f"Number{n}"},
            "emails": [{"value": f"user{n}@example.com", "type": "work", "primary": True}],
            "externalId": f"ext-{n}",
        }
        body.update(overrides)
        return body

    return build


@pytest.fixture
def create_user(scim: httpx2.Client, user_body: Callable[..., dict[str, Any]]) -> Callable[..., str]:
    """POST a valid user over HTTP and return its id."""

    def create(n: int = 0, **overrides: Any) -> str:
        response = scim.post("Users", json=user_body(n, **overrides))
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return create


@pytest.fixture
def create_group(scim: httpx2.Client) -> Callable[..., str]:
    """POST a group over HTTP (optionally with members) and return its id."""

    def create(name: str = "Engineering", members: list[str] | None = None, **extra: Any) -> str:
        body: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": name, **extra}
        if members is not None:
            body["members"] = [{"value": m} for m in members]
        response = scim.post("Groups", json=body)
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    return create


@pytest.fixture
def patch_body() -> Callable[..., dict[str, Any]]:
    """Wrap operations in a PatchOp envelope."""

    def build(*operations: dict[str, Any]) -> dict[str, Any]:
        return {"schemas": [PATCH_URN], "Operations": list(operations)}

    return build


_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")


@pytest.fixture
def aws_error() -> Callable[[httpx2.Response, int], dict[str, Any]]:
    """Assert a response is an AWS-shaped SCIM error with the given status; return its body."""

    def check(response: httpx2.Response, status: int) -> dict[str, Any]:
        assert status == response.status_code, response.text
        assert response.headers["content-type"] == "application/json"
        body: dict[str, Any] = response.json()
        assert {"schema", "schemas", "detail", "status", "exceptionRequestId", "timeStamp"} == set(body)
        assert [ERROR_URN] == body["schema"] == body["schemas"]
        assert str(status) == body["status"]
        assert _UUID.match(body["exceptionRequestId"])
        assert body["exceptionRequestId"] == response.headers["x-amzn-RequestId"]
        assert _TIMESTAMP.match(body["timeStamp"])
        return body

    return check
