"""`syncd sync` driven through its CLI against the emulator over real HTTP."""

from __future__ import annotations

import json
from typing import Any

from typer.testing import CliRunner

from syncd.cli import app
from tests.conftest import Workspace, make_directory


runner = CliRunner()


def sync(ws: Workspace, *args: str) -> tuple[int, dict[str, Any]]:
    """Run `syncd sync --json` and return its exit code and JSON."""
    result = runner.invoke(app, ["--log-level", "WARNING", "sync", "--config", str(ws.config), "--json", *args])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.output
    return result.exit_code, json.loads(lines[-1])


def emulator_view(ws: Workspace) -> dict[str, Any]:
    """What Identity Center holds, keyed by source ids (externalId)."""
    state = ws.emu.state
    users = {u["externalId"]: u for u in state.users if u.get("externalId")}
    by_id = {u["id"]: u.get("externalId") for u in state.users}
    groups = {g["displayName"]: sorted(by_id[m] for m in state.members(g["id"])) for g in state.groups}
    return {"users": users, "groups": groups}


class TestConverge:
    def test_first_sync_converges_to_the_source(self, workspace: Workspace) -> None:
        """A first sync makes Identity Center hold exactly the source's users, groups and members."""
        data = make_directory(5, {"eng": [0, 1, 2], "ops": [3]})
        data["groups"].append({"id": "g-all", "name": "all", "members": ["u0004"], "groups": ["g-eng", "g-ops"]})
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, "ok") == (code, out["status"])
        view = emulator_view(workspace)
        assert {f"u{i:04d}" for i in range(5)} == set(view["users"])
        assert {
            "eng": ["u0000", "u0001", "u0002"],
            "ops": ["u0003"],
            "all": ["u0000", "u0001", "u0002", "u0003", "u0004"],
        } == view["groups"]
        assert "User Number3" == view["users"]["u0003"]["displayName"]

    def test_a_run_with_no_change_makes_one_read_to_prove_the_token(self, workspace: Workspace) -> None:
        """A run with no source change writes nothing and sends Identity Center one read: the token check."""
        workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
        sync(workspace)
        workspace.emu.stats.reset()
        code, out = sync(workspace)
        assert (0, 1, {"GET /Users": 1}) == (code, out["requests"]["target"], workspace.emu.stats.by_method)
        assert 0 == sum(out["changes"].values())

    def test_rename_keeps_the_identity_center_id(self, workspace: Workspace) -> None:
        """Renaming a user at the source updates it in place: same Identity Center id, new userName."""
        data = make_directory(2, {"eng": [0, 1]})
        workspace.write(data)
        sync(workspace)
        before = emulator_view(workspace)["users"]["u0001"]["id"]
        data["users"][1]["user_name"] = data["users"][1]["email"] = "renamed@example.com"
        workspace.write(data)
        code, out = sync(workspace)
        after = emulator_view(workspace)["users"]["u0001"]
        assert (0, before, "renamed@example.com") == (code, after["id"], after["userName"])
        assert 1 == out["changes"]["users_updated"]

    def test_large_group_is_built_in_batches_of_at_most_100(self, workspace: Workspace) -> None:
        """A 250-member group lands whole: one create with 100 members, then PATCHes of at most 100."""
        workspace.write(make_directory(250, {"big": list(range(250))}))
        code, out = sync(workspace)
        assert 0 == code
        assert 250 == len(emulator_view(workspace)["groups"]["big"])
        assert 2 == workspace.emu.stats.by_method["PATCH /Groups"]
        assert 250 == out["changes"]["members_added"]

    def test_disabled_user_is_deactivated_not_deleted(self, workspace: Workspace) -> None:
        """A user disabled at the source stays in Identity Center with active=false."""
        data = make_directory(3, {"eng": [0, 1, 2]})
        workspace.write(data)
        sync(workspace)
        data["users"][2]["active"] = False
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, 1) == (code, out["changes"]["users_deactivated"])
        assert emulator_view(workspace)["users"]["u0002"]["active"] is False


