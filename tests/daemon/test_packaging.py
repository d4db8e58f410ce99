"""deploy/: the systemd unit, the Dockerfile, the compose file and the example configs hold together.

Docker cannot run here, so the image is not built by these tests; what can be checked without an
engine is: the files it copies exist, its health check command works against a live endpoint,
and the compose file wires what the README promises.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from prometheus_client import CollectorRegistry

from syncd import config as config_module
from syncd.config import ScheduleConfig
from syncd.durations import parse_duration
from syncd.health import HealthApp, HealthServer
from tests.daemon.conftest import free_port


ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
UNIT = DEPLOY / "systemd" / "syncd.service"


def directives(path: Path) -> dict[str, list[str]]:
    """Every ``Key=value`` of a unit file, by key (keys may repeat)."""
    found: dict[str, list[str]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if "=" in line and not line.lstrip().startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def dockerfile() -> list[str]:
    """The Dockerfile's instructions, continuation lines joined, comments dropped."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [" ".join(i.split()) for i in re.sub(r"\\\n", " ", "\n".join(lines)).splitlines() if i.strip()]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    """`systemd-analyze verify` accepts the unit with no warning (ExecStart pointed at an existing syncd)."""
    syncd = Path(sys.executable).with_name("syncd")
    assert syncd.exists()
    unit = tmp_path / "syncd.service"
    unit.write_text(UNIT.read_text(encoding="utf-8").replace("/opt/syncd/bin/syncd", str(syncd)), encoding="utf-8")
    done = subprocess.run(
        ["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, cwd=tmp_path, timeout=60, check=False
    )
    assert (0, "") == (done.returncode, done.stderr.strip()), done.stderr


def test_the_unit_is_a_hardened_notify_service() -> None:
    """Type=notify with a watchdog, a dynamic user writing only its state directory, secrets as credentials."""
    unit = directives(UNIT)
    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "DynamicUser": "yes",
        "StateDirectory": "syncd",
        "ProtectSystem": "strict",
        "NoNewPrivileges": "yes",
        "Restart": "on-failure",
    }
    assert expected == {k: unit[k][-1] for k in expected}
    assert unit["ExecStart"][0].startswith("/opt/syncd/bin/syncd ")
    assert " run " in unit["ExecStart"][0] + " "
    assert any(c.startswith("scim_token:") for c in unit["LoadCredential"])
    assert "SYNCD_TARGET__SCIM_TOKEN=file:%d/scim_token" in unit["Environment"]
    assert parse_duration(unit["WatchdogSec"][0]) > timedelta(0)
    stop = parse_duration(unit["TimeoutStopSec"][0])
    assert stop > ScheduleConfig().shutdown_timeout, "systemd must give the run in flight its shutdown_timeout"


def test_the_dockerfile_runs_syncd_as_a_non_root_user_with_a_volume_and_a_healthcheck() -> None:
    """Slim base, numeric non-root USER, the cache on a VOLUME as working directory, HEALTHCHECK on /healthz."""
    steps = dockerfile()
    bases = [s.split()[1] for s in steps if s.startswith("FROM ")]
    assert bases
    assert all(re.fullmatch(r"python:\$\{PYTHON_VERSION\}-slim-\w+( AS \w+)?", b) for b in bases), bases
    user = [s.split()[1] for s in steps if s.startswith("USER ")][-1]
    assert user == "${UID}:${UID}"
    assert "ARG UID=10001" in steps
    assert 'VOLUME ["/var/lib/syncd"]' in steps
    assert [s for s in steps if s.startswith("WORKDIR ")][-1] == "WORKDIR /var/lib/syncd"
    assert 'ENTRYPOINT ["syncd", "--log-json"]' in steps
    assert 'CMD ["run"]' in steps
    assert any(s.startswith("HEALTHCHECK ") and "/healthz" in s for s in steps)


