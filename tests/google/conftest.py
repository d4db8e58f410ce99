"""Fixtures for the Google tests: the fake domain, its admin and service account, keys made once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from connectors.base import Deps
from connectors.google import GoogleSettings, GoogleSource
from syncd.model import SourceRead
from tests.fakes.google import API_URL, DIRECTORY, READ_SCOPES, FakeGoogle
from tests.fakes.google_auth import ServiceAccount, new_key
from tests.reads import read as read  # re-exported: the tests import it from here too


ADMIN = "admin@example.com"


@pytest.fixture
def anyio_backend() -> str:
    """The connector runs on asyncio."""
    return "asyncio"


@dataclass(frozen=True)
class Keys:
    """RSA keys made once per session: a service account's own key, Google's key, a stranger's key."""

    account: rsa.RSAPrivateKey
    system: rsa.RSAPrivateKey
    stranger: rsa.RSAPrivateKey


@pytest.fixture(scope="session")
def keys() -> Keys:
    """Three RSA keys (generating keys is slow, so once per session)."""
    return Keys(new_key(), new_key(), new_key())


@pytest.fixture
def fake() -> FakeGoogle:
    """A fake domain holding only its super admin."""
    google = FakeGoogle()
    google.add_user(ADMIN, given_name="Ada", family_name="Admin", admin=True)
    return google


@pytest.fixture
def account(fake: FakeGoogle, keys: Keys) -> ServiceAccount:
    """syncd's service account, authorised for domain-wide delegation with the three read scopes."""
    service_account = fake.add_service_account(key=keys.account, system_key=keys.system)
    fake.delegate(service_account)
    return service_account


def assertion(
    fake: FakeGoogle,
    account: ServiceAccount,
    *,
    sub: str | None = ADMIN,
    scopes: Iterable[str] = READ_SCOPES,
    aud: str | None = None,
    lifetime: int = 3600,
    key: rsa.RSAPrivateKey | None = None,
    kid: str | None = None,
) -> str:
    """A JWT-bearer assertion as a service account signs it (RFC 7523 §3), on the fake's clock."""
    now = int(fake.now)
    claims: dict[str, object] = {
        "iss": account.email,
        "scope": " ".join(scopes),
        "aud": aud or fake.token_uri,
        "iat": now,
        "exp": now + lifetime,
    }
    if sub is not None:
        claims["sub"] = sub
    headers = {"kid": kid or account.key_id}
    return jwt.encode(claims, key or account.key, algorithm="RS256", headers=headers)


async def token_request(fake: FakeGoogle, form: dict[str, str]) -> httpx2.Response:
    """POST a form to the fake token endpoint."""
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.post(fake.token_uri, data=form)


async def get(fake: FakeGoogle, path: str, token: str | None, **params: str) -> httpx2.Response:
    """GET a Directory API path with a bearer token."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.get(f"{API_URL}{DIRECTORY}{path}", params=params, headers=headers)


def reason(response: httpx2.Response) -> str:
    """``errors[0].reason`` of a Directory API error body."""
    return str(response.json()["error"]["errors"][0]["reason"])


def admin_token(fake: FakeGoogle, account: ServiceAccount, scopes: Iterable[str] = READ_SCOPES) -> str:
    """An access token of ``account`` acting as the admin, issued directly."""
    return fake.auth.issue(account.email, scopes, ADMIN)


@dataclass
class Clock:
    """Our clock, the fake's; sleeping moves it at once and records the wait."""

    fake: FakeGoogle
    sleeps: list[float] = field(default_factory=list)

    def now(self) -> float:
        """The fake's clock."""
        return self.fake.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait, let that much time pass, and let other tasks run."""
        self.sleeps.append(seconds)
        self.fake.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock(fake: FakeGoogle) -> Clock:
    """The connector's clock and sleeper."""
    return Clock(fake)


MakeSource = Callable[..., GoogleSource]


@pytest.fixture
async def make_source(fake: FakeGoogle, account: ServiceAccount, clock: Clock) -> AsyncIterator[MakeSource]:
    """Build GoogleSources on the fake and the clock, with the account's key file unless told otherwise."""
    sources: list[GoogleSource] = []

    def make(**settings: Any) -> GoogleSource:
        data: dict[str, Any] = {"admin_email": ADMIN, **settings}
        if "service_account" not in settings:
            data.setdefault("credentials", json.dumps(fake.auth.key_json(account)))
        source = GoogleSource(
            GoogleSettings.model_validate(data),
            Deps(transport=fake.transport, clock=clock.now, sleep=clock.sleep, random=lambda: 0.5),
        )
        sources.append(source)
        return source

    yield make
    for source in sources:
        await source.aclose()


def summary(result: SourceRead) -> tuple[dict[str, tuple[str | None, bool]], dict[str, frozenset[str]]]:
    """A read as plain values: users by id (userName, active), groups by name (member ids)."""
    users = {u.id: (u.user_name, u.active) for u in result.users}
    groups = {str(g.name): frozenset(g.members) for g in result.groups}
    return users, groups


ISSUER = "https://oidc.example.com/cluster"
WORKLOAD = "system:serviceaccount:syncd:syncd"


def workload_adc(fake: FakeGoogle, keys: Keys, directory: Path) -> tuple[Path, str]:
    """ADC for workload identity federation: an external_account configuration whose subject token
    file holds an OIDC token of ``ISSUER`` (signed with the stranger key) for ``WORKLOAD``.
    Returns the configuration's path and the federated principal."""
    provider = fake.auth.add_workload_provider(ISSUER, keys.stranger.public_key())
    now = int(fake.now)
    claims = {"iss": ISSUER, "sub": WORKLOAD, "aud": f"https:{provider.audience}", "iat": now, "exp": now + 3600}
    token_file = directory / "oidc-token"
    token_file.write_text(jwt.encode(claims, keys.stranger, algorithm="RS256"), encoding="utf-8")
    config = directory / "wif.json"
    config.write_text(json.dumps(fake.auth.external_account(provider, str(token_file), fake.sts_url)), encoding="utf-8")
    return config, provider.principal(WORKLOAD)
