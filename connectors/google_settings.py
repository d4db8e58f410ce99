"""``[source.google]``: the Google Workspace connector's settings and its service-account key file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from connectors.kit import SigningKey, load_signing_key
from syncd.secrets import SecretText


__all__ = ["API_URL", "DIRECTORY", "IAM_URL", "SCOPES", "TOKEN_URI", "GoogleSettings", "ServiceAccountKey"]

API_URL = "https://admin.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
IAM_URL = "https://iamcredentials.googleapis.com"
DIRECTORY = "/admin/directory/v1"
SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
)


@dataclass(frozen=True, slots=True)
class ServiceAccountKey:
    """What syncd uses of a service-account key file."""

    email: str
    client_id: str
    token_uri: str
    signing_key: SigningKey


def _load_key(text: str) -> ServiceAccountKey:
    """Read a key file's JSON; ValueError naming what is wrong, never quoting the key."""
    try:
        data = json.loads(text)
    except ValueError:
        raise ValueError(
            "credentials is not JSON; give the service account's key file (file:PATH or env:NAME)"
        ) from None
    if not isinstance(data, dict) or data.get("type") != "service_account":
        raise ValueError('credentials is not a service-account key file (its "type" must be "service_account")')
    missing = [
        k for k in ("client_email", "client_id", "private_key") if not isinstance(data.get(k), str) or not data[k]
    ]
    if missing:
        raise ValueError(f"credentials lacks {', '.join(missing)}; download a new JSON key for the service account")
    kid = data.get("private_key_id") if isinstance(data.get("private_key_id"), str) else None
    key = load_signing_key(data["private_key"], kid, name="the private_key in credentials")
    token_uri = data.get("token_uri")
    if not isinstance(token_uri, str) or not token_uri:
        token_uri = TOKEN_URI
    return ServiceAccountKey(data["client_email"], data["client_id"], token_uri, key)


def _base_url(value: str, name: str) -> str:
    url = value.strip().rstrip("/")
    parsed = httpx2.URL(url)
    if parsed.scheme not in {"https", "http"} or not parsed.host:
        raise ValueError(f"{name} must be a URL with its scheme, e.g. https://example.googleapis.com")
    return url


class GoogleSettings(BaseModel):
    """``[source.google]``: the domain, the admin to act as, and how to sign the delegation JWT.

    Give ``credentials`` (a service-account key file's JSON, as ``file:PATH`` or ``env:NAME``),
    or, keyless, ``service_account`` (signed through IAM with Application Default Credentials).
    """

    # Validation errors must not echo the input: it holds the private key.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    credentials: SecretText | None = Field(None, description="Service-account key JSON (file:PATH or env:NAME).")
    admin_email: str = Field(description="The admin to act as (the JWT sub); needs read rights on users and groups.")
    customer: str = Field("my_customer", description="The customer id, or my_customer (the admin's own).")
    api_url: str = Field(API_URL, description="Directory API base URL.")
    token_uri: str | None = Field(None, description="Token endpoint; default: the key file's token_uri, or Google's.")
    service_account: str | None = Field(None, description="Keyless: the service account IAM signs as.")
    iam_url: str = Field(IAM_URL, description="IAM Credentials base URL (keyless signing).")
    nesting: Literal["derived", "expand"] = Field(
        "derived", description="derived: Google flattens nested groups; expand: syncd does it."
    )
    concurrency: int = Field(8, ge=1, le=32, description="Member listings read in parallel.")
    queries_per_minute: int = Field(2400, ge=1, description="Directory API queries per minute to stay under.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 5xx, 429, rate-limit 403s and network errors.")

    _key: ServiceAccountKey | None = PrivateAttr(None)

    @field_validator("api_url", "iam_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _base_url(value, "the URL").removesuffix(DIRECTORY)

    @field_validator("token_uri")
    @classmethod
    def _token_uri(cls, value: str | None) -> str | None:
        return None if value is None else _base_url(value, "token_uri")

    @field_validator("admin_email", "service_account")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and ("@" not in value or value.strip() != value or not value.split("@")[1]):
            raise ValueError("must be an email address, e.g. admin@example.com")
        return value

    @model_validator(mode="after")
    def _one_signer(self) -> GoogleSettings:
        if self.credentials is not None and self.service_account is not None:
            raise ValueError(
                "set either credentials (a key file) or service_account (keyless, signed through IAM), not both"
            )
        if self.credentials is None and self.service_account is None:
            raise ValueError(
                "set credentials (the service account's key file, file:PATH or env:NAME) or, keyless, "
                "service_account (name@project.iam.gserviceaccount.com, signed with Application Default Credentials)"
            )
        if self.credentials is not None:
            self._key = _load_key(self.credentials.get_secret_value())
        return self

    @property
    def key(self) -> ServiceAccountKey | None:
        """The loaded key file (None when keyless)."""
        return self._key
