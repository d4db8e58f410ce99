"""Config paths, cache-only commands, and the errors a first day trips on."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from syncd import config
from syncd.cli import app
from syncd.errors import ConfigError
from tests.conftest import TOKEN, Workspace, make_directory


runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _relative_config(folder: Path, url: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "directory.json").write_text(json.dumps(make_directory(2, {"eng": [0, 1]})), encoding="utf-8")
    path = folder / "syncd.toml"
    path.write_text(
        f"""
[source]
type = "file"

[source.file]
path = "directory.json"

[target]
scim_url = "{url}"
scim_token = "env:SYNCD_TEST_SCIM_TOKEN"
requests_per_second = 500
{extra}
""",
        encoding="utf-8",
    )
    return path


def test_relative_paths_follow_the_config_file(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run from another directory, a config's relative export and default cache are beside the config."""
    cfg = _relative_config(tmp_path / "srv", workspace.emu.url)
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    code, _ = invoke("sync", "--config", str(cfg))
    assert 0 == code
    assert (tmp_path / "srv" / "syncd.db").is_file()
    assert [] == list(elsewhere.iterdir())
    code, output = invoke("status", "--config", str(cfg), "--json")
    assert (0, 1) == (code, len(json.loads(output)["runs"]))


def test_explicit_relative_cache_url_is_beside_the_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """cache.url = "sqlite:///state/x.db" means the config's folder, not the current one."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    cfg = _relative_config(tmp_path / "srv", "http://127.0.0.1:9/scim/v2", '[cache]\nurl = "sqlite:///state/x.db"')
    monkeypatch.chdir(tmp_path)
    settings = config.load(cfg)
    assert f"sqlite:///{tmp_path / 'srv' / 'state' / 'x.db'}" == settings.cache.url
    assert tmp_path / "srv" / "directory.json" == Path(settings.source.connector_settings()["path"])


def test_default_cache_goes_to_the_state_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Under systemd ($STATE_DIRECTORY) the default cache is there."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("STATE_DIRECTORY", str(tmp_path / "state"))
    cfg = _relative_config(tmp_path / "etc", "http://127.0.0.1:9/scim/v2")
    assert f"sqlite:///{tmp_path / 'state' / 'syncd.db'}" == config.load(cfg).cache.url


def test_config_found_in_xdg_config_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without --config or ./syncd.toml, $XDG_CONFIG_HOME/syncd/syncd.toml is read."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    cfg = _relative_config(tmp_path / "xdg" / "syncd", "http://127.0.0.1:9/scim/v2")
    monkeypatch.chdir(tmp_path)
    assert cfg == config.find_config(None)


def test_status_and_db_upgrade_need_only_the_cache(workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`status` and `db upgrade` work without the SCIM token's variable or a readable source."""
    monkeypatch.delenv("SYNCD_TEST_SCIM_TOKEN")
    workspace.export.unlink(missing_ok=True)
    assert 0 == invoke("db", "upgrade", "--config", str(workspace.config))[0]
    code, output = invoke("status", "--config", str(workspace.config))
    assert (0, True) == (code, "No runs yet" in output)


def test_missing_table_is_named_with_its_brackets(tmp_path: Path) -> None:
    """A config without [target] says to add the [target] table, brackets shown."""
    cfg = tmp_path / "syncd.toml"
    cfg.write_text('[source]\ntype = "file"\n[source.file]\npath = "x.json"\n', encoding="utf-8")
    code, output = invoke("plan", "--config", str(cfg))
    assert (2, True) == (code, "[target]: the table is missing; add a [target] table" in output)


