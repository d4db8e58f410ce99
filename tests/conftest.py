"""Fixtures shared by the whole suite: an emulator over real HTTP, a directory export, a config."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
import stamina
from moto.server import ThreadedMotoServer

from syncd.emulator import RunningEmulator, running_emulator
from tests.fakes import aws_sso


# moto lacks sso-admin's application, tagging, boundary and provisioning-status APIs: the tests'
# AWS is moto with those added faithfully (tests/fakes/aws_sso.py says how and from what).
aws_sso.install()


TOKEN = "test-token-0123456789"
AWS_TEST_REGION = "eu-west-1"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> Iterator[None]:
    """Retries happen, but without their backoff waits, so tests stay fast."""
    stamina.set_testing(True, attempts=3)
    yield
    stamina.set_testing(False)


@pytest.fixture
def emulator() -> Iterator[RunningEmulator]:
    """An Identity Center emulator on a free port, unthrottled."""
    with running_emulator(token=TOKEN) as emu:
        yield emu


def make_directory(users: int, groups: dict[str, list[int]] | None = None) -> dict[str, Any]:
    """A directory export with ``users`` users (u0000…) and groups of the given member indexes."""
    data: dict[str, Any] = {
        "users": [
            {
                "id": f"u{i:04d}",
                "user_name": f"user{i}@example.com",
                "email": f"user{i}@example.com",
                "given_name": "User",
                "family_name": f"Number{i}",
                "active": True,
            }
            for i in range(users)
        ],
        "groups": [],
    }
    for name, members in (groups or {}).items():
        data["groups"].append(
            {"id": f"g-{name}", "name": name, "members": [f"u{i:04d}" for i in members], "groups": []}
        )
    return data


class Workspace:
    """A folder holding a directory export, a config pointing at the emulator, and the cache."""

    def __init__(self, root: Path, emu: RunningEmulator) -> None:
        self.root = root
        self.emu = emu
        self.export = root / "directory.json"
        self.config = root / "syncd.toml"
        self.cache_url = f"sqlite:///{root / 'syncd.db'}"

    def write(self, data: dict[str, Any]) -> None:
        self.export.write_text(json.dumps(data), encoding="utf-8")

    def configure(self, extra: str = "", *, max_deletes: str = "10%", rps: float = 500) -> Path:
        self.config.write_text(
            f"""
[source]
type = "file"

[source.file]
path = "{self.export}"

[filters]
users = "all"

[target]
scim_url = "{self.emu.url}"
scim_token = "env:SYNCD_TEST_SCIM_TOKEN"
requests_per_second = {rps}

[cache]
url = "{self.cache_url}"

[safety]
max_deletes = "{max_deletes}"
{extra}
""",
            encoding="utf-8",
        )
        return self.config


@pytest.fixture
def workspace(tmp_path: Path, emulator: RunningEmulator, monkeypatch: pytest.MonkeyPatch) -> Workspace:
    """A workspace whose config reads the token from $SYNCD_TEST_SCIM_TOKEN."""
    monkeypatch.setenv("SYNCD_TEST_SCIM_TOKEN", TOKEN)
    monkeypatch.delenv("SYNCD_CONFIG", raising=False)
    ws = Workspace(tmp_path, emulator)
    ws.configure()
    return ws


@pytest.fixture
def directory() -> Callable[..., dict[str, Any]]:
    """The make_directory helper, as a fixture."""
    return make_directory


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Fake credentials and a region; no profile, config file or endpoint from the host leaks in."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_SSO_ADMIN",
        "AWS_ENDPOINT_URL_ORGANIZATIONS",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", AWS_TEST_REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class WriteGate:
    """Holds the emulator's answers from its ``after``-th write on, until :meth:`release`.

    Each held write has landed in Identity Center but its answer waits, so the run that sent it
    is caught midway for as long as the test needs: the test waits on :attr:`reached` (a write
    is held) and then on whatever it checks, never on a time gap. Every held answer is sent at
    :meth:`release`, which a test calls once it has looked (the fixture's end calls it too).
    """

    HOLD_LIMIT = 300.0  # only a test that never released would wait this long

    def __init__(self, emu: RunningEmulator, after: int) -> None:
        self.reached = threading.Event()
        """Set once a write is being held."""
        self._open = threading.Event()
        record = emu.stats.record

        def holding(method: str, kind: str, status: int) -> None:
            record(method, kind, status)
            if method != "GET" and emu.stats.writes >= after and not self._open.is_set():
                self.reached.set()
                self._open.wait(self.HOLD_LIMIT)

        emu.stats.record = holding  # type: ignore[method-assign]

    @property
    def released(self) -> bool:
        """True once :meth:`release` was called."""
        return self._open.is_set()

    def release(self) -> None:
        """Send every held answer, and hold no more."""
        self._open.set()


Hold = Callable[[RunningEmulator, int], WriteGate]
"""The type of the ``hold_writes`` fixture: ``hold_writes(emu, after)`` makes a WriteGate."""


@pytest.fixture
def hold_writes() -> Iterator[Hold]:
    """Make :class:`WriteGate` s; any still closed at the end of the test is released."""
    gates: list[WriteGate] = []

    def make(emu: RunningEmulator, after: int) -> WriteGate:
        gate = WriteGate(emu, after)
        gates.append(gate)
        return gate

    yield make
    for gate in gates:
        gate.release()


@pytest.fixture
def org(moto_endpoint: str) -> Any:
    """An organisation (nested OUs, three hand-made permission sets) in moto_server, reached via AWS_ENDPOINT_URL."""
    import boto3

    from tests.assignments.conftest import build_org

    return build_org(boto3.Session())


@pytest.fixture
def moto_endpoint(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A moto server on a free port, as AWS_ENDPOINT_URL; its state is reset before and after."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    try:
        httpx2.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield url
        httpx2.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    finally:
        server.stop()
