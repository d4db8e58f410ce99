"""OktaSettings: one way to authenticate, readable durations, and no secret in any error."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from connectors.okta import DEFAULT_SCOPES, OktaSettings
from tests.okta.conftest import Keys


TOKEN = "00T-super-secret-token-value"


def _errors(data: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        OktaSettings.model_validate(data)
    return str(caught.value)


def test_defaults() -> None:
    """An API token alone gives the documented defaults."""
    settings = OktaSettings.model_validate({"url": "https://acme.okta.com/", "token": TOKEN})

    assert settings.url == "https://acme.okta.com"
    assert settings.full_read_every == timedelta(hours=24)
    assert (settings.include_staged, settings.concurrency, settings.max_retries) == (False, 4, 5)
    assert settings.scopes == list(DEFAULT_SCOPES)
    assert TOKEN not in repr(settings)


@pytest.mark.parametrize(("text", "expected"), [("30s", 30), ("15m", 900), ("7d", 604800), ("PT1H", 3600)])
def test_full_read_every_takes_short_durations(text: str, expected: int) -> None:
    """full_read_every accepts "30s", "15m", "7d" (and ISO 8601)."""
    settings = OktaSettings.model_validate({"url": "https://acme.okta.com", "token": TOKEN, "full_read_every": text})
    assert settings.full_read_every == timedelta(seconds=expected)


def test_a_bad_duration_is_explained() -> None:
    """A duration that does not parse names the accepted forms."""
    assert "write it like 30s, 15m, 24h or 7d" in _errors(
        {"url": "https://acme.okta.com", "token": TOKEN, "full_read_every": "daily"}
    )


def test_no_credentials_names_both_ways() -> None:
    """Without any credential the error names token and client_id + private_key."""
    message = _errors({"url": "https://acme.okta.com"})
    assert "set token" in message
    assert "client_id + private_key" in message


def test_both_credentials_are_refused_without_echoing_them(keys: Keys) -> None:
    """token together with client_id + private_key is refused, and neither secret is in the error."""
    message = _errors({"url": "https://acme.okta.com", "token": TOKEN, "client_id": "0oa1", "private_key": keys.pem})
    assert "not both" in message
    assert TOKEN not in message
    assert "PRIVATE KEY" not in message


def test_client_id_needs_a_private_key() -> None:
    """client_id alone names the missing private_key."""
    assert "private_key is missing" in _errors({"url": "https://acme.okta.com", "client_id": "0oa1"})


def test_a_private_key_needs_a_client_id(keys: Keys) -> None:
    """private_key alone names the missing client_id."""
    assert "client_id is missing" in _errors({"url": "https://acme.okta.com", "private_key": keys.pem})


def test_an_unreadable_private_key_is_explained_without_quoting_it() -> None:
    """A private_key that is neither PEM nor JWK is refused, and its text is not in the error."""
    garbage = "-----BEGIN PRIVATE KEY-----\nnot-really-a-key-but-secret\n-----END PRIVATE KEY-----"
    message = _errors({"url": "https://acme.okta.com", "client_id": "0oa1", "private_key": garbage})
    assert "neither an unencrypted PEM private key nor a JWK" in message
    assert "not-really-a-key-but-secret" not in message


def test_a_public_jwk_is_refused(keys: Keys) -> None:
    """A JWK without its private part cannot sign and is refused."""
    public = {k: v for k, v in json.loads(keys.jwk).items() if k in {"kty", "n", "e", "kid"}}
    message = _errors({"url": "https://acme.okta.com", "client_id": "0oa1", "private_key": json.dumps(public)})
    assert "private" in message


def test_token_settings_refuse_oauth_only_keys() -> None:
    """scopes and key_id with an API token are a mistake worth naming."""
    assert "scopes only apply to OAuth" in _errors(
        {"url": "https://acme.okta.com", "token": TOKEN, "scopes": ["okta.users.read"]}
    )


def test_unknown_keys_are_refused() -> None:
    """A misspelt key is an error, not silently ignored."""
    assert "Extra inputs are not permitted" in _errors({"url": "https://acme.okta.com", "token": TOKEN, "tokn": 1})


@pytest.mark.parametrize("url", ["acme.okta.com", "https://acme-admin.okta.com"])
def test_the_url_must_be_the_org_url(url: str) -> None:
    """A URL without scheme, or the -admin console URL, is refused."""
    assert "org URL" in _errors({"url": url, "token": TOKEN})


def test_a_trailing_api_path_is_dropped() -> None:
    """https://acme.okta.com/api/v1 is read as the org URL."""
    settings = OktaSettings.model_validate({"url": "https://acme.okta.com/api/v1", "token": TOKEN})
    assert settings.url == "https://acme.okta.com"
