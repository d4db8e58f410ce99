"""Deletes in two steps (`safety.delete_after`, default 7d): deactivate or empty now, delete later.

Time is not waited for: a test that needs the grace period over moves the cache's record of
when the object left the source back by eight days, as if the days had passed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from typer.testing import CliRunner

from syncd.cache import Cache
from syncd.cli import app
from tests.conftest import Workspace, make_directory
from tests.integration.test_cli_sync import emulator_view, sync


def age(ws: Workspace, table: str, days: int = 8) -> None:
    """Make every object pending deletion have left the source ``days`` days ago."""
    with Cache.open(ws.cache_url) as cache, cache.engine.begin() as connection:
        connection.execute(
            sa.text(f"UPDATE {table} SET gone_since = :t WHERE gone_since IS NOT NULL"),
            {"t": datetime.now(UTC) - timedelta(days=days)},
        )


def leave(data: dict, user_id: str) -> dict:
    """``data`` without the user ``user_id`` (and out of its groups)."""
    data["users"] = [u for u in data["users"] if u["id"] != user_id]
    for group in data["groups"]:
        group["members"] = [m for m in group["members"] if m != user_id]
    return data


def test_a_leaver_is_deactivated_now_and_deleted_after_delete_after(workspace: Workspace) -> None:
    """A user gone from the source is deactivated at once (same id, memberships kept) and deleted once 7 days passed."""
    data = make_directory(12, {"eng": list(range(12))})
    workspace.write(data)
    sync(workspace)
    before = emulator_view(workspace)["users"]["u0003"]["id"]
    workspace.write(leave(data, "u0003"))
    code, out = sync(workspace)
    assert (0, 1, 0) == (code, out["changes"]["users_deactivated"], out["changes"]["users_deleted"]), out["errors"]
    view = emulator_view(workspace)
    assert (before, False) == (view["users"]["u0003"]["id"], view["users"]["u0003"]["active"])
    assert "u0003" in view["groups"]["eng"]

    code, out = sync(workspace)
    assert (0, 0) == (code, sum(out["changes"].values())), "within the grace period nothing more happens"

    age(workspace, "users")
    code, out = sync(workspace)
    assert (0, 0, 1) == (code, out["changes"]["users_deactivated"], out["changes"]["users_deleted"]), out["errors"]
    assert "u0003" not in emulator_view(workspace)["users"]
    with Cache.open(workspace.cache_url) as cache:
        results = [e.result for _, e in cache.audit() if e.source_id == "u0003" and e.action.endswith("_user")]
    assert "grace period is over" in results[0]
    assert "deleted after 7d" in results[1]


def test_a_returner_within_the_grace_period_keeps_its_id(workspace: Workspace) -> None:
    """A user who comes back within delete_after is reactivated with the same Identity Center id, in its groups."""
    data = make_directory(12, {"eng": list(range(12))})
    workspace.write(data)
    sync(workspace)
    before = emulator_view(workspace)["users"]["u0003"]["id"]
    workspace.write(leave(json.loads(json.dumps(data)), "u0003"))
    sync(workspace)
    workspace.write(data)
    workspace.emu.stats.reset()
    code, out = sync(workspace)
    assert (0, 1) == (code, out["changes"]["users_updated"]), out["errors"]
    view = emulator_view(workspace)
    assert (before, True) == (view["users"]["u0003"]["id"], view["users"]["u0003"]["active"])
    assert "u0003" in view["groups"]["eng"]
    assert 1 == workspace.emu.stats.writes
    with Cache.open(workspace.cache_url) as cache:
        assert [] == cache.pending_deletions()


def test_a_group_gone_loses_its_members_now_and_is_deleted_later(workspace: Workspace) -> None:
    """A group gone from the source is emptied at once, kept, and deleted after the grace period."""
    data = make_directory(3, {"eng": [0, 1, 2], "ops": [0]})
    data["groups"] += [{"id": f"g-team{i}", "name": f"team{i}", "members": [], "groups": []} for i in range(10)]
    workspace.write(data)
    sync(workspace)
    ops = workspace.emu.state.find_group("ops")
    assert ops is not None
    data["groups"] = [g for g in data["groups"] if g["id"] != "g-ops"]
    workspace.write(data)
    code, out = sync(workspace)
    assert (0, 1, 0) == (code, out["changes"]["members_removed"], out["changes"]["groups_deleted"]), out["errors"]
    assert ([], ops["id"]) == (emulator_view(workspace)["groups"]["ops"], workspace.emu.state.find_group("ops")["id"])

    age(workspace, "groups")
    code, out = sync(workspace)
    assert (0, 1) == (code, out["changes"]["groups_deleted"]), out["errors"]
    assert workspace.emu.state.find_group("ops") is None


def test_a_group_that_comes_back_keeps_its_id(workspace: Workspace) -> None:
    """A group back in the source within the grace period keeps its id and gets its members back."""
    data = make_directory(12, {"eng": list(range(12)), "ops": [0, 1]})
    data["groups"] += [{"id": f"g-team{i}", "name": f"team{i}", "members": [], "groups": []} for i in range(10)]
    workspace.write(data)
    sync(workspace)
    ops = workspace.emu.state.find_group("ops")
    assert ops is not None
    workspace.write({**data, "groups": [g for g in data["groups"] if g["id"] != "g-ops"]})
    code, out = sync(workspace)
    assert (0, 2, []) == (code, out["changes"]["members_removed"], emulator_view(workspace)["groups"]["ops"])
    workspace.write(data)
    code, out = sync(workspace)
    assert (0, 2) == (code, out["changes"]["members_added"]), out["errors"]
    back = workspace.emu.state.find_group("ops")
    assert back is not None
    assert (ops["id"], ["u0000", "u0001"]) == (back["id"], emulator_view(workspace)["groups"]["ops"])


def test_status_lists_what_is_pending_deletion_and_when(workspace: Workspace) -> None:
    """`syncd status` names each user or group pending deletion and the time its delete is due."""
    data = make_directory(12, {"eng": list(range(12))})
    workspace.write(data)
    sync(workspace)
    workspace.write(leave(data, "u0003"))
    sync(workspace)
    runner = CliRunner()
    shown = runner.invoke(app, ["status", "--config", str(workspace.config)])
    assert "Pending deletion: user 'user3@example.com'" in shown.stdout
    listed = json.loads(runner.invoke(app, ["status", "--config", str(workspace.config), "--json"]).stdout)
    (item,) = listed["pending_deletion"]
    gone, due = datetime.fromisoformat(item["gone_since"]), datetime.fromisoformat(item["delete_at"])
    assert ("user", "u0003", timedelta(days=7)) == (item["kind"], item["source_id"], due - gone)


def test_delete_after_zero_deletes_at_once(workspace: Workspace) -> None:
    """With delete_after = "0" a user gone from the source is deleted in the same run, as before."""
    workspace.configure('delete_after = "0"')
    data = make_directory(12, {"eng": list(range(12))})
    workspace.write(data)
    sync(workspace)
    workspace.write(leave(data, "u0003"))
    code, out = sync(workspace)
    assert (0, 0, 1) == (code, out["changes"]["users_deactivated"], out["changes"]["users_deleted"])
    assert "u0003" not in emulator_view(workspace)["users"]
