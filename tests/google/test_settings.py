"""[source.google] settings: a key file or keyless, each mistake named, the key never echoed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from connectors import base
from connectors.google import GoogleSettings
from tests.fakes.google import FakeGoogle
from tests.fakes.google_auth import ServiceAccount
from tests.google.conftest import ADMIN


def _key(fake: FakeGoogle, account: ServiceAccount) -> dict[str, str]:
    return fake.auth.key_json(account)


def test_google_is_a_registered_source_type() -> None:
    """`type = "google"` finds the Google connector and its settings."""
    assert base.get("google").settings is GoogleSettings


def test_a_key_file_is_read_from_file_and_its_token_uri_kept(
    fake: FakeGoogle, account: ServiceAccount, tmp_path: Path
) -> None:
    """credentials = "file:PATH" loads the key: its client email, client id and token_uri."""
    path = tmp_path / "key.json"
    path.write_text(json.dumps({**_key(fake, account), "token_uri": "http://127.0.0.1:9/token"}), encoding="utf-8")

    settings = GoogleSettings.model_validate({"credentials": f"file:{path}", "admin_email": ADMIN})

    assert settings.key is not None
    assert (settings.key.email, settings.key.client_id, settings.key.token_uri) == (
        account.email,
        account.client_id,
        "http://127.0.0.1:9/token",
    )
    assert (settings.customer, settings.api_url) == ("my_customer", "https://admin.googleapis.com")


def test_a_key_file_comes_from_the_environment(
    fake: FakeGoogle, account: ServiceAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """credentials = "env:NAME" reads the key JSON from the variable."""
    monkeypatch.setenv("GOOGLE_KEY_JSON", json.dumps(_key(fake, account)))

    settings = GoogleSettings.model_validate({"credentials": "env:GOOGLE_KEY_JSON", "admin_email": ADMIN})

    assert settings.key is not None
    assert settings.key.email == account.email


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"type": "authorized_user"}, "not a service-account key file"),
        ({"private_key": "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n"}, "private_key"),
        ({"client_email": ""}, "client_email"),
    ],
)
def test_a_bad_key_file_is_named_without_quoting_it(
    fake: FakeGoogle, account: ServiceAccount, change: dict[str, str], words: str
) -> None:
    """A key file of the wrong type, with a broken key or missing fields fails under credentials, key unquoted."""
    key = {**_key(fake, account), **change}

    with pytest.raises(ValidationError) as caught:
        GoogleSettings.model_validate({"credentials": json.dumps(key), "admin_email": ADMIN})

    text = str(caught.value)
    assert words in text
    assert "BEGIN PRIVATE KEY" not in text
    assert account.key_id not in text


def test_credentials_that_are_not_json_are_refused(fake: FakeGoogle) -> None:
    """A credentials value that is not JSON says what to give instead."""
    with pytest.raises(ValidationError, match="not JSON"):
        GoogleSettings.model_validate({"credentials": "hunter2", "admin_email": ADMIN})


def test_keyless_needs_a_service_account_and_not_both(fake: FakeGoogle, account: ServiceAccount) -> None:
    """Neither credentials nor service_account, or both, is refused with the two ways spelled out."""
    with pytest.raises(ValidationError, match="service_account"):
        GoogleSettings.model_validate({"admin_email": ADMIN})
    with pytest.raises(ValidationError, match="not both"):
        GoogleSettings.model_validate(
            {"admin_email": ADMIN, "credentials": json.dumps(_key(fake, account)), "service_account": account.email}
        )

    keyless = GoogleSettings.model_validate({"admin_email": ADMIN, "service_account": account.email})

    assert (keyless.key, keyless.iam_url) == (None, "https://iamcredentials.googleapis.com")


@pytest.mark.parametrize(
    ("key", "value"),
    [("admin_email", "admin"), ("api_url", "admin.googleapis.com"), ("concurrency", 0), ("nesting", "deep")],
)
def test_bad_values_name_their_key(fake: FakeGoogle, account: ServiceAccount, key: str, value: object) -> None:
    """A non-email admin, a URL without scheme, zero concurrency or an unknown nesting mode is refused by key."""
    data = {"admin_email": ADMIN, "service_account": account.email, key: value}

    with pytest.raises(ValidationError) as caught:
        GoogleSettings.model_validate(data)

    assert key in str(caught.value)


def test_api_url_may_include_the_directory_path(account: ServiceAccount) -> None:
    """An api_url written with /admin/directory/v1 (or a trailing slash) means the same base URL."""
    settings = GoogleSettings.model_validate(
        {"admin_email": ADMIN, "service_account": account.email, "api_url": "http://127.0.0.1:8080/admin/directory/v1/"}
    )

    assert settings.api_url == "http://127.0.0.1:8080"
