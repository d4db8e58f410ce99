"""The fake token endpoint and signJwt, rule by rule: each check Google makes, the fake makes."""

from __future__ import annotations

import json

import httpx2
import jwt
import pytest

from tests.fakes.google import FakeGoogle
from tests.fakes.google_auth import CLOUD_PLATFORM, JWT_BEARER, UNAUTHORIZED_CLIENT, ServiceAccount
from tests.google.conftest import ADMIN, Keys, assertion, get, token_request


pytestmark = pytest.mark.anyio


async def _grant(fake: FakeGoogle, signed: str) -> httpx2.Response:
    return await token_request(fake, {"grant_type": JWT_BEARER, "assertion": signed})


async def test_a_delegated_assertion_gets_a_token_that_reads_as_the_admin(
    fake: FakeGoogle, account: ServiceAccount
) -> None:
    """A valid assertion with sub = the admin gets a Bearer token for an hour, and it lists users."""
    response = await _grant(fake, assertion(fake, account))

    body = response.json()
    assert (response.status_code, body["token_type"], body["expires_in"]) == (200, "Bearer", 3599)
    listed = await get(fake, "/users", body["access_token"], customer="my_customer")
    assert listed.status_code == 200


@pytest.mark.parametrize(
    "scopes",
    [
        ["https://www.googleapis.com/auth/admin.directory.user.readonly"],  # one scope short
        [],  # nothing authorised at all
    ],
)
async def test_scopes_not_authorised_for_delegation_are_401_unauthorized_client(
    fake: FakeGoogle, account: ServiceAccount, scopes: list[str]
) -> None:
    """When the client id is not authorised in the Admin console for every scope asked, the token
    endpoint answers 401 unauthorized_client with Google's description."""
    fake.auth.delegations.pop(account.client_id)
    if scopes:
        fake.delegate(account, scopes)

    response = await _grant(fake, assertion(fake, account))

    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized_client", "error_description": UNAUTHORIZED_CLIENT}


async def test_without_sub_the_token_is_issued_and_directory_calls_are_not_authorized(
    fake: FakeGoogle, account: ServiceAccount
) -> None:
    """An assertion without sub needs no delegation, but its token gets 403 Not Authorized."""
    fake.auth.delegations.clear()

    token = (await _grant(fake, assertion(fake, account, sub=None))).json()["access_token"]
    listed = await get(fake, "/users", token, customer="my_customer")

    assert listed.status_code == 403
    assert listed.json()["error"]["message"] == "Not Authorized to access this resource/api"


@pytest.mark.parametrize(
    ("change", "error", "words"),
    [
        ({"key": "stranger"}, "invalid_grant", "Invalid JWT Signature."),
        ({"aud": "https://oauth2.googleapis.com/token/other"}, "invalid_grant", "audience"),
        ({"lifetime": 3601}, "invalid_grant", "short-lived"),
        ({"lifetime": -1}, "invalid_grant", "short-lived"),
        ({"scopes": []}, "invalid_scope", "Invalid OAuth scope"),
        ({"sub": "nobody@example.com"}, "invalid_grant", "Invalid email or User ID"),
    ],
)
async def test_assertions_google_refuses_are_refused(
    fake: FakeGoogle, account: ServiceAccount, keys: Keys, change: dict[str, object], error: str, words: str
) -> None:
    """A wrong signature, audience or lifetime, no scope, or an unknown sub each get Google's error."""
    options = dict(change)
    if options.pop("key", None) == "stranger":
        options["key"] = keys.stranger

    response = await _grant(fake, assertion(fake, account, **options))  # type: ignore[arg-type]

    assert response.status_code == 400
    assert response.json()["error"] == error
    assert words in response.json()["error_description"]


async def test_an_unknown_issuer_is_an_account_not_found(fake: FakeGoogle, account: ServiceAccount) -> None:
    """An assertion whose iss is no service account gets invalid_grant "account not found"."""
    claims = jwt.decode(assertion(fake, account), options={"verify_signature": False})
    claims["iss"] = "ghost@syncd-test.iam.gserviceaccount.com"
    signed = jwt.encode(claims, account.key, algorithm="RS256")

    response = await _grant(fake, signed)

    assert (response.status_code, response.json()["error_description"]) == (400, "Invalid grant: account not found")


async def test_the_token_endpoint_wants_a_form_post_and_a_known_grant(
    fake: FakeGoogle, account: ServiceAccount
) -> None:
    """JSON bodies are invalid_request; another grant_type is unsupported_grant_type."""
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        as_json = await client.post(fake.token_uri, json={"grant_type": JWT_BEARER, "assertion": "x"})
    other = await token_request(fake, {"grant_type": "client_credentials"})

    assert (as_json.status_code, as_json.json()["error"]) == (400, "invalid_request")
    assert (other.status_code, other.json()["error"]) == (400, "unsupported_grant_type")


async def test_a_refresh_token_grant_serves_an_authorized_user(fake: FakeGoogle) -> None:
    """An authorized_user credential (ADC after gcloud login) refreshes into a token; a wrong secret does not."""
    credential = fake.auth.add_authorized_user("operator@example.com")
    form = {
        "grant_type": "refresh_token",
        "refresh_token": credential["refresh_token"],
        "client_id": credential["client_id"],
        "client_secret": credential["client_secret"],
    }

    good = await token_request(fake, form)
    bad = await token_request(fake, {**form, "client_secret": "wrong"})

    assert (good.status_code, good.json()["scope"]) == (200, CLOUD_PLATFORM)
    assert (bad.status_code, bad.json()["error"]) == (400, "invalid_grant")


