"""deploy/: the systemd unit, the Dockerfile, its lock files, the compose files and the example configs hold together.

What can be checked without a container engine is here: the files the image copies exist and
get through the ignore file, its dependencies are pinned by hash and agree with pyproject.toml,
its health check command works against a live endpoint, and the compose files wire what the
README promises. Building and running the image is tests/daemon/test_container.py.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
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


def lock(path: Path) -> dict[str, tuple[Requirement, list[str]]]:
    """A hash-pinned requirements file: each requirement by normalised name, with its hashes."""
    text = re.sub(r"\\\n", " ", path.read_text(encoding="utf-8"))
    pins: dict[str, tuple[Requirement, list[str]]] = {}
    for line in text.splitlines():
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        spec, *hashes = (part.strip() for part in line.split("--hash="))
        requirement = Requirement(spec)
        pins[canonicalize_name(requirement.name)] = (requirement, hashes)
    return pins


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
    """One base for both stages (python slim by default), numeric non-root USER, the cache on a VOLUME, HEALTHCHECK."""
    steps = dockerfile()
    assert steps[0] == "ARG BASE=python:3.11-slim-bookworm"
    bases = [s.split()[1] for s in steps if s.startswith("FROM ")]
    assert ["${BASE}", "deps", "${BASE}"] == bases, "every stage on the one BASE: the venv points at its Python"
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
    assert {
        "pyproject.toml",
        "README.md",
        "syncd",
        "connectors",
        "migrations",
        "deploy/examples",
        "deploy/requirements.lock",
        "deploy/build-requirements.lock",
    } == set(flat)
    assert all((ROOT / src).exists() for src in flat)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    packaged = project["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert {*packaged["packages"], *packaged.get("force-include", {})} <= set(flat), "the wheel needs them"
    ignore = (DEPLOY / "Dockerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    assert set(flat) <= allowed


def test_the_dockerfile_needs_no_frontend_pull() -> None:
    """No `# syntax=` directive: `docker build` or `podman build` pulls nothing but the base."""
    text = (DEPLOY / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"^#\s*syntax\s*=", text, re.MULTILINE | re.IGNORECASE)
    assert not any(s.startswith("RUN --mount") for s in dockerfile()), "RUN --mount needs BuildKit"


def test_the_image_installs_only_what_the_lock_files_pin_by_hash() -> None:
    """Every pip install in the image is --require-hashes from a lock file, or --no-index (syncd's own wheel)."""
    installs = [part for s in dockerfile() if s.startswith("RUN ") for part in s.split("&&") if "pip install " in part]
    assert len(installs) == 3, installs
    locked = [i for i in installs if "--require-hashes" in i]
    assert {"deploy/requirements.lock", "deploy/build-requirements.lock"} == {
        i.split(" -r ")[1].split()[0] for i in locked
    }
    assert all("--no-deps" in i and "--only-binary :all:" in i for i in locked)
    (own,) = set(installs) - set(locked)
    assert "--no-index" in own
    assert '"syncd[all]"' in own
    wheels = [part for s in dockerfile() if s.startswith("RUN ") for part in s.split("&&") if "pip wheel " in part]
    assert all("--no-deps" in w and "--no-build-isolation" in w for w in wheels), wheels


def test_the_lock_files_pin_every_dependency_of_pyproject_with_hashes() -> None:
    """Each dependency and extra of pyproject.toml, and the build backend, is pinned within its range, with hashes."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    runtime, build = lock(DEPLOY / "requirements.lock"), lock(DEPLOY / "build-requirements.lock")
    wanted = [Requirement(r) for r in project["project"]["dependencies"]]
    for extra in project["project"].get("optional-dependencies", {}).values():
        wanted += [Requirement(r) for r in extra]
    checks = [(r, runtime) for r in wanted if canonicalize_name(r.name) != "syncd"]
    checks += [(Requirement(r), build) for r in project["build-system"]["requires"]]
    for requirement, pins in checks:
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in the lock: run deploy/container/lock"
        (pin,) = pins[name][0].specifier
        assert pin.operator == "==", pins[name][0]
        assert requirement.specifier.contains(pin.version, prereleases=True), (
            f"{pins[name][0]} is outside {requirement}: run deploy/container/lock"
        )
    for pinned, hashes in [*runtime.values(), *build.values()]:
        assert hashes, f"{pinned} has no hash"
        assert all(re.fullmatch(r"sha256:[0-9a-f]{64}", h) for h in hashes), pinned
        assert len(pinned.specifier) == 1, pinned
    assert "syncd" not in runtime


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


def compose(name: str) -> dict[str, Any]:
    """A compose file of deploy/, parsed."""
    loaded: dict[str, Any] = yaml.safe_load((DEPLOY / name).read_text(encoding="utf-8"))
    return loaded


def test_compose_wires_syncd_to_postgresql() -> None:
    """compose.yaml: PostgreSQL with a health check, syncd built from deploy/Dockerfile on it, secrets as files."""
    base = compose("compose.yaml")
    postgres, syncd = base["services"]["postgres"], base["services"]["syncd"]
    assert "healthcheck" in postgres
    assert {"postgres": {"condition": "service_healthy"}} == syncd["depends_on"]
    assert (DEPLOY / syncd["build"]["context"] / syncd["build"]["dockerfile"]).resolve() == DEPLOY / "Dockerfile"
    assert syncd["environment"]["SYNCD_CACHE__URL"].startswith("postgresql+psycopg://")
    assert syncd["environment"]["SYNCD_HTTP__LISTEN"] == "0.0.0.0:9464"
    assert syncd["environment"]["SYNCD_TARGET__SCIM_TOKEN"] == "file:/run/secrets/scim_token"
    assert parse_duration(syncd["stop_grace_period"]) > ScheduleConfig().shutdown_timeout
    assert {"scim_token", "pgpass"} == set(syncd["secrets"])
    assert {"scim_token", "pgpass", "postgres_password"} == set(base["secrets"])
    assert syncd["volumes"][0]["target"] == "/etc/syncd/syncd.toml"
    assert syncd["volumes"][0]["read_only"] is True


def test_compose_passes_the_database_password_as_files_only() -> None:
    """No PGPASSWORD or POSTGRES_PASSWORD variable: PostgreSQL reads a secret file, syncd a libpq PGPASSFILE."""
    base = compose("compose.yaml")
    assert "PGPASSWORD" not in (DEPLOY / "compose.yaml").read_text(encoding="utf-8")
    postgres, syncd = base["services"]["postgres"], base["services"]["syncd"]
    assert "POSTGRES_PASSWORD" not in postgres["environment"]
    assert postgres["environment"]["POSTGRES_PASSWORD_FILE"] == "/run/secrets/postgres_password"
    assert postgres["secrets"] == ["postgres_password"]
    assert syncd["environment"]["PGPASSFILE"] == "/run/secrets/pgpass"
    assert "@" in syncd["environment"]["SYNCD_CACHE__URL"]
    assert ":" not in syncd["environment"]["SYNCD_CACHE__URL"].split("//", 1)[1].split("@", 1)[0]


def test_the_okta_key_is_a_secret_only_in_the_okta_override() -> None:
    """compose.okta.yaml adds okta_private_key to syncd, where examples/okta.toml looks for it; the base has none."""
    assert "okta_private_key" not in json.dumps(compose("compose.yaml"))
    okta = compose("compose.okta.yaml")
    assert ["okta_private_key"] == okta["services"]["syncd"]["secrets"]
    assert {"okta_private_key": {"file": "./secrets/okta_private_key"}} == okta["secrets"]
    example = tomllib.loads((DEPLOY / "examples" / "okta.toml").read_text(encoding="utf-8"))
    assert example["source"]["okta"]["private_key"] == "file:/run/secrets/okta_private_key"


def test_the_file_override_mounts_the_export_folder_where_the_source_reads_it() -> None:
    """compose.file.yaml mounts ./export read-only and points source.file.path at the export inside it."""
    syncd = compose("compose.file.yaml")["services"]["syncd"]
    (mount,) = syncd["volumes"]
    assert {"type": "bind", "source": "./export", "read_only": True} == {
        k: mount[k] for k in ("type", "source", "read_only")
    }
    path = PurePosixPath(syncd["environment"]["SYNCD_SOURCE__FILE__PATH"])
    assert path.parent == PurePosixPath(mount["target"])


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
