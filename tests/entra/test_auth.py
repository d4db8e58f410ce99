"""Credentials: client secret, certificate, workload identity federation, and the errors each ends in."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from pydantic import ValidationError

from connectors.entra import EntraSettings
from syncd.errors import SourceAuthError
from tests.entra.conftest import (
    CLIENT_ID,
    CLIENT_SECRET,
    ISSUER,
    SUBJECT,
    Certificate,
    Clock,
    federated_token,
    make_certificate,
    read,
)
from tests.fakes.entra import FakeEntra, FederatedCredential
from tests.fakes.entra_login import thumbprint


pytestmark = pytest.mark.anyio


def _token_forms(fake: FakeEntra) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(r.content.decode()).items()}
        for r in fake.requests
        if r.url.path == fake.login.token_path
    ]


async def test_one_secret_token_serves_a_whole_read(fake: FakeEntra, make_source: Any) -> None:
    """A read asks for one token, by client secret, scope {graph}/.default, and uses it for every call."""
    fake.add_members(fake.add_group("g"), fake.add_user("a.b"))

    await read(make_source())

    (form,) = _token_forms(fake)
    assert form == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "scope": "https://graph.microsoft.com/.default",
    }
    assert len({c.headers["authorization"] for c in fake.calls()}) == 1


async def test_a_token_is_fetched_again_when_it_runs_out(fake: FakeEntra, make_source: Any) -> None:
    """An hour later the next read fetches a new token before calling Graph."""
    source = make_source()
    first = await read(source)
    fake.advance(3600)

    await read(source, full=False, state=first.state)

    assert len(_token_forms(fake)) == 2


@pytest.mark.parametrize(
    ("secret_expires", "code", "fix"),
    [(None, "AADSTS7000215", "Value \\(not its Secret ID\\)"), (0.0, "AADSTS7000222", "has expired")],
)
async def test_a_bad_or_expired_secret_names_the_fix(
    fake: FakeEntra, make_source: Any, secret_expires: float | None, code: str, fix: str
) -> None:
    """A wrong secret or an expired one fails with the AADSTS code and what to do, never quoting the secret."""
    secret = "wrong~but-secret-value"
    if secret_expires is not None:
        fake.add_app(CLIENT_ID, secret=secret, secret_expires=secret_expires)

    with pytest.raises(SourceAuthError, match=rf"{code}.*{fix}") as caught:
        await read(make_source(client_secret=secret))

    assert secret not in str(caught.value)
    assert "source.entra.client_secret" in str(caught.value)
    assert len(fake.requests) == 1  # a refused secret is not retried


async def test_an_unknown_client_id_names_the_setting(fake: FakeEntra, make_source: Any) -> None:
    """AADSTS700016 says to check client_id and tenant_id."""
    with pytest.raises(SourceAuthError, match=r"AADSTS700016.*client_id and tenant_id"):
        await read(make_source(client_id="00000000-0000-0000-0000-000000000000"))


async def test_a_certificate_signs_an_x5t_assertion(
    fake: FakeEntra, make_source: Any, certificate: Certificate
) -> None:
    """RS256 with x5t the certificate's SHA-1 thumbprint, aud the v2.0 token URL, iss = sub = the client."""
    fake.add_app(CLIENT_ID, certificate=certificate.cert)
    fake.add_user("a.b")

    await read(make_source(certificate=certificate.pem))

    (form,) = _token_forms(fake)
    header = jwt.get_unverified_header(form["client_assertion"])
    claims = jwt.decode(form["client_assertion"], options={"verify_signature": False})
    assert (header["alg"], header["x5t"]) == ("RS256", thumbprint(certificate.cert))
    assert claims["aud"] == fake.login.token_url
    assert claims["iss"] == claims["sub"] == CLIENT_ID
    assert "client_secret" not in form


async def test_an_unregistered_certificate_says_to_upload_it(
    fake: FakeEntra, make_source: Any, certificate: Certificate
) -> None:
    """A certificate the app does not know fails with AADSTS700027 and the upload advice."""
    fake.add_app(CLIENT_ID, certificate=make_certificate("other").cert)

    with pytest.raises(SourceAuthError, match=r"AADSTS700027.*upload its public certificate"):
        await read(make_source(certificate=certificate.pem))


def _federate(fake: FakeEntra, key: rsa.RSAPrivateKey, tmp_path: Path) -> Path:
    fake.login.add_issuer(ISSUER, key.public_key())
    fake.add_app(CLIENT_ID, federated=[FederatedCredential(ISSUER, SUBJECT)])
    path = tmp_path / "azure-identity-token"
    path.write_text(federated_token(fake, key) + "\n", encoding="utf-8")
    return path


