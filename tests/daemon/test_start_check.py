"""`syncd run` proves the Identity Center token at start, and /readyz says so when it was refused."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Workspace
from tests.daemon.conftest import ThreadDaemon, probe, schedule, wait_for


def test_a_refused_token_at_start_keeps_readyz_at_503_saying_why(
    workspace: Workspace,
    directory: Callable[..., dict[str, Any]],
    thread_daemon: Callable[[Path], ThreadDaemon],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A daemon whose SCIM token is refused at start serves /readyz 503 naming target.scim_token and the 401."""
    workspace.write(directory(2))
    config = workspace.configure(schedule(interval="1h"))
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", "a-token-identity-center-refuses")
    daemon = thread_daemon(config)
    answer = wait_for(lambda: probe(daemon.port, "/readyz"), what="/readyz")
    body = answer.json()
    assert 503 == answer.status_code
    assert "the check of Identity Center at start failed: target.scim_token:" in body["reason"]
    assert "(401)" in body["reason"]
    assert "a-token-identity-center-refuses" not in answer.text
