"""Fixtures for the Okta connector tests: the fake org, a clock that never really sleeps, keys."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx2
import pytest
import stamina
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from connectors.base import Deps
from connectors.okta import OktaSettings, OktaSource
from syncd.model import SourceRead
from syncd.normalise import Scope
from tests.fakes.okta import FakeOkta
from tests.reads import read as read  # re-exported: the tests import it from here too


@pytest.fixture
def anyio_backend() -> str:
    """The connector runs on asyncio."""
    return "asyncio"


@pytest.fixture(autouse=True)
def _no_retry_waits() -> None:
    """Here every wait goes through the Clock below, which records it and moves the fake's time:
    stamina's test mode (which would also fix every retry count at 3) stays off."""
    stamina.set_testing(False)


@dataclass
class Clock:
    """Our side's clock, ``skew`` seconds off the fake server's; sleeping moves both, instantly."""

    fake: FakeOkta
    skew: float = -90.0  # our clock runs 90 s behind Okta's: waits must use the server's Date
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        """Our clock."""
        return self.fake.now + self.skew

    async def sleep(self, seconds: float) -> None:
        """Record the wait, let that much time pass on both clocks, and let other tasks run."""
        self.sleeps.append(seconds)
        self.fake.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def fake() -> FakeOkta:
    """An empty fake org (only the BUILT_IN Everyone group)."""
    return FakeOkta()


@pytest.fixture
def clock(fake: FakeOkta) -> Clock:
    """The connector's clock and sleeper."""
    return Clock(fake)


@dataclass(frozen=True)
class Keys:
    """A service app's RSA key pair in the forms the settings accept."""

    private: rsa.RSAPrivateKey
    pem: str
    jwk: str

    @property
    def public(self) -> rsa.RSAPublicKey:
        """The public half, registered with the fake."""
        return self.private.public_key()


@pytest.fixture(scope="session")
def keys() -> Keys:
    """One RSA key pair for the session (generating keys is slow)."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    jwk = json.loads(RSAAlgorithm.to_jwk(private))
    jwk["kid"] = "key-1"
    return Keys(private, pem, json.dumps(jwk))


MakeSource = Callable[..., OktaSource]


@pytest.fixture
async def make_source(fake: FakeOkta, clock: Clock) -> AsyncIterator[MakeSource]:
    """Build OktaSources wired to the fake and the clock; settings override the API-token default."""
    sources: list[OktaSource] = []

    def make(transport: httpx2.AsyncBaseTransport | None = None, **settings: Any) -> OktaSource:
        data: dict[str, Any] = {"url": fake.url, **settings}
        if "client_id" not in settings and "token" not in settings:
            data["token"] = fake.token
        source = OktaSource(
            OktaSettings.model_validate(data),
            Deps(transport=transport or fake.transport, sleep=clock.sleep, clock=clock.now, random=lambda: 0.5),
        )
        sources.append(source)
        return source

    yield make
    for source in sources:
        await source.aclose()


Read = Callable[..., Awaitable[SourceRead]]


def summary(
    result: SourceRead,
) -> tuple[dict[str, tuple[str | None, bool]], dict[str, tuple[str | None, frozenset[str]]]]:
    """A read as plain values: users by id (userName, active), groups by id (name, member ids)."""
    users = {u.id: (u.user_name, u.active) for u in result.users}
    groups = {g.id: (g.name, frozenset(g.members)) for g in result.groups}
    return users, groups


def expected(
    fake: FakeOkta, *, groups: tuple[str, ...] | None = None, users: str = "all"
) -> tuple[dict[str, tuple[str | None, bool]], dict[str, tuple[str | None, frozenset[str]]]]:
    """What a complete read of the fake should give (default settings), in :func:`summary` form."""
    scope = Scope(groups=groups, users=users)
    active = {"ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED"}
    synced = {
        gid: (g.profile["name"], frozenset(g.members & fake.users.keys()))
        for gid, g in fake.groups.items()
        if g.type != "BUILT_IN" and scope.wants_group(g.profile["name"])
    }
    wanted = set().union(*(m for _, m in synced.values())) if users == "members" else set(fake.users)
    people = {
        uid: (u.profile["login"], u.status in active)
        for uid, u in fake.users.items()
        if uid in wanted and u.status not in {"STAGED", "PROVISIONED"}
    }
    return people, synced