@pytest.mark.parametrize("url", ["https://", "https:///scim/v2", "scim.example.com/scim/v2"])
def test_scim_url_without_a_host_is_rejected(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    """target.scim_url must be a URL with a host."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    cfg = _relative_config(tmp_path, url)
    with pytest.raises(ConfigError, match=r"target\.scim_url: must be the SCIM endpoint URL"):
        config.load(cfg)


def test_bad_cache_url_exits_2_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A cache.url that is not a database URL is a config error naming cache.url."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    cfg = _relative_config(tmp_path, "http://127.0.0.1:9/scim/v2", '[cache]\nurl = "mysql://db/x"')
    code, output = invoke("status", "--config", str(cfg))
    assert (2, True) == (code, "cache.url:" in output)


def test_secret_prefix_typo_and_literal_token_are_warned(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """scim_token = "evn:X" warns of an unknown prefix; a literal token warns it is in the file."""
    for token, expected in (("evn:SCIM_TOKEN", "did you mean env:?"), ("abc123literal", "written in the config file")):
        cfg = _relative_config(tmp_path, "http://127.0.0.1:9/scim/v2")
        cfg.write_text(cfg.read_text().replace("env:SYNCD_TEST_SCIM_TOKEN", token), encoding="utf-8")
        caplog.clear()
        config.load(cfg)
        assert any(expected in r.getMessage() for r in caplog.records), caplog.records
        assert not any("abc123literal" in r.getMessage() for r in caplog.records)


def test_busy_emulator_port_is_one_line(tmp_path: Path) -> None:
    """`syncd emulator` on a port in use exits 2 with one error line, no traceback."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "syncd", "emulator", "--port", str(port), "--token", "x"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert 2 == done.returncode
    assert [f"error: cannot listen on 127.0.0.1:{port}: Address already in use; choose another with --port"] == (
        done.stderr.strip().splitlines()
    )


def test_init_writes_a_config_that_runs(tmp_path: Path, workspace: Workspace, monkeypatch: pytest.MonkeyPatch) -> None:
    """`syncd init` writes the file example and its sample export; pointed at the emulator, it plans."""
    target = tmp_path / "new" / "syncd.toml"
    code, output = invoke("init", "--source", "file", "--out", str(target))
    assert (0, True) == (code, (tmp_path / "new" / "directory.json").is_file())
    assert "#" in target.read_text()
    assert 2 == invoke("init", "--out", str(target))[0]
    monkeypatch.setenv("SCIM_TOKEN", TOKEN)
    monkeypatch.setenv("SYNCD_TARGET__SCIM_URL", workspace.emu.url)
    monkeypatch.chdir(tmp_path)
    code, output = invoke("plan", "--config", str(target), "--detailed-exitcode")
    assert 2 == code, output
    assert not (tmp_path / "new" / "syncd.db").exists()


def test_config_example_prints_a_source_example() -> None:
    """`syncd config example --source okta` prints the commented Okta config; an unknown source exits 2."""
    code, output = invoke("config", "example", "--source", "okta")
    assert (0, True) == (code, 'type = "okta"' in output)
    assert 2 == invoke("config", "example", "--source", "nope")[0]


def test_special_use_domains_sync(workspace: Workspace) -> None:
    """Users at corp.local and .test addresses (common in small companies' AD) are synced, not skipped."""
    data = make_directory(2, {"eng": [0, 1]})
    data["users"][0]["email"] = data["users"][0]["user_name"] = "alice@corp.local"
    data["users"][1]["email"] = "bob@lab.test"
    workspace.write(data)
    code, output = invoke("sync", "--config", str(workspace.config), "--json")
    result = json.loads(output.splitlines()[-1])
    assert (0, 0, 2) == (code, result["skipped"], result["changes"]["users_created"])
    assert {"alice@corp.local", "bob@lab.test"} == {u["emails"][0]["value"] for u in workspace.emu.state.users}


def test_a_missing_extra_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PostgreSQL cache without psycopg installed says which extra to install (exit 2)."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "psycopg" else real(name, *a))
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    cfg = _relative_config(tmp_path, "http://127.0.0.1:9/scim/v2", '[cache]\nurl = "postgresql://syncd@db/syncd"')
    code, output = invoke("status", "--config", str(cfg))
    assert (2, True) == (code, "pip install 'syncd[postgres]'" in output)


def test_a_relative_secret_file_is_read_beside_the_config(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """scim_token = "file:secrets/token" is read from the config's folder, not the current one."""
    folder = tmp_path / "srv"
    cfg = _relative_config(folder, workspace.emu.url)
    (folder / "secrets").mkdir()
    (folder / "secrets" / "token").write_text(TOKEN + "\n", encoding="utf-8")
    cfg.write_text(
        cfg.read_text(encoding="utf-8").replace('"env:SYNCD_TEST_SCIM_TOKEN"', '"file:secrets/token"'),
        encoding="utf-8",
    )
    elsewhere = tmp_path / "home"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    code, output = invoke("sync", "--config", str(cfg))
    assert 0 == code, output