def test_the_dockerfile_copies_what_exists_and_the_ignore_file_lets_it_through() -> None:
    """Each COPY source is in the checkout and not excluded by deploy/Dockerfile.dockerignore."""
    sources = [s.split()[1:-1] for s in dockerfile() if s.startswith("COPY ") and "--from" not in s]
    flat = [src for group in sources for src in group]
    assert {"pyproject.toml", "README.md", "syncd", "connectors", "migrations"} == set(flat)
    assert all((ROOT / src).exists() for src in flat)
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert set(flat) <= allowed


@pytest.fixture
def endpoint() -> Iterator[int]:
    """A live /healthz on a free port."""
    server = HealthServer("127.0.0.1", 0, HealthApp(CollectorRegistry(), lambda: (True, {})))
    server.start()
    try:
        yield server.port
    finally:
        server.stop()


def test_the_image_healthcheck_command_follows_the_listen_address(endpoint: int) -> None:
    """The HEALTHCHECK command exits 0 against a live /healthz on SYNCD_HTTP__LISTEN's port, non-zero otherwise."""
    (line,) = [s for s in dockerfile() if s.startswith("HEALTHCHECK ")]
    command = json.loads(line[line.index("CMD ") + 4 :])
    assert "python" == command[0]
    command[0] = sys.executable

    def check(port: int) -> int:
        env = {"SYNCD_HTTP__LISTEN": f"0.0.0.0:{port}", "PATH": "/usr/bin:/bin"}
        return subprocess.run(command, env=env, capture_output=True, timeout=30, check=False).returncode

    assert 0 == check(endpoint)
    assert 0 != check(free_port())


def test_compose_wires_syncd_to_postgresql() -> None:
    """compose.yaml: PostgreSQL with a health check, syncd built from deploy/Dockerfile on it, secrets as files."""
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text(encoding="utf-8"))
    postgres, syncd = compose["services"]["postgres"], compose["services"]["syncd"]
    assert "healthcheck" in postgres
    assert {"postgres": {"condition": "service_healthy"}} == syncd["depends_on"]
    assert (DEPLOY / syncd["build"]["context"] / syncd["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert syncd["environment"]["SYNCD_CACHE__URL"].startswith("postgresql+psycopg://")
    assert syncd["environment"]["SYNCD_HTTP__LISTEN"] == "0.0.0.0:9464"
    assert parse_duration(syncd["stop_grace_period"]) > ScheduleConfig().shutdown_timeout
    assert {"scim_token", "okta_private_key"} == set(syncd["secrets"]) == set(compose["secrets"])
    assert syncd["volumes"][0]["target"] == "/etc/syncd/syncd.toml"
    assert syncd["volumes"][0]["read_only"] is True


def _example(name: str, tmp_path: Path) -> Path:
    """An example config with its secret files replaced by temporary ones holding valid test values."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    secrets = {"scim_token": b"scim-token", "okta_private_key": key}
    text = (DEPLOY / "examples" / name).read_text(encoding="utf-8")
    for secret, value in secrets.items():
        (tmp_path / secret).write_bytes(value)
        text = text.replace(f"file:/run/secrets/{secret}", f"file:{tmp_path / secret}")
    (tmp_path / "directory.json").write_text('{"users": [], "groups": []}', encoding="utf-8")
    text = text.replace('path = "directory.json"', f'path = "{tmp_path / "directory.json"}"')
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_file_example_is_a_valid_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """deploy/examples/file.toml loads, with the daemon's defaults."""
    monkeypatch.setenv("SCIM_TOKEN", "t")
    settings = config_module.load(_example("file.toml", tmp_path))
    assert timedelta(minutes=15) == settings.schedule.interval


def test_the_okta_example_is_a_valid_config(tmp_path: Path) -> None:
    """deploy/examples/okta.toml loads: its schedule, listen address and token expiry, and the key it references."""
    settings = config_module.load(_example("okta.toml", tmp_path))
    assert (timedelta(minutes=15), ("127.0.0.1", 9464)) == (settings.schedule.interval, settings.http.address())
    assert settings.target.scim_token_expires is not None