class TestSafety:
    def test_losing_half_the_users_is_refused(self, workspace: Workspace) -> None:
        """A source that loses half its users is refused with exit 3 and nothing is deleted."""
        data = make_directory(10, {"eng": list(range(10))})
        workspace.write(data)
        sync(workspace)
        workspace.write(make_directory(5, {"eng": list(range(5))}))
        workspace.emu.stats.reset()
        code, out = sync(workspace)
        assert (3, "refused") == (code, out["status"])
        assert "--allow-deletions" in out["errors"][0]
        assert (10, 0) == (len(workspace.emu.state.users), workspace.emu.stats.writes)

    def test_allow_deletions_applies_the_refused_plan(self, workspace: Workspace) -> None:
        """--allow-deletions lets a large deletion through for one run."""
        workspace.configure('delete_after = "0"')
        workspace.write(make_directory(10, {"eng": list(range(10))}))
        sync(workspace)
        workspace.write(make_directory(5, {"eng": list(range(5))}))
        code, out = sync(workspace, "--allow-deletions")
        assert (0, 5, 5) == (code, out["changes"]["users_deleted"], len(workspace.emu.state.users))

    def test_unreadable_source_writes_nothing(self, workspace: Workspace) -> None:
        """A source that cannot be read fails the run (exit 5, source unavailable) before any write."""
        workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
        sync(workspace)
        workspace.export.write_text("{not json", encoding="utf-8")
        workspace.emu.stats.reset()
        code, out = sync(workspace)
        assert (5, "failed", 0) == (code, out["status"], workspace.emu.stats.total)
        assert "not valid JSON" in out["errors"][0]
        assert 3 == len(workspace.emu.state.users)

    def test_empty_source_is_refused(self, workspace: Workspace) -> None:
        """A source that suddenly returns nobody (an IdP outage) is refused, not obeyed."""
        workspace.write(make_directory(20, {"eng": list(range(20))}))
        sync(workspace)
        workspace.write({"users": [], "groups": []})
        code, _ = sync(workspace)
        assert (3, 20, 1) == (code, len(workspace.emu.state.users), len(workspace.emu.state.groups))

    def test_groups_all_empty_is_refused(self, workspace: Workspace) -> None:
        """A source whose groups all come back empty is refused with exit 3, saying how many, and nothing is removed."""
        workspace.write(make_directory(6, {"eng": [0, 1, 2, 3], "ops": [3, 4, 5]}))
        sync(workspace)
        workspace.write(make_directory(6, {"eng": [], "ops": []}))
        workspace.emu.stats.reset()
        code, out = sync(workspace)
        assert (3, "refused", 0) == (code, out["status"], workspace.emu.stats.writes)
        assert "7 of 7 managed group memberships would be removed" in out["errors"][0]
        assert {"eng": ["u0000", "u0001", "u0002", "u0003"], "ops": ["u0003", "u0004", "u0005"]} == emulator_view(
            workspace
        )["groups"]

    def test_first_adoption_of_a_suspended_user_is_not_refused(self, workspace: Workspace) -> None:
        """A first --full-resync adopting an existing user who is suspended at the source deactivates it, exit 0."""
        hand = workspace.emu.state.add_user(
            user_name="user0@example.com", display_name="Old", given_name="O", family_name="Ld"
        )
        data = make_directory(1)
        data["users"][0]["active"] = False
        workspace.write(data)
        code, out = sync(workspace, "--full-resync")
        assert (0, "ok") == (code, out["status"]), out["errors"]
        (adopted,) = workspace.emu.state.users
        assert (hand["id"], "u0000", False) == (adopted["id"], adopted["externalId"], adopted["active"])

    def test_dry_run_writes_nothing(self, workspace: Workspace) -> None:
        """--dry-run reports the changes it would make (``would_change``) and sends no write."""
        workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
        code, out = sync(workspace, "--dry-run")
        assert (0, True, 3, 0) == (
            code,
            out["dry_run"],
            out["would_change"]["users_created"],
            workspace.emu.stats.writes,
        )
        assert (0, None) == (sum(out["changes"].values()), out["run_id"])


