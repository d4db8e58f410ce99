"""The fake Entra token endpoint, rule by rule: secrets, certificate assertions, federated assertions."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.entra.conftest import (
    CLIENT_ID,
    ISSUER,
    SUBJECT,
    Certificate,
    cert_assertion,
    federated_token,
    graph,
    make_certificate,
    token,
)
from tests.fakes.entra import FakeEntra, FederatedCredential
from tests.fakes.entra_login import JWT_BEARER


pytestmark = pytest.mark.anyio


def _code(response: object) -> tuple[int, str, int]:
    data = response.json()  # type: ignore[attr-defined]
    assert data["error_description"].startswith(f"AADSTS{data['error_codes'][0]}: ")
    return response.status_code, data["error"], data["error_codes"][0]  # type: ignore[attr-defined]


async def test_a_client_secret_gets_an_hour_long_bearer_token(fake: FakeEntra) -> None:
    """The right secret gets token_type Bearer, expires_in about 3600, and a token Graph accepts."""
    fake.add_user("a.b")

    answer = (await token(fake)).json()

    assert (answer["token_type"], answer["expires_in"]) == ("Bearer", 3599)
    assert (await graph(fake, "/users")).status_code == 200


async def test_a_wrong_secret_is_invalid_client_7000215(fake: FakeEntra) -> None:
    """A wrong secret is 401 invalid_client AADSTS7000215, which says to send the value, not the ID."""
    response = await token(fake, client_secret="not-the-secret")

    assert _code(response) == (401, "invalid_client", 7000215)
    assert "client secret value, not the client secret ID" in response.json()["error_description"]


async def test_an_expired_secret_is_7000222(fake: FakeEntra) -> None:
    """A secret past its end date is 401 invalid_client AADSTS7000222."""
    fake.add_app(CLIENT_ID, secret="old-secret", secret_expires=fake.now - 1)

    assert _code(await token(fake, client_secret="old-secret")) == (401, "invalid_client", 7000222)


async def test_an_unknown_app_is_700016(fake: FakeEntra) -> None:
    """A client id not registered in the tenant is 400 unauthorized_client AADSTS700016."""
    assert _code(await token(fake, client_id="00000000-0000-0000-0000-000000000000")) == (
        400,
        "unauthorized_client",
        700016,
    )


async def test_the_scope_must_be_graph_dot_default(fake: FakeEntra) -> None:
    """Client credentials need scope {graph}/.default: anything else is 400 invalid_scope AADSTS1002012."""
    assert _code(await token(fake, scope="User.Read.All")) == (400, "invalid_scope", 1002012)


async def test_no_credential_is_7000218(fake: FakeEntra) -> None:
    """A request with neither secret nor assertion is 401 invalid_client AADSTS7000218."""
    assert _code(await token(fake, client_secret="")) == (401, "invalid_client", 7000218)


async def test_an_expired_access_token_is_401_on_graph(fake: FakeEntra) -> None:
    """Graph answers 401 InvalidAuthenticationToken once the access token's hour has passed."""
    access = (await token(fake)).json()["access_token"]
    fake.advance(3600)

    import httpx2

    async with httpx2.AsyncClient(transport=fake.transport) as client:
        response = await client.get(f"{fake.graph_url}/v1.0/users", headers={"Authorization": f"Bearer {access}"})

    assert (response.status_code, response.json()["error"]["code"]) == (401, "InvalidAuthenticationToken")


async def _assertion(fake: FakeEntra, assertion: str) -> object:
    return await token(fake, client_secret="", client_assertion_type=JWT_BEARER, client_assertion=assertion)


@pytest.mark.parametrize("sha256", [False, True])
async def test_a_certificate_assertion_gets_a_token(fake: FakeEntra, certificate: Certificate, sha256: bool) -> None:
    """RS256 with x5t (SHA-1 thumbprint) and PS256 with x5t#S256 both work for a registered certificate."""
    fake.add_app(CLIENT_ID, certificate=certificate.cert)

    response = await _assertion(fake, cert_assertion(fake, certificate, sha256=sha256))

    assert response.status_code == 200, response.text  # type: ignore[attr-defined]


