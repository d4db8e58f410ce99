"""Fixtures for the Entra tests: the fake tenant, an app registration, a certificate, an outside issuer."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from tests.fakes.entra import FakeEntra


CLIENT_ID = "3fa2c1d0-5b6e-4f7a-8c9d-0e1f2a3b4c5d"
CLIENT_SECRET = "Qx8~fake.client-secret_value"
ISSUER = "https://token.actions.githubusercontent.com"
SUBJECT = "repo:acme/infra:environment:prod"


@pytest.fixture
def anyio_backend() -> str:
    """The connector runs on asyncio."""
    return "asyncio"


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate and its private key, in the forms the settings accept."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate
    pem: str  # private key then certificate, as one PEM bundle

    @property
    def cert_pem(self) -> str:
        """The certificate alone (what is uploaded to the app registration)."""
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()


def make_certificate(name: str = "syncd") -> Certificate:
    """A fresh RSA key and a self-signed certificate for it."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    pem = (
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        + cert.public_bytes(serialization.Encoding.PEM).decode()
    )
    return Certificate(key, cert, pem)


@pytest.fixture(scope="session")
def certificate() -> Certificate:
    """One app certificate for the session (generating keys is slow)."""
    return make_certificate()


@pytest.fixture(scope="session")
def issuer_key() -> rsa.RSAPrivateKey:
    """The outside OIDC issuer's signing key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def fake() -> FakeEntra:
    """An empty fake tenant with one app that may use a client secret."""
    tenant = FakeEntra()
    tenant.add_app(CLIENT_ID, secret=CLIENT_SECRET)
    return tenant


async def token(fake: FakeEntra, **form: str) -> httpx2.Response:
    """A token request with the client secret unless ``form`` says otherwise."""
    data = {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "scope": f"{fake.graph_url}/.default",
        "client_secret": CLIENT_SECRET,
        **form,
    }
    data = {k: v for k, v in data.items() if v != ""}
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.post(fake.login.token_url, data=data)


async def graph(
    fake: FakeEntra, url: str, params: dict[str, str] | None = None, headers: dict[str, str] | None = None
) -> httpx2.Response:
    """GET a Graph path (or an absolute next link) with a fresh access token."""
    answer = await token(fake)
    access = answer.json()["access_token"]
    target = url if url.startswith("http") else f"{fake.graph_url}/v1.0{url}"
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.get(target, params=params, headers={"Authorization": f"Bearer {access}", **(headers or {})})


def body(response: httpx2.Response) -> Any:
    """The JSON body, with the status in the failure message."""
    assert response.status_code < 500, response.text
    return response.json()


def cert_assertion(fake: FakeEntra, certificate: Certificate, *, sha256: bool = False, **claims: Any) -> str:
    """A certificate client assertion as the certificate-credentials page describes it."""
    import uuid

    import jwt

    from tests.fakes.entra_login import thumbprint

    payload = {
        "aud": fake.login.token_url,
        "iss": CLIENT_ID,
        "sub": CLIENT_ID,
        "jti": str(uuid.uuid4()),
        "nbf": int(fake.now),
        "iat": int(fake.now),
        "exp": int(fake.now) + 600,
        **claims,
    }
    if sha256:
        header = {"x5t#S256": thumbprint(certificate.cert, "sha256")}
        return jwt.encode(payload, certificate.key, algorithm="PS256", headers=header)
    return jwt.encode(payload, certificate.key, algorithm="RS256", headers={"x5t": thumbprint(certificate.cert)})


def federated_token(fake: FakeEntra, key: rsa.RSAPrivateKey, **claims: Any) -> str:
    """An outside issuer's OIDC token, as GitHub Actions or AKS would write it to a file."""
    import jwt

    payload = {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": "api://AzureADTokenExchange",
        "iat": int(fake.now),
        "nbf": int(fake.now),
        "exp": int(fake.now) + 3600,
        **claims,
    }
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": "issuer-key-1"})


# -- the connector under test ------------------------------------------------------------------


@dataclass
class Clock:
    """Our side's clock, in step with the fake's; sleeping moves both, instantly, and is recorded."""

    fake: FakeEntra
    sleeps: list[float]

    def now(self) -> float:
        """Our clock."""
        return self.fake.now

    async def sleep(self, seconds: float) -> None:
        """Record the wait, let that much time pass on the fake's clock, and let other tasks run."""
        import asyncio

        self.sleeps.append(seconds)
        self.fake.advance(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def clock(fake: FakeEntra) -> Clock:
    """The connector's clock and sleeper."""
    return Clock(fake, [])


@pytest.fixture
async def make_source(fake: FakeEntra, clock: Clock) -> Any:
    """Build EntraSources wired to the fake and the clock; settings override the client-secret default."""
    from connectors.base import Deps
    from connectors.entra import EntraSettings, EntraSource

    sources: list[EntraSource] = []

    def make(transport: httpx2.AsyncBaseTransport | None = None, **settings: Any) -> EntraSource:
        data: dict[str, Any] = {
            "tenant_id": fake.tenant_id,
            "client_id": CLIENT_ID,
            "graph_url": fake.graph_url,
            "login_url": fake.login_url,
            **settings,
        }
        if not {"client_secret", "certificate", "federated_token_file"} & settings.keys():
            data["client_secret"] = CLIENT_SECRET
        deps = Deps(transport=transport or fake.transport, clock=clock.now, sleep=clock.sleep, random=lambda: 0.5)
        source = EntraSource(EntraSettings.model_validate(data), deps)
        sources.append(source)
        return source

    yield make
    for source in sources:
        await source.aclose()


async def read(
    source: Any,
    *,
    groups: tuple[str, ...] | None = None,
    users: str = "all",
    full: bool = True,
    state: dict[str, Any] | None = None,
) -> Any:
    """One read, the way the engine asks for it."""
    from connectors.base import ReadContext
    from syncd.normalise import Scope

    return await source.read(ReadContext(Scope(groups=groups, users=users), full=full, state=state or {}))


def summary(result: Any) -> tuple[dict[str, tuple[str | None, bool]], dict[str, tuple[str | None, frozenset[str]]]]:
    """A read as plain values: users by id (userName, active), groups by id (name, member ids)."""
    users = {u.id: (u.user_name, u.active) for u in result.users}
    groups = {g.id: (g.name, frozenset(g.members)) for g in result.groups}
    return users, groups


def expected(
    fake: FakeEntra, *, groups: tuple[str, ...] | None = None, guests: bool = False
) -> tuple[dict[str, tuple[str | None, bool]], dict[str, tuple[str | None, frozenset[str]]]]:
    """What a complete read of the fake gives with default settings, in :func:`summary` form."""
    from syncd.normalise import Scope

    scope = Scope(groups=groups, users="all")
    people = {
        u.id: (
            u.props["mail"] if u.props["userType"] == "Guest" else u.props["userPrincipalName"],
            u.props["accountEnabled"],
        )
        for u in fake.users()
        if guests or u.props["userType"] != "Guest"
    }
    synced = {
        g.id: (g.props["displayName"], frozenset(m for m in fake.transitive(g.id) if fake.objects[m].type == "user"))
        for g in fake.groups()
        if scope.wants_group(g.props["displayName"])
    }
    return people, synced