class TestFullResync:
    def test_adopts_hand_made_user_and_leaves_unrelated_group(self, workspace: Workspace) -> None:
        """--full-resync adopts a hand-made user with a matching userName and leaves a hand-made group alone."""
        state = workspace.emu.state
        hand = state.add_user(
            user_name="USER1@example.com", display_name="Hand Made", given_name="Hand", family_name="Made"
        )
        control_tower = state.add_group(display_name="AWSControlTowerAdmins")
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        code, out = sync(workspace, "--full-resync")
        assert 0 == code
        adopted = next(u for u in state.users if u["id"] == hand["id"])
        assert ("u0001", "user1@example.com", "User Number1") == (
            adopted["externalId"],
            adopted["userName"],
            adopted["displayName"],
        )
        assert 2 == len(state.users)
        assert control_tower["id"] in {g["id"] for g in state.groups}
        assert 1 == out["changes"]["users_created"]

    def test_restores_membership_removed_by_hand(self, workspace: Workspace) -> None:
        """A membership removed by hand in Identity Center is restored by --full-resync."""
        workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
        sync(workspace)
        view = emulator_view(workspace)
        group = workspace.emu.state.find_group("eng")
        assert group is not None
        workspace.emu.state.remove_member(group["id"], view["users"]["u0001"]["id"])
        code, out = sync(workspace, "--full-resync")
        assert (0, 1) == (code, out["changes"]["members_added"])
        assert ["u0000", "u0001", "u0002"] == emulator_view(workspace)["groups"]["eng"]

    def test_recreates_user_deleted_by_hand_with_memberships(self, workspace: Workspace) -> None:
        """A managed user deleted by hand comes back, in its groups, on --full-resync."""
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        sync(workspace)
        gone = emulator_view(workspace)["users"]["u0000"]["id"]
        workspace.emu.state.delete_user(gone)
        code, _ = sync(workspace, "--full-resync")
        assert 0 == code
        assert ["u0000", "u0001"] == emulator_view(workspace)["groups"]["eng"]

    def test_a_failure_while_remaking_a_group_deleted_by_hand_is_reported(self, workspace: Workspace) -> None:
        """A group and a member deleted by hand: remaking the group fails, is reported; a full resync repairs both."""
        data = make_directory(3, {"eng": [0, 1]})
        workspace.write(data)
        sync(workspace)
        view = emulator_view(workspace)
        group = workspace.emu.state.find_group("eng")
        assert group is not None
        workspace.emu.state.delete_group(group["id"])
        workspace.emu.state.delete_user(view["users"]["u0001"]["id"])
        data["groups"][0]["members"].append(data["users"][2]["id"])
        workspace.write(data)
        code, out = sync(workspace)
        assert (1, "failed") == (code, out["status"])
        assert ["create group 'eng'"] == [error.split(":")[0] for error in out["errors"]]
        code, _ = sync(workspace, "--full-resync")
        assert 0 == code
        assert ["u0000", "u0001", "u0002"] == emulator_view(workspace)["groups"]["eng"]

    def test_full_resync_without_drift_writes_nothing(self, workspace: Workspace) -> None:
        """A full resync of a converged directory only reads."""
        workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
        sync(workspace)
        workspace.emu.stats.reset()
        code, out = sync(workspace, "--full-resync")
        assert (0, 0) == (code, workspace.emu.stats.writes)
        assert 0 == sum(out["changes"].values())

    def test_update_of_user_deleted_by_hand_recreates_it(self, workspace: Workspace) -> None:
        """An incremental update that meets a 404 recreates the user and puts it back in its groups."""
        data = make_directory(2, {"eng": [0, 1]})
        workspace.write(data)
        sync(workspace)
        workspace.emu.state.delete_user(emulator_view(workspace)["users"]["u0000"]["id"])
        data["users"][0]["given_name"] = "Changed"
        workspace.write(data)
        code, _ = sync(workspace)
        assert 0 == code
        view = emulator_view(workspace)
        assert ("Changed", ["u0000", "u0001"]) == (view["users"]["u0000"]["name"]["givenName"], view["groups"]["eng"])

    def test_adopts_same_name_group_and_sets_its_external_id(self, workspace: Workspace) -> None:
        """--full-resync adopts a pre-existing group of the same name: same id, externalId set, members added."""
        hand = workspace.emu.state.add_group(display_name="eng")
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        code, out = sync(workspace, "--full-resync")
        assert (0, "ok") == (code, out["status"]), out["errors"]
        (group,) = workspace.emu.state.groups
        assert (hand["id"], "g-eng", "eng") == (group["id"], group["externalId"], group["displayName"])
        assert ["u0000", "u0001"] == emulator_view(workspace)["groups"]["eng"]

    def test_group_renamed_by_hand_is_renamed_back(self, workspace: Workspace) -> None:
        """A managed group renamed by hand in Identity Center gets its source name back, same id, one PATCH."""
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        sync(workspace)
        group = workspace.emu.state.find_group("eng")
        assert group is not None
        workspace.emu.state.patch_group(
            group["id"],
            {
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "replace", "path": "displayName", "value": "eng (old)"}],
            },
        )
        workspace.emu.stats.reset()
        code, out = sync(workspace, "--full-resync")
        after = workspace.emu.state.find_group("eng")
        assert after is not None
        assert (0, group["id"], "g-eng") == (code, after["id"], after["externalId"]), out["errors"]
        assert (1, 1) == (out["changes"]["groups_updated"], workspace.emu.stats.writes)

    def test_create_conflict_adopts_existing_user(self, workspace: Workspace) -> None:
        """An incremental create that meets a 409 adopts the existing user, counted as adopted, not created."""
        data = make_directory(2, {"eng": [1]})
        first = {"users": data["users"][1:], "groups": data["groups"]}
        workspace.write(first)
        sync(workspace)
        hand = workspace.emu.state.add_user(
            user_name="user0@example.com", display_name="Old", given_name="O", family_name="Ld"
        )
        data["groups"][0]["members"] = ["u0000", "u0001"]
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, "ok", 0, 1) == (
            code,
            out["status"],
            out["changes"]["users_created"],
            out["changes"]["users_adopted"],
        )
        assert hand["id"] in [u["id"] for u in workspace.emu.state.users]
        assert ["u0000", "u0001"] == emulator_view(workspace)["groups"]["eng"]


