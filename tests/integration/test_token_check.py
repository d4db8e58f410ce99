"""A revoked SCIM token fails the next run, changes or not, in one request, saying which key to fix."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import SecretStr

from syncd.errors import TargetAuthError, TargetError
from syncd.target.scim import ScimTarget
from tests.conftest import TOKEN, Workspace, make_directory
from tests.integration.test_cli_sync import sync


def _revoked_run(workspace: Workspace) -> dict[str, Any]:
    """Revoke the token, sync: the run fails (exit 4) after exactly one request, refused; its --json."""
    workspace.emu.app.rotate_token("a-new-token-from-the-console")
    workspace.emu.stats.reset()
    code, out = sync(workspace)
    assert (4, "failed") == (code, out["status"])
    assert {401: 1} == workspace.emu.stats.by_status
    return out


def test_a_revoked_token_fails_a_run_with_no_change_in_one_request(workspace: Workspace) -> None:
    """No change and a revoked token: the run fails (exit 4) after one refused read, naming target.scim_token."""
    workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
    assert 0 == sync(workspace)[0]
    out = _revoked_run(workspace)
    assert 1 == out["requests"]["target"]
    assert "fix target.scim_token" in out["errors"][0]


def test_a_revoked_token_meets_a_change_of_many_writes_with_one_request(workspace: Workspace) -> None:
    """Forty users to create under a revoked token: one refused request, not a burst; nothing is cached as done."""
    workspace.write(make_directory(1))
    assert 0 == sync(workspace)[0]
    workspace.write(make_directory(41))
    out = _revoked_run(workspace)
    assert 0 == out["changes"]["users_created"]
    workspace.emu.app.rotate_token(TOKEN)
    code, out = sync(workspace)
    assert (0, 40) == (code, out["changes"]["users_created"]), "the next run with a good token does the work"


def test_a_plan_with_a_revoked_token_fails(workspace: Workspace) -> None:
    """A dry run proves the token too: with a revoked one it fails instead of showing a green plan."""
    workspace.write(make_directory(2))
    assert 0 == sync(workspace)[0]
    workspace.emu.app.rotate_token("a-new-token-from-the-console")
    code, out = sync(workspace, "--dry-run")
    assert (4, "failed") == (code, out["status"])
    assert "fix target.scim_token" in " ".join(out["errors"])


def test_check_every_spares_the_read_while_the_token_was_proven_recently(workspace: Workspace) -> None:
    """With target.check_every = "1h", a no-change run within the hour of a proven token sends nothing."""
    text = workspace.config.read_text().replace("[cache]", 'check_every = "1h"\n\n[cache]')
    workspace.config.write_text(text)
    workspace.write(make_directory(2))
    assert 0 == sync(workspace)[0]
    workspace.emu.stats.reset()
    code, out = sync(workspace)
    assert (0, 0, 0) == (code, out["requests"]["target"], workspace.emu.stats.total)


def test_a_refusal_stops_the_sending_of_every_call_waiting_on_it(workspace: Workspace) -> None:
    """Sixteen concurrent calls on an unproven, refused token: one request is sent; the others fail unsent."""
    emu = workspace.emu

    async def burst(token: str) -> list[Any]:
        target = ScimTarget(emu.url, SecretStr(token))
        try:
            calls = (target.find_user(user_name=f"user{i}@example.com") for i in range(16))
            return list(await asyncio.gather(*calls, return_exceptions=True))
        finally:
            await target.aclose()

    outcomes = asyncio.run(burst("not-the-token"))
    assert {401: 1} == emu.stats.by_status
    assert all(isinstance(o, TargetAuthError) for o in outcomes)
    assert 15 == sum("not sent" in str(o) for o in outcomes)
    assert all("fix target.scim_token" in str(o) for o in outcomes)
    emu.stats.reset()
    assert [None] * 16 == asyncio.run(burst(TOKEN)), "a good token: every call goes through"
    assert {200: 16} == emu.stats.by_status


def test_the_probe_is_one_read_that_finds_nobody(workspace: Workspace) -> None:
    """probe() sends one filtered GET /Users and proves the token; a wrong URL is named as target.scim_url."""
    workspace.write(make_directory(2))
    assert 0 == sync(workspace)[0]
    emu = workspace.emu
    emu.stats.reset()

    async def probe(url: str) -> ScimTarget:
        target = ScimTarget(url, SecretStr(TOKEN))
        try:
            await target.probe()
        finally:
            await target.aclose()
        return target

    assert asyncio.run(probe(emu.url)).proven
    assert {"GET /Users": 1} == emu.stats.by_method
    with pytest.raises(TargetError, match=r"fix target\.scim_url"):
        asyncio.run(probe(emu.url.replace("/scim/v2/", "/not-scim/")))