async def test_a_federated_token_file_needs_no_secret(
    fake: FakeEntra, make_source: Any, issuer_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    """The token in federated_token_file is sent as the client assertion, and the read succeeds."""
    path = _federate(fake, issuer_key, tmp_path)
    user = fake.add_user("a.b")

    result = await read(make_source(federated_token_file=str(path)))

    assert [u.id for u in result.users] == [user]
    (form,) = _token_forms(fake)
    assert form["client_assertion"] == path.read_text().strip()


async def test_the_federated_token_file_is_read_again_for_each_token(
    fake: FakeEntra, make_source: Any, issuer_key: rsa.RSAPrivateKey, tmp_path: Path, clock: Clock
) -> None:
    """The platform rotates the file: the next token request sends the new content, not a copy."""
    path = _federate(fake, issuer_key, tmp_path)
    source = make_source(federated_token_file=str(path))
    first = await read(source)
    fake.advance(3600)
    path.write_text(federated_token(fake, issuer_key), encoding="utf-8")

    await read(source, full=False, state=first.state)

    forms = _token_forms(fake)
    assert len(forms) == 2
    assert forms[1]["client_assertion"] == path.read_text() != forms[0]["client_assertion"]


async def test_the_federated_token_file_defaults_from_the_environment(
    fake: FakeEntra, make_source: Any, issuer_key: rsa.RSAPrivateKey, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no credential set, AZURE_FEDERATED_TOKEN_FILE (AKS workload identity) is used."""
    path = _federate(fake, issuer_key, tmp_path)
    monkeypatch.setenv("AZURE_FEDERATED_TOKEN_FILE", str(path))

    settings = EntraSettings.model_validate({"tenant_id": fake.tenant_id, "client_id": CLIENT_ID})

    assert settings.federated_token_file == path


async def test_a_federated_subject_mismatch_says_to_add_a_credential(
    fake: FakeEntra, make_source: Any, issuer_key: rsa.RSAPrivateKey, tmp_path: Path
) -> None:
    """A token whose subject no federated credential names fails with AADSTS70021, naming issuer and subject."""
    path = _federate(fake, issuer_key, tmp_path)
    path.write_text(federated_token(fake, issuer_key, sub="repo:acme/other:ref:refs/heads/main"), encoding="utf-8")

    with pytest.raises(SourceAuthError, match=r"AADSTS70021.*repo:acme/other.*add one"):
        await read(make_source(federated_token_file=str(path)))


async def test_a_missing_federated_token_file_is_an_auth_error(
    fake: FakeEntra, make_source: Any, tmp_path: Path
) -> None:
    """A token file that does not exist fails the read, naming the file."""
    with pytest.raises(SourceAuthError, match="federated token file"):
        await read(make_source(federated_token_file=str(tmp_path / "missing")))


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({}, "set one credential"),
        ({"client_secret": "a", "federated_token_file": "/t"}, "only one credential"),
        ({"client_secret": "a", "tenant_id": "bad/tenant"}, "tenant_id must be"),
        ({"certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}, "PEM bundle"),
        ({"client_secret": "a", "graph_url": "graph.microsoft.com"}, "URL with its scheme"),
    ],
)
def test_settings_refuse_what_cannot_work(
    settings: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Missing or doubled credentials, a malformed tenant, a key-less certificate and a scheme-less URL are refused."""
    monkeypatch.delenv("AZURE_FEDERATED_TOKEN_FILE", raising=False)
    data = {"tenant_id": "contoso.onmicrosoft.com", "client_id": CLIENT_ID, **settings}

    with pytest.raises(ValidationError, match=message):
        EntraSettings.model_validate(data)


def test_a_certificate_with_someone_elses_key_is_refused(certificate: Certificate) -> None:
    """A bundle whose private key does not match its certificate is refused before any request."""
    other = make_certificate("other")
    bundle = other.pem.split("-----BEGIN CERTIFICATE-----")[0] + certificate.cert_pem

    with pytest.raises(ValidationError, match="does not belong to its certificate"):
        EntraSettings.model_validate({"tenant_id": "t.example", "client_id": CLIENT_ID, "certificate": bundle})


def test_a_bundle_with_a_chain_uses_the_keys_own_certificate(certificate: Certificate) -> None:
    """A bundle of key, leaf certificate and an issuer's certificate signs with the leaf's thumbprint."""
    issuer = make_certificate("issuing-ca")
    bundle = issuer.cert_pem + certificate.pem + issuer.cert_pem

    settings = EntraSettings.model_validate({"tenant_id": "t.example", "client_id": CLIENT_ID, "certificate": bundle})

    assert settings.signing_key is not None
    assert settings.signing_key.headers == {"x5t": thumbprint(certificate.cert)}
