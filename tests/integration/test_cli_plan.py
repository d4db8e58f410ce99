"""`syncd plan` and `syncd sync` as a person uses them: the diff, exit codes, saved plans."""

from __future__ import annotations

import gc
import json
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncd.cli import app
from tests.conftest import Workspace, make_directory
from tests.integration.test_cli_sync import sync


runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def plan(ws: Workspace, *args: str) -> tuple[int, str]:
    return invoke("plan", "--config", str(ws.config), *args)


def test_rename_shows_the_attribute_diff(workspace: Workspace) -> None:
    """An update lists each attribute that changes, before → after."""
    data = make_directory(2, {"eng": [0, 1]})
    workspace.write(data)
    sync(workspace)
    data["users"][1]["given_name"] = "Robert"
    workspace.write(data)
    code, output = plan(workspace)
    assert 0 == code
    assert "~ user user1@example.com" in output
    assert "givenName: User → Robert" in output
    assert "0 to create, 1 to change, 0 to delete, 0 to adopt; 0 member changes" in output


def test_no_changes_says_so(workspace: Workspace) -> None:
    """A plan with nothing to do says Identity Center matches the source."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    sync(workspace)
    code, output = plan(workspace)
    assert (0, True) == (code, "No changes. Identity Center matches the source." in output)


def test_creates_say_inactive_and_deletes_are_minus(workspace: Workspace) -> None:
    """A create of a suspended user says (inactive); a user gone from the source is deactivated first (~)."""
    data = make_directory(12, {"eng": list(range(12))})
    workspace.write(data)
    sync(workspace)
    data["users"].append({**data["users"][0], "id": "u-new", "user_name": "new@example.com", "active": False})
    data["users"][0]["email"] = "new@example.com"
    del data["users"][5]
    data["groups"][0]["members"] = [u["id"] for u in data["users"]]
    workspace.write(data)
    code, output = plan(workspace)
    assert 0 == code, output
    assert "+ user new@example.com (inactive)" in output
    assert "~ user user5@example.com (deactivate) (gone from the source" in output
    assert "group eng members +1 (1 request)" in output


def test_first_plan_against_a_populated_identity_center_is_one_line_per_kind(workspace: Workspace) -> None:
    """Adoptions are summarised, one line for users and one for groups, however many there are."""
    for i in range(30):
        workspace.emu.state.add_user(
            user_name=f"user{i}@example.com", display_name=f"User Number{i}", given_name="User", family_name=f"N{i}"
        )
    workspace.emu.state.add_group(display_name="eng")
    workspace.write(make_directory(30, {"eng": [0]}))
    code, output = plan(workspace)
    assert 0 == code
    assert "= 30 users already in Identity Center, adopted" in output
    assert "= 1 group already in Identity Center, adopted" in output
    assert "user7@example.com" not in output.split("=", 1)[0]


def test_detailed_exitcode(workspace: Workspace) -> None:
    """--detailed-exitcode: 2 with changes, 0 without, 3 when the guard would refuse."""
    workspace.write(make_directory(20, {"eng": list(range(20))}))
    assert 2 == plan(workspace, "--detailed-exitcode")[0]
    sync(workspace)
    assert 0 == plan(workspace, "--detailed-exitcode")[0]
    workspace.write(make_directory(5, {"eng": list(range(5))}))
    code, output = plan(workspace, "--detailed-exitcode", "--json")
    assert 3 == code
    payload = json.loads(output.splitlines()[-1])
    assert ("refused", 15, 0) == (
        payload["status"],
        payload["would_change"]["users_deactivated"],
        payload["changes"]["users_deactivated"],
    )


def test_plan_json_lists_updates_with_their_diff(workspace: Workspace) -> None:
    """`plan --json` gives each change, an update with its attribute diff."""
    data = make_directory(1, {"eng": [0]})
    workspace.write(data)
    sync(workspace)
    data["users"][0]["family_name"] = "Smith"
    workspace.write(data)
    code, output = plan(workspace, "--json")
    change = json.loads(output.splitlines()[-1])["plan"][0]
    assert (0, "update_user") == (code, change["action"])
    assert {
        "displayName": {"before": "User Number0", "after": "User Smith"},
        "familyName": {"before": "Number0", "after": "Smith"},
    } == change["diff"]


def test_limit_keeps_the_first_rows(workspace: Workspace) -> None:
    """--limit N shows N rows and says how many more there are."""
    workspace.write(make_directory(5, {"eng": [0]}))
    code, output = plan(workspace, "--limit", "2")
    assert 0 == code
    assert "… 4 more" in output
    assert "user3@example.com" not in output


def test_saved_plan_applies_exactly(workspace: Workspace, tmp_path: Path) -> None:
    """`sync --plan` applies a plan saved by `plan --out` when nothing moved since."""
    workspace.write(make_directory(3, {"eng": [0, 1, 2]}))
    saved = tmp_path / "plan.json"
    assert 0 == plan(workspace, "--out", str(saved))[0]
    assert 0 == workspace.emu.stats.writes
    code, output = invoke("sync", "--config", str(workspace.config), "--plan", str(saved), "--json")
    assert (0, 3) == (code, json.loads(output.splitlines()[-1])["changes"]["users_created"])


def test_saved_plan_refused_when_the_source_moved(workspace: Workspace, tmp_path: Path) -> None:
    """A saved plan whose source changed since is refused (exit 3), saying what changed, writing nothing."""
    data = make_directory(3, {"eng": [0, 1, 2]})
    workspace.write(data)
    saved = tmp_path / "plan.json"
    plan(workspace, "--out", str(saved))
    data["users"][2]["user_name"] = "someone-else@example.com"
    workspace.write(data)
    code, output = invoke("sync", "--config", str(workspace.config), "--plan", str(saved))
    assert 3 == code
    assert "the source changed" in output
    assert "now also create_user someone-else@example.com" in output
    assert 0 == workspace.emu.stats.writes


def test_saved_plan_refused_when_identity_center_moved(workspace: Workspace, tmp_path: Path) -> None:
    """A saved plan is refused when Identity Center changed since, though the source did not."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    saved = tmp_path / "plan.json"
    plan(workspace, "--out", str(saved))
    workspace.emu.state.add_user(user_name="user0@example.com", display_name="U", given_name="U", family_name="Z")
    code, output = invoke("sync", "--config", str(workspace.config), "--plan", str(saved))
    assert (3, True) == (code, "Identity Center or the cache changed" in output)