# --- signJwt ---------------------------------------------------------------------------------------


async def _sign(fake: FakeGoogle, account: ServiceAccount, token: str, payload: dict[str, object]) -> httpx2.Response:
    url = f"{fake.iam_url}/v1/projects/-/serviceAccounts/{account.email}:signJwt"
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.post(
            url, json={"payload": json.dumps(payload)}, headers={"Authorization": f"Bearer {token}"}
        )


def _claims(fake: FakeGoogle, account: ServiceAccount) -> dict[str, object]:
    now = int(fake.now)
    return {
        "iss": account.email,
        "sub": ADMIN,
        "scope": " ".join(sorted(fake.auth.delegations[account.client_id])),
        "aud": fake.token_uri,
        "iat": now,
        "exp": now + 3600,
    }


async def test_sign_jwt_signs_with_a_google_key_the_token_endpoint_accepts(
    fake: FakeGoogle, account: ServiceAccount
) -> None:
    """A Token Creator gets the payload signed RS256 under Google's key id, and the token endpoint takes it."""
    account.token_creators.add("operator@example.com")
    caller = fake.auth.issue("operator@example.com", [CLOUD_PLATFORM])

    response = await _sign(fake, account, caller, _claims(fake, account))

    body = response.json()
    assert response.status_code == 200
    assert jwt.get_unverified_header(body["signedJwt"])["kid"] == body["keyId"] == account.system_key_id
    assert (
        jwt.decode(
            body["signedJwt"],
            account.system_key.public_key(),
            algorithms=["RS256"],
            options={"verify_aud": False, "verify_exp": False, "verify_iat": False},
        )["sub"]
        == ADMIN
    )
    assert (await _grant(fake, body["signedJwt"])).status_code == 200


async def test_sign_jwt_refuses_callers_without_token_creator_or_scope(
    fake: FakeGoogle, account: ServiceAccount
) -> None:
    """Without the Token Creator role, or with a token lacking cloud-platform, signJwt answers 403."""
    stranger = fake.auth.issue("stranger@example.com", [CLOUD_PLATFORM])
    account.token_creators.add("narrow@example.com")
    narrow = fake.auth.issue("narrow@example.com", ["https://www.googleapis.com/auth/userinfo.email"])

    denied = await _sign(fake, account, stranger, _claims(fake, account))
    unscoped = await _sign(fake, account, narrow, _claims(fake, account))

    assert denied.status_code == 403
    assert denied.json()["error"]["message"].startswith("Permission 'iam.serviceAccounts.signJwt' denied")
    assert denied.json()["error"]["details"][0]["reason"] == "IAM_PERMISSION_DENIED"
    assert (unscoped.status_code, unscoped.json()["error"]["status"]) == (403, "PERMISSION_DENIED")


async def test_sign_jwt_refuses_an_exp_more_than_12_hours_ahead(fake: FakeGoogle, account: ServiceAccount) -> None:
    """A payload whose exp is over 12 hours away is a 400 INVALID_ARGUMENT."""
    account.token_creators.add("operator@example.com")
    caller = fake.auth.issue("operator@example.com", [CLOUD_PLATFORM])

    response = await _sign(fake, account, caller, {**_claims(fake, account), "exp": int(fake.now) + 12 * 3600 + 1})

    assert (response.status_code, response.json()["error"]["status"]) == (400, "INVALID_ARGUMENT")


# --- STS (workload identity federation) ------------------------------------------------------------


def _exchange(provider_audience: str, subject_token: str) -> dict[str, str]:
    return {
        "grant_type": "urn:ietf:params:oauth:grant-type:token-exchange",
        "audience": provider_audience,
        "scope": CLOUD_PLATFORM,
        "requested_token_type": "urn:ietf:params:oauth:token-type:access_token",
        "subject_token": subject_token,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
    }


async def _sts(fake: FakeGoogle, form: dict[str, str]) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        return await client.post(f"{fake.sts_url}/v1/token", data=form)


@pytest.mark.parametrize("flaw", [None, "audience", "signer", "expired", "token_aud"])
async def test_sts_trades_only_a_valid_workload_token(fake: FakeGoogle, keys: Keys, flaw: str | None) -> None:
    """STS gives a federated token for an OIDC token of the provider's issuer, for its audience, unexpired;
    an unknown provider is invalid_target, a token signed by another key, expired or for another audience
    is invalid_grant."""
    issuer = "https://oidc.example.com"
    provider = fake.auth.add_workload_provider(issuer, keys.stranger.public_key())
    now = int(fake.now)
    claims = {"iss": issuer, "sub": "workload", "aud": f"https:{provider.audience}", "iat": now, "exp": now + 600}
    if flaw == "expired":
        claims["exp"] = now - 1
    if flaw == "token_aud":
        claims["aud"] = "https://elsewhere.example"
    signer = keys.account if flaw == "signer" else keys.stranger
    audience = provider.audience + ("x" if flaw == "audience" else "")

    response = await _sts(fake, _exchange(audience, jwt.encode(claims, signer, algorithm="RS256")))

    if flaw is None:
        assert response.status_code == 200
        token = fake.auth.tokens[response.json()["access_token"]]
        assert token.principal == provider.principal("workload")
    else:
        assert response.status_code == 400
        assert response.json()["error"] == ("invalid_target" if flaw == "audience" else "invalid_grant")
