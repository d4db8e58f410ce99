"""``[source.okta]``: the Okta connector's settings (the org, how to authenticate, how to read).

Kept apart from :mod:`connectors.okta` so that the read strategy and its settings each stay a
short module; :mod:`connectors.okta` re-exports :class:`OktaSettings`.
"""

from __future__ import annotations

from datetime import timedelta

import httpx2
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from connectors.kit import SigningKey, load_signing_key
from syncd.durations import PositiveDuration
from syncd.secrets import Secret, SecretText


__all__ = ["DEFAULT_SCOPES", "OktaSettings"]

DEFAULT_SCOPES = ("okta.users.read", "okta.groups.read")


class OktaSettings(BaseModel):
    """``[source.okta]``: the org and how to authenticate to it.

    Give either ``token`` (an SSWS API token) or ``client_id`` + ``private_key`` (an OAuth
    service app with public-key client authentication, granted ``scopes`` and a read-only
    admin role). Secrets may be written env:NAME or file:PATH (syncd.secrets); they are held as
    SecretStr and never appear in messages.
    """

    # Validation errors must not echo the input: it holds the token or the private key.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str = Field(description="The org URL, e.g. https://acme.okta.com (not the -admin URL).")
    token: Secret | None = Field(None, description="SSWS API token (env:NAME and file:PATH work).")
    client_id: str | None = Field(None, description="OAuth service app client id.")
    private_key: SecretText | None = Field(
        None, description="The service app's private key, PEM or JWK JSON (env:NAME and file:PATH work)."
    )
    key_id: str | None = Field(None, description="kid of the key registered with the app (JWK kid by default).")
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    full_read_every: PositiveDuration = Field(timedelta(hours=24), description='e.g. "30s", "15m", "24h", "7d".')
    include_staged: bool = Field(False, description="Sync STAGED/PROVISIONED users, disabled.")
    system_log: bool = Field(
        False, description="Read deletions from the System Log on incremental reads (OAuth: scope okta.logs.read)."
    )
    concurrency: int = Field(4, ge=1, le=32, description="Group member listings read in parallel.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 429, 5xx and network errors.")

    _signing_key: SigningKey | None = PrivateAttr(None)

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        url = url.removesuffix("/api/v1")
        parsed = httpx2.URL(url)
        if parsed.scheme not in {"https", "http"} or not parsed.host:
            raise ValueError("url must be the org URL with its scheme, e.g. https://acme.okta.com")
        if "-admin." in parsed.host:
            raise ValueError("url must be the org URL (https://acme.okta.com), not the Admin Console's -admin URL")
        return url

    @model_validator(mode="after")
    def _one_auth_method(self) -> OktaSettings:
        oauth = self.client_id is not None or self.private_key is not None
        if self.token is not None and oauth:
            raise ValueError(
                "set either token (SSWS API token) or client_id + private_key (OAuth service app), not both"
            )
        if self.token is None and not oauth:
            raise ValueError("set token (an SSWS API token) or client_id + private_key (an OAuth service app)")
        if self.token is not None:
            extra = sorted({"key_id", "scopes"} & self.model_fields_set)
            if extra:
                raise ValueError(f"{' and '.join(extra)} only apply to OAuth (client_id + private_key), not to token")
            return self
        if not self.client_id:
            raise ValueError("client_id is missing: private_key needs the service app's client_id")
        if self.private_key is None:
            raise ValueError("private_key is missing: client_id needs the service app's private key")
        if not self.scopes:
            raise ValueError(f"scopes is empty; syncd needs {' and '.join(DEFAULT_SCOPES)}")
        if self.system_log and "okta.logs.read" not in self.scopes:
            raise ValueError("system_log needs the scope okta.logs.read: add it to scopes (and grant it to the app)")
        self._signing_key = load_signing_key(self.private_key.get_secret_value(), self.key_id)
        return self

    @property
    def signing_key(self) -> SigningKey | None:
        """The loaded OAuth signing key (None with an API token)."""
        return self._signing_key
