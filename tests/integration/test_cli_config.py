"""The CLI's faces: configuration errors, exit codes, secrets, status, db upgrade, emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest
from typer.testing import CliRunner

from syncd.cli import app
from tests.conftest import TOKEN, Workspace, make_directory


runner = CliRunner()


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, ["--log-level", "WARNING", *args], env=env)
    return result.exit_code, result.output


class TestConfigErrors:
    def test_unknown_key_is_named_with_a_suggestion(self, workspace: Workspace) -> None:
        """A misspelt key exits 2, names the key and suggests the right one."""
        text = workspace.config.read_text().replace("scim_url", "scim_urll")
        workspace.config.write_text(text)
        code, output = invoke("sync", "--config", str(workspace.config))
        assert 2 == code
        assert "target.scim_urll" in output
        assert "scim_url" in output

    def test_missing_key_says_where_to_put_it(self, workspace: Workspace) -> None:
        """A missing required key exits 2 and names the table and the environment variable."""
        lines = [line for line in workspace.config.read_text().splitlines() if not line.startswith("scim_url")]
        workspace.config.write_text("\n".join(lines))
        code, output = invoke("sync", "--config", str(workspace.config))
        assert 2 == code
        assert "target.scim_url" in output
        assert "SYNCD_TARGET__SCIM_URL" in output

    def test_unset_secret_reference_is_named(self, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
        """A token written env:NAME whose variable is unset exits 2 naming the key and the variable."""
        monkeypatch.delenv("SYNCD_TEST_SCIM_TOKEN")
        code, output = invoke("sync", "--config", str(workspace.config))
        assert 2 == code
        assert "target.scim_token" in output
        assert "SYNCD_TEST_SCIM_TOKEN" in output

    def test_unknown_source_type_lists_the_known_ones(self, workspace: Workspace) -> None:
        """An unknown source.type exits 2 and lists the types there are."""
        workspace.config.write_text(workspace.config.read_text().replace('type = "file"', 'type = "nis"'))
        code, output = invoke("sync", "--config", str(workspace.config))
        assert 2 == code
        assert "'nis' is not a known source" in output
        assert "file" in output

    def test_bad_max_deletes(self, workspace: Workspace) -> None:
        """safety.max_deletes that is neither a number nor a percentage exits 2 naming the key."""
        workspace.configure(max_deletes="lots")
        code, output = invoke("sync", "--config", str(workspace.config))
        assert (2, True) == (code, "safety.max_deletes" in output)

    def test_missing_file_source_setting(self, workspace: Workspace) -> None:
        """A [source.file] table without its path exits 2 naming source.file.path."""
        workspace.config.write_text(workspace.config.read_text().replace(f'path = "{workspace.export}"', ""))
        code, output = invoke("sync", "--config", str(workspace.config))
        assert (2, True) == (code, "source.file.path" in output)

    def test_no_config_file(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """Without any config file, sync exits 2 and points at --config and `syncd demo`."""
        monkeypatch.chdir(tmp_path)
        monkeypatch.delenv("SYNCD_CONFIG", raising=False)
        code, output = invoke("sync")
        assert 2 == code
        assert "syncd demo" in output

    def test_config_from_environment_variable(self, workspace: Workspace) -> None:
        """SYNCD_CONFIG finds the file when --config is not given."""
        workspace.write(make_directory(1, {"eng": [0]}))
        code, _ = invoke("sync", env={"SYNCD_CONFIG": str(workspace.config), "SYNCD_TEST_SCIM_TOKEN": TOKEN})
        assert (0, 1) == (code, len(workspace.emu.state.users))

    def test_environment_overrides_a_key(self, workspace: Workspace) -> None:
        """SYNCD_SAFETY__MAX_DELETES-style variables override the file; a bad one is named by the variable."""
        code, output = invoke("sync", "--config", str(workspace.config), env={"SYNCD_SAFETY__MAX_DELETES": "many"})
        assert (2, True) == (code, "SYNCD_SAFETY__MAX_DELETES (from the environment)" in output)


class TestSecrets:
    def test_wrong_token_fails_without_showing_it(self, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
        """A refused SCIM token fails the run (exit 4, authentication), saying so and never showing the token."""
        secret = "wrong-token-that-must-not-leak"
        monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", secret)
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        result = runner.invoke(app, ["sync", "--config", str(workspace.config), "--json"])
        assert 4 == result.exit_code
        out = json.loads([line for line in result.stdout.splitlines() if line.startswith("{")][-1])
        assert "refused the SCIM token" in out["errors"][0]
        assert secret not in result.output
        assert 0 == len(workspace.emu.state.users)

    def test_token_from_file_reference(self, workspace: Workspace, tmp_path: Path) -> None:
        """A token written file:PATH is read from that file."""
        token_file = tmp_path / "token"
        token_file.write_text(TOKEN + "\n")
        workspace.config.write_text(
            workspace.config.read_text().replace('"env:SYNCD_TEST_SCIM_TOKEN"', f'"file:{token_file}"')
        )
        workspace.write(make_directory(1, {"eng": [0]}))
        code, _ = invoke("sync", "--config", str(workspace.config))
        assert (0, 1) == (code, len(workspace.emu.state.users))


class TestCommands:
    def test_status_shows_the_last_runs(self, workspace: Workspace) -> None:
        """`syncd status --json` lists runs newest first with their counts; dry runs are not runs."""
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        invoke("sync", "--config", str(workspace.config), "--dry-run")
        invoke("sync", "--config", str(workspace.config))
        invoke("plan", "--config", str(workspace.config))
        code, output = invoke("status", "--config", str(workspace.config), "--json")
        data = json.loads(output)
        assert 0 == code
        assert [(1, False)] == [(r["id"], r["dry_run"]) for r in data["runs"]]
        assert 2 == data["runs"][0]["changes"]["users_created"]
        assert data["last_success"] is not None

    def test_plan_shows_a_table_and_writes_nothing(self, workspace: Workspace) -> None:
        """`syncd plan` prints the changes as a diff with a summary line and sends no write."""
        workspace.write(make_directory(2, {"eng": [0, 1]}))
        code, output = invoke("plan", "--config", str(workspace.config))
        assert (0, 0) == (code, workspace.emu.stats.writes)
        assert "+ user user1@example.com" in output
        assert "+ group eng with 2 members" in output
        assert "3 to create, 0 to change, 0 to delete, 0 to adopt; 2 member changes" in output

    def test_db_upgrade_is_idempotent(self, workspace: Workspace) -> None:
        """`syncd db upgrade` creates the schema, and a second call changes nothing."""
        code1, first = invoke("db", "upgrade", "--config", str(workspace.config))
        code2, second = invoke("db", "upgrade", "--config", str(workspace.config))
        assert (0, 0) == (code1, code2)
        assert "empty" in first
        assert "empty" not in second

    def test_usage_error_exits_2(self) -> None:
        """An unknown option is a usage error: exit 2."""
        code, _ = invoke("sync", "--no-such-option")
        assert 2 == code

    def test_emulator_command_serves_scim(self) -> None:
        """`syncd emulator` serves a SCIM endpoint that demands its token."""
        env = {**os.environ, "EMU_TOKEN": "emu-secret"}
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "emulator", "--port", "0", "--token", "env:EMU_TOKEN"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            url = line.split(" at ", 1)[1].strip()
            assert 401 == httpx2.get(url + "Users").status_code
            ok = httpx2.get(url + "Users", headers={"Authorization": "Bearer emu-secret"})
            assert (200, []) == (ok.status_code, ok.json()["Resources"])
        finally:
            proc.terminate()
            proc.communicate(timeout=120)  # bounds a hang only


def test_one_shot_sync_refuses_while_a_daemon_holds_the_cache(workspace: Workspace) -> None:
    """`syncd sync` exits 1 without writing while another syncd holds the cache's lock."""
    from syncd.cache import Cache
    from syncd.leader import acquire_leadership

    workspace.write(make_directory(2, {"eng": [0, 1]}))
    with Cache.open(workspace.cache_url) as cache:
        held = acquire_leadership(cache)
        try:
            code, output = invoke("sync", "--config", str(workspace.config))
        finally:
            held.release()
    assert 1 == code
    assert "already running" in output
    assert 0 == workspace.emu.stats.writes
    assert 0 == invoke("sync", "--config", str(workspace.config))[0]