class TestChanges:
    def test_rehire_under_the_same_name_converges_in_one_run(self, workspace: Workspace) -> None:
        """A leaver and a joiner sharing a userName in one run: the old user goes, the new one lands."""
        data = make_directory(12, {"eng": list(range(12))})
        workspace.write(data)
        sync(workspace)
        old = data["users"][3]
        new = {**old, "id": "u-rehired"}
        data["users"][3] = new
        data["groups"][0]["members"] = [m if m != old["id"] else "u-rehired" for m in data["groups"][0]["members"]]
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, "ok") == (code, out["status"]), out["errors"]
        view = emulator_view(workspace)
        assert "u-rehired" in view["users"]
        assert old["id"] not in view["users"]
        assert "u-rehired" in view["groups"]["eng"]
        assert (1, 1) == (out["changes"]["users_created"], out["changes"]["users_deleted"])

    def test_group_recreated_at_the_source_under_the_same_name(self, workspace: Workspace) -> None:
        """A group deleted and made again at the source (new id, same name) replaces the old one in one run."""
        data = make_directory(3, {"eng": [0, 1, 2], "ops": [0]})
        data["groups"] += [{"id": f"g-team{i}", "name": f"team{i}", "members": [], "groups": []} for i in range(10)]
        workspace.write(data)
        sync(workspace)
        data["groups"][0]["id"] = "g-eng-v2"
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, "ok") == (code, out["status"]), out["errors"]
        eng = workspace.emu.state.find_group("eng")
        assert eng is not None
        assert ("g-eng-v2", 3) == (eng["externalId"], len(workspace.emu.state.members(eng["id"])))

    def test_login_change_onto_a_name_freed_in_the_same_run(self, workspace: Workspace) -> None:
        """A user whose login changes to the userName of a user deleted in the same run keeps its id and exits 0."""
        data = make_directory(12, {"eng": list(range(12))})
        workspace.write(data)
        sync(workspace)
        kept = emulator_view(workspace)["users"]["u0004"]["id"]
        leaver = data["users"].pop(3)
        data["users"][3]["user_name"] = leaver["user_name"]
        data["groups"][0]["members"].remove(leaver["id"])
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, "ok") == (code, out["status"]), out["errors"]
        after = emulator_view(workspace)["users"]
        assert leaver["id"] not in after
        assert (kept, "user3@example.com") == (after["u0004"]["id"], after["u0004"]["userName"])

    def test_group_renamed_onto_a_name_freed_in_the_same_run(self, workspace: Workspace) -> None:
        """A group renamed to the name of a group deleted in the same run keeps its id and exits 0."""
        data = make_directory(3, {"eng": [0, 1], "ops": [2]})
        data["groups"] += [{"id": f"g-team{i}", "name": f"team{i}", "members": [], "groups": []} for i in range(10)]
        workspace.write(data)
        sync(workspace)
        eng = workspace.emu.state.find_group("eng")
        assert eng is not None
        del data["groups"][1]
        data["groups"][0]["name"] = "ops"
        workspace.write(data)
        code, out = sync(workspace)
        assert (0, "ok") == (code, out["status"]), out["errors"]
        ops = workspace.emu.state.find_group("ops")
        assert ops is not None
        assert (eng["id"], "g-eng", None) == (ops["id"], ops["externalId"], workspace.emu.state.find_group("eng"))

    def test_group_rename_keeps_its_id(self, workspace: Workspace) -> None:
        """Renaming a group at the source renames it in place."""
        data = make_directory(2, {"eng": [0, 1]})
        workspace.write(data)
        sync(workspace)
        before = workspace.emu.state.find_group("eng")
        data["groups"][0]["name"] = "engineering"
        workspace.write(data)
        code, out = sync(workspace)
        after = workspace.emu.state.find_group("engineering")
        assert before is not None
        assert after is not None
        assert (0, before["id"], 1) == (code, after["id"], out["changes"]["groups_updated"])

    def test_membership_move_is_one_add_and_one_remove(self, workspace: Workspace) -> None:
        """Moving a user between groups costs two PATCHes and nothing else."""
        data = make_directory(2, {"eng": [0, 1], "ops": []})
        workspace.write(data)
        sync(workspace)
        data["groups"][0]["members"] = ["u0000"]
        data["groups"][1]["members"] = ["u0001"]
        workspace.write(data)
        workspace.emu.stats.reset()
        code, _ = sync(workspace)
        assert (0, {"PATCH /Groups": 2}) == (code, workspace.emu.stats.by_method)
        assert {"eng": ["u0000"], "ops": ["u0001"]} == emulator_view(workspace)["groups"]

    def test_gain_and_loss_in_one_group_is_one_patch(self, workspace: Workspace) -> None:
        """A group that gains one member and loses another changes with one PATCH carrying both."""
        data = make_directory(3, {"eng": [0, 1]})
        workspace.write(data)
        sync(workspace)
        data["groups"][0]["members"] = ["u0000", "u0002"]
        workspace.write(data)
        workspace.emu.stats.reset()
        code, out = sync(workspace)
        assert (0, {"PATCH /Groups": 1}) == (code, workspace.emu.stats.by_method)
        assert (1, 1) == (out["changes"]["members_added"], out["changes"]["members_removed"])
        assert ["u0000", "u0002"] == emulator_view(workspace)["groups"]["eng"]