def test_global_options_after_the_subcommand(workspace: Workspace) -> None:
    """--log-level and --log-json are accepted after the subcommand, as before it."""
    workspace.write(make_directory(1, {"eng": [0]}))
    code, output = invoke("plan", "--config", str(workspace.config), "--log-level", "ERROR", "--log-json")
    assert (0, True) == (code, "+ user user0@example.com" in output)


def test_version_and_short_help() -> None:
    """`syncd --version` prints the version; -h is --help."""
    code, output = invoke("--version")
    assert (0, True) == (code, output.startswith("syncd "))
    code, output = invoke("plan", "-h")
    assert (0, True) == (code, "--detailed-exitcode" in output)


def test_unknown_log_level_is_a_one_line_usage_error() -> None:
    """--log-level FOO is a usage error (exit 2) that names the option, not a traceback."""
    code, output = invoke("--log-level", "FOO", "status")
    assert (2, True, False) == (code, "--log-level" in output, "Traceback" in output)
    assert ["error: --log-level FOO: not a log level; use one of DEBUG, INFO, WARNING, ERROR"] == output.splitlines()


def test_log_level_is_read_in_any_case_after_the_subcommand_too(workspace: Workspace) -> None:
    """--log-level takes a level in any case, and a wrong one after the subcommand fails the same one-line way."""
    code, output = invoke("status", "--log-level", "bogus")
    assert (2, ["error: --log-level bogus: not a log level; use one of DEBUG, INFO, WARNING, ERROR"]) == (
        code,
        output.splitlines(),
    )
    workspace.write(make_directory(1, {"eng": [0]}))
    code, output = invoke("plan", "--config", str(workspace.config), "--log-level", "error")
    assert (0, True) == (code, "+ user user0@example.com" in output)


def test_plan_with_a_wrong_token_exits_2(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """plan proves the token with one read: a refused token exits 2 naming target.scim_token and the 401."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    sync(workspace)  # a cache with state: the plan itself would not read Identity Center
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", "wrong-token-of-a-test")
    code, output = plan(workspace)
    assert 2 == code
    assert "target.scim_token:" in output
    assert "(401)" in output
    assert "wrong-token-of-a-test" not in output


def test_check_proves_the_token_too(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """check reads the source and then makes one authenticated read of Identity Center."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    code, output = invoke("check", "--config", str(workspace.config))
    assert (0, True) == (code, "the SCIM token is accepted" in output)
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", "wrong-token-of-a-test")
    assert 2 == invoke("check", "--config", str(workspace.config))[0]


def test_unreachable_identity_center_names_the_host(workspace: Workspace) -> None:
    """A SCIM URL nobody listens on fails the plan with exit 5, naming the host."""
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    workspace.write(make_directory(1, {"eng": [0]}))
    workspace.config.write_text(
        workspace.config.read_text().replace(workspace.emu.url, f"http://127.0.0.1:{port}/scim/v2/"), encoding="utf-8"
    )
    code, output = plan(workspace)
    assert (5, True) == (code, "Identity Center at 127.0.0.1 did not answer" in output)


def test_check_fails_when_most_records_are_skipped(workspace: Workspace) -> None:
    """check exits 1 when more than half the records read would be skipped."""
    data = make_directory(4, {"eng": [0, 1, 2, 3]})
    for user in data["users"][:3]:
        user["email"] = user["user_name"] = "not an address"
    workspace.write(data)
    code, output = invoke("check", "--config", str(workspace.config))
    assert (1, True) == (code, "would be skipped" in output)


def test_a_run_leaves_the_garbage_collector_as_it_found_it(workspace: Workspace) -> None:
    """A sync tunes the collector for its own length only: the thresholds and the unfrozen heap are back after it."""
    workspace.write(make_directory(2, {"eng": [0, 1]}))
    before = (gc.get_threshold(), gc.get_freeze_count())
    code, _ = invoke("sync", "--config", str(workspace.config))
    assert (0, before) == (code, (gc.get_threshold(), gc.get_freeze_count()))
