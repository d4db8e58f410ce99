"""Keyless: Application Default Credentials sign the delegation JWT through the fake IAM signJwt."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from syncd.errors import SourceAuthError
from tests.fakes.google import FakeGoogle
from tests.fakes.google_auth import ServiceAccount
from tests.google.conftest import ADMIN, Keys, MakeSource, workload_adc
from tests.reads import read


pytestmark = pytest.mark.anyio

OPERATOR = "operator@example.com"


@pytest.fixture
def adc(fake: FakeGoogle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ADC as `gcloud auth application-default login` leaves it: an authorized_user file, found by
    GOOGLE_APPLICATION_CREDENTIALS."""
    path = tmp_path / "adc.json"
    path.write_text(json.dumps(fake.auth.add_authorized_user(OPERATOR)), encoding="utf-8")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.delenv("GOOGLE_CLOUD_PROJECT", raising=False)
    return path


@pytest.mark.usefixtures("adc")
async def test_keyless_reads_the_domain_with_a_jwt_signed_by_iam(
    fake: FakeGoogle, account: ServiceAccount, make_source: MakeSource
) -> None:
    """With service_account and no key, ADC's token asks signJwt to sign the delegation JWT, and the
    read works; the token endpoint saw Google's key, not a user-managed one."""
    account.token_creators.add(OPERATOR)
    user = fake.add_user("someone@example.com")

    result = await read(make_source(service_account=account.email))

    assert user in {u.id for u in result.users}
    (signed,) = fake.auth.signed
    assert (signed["iss"], signed["sub"], signed["aud"]) == (account.email, ADMIN, fake.token_uri)
    assert [c.path for c in fake.calls() if c.method == "POST"] == [
        "/token",  # ADC's refresh
        f"/v1/projects/-/serviceAccounts/{account.email}:signJwt",
        "/token",  # the delegation JWT traded for the Directory token
    ]


async def test_workload_identity_federation_signs_through_iam(
    fake: FakeGoogle,
    account: ServiceAccount,
    keys: Keys,
    make_source: MakeSource,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """ADC from an external_account configuration (a workload's OIDC token traded at STS) signs the
    delegation JWT as the service account, so no key exists anywhere."""
    config, principal = workload_adc(fake, keys, tmp_path)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(config))
    account.token_creators.add(principal)

    result = await read(make_source(service_account=account.email))

    assert ADMIN in {u.user_name for u in result.users}
    posts = [c.path for c in fake.calls() if c.method == "POST"]
    assert posts == ["/v1/token", f"/v1/projects/-/serviceAccounts/{account.email}:signJwt", "/token"]


@pytest.mark.usefixtures("adc")
async def test_without_token_creator_the_error_names_the_role(
    fake: FakeGoogle, account: ServiceAccount, make_source: MakeSource
) -> None:
    """When ADC's identity may not sign as the service account, the error names the role to grant."""
    with pytest.raises(SourceAuthError) as caught:
        await read(make_source(service_account=account.email))

    assert "roles/iam.serviceAccountTokenCreator" in str(caught.value)
    assert fake.directory_requests() == 0


@pytest.mark.usefixtures("adc")
async def test_keyless_delegation_errors_point_at_the_accounts_unique_id(
    fake: FakeGoogle, account: ServiceAccount, make_source: MakeSource
) -> None:
    """Keyless and not delegated: the message says where to find the service account's client id."""
    account.token_creators.add(OPERATOR)
    fake.auth.delegations.clear()

    with pytest.raises(SourceAuthError) as caught:
        await read(make_source(service_account=account.email))

    assert f"the unique ID of {account.email}" in str(caught.value)
    assert "Domain-wide delegation" in str(caught.value)


async def test_no_application_default_credentials_is_a_clear_error(
    account: ServiceAccount, make_source: MakeSource, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keyless with no ADC to find says how to provide them."""
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))

    with pytest.raises(SourceAuthError, match="Application Default Credentials"):
        await read(make_source(service_account=account.email))
