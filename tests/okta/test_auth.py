"""Authentication: SSWS tokens, the OAuth service app, and the errors each can end in."""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from syncd.errors import SourceAuthError
from tests.fakes.okta import FakeOkta
from tests.okta.conftest import Clock, Keys, MakeSource, read


pytestmark = pytest.mark.anyio

CLIENT_ID = "0oa1serviceapp000001"


def _oauth(keys: Keys, **extra: object) -> dict[str, object]:
    return {"client_id": CLIENT_ID, "private_key": keys.pem, **extra}


def _assertions(fake: FakeOkta) -> list[dict[str, object]]:
    out = []
    for request in fake.requests:
        if request.url.path == "/oauth2/v1/token":
            form = parse_qs(request.content.decode())
            out.append(
                {
                    "form": {k: v[0] for k, v in form.items() if k != "client_assertion"},
                    "header": jwt.get_unverified_header(form["client_assertion"][0]),
                    "claims": jwt.decode(form["client_assertion"][0], options={"verify_signature": False}),
                }
            )
    return out


async def test_the_api_token_is_sent_as_ssws(fake: FakeOkta, make_source: MakeSource) -> None:
    """Every API call carries Authorization: SSWS <token>."""
    fake.add_user()

    await read(make_source())

    assert {c.authorization for c in fake.calls()} == {f"SSWS {fake.token}"}


async def test_a_rejected_token_says_so_without_quoting_it(fake: FakeOkta, make_source: MakeSource) -> None:
    """401 becomes SourceAuthError saying the token is invalid; the token is not in the message."""
    secret = "00T-wrong-but-secret-token-value"

    with pytest.raises(SourceAuthError) as caught:
        await read(make_source(token=secret))

    message = str(caught.value)
    assert "the token is invalid" in message
    assert "E0000011" in message
    assert secret not in message
    assert len(fake.requests) == 1  # a 401 is not retried


async def test_a_token_without_permission_names_the_scope(make_source: MakeSource, fake: FakeOkta) -> None:
    """403 for an API token whose admin cannot read groups names okta.groups.read."""
    fake.token_scopes = frozenset({"okta.users.read"})

    with pytest.raises(SourceAuthError, match=r"403, E0000006.*okta\.groups\.read"):
        await read(make_source())


async def test_oauth_token_is_fetched_once_and_reused(
    fake: FakeOkta, make_source: MakeSource, keys: Keys, clock: Clock
) -> None:
    """One access token serves every call of two reads; the assertion is a valid private_key_jwt."""
    fake.add_oauth_client(CLIENT_ID, keys.public)
    user = fake.add_user()
    fake.add_member(fake.add_group("g"), user)
    source = make_source(**_oauth(keys))

    first = await read(source)
    clock.fake.advance(600)
    second = await read(source, full=False, state=first.state)

    assert fake.tokens_issued == 1
    assert len({c.authorization for c in fake.calls()}) == 1
    assert next(iter({c.authorization for c in fake.calls()})).startswith("Bearer ")
    (assertion,) = _assertions(fake)
    assert assertion["form"] == {
        "grant_type": "client_credentials",
        "scope": "okta.users.read okta.groups.read",
        "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
    }
    claims = assertion["claims"]
    assert isinstance(claims, dict)
    assert (claims["iss"], claims["sub"], claims["aud"]) == (
        CLIENT_ID,
        CLIENT_ID,
        f"{fake.url}/oauth2/v1/token",
    )
    assert 0 < claims["exp"] - claims["iat"] <= 3600
    assert claims["jti"]
    assert assertion["header"]["alg"] == "RS256"
    assert first.requests == 1 + 3  # the token request is counted
    assert len(second.users) == 1


async def test_oauth_token_is_refreshed_near_expiry(
    fake: FakeOkta, make_source: MakeSource, keys: Keys, clock: Clock
) -> None:
    """A token within a minute of its one-hour expiry is replaced before the next call."""
    fake.add_oauth_client(CLIENT_ID, keys.public)
    fake.add_user()
    source = make_source(**_oauth(keys))

    await read(source)
    fake.advance(3000)
    await read(source)
    assert fake.tokens_issued == 1
    fake.advance(560)  # 3560 s after the token was issued
    await read(source)

    assert fake.tokens_issued == 2
    jtis = [a["claims"]["jti"] for a in _assertions(fake)]  # type: ignore[index]
    assert len(set(jtis)) == 2