async def test_an_unregistered_certificate_is_700027(fake: FakeEntra, certificate: Certificate) -> None:
    """An assertion signed with a certificate the app does not have is 401 AADSTS700027 naming the thumbprint."""
    fake.add_app(CLIENT_ID, certificate=certificate.cert)
    other = make_certificate("other")

    response = await _assertion(fake, cert_assertion(fake, other))

    assert _code(response) == (401, "invalid_client", 700027)


async def test_a_forged_signature_is_700027(fake: FakeEntra, certificate: Certificate) -> None:
    """The right x5t over a signature by another key fails signature validation."""
    import jwt

    from tests.fakes.entra_login import thumbprint

    fake.add_app(CLIENT_ID, certificate=certificate.cert)
    claims = jwt.decode(cert_assertion(fake, certificate), options={"verify_signature": False})
    header = {"x5t": thumbprint(certificate.cert)}
    forged = jwt.encode(claims, make_certificate().key, algorithm="RS256", headers=header)

    assert _code(await _assertion(fake, forged)) == (401, "invalid_client", 700027)


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/common/oauth2/token"}, 700212),
        ({"iss": "someone-else"}, 700023),
        ({"exp": 1_700_000_000}, 700024),
    ],
)
async def test_a_certificate_assertion_needs_aud_iss_and_time(
    fake: FakeEntra, certificate: Certificate, claims: dict[str, object], code: int
) -> None:
    """aud must be the v2.0 token URL, iss/sub the client id, and exp in the future (on the fake's clock)."""
    fake.add_app(CLIENT_ID, certificate=certificate.cert)

    assert _code(await _assertion(fake, cert_assertion(fake, certificate, **claims)))[2] == code


def _federate(fake: FakeEntra, key: rsa.RSAPrivateKey) -> None:
    fake.login.add_issuer(ISSUER, key.public_key())
    fake.add_app(CLIENT_ID, federated=[FederatedCredential(ISSUER, SUBJECT)])


async def test_a_federated_assertion_gets_a_token(fake: FakeEntra, issuer_key: rsa.RSAPrivateKey) -> None:
    """A token of the trusted issuer with the credential's subject and audience gets an access token."""
    _federate(fake, issuer_key)

    response = await _assertion(fake, federated_token(fake, issuer_key))

    assert response.status_code == 200, response.text  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("claims", "code"),
    [
        ({"sub": "repo:acme/other:ref:refs/heads/main"}, 70021),
        ({"aud": "api://SomethingElse"}, 700212),
        ({"exp": 1_700_000_000}, 700024),
    ],
)
async def test_a_federated_assertion_must_match_the_credential(
    fake: FakeEntra, issuer_key: rsa.RSAPrivateKey, claims: dict[str, object], code: int
) -> None:
    """Another subject is AADSTS70021, another audience AADSTS700212, an expired token AADSTS700024."""
    _federate(fake, issuer_key)

    assert _code(await _assertion(fake, federated_token(fake, issuer_key, **claims)))[2] == code


async def test_a_federated_assertion_of_an_untrusted_issuer_is_refused(
    fake: FakeEntra, issuer_key: rsa.RSAPrivateKey
) -> None:
    """A trusted issuer that the app has no credential for is AADSTS700211; a forged signature is 700027."""
    fake.login.add_issuer(ISSUER, issuer_key.public_key())
    fake.add_app(CLIENT_ID, federated=[])
    assert _code(await _assertion(fake, federated_token(fake, issuer_key)))[2] == 700211

    _federate(fake, issuer_key)
    forged = federated_token(fake, make_certificate().key)
    assert _code(await _assertion(fake, forged))[2] == 700027
