"""Managers reach Identity Center as the manager's Identity Center id, and stay still once there."""

from __future__ import annotations

from tests.conftest import Workspace, make_directory
from tests.integration.cli import sync


ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def test_managers_are_sent_as_identity_center_ids_and_later_runs_write_nothing(workspace: Workspace) -> None:
    """A new report chain lands in one run with each manager's Identity Center id; reruns and a resync are still."""
    data = make_directory(4)
    data["users"][1]["enterprise"] = {"manager": "u0000"}  # by source id
    data["users"][2]["enterprise"] = {"manager": "user1@example.com"}  # by userName
    data["users"][3]["enterprise"] = {"manager": "Somebody Unsynced"}  # cannot be referenced
    workspace.write(data)
    code, out = sync(workspace.config)
    assert (0, "ok") == (code, out["status"]), out["errors"]
    held = {u["externalId"]: u for u in workspace.emu.state.users}
    ids = {sid: u["id"] for sid, u in held.items()}
    assert ids["u0000"] == held["u0001"][ENTERPRISE]["manager"]["value"]
    assert ids["u0001"] == held["u0002"][ENTERPRISE]["manager"]["value"]
    assert "manager" not in held["u0003"].get(ENTERPRISE, {})
    assert 4 == out["changes"]["users_created"]

    writes = workspace.emu.stats.writes
    code, out = sync(workspace.config)
    assert (0, writes) == (code, workspace.emu.stats.writes)
    code, out = sync(workspace.config, "--full-resync")
    assert (0, "ok", writes) == (code, out["status"], workspace.emu.stats.writes), out