async def test_a_revoked_oauth_token_is_replaced_once(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """A 401 on a cached access token fetches a new one and carries on."""
    fake.add_oauth_client(CLIENT_ID, keys.public)
    fake.add_user()
    source = make_source(**_oauth(keys))
    await read(source)
    fake.revoke_tokens()

    result = await read(source)

    assert len(result.users) == 1
    assert fake.tokens_issued == 2


async def test_a_jwk_private_key_signs_with_its_kid(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """A JWK private key works, and its kid goes into the assertion header."""
    fake.add_oauth_client(CLIENT_ID, keys.public, key_id="key-1")
    fake.add_user()

    await read(make_source(client_id=CLIENT_ID, private_key=keys.jwk))

    assert [a["header"]["kid"] for a in _assertions(fake)] == ["key-1"]  # type: ignore[index]


async def test_a_missing_api_scope_is_named(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """A token without okta.groups.read gets 403 on the group listing; the error names that scope."""
    fake.add_oauth_client(CLIENT_ID, keys.public)
    fake.add_user()

    with pytest.raises(SourceAuthError) as caught:
        await read(make_source(**_oauth(keys, scopes=["okta.users.read"])))

    message = str(caught.value)
    assert "lacks the scope okta.groups.read" in message
    assert "GET /api/v1/groups" in message
    assert keys.pem not in message


async def test_scopes_not_granted_to_the_app_are_named(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """The token endpoint's invalid_scope becomes SourceAuthError naming the scopes to grant."""
    fake.add_oauth_client(CLIENT_ID, keys.public, scopes=["okta.users.read"])

    with pytest.raises(SourceAuthError, match=r"invalid_scope.*okta\.groups\.read"):
        await read(make_source(**_oauth(keys)))


async def test_a_wrong_key_is_an_auth_error(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """An assertion the app's public key cannot verify fails with invalid_client, key not quoted."""
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake.add_oauth_client(CLIENT_ID, other.public_key())

    with pytest.raises(SourceAuthError) as caught:
        await read(make_source(**_oauth(keys)))

    message = str(caught.value)
    assert "invalid_client" in message
    assert "signature is invalid" in message
    assert "PRIVATE KEY" not in message
    assert fake.calls() == []  # no API call was attempted


async def test_dpop_apps_are_explained(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """An app that requires DPoP is refused with advice to turn DPoP off."""
    fake.add_oauth_client(CLIENT_ID, keys.public, require_dpop=True)

    with pytest.raises(SourceAuthError, match="DPoP"):
        await read(make_source(**_oauth(keys)))


async def test_the_fake_rejects_a_stale_assertion(fake: FakeOkta, keys: Keys) -> None:
    """The fake checks exp on its own clock: an assertion that expired is refused (a check of the fake)."""
    fake.add_oauth_client(CLIENT_ID, keys.public)
    token_url = f"{fake.url}/oauth2/v1/token"
    claims = {"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": token_url, "exp": int(fake.now) - 1}
    async with httpx2.AsyncClient(transport=fake.transport) as client:
        response = await client.post(
            token_url,
            data={
                "grant_type": "client_credentials",
                "scope": "okta.users.read",
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": jwt.encode(claims, keys.private, algorithm="RS256"),
            },
        )
    assert (response.status_code, json.loads(response.content)["error"]) == (401, "invalid_client")


async def test_the_scope_in_the_challenge_is_the_one_named(make_source: MakeSource, keys: Keys) -> None:
    """The scope named in a 403 comes from Okta's www-authenticate challenge when it sends one."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/oauth2/v1/token":
            return httpx2.Response(200, json={"token_type": "Bearer", "expires_in": 3600, "access_token": "at"})
        challenge = 'Bearer realm="IdpMyAccountAPI", scope="okta.users.manage", error="insufficient_scope"'
        return httpx2.Response(
            403,
            json={"errorCode": "E0000006", "errorSummary": "You do not have permission"},
            headers={"WWW-Authenticate": challenge},
        )

    with pytest.raises(SourceAuthError, match=r"lacks the scope okta\.users\.manage"):
        await read(make_source(transport=httpx2.MockTransport(handler), **_oauth(keys)))


async def test_an_app_without_an_admin_role_is_told_so(fake: FakeOkta, make_source: MakeSource, keys: Keys) -> None:
    """A 403 without a scope challenge (scopes granted, no admin role) names the scope and the role."""
    fake.add_oauth_client(CLIENT_ID, keys.public, admin_role=False)

    with pytest.raises(SourceAuthError, match=r"needs the scope okta\.users\.read and an admin role"):
        await read(make_source(**_oauth(keys)))
