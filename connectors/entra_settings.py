"""``[source.entra]``: the tenant, the app registration, and how syncd proves it is that app.

One credential (Microsoft identity platform, "client credentials flow",
https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow):

* ``client_secret`` — a secret reference (``env:NAME`` / ``file:PATH``);
* ``certificate`` — a PEM bundle of the private key and its certificate; the assertion carries
  the certificate's SHA-1 thumbprint as ``x5t`` ("Microsoft identity platform certificate
  credentials", https://learn.microsoft.com/entra/identity-platform/certificate-credentials);
* ``federated_token_file`` — workload identity federation: a token that AKS, GitHub Actions or
  another OIDC issuer writes to a file, read again before every token request (the platform
  rotates it). It defaults to ``AZURE_FEDERATED_TOKEN_FILE``, which the AKS workload identity
  webhook sets (https://azure.github.io/azure-workload-identity/docs/quick-start.html), so no
  secret has to exist at all.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

import httpx2
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from connectors.kit import SigningKey, load_signing_key
from syncd.durations import Duration
from syncd.secrets import Secret, SecretText


__all__ = ["FEDERATED_TOKEN_ENV", "EntraSettings", "certificate_key"]

FEDERATED_TOKEN_ENV = "AZURE_FEDERATED_TOKEN_FILE"  # noqa: S105 - the name of a variable, not a secret
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.DOTALL)
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*$")  # a GUID or a verified domain name


def certificate_key(text: str) -> SigningKey:
    """The signing key of a PEM bundle (private key + certificate), with ``x5t`` in its header.

    The bundle may carry a chain: the certificate used is the one that belongs to the key.
    Raises ValueError naming what is missing; never quotes the key.
    """
    # Imported here: a secret or federated sign-in needs no cryptography (connectors.kit.keys).
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    blocks = [(m.group(1), m.group(0)) for m in _PEM_BLOCK.finditer(text)]
    key_block = next((block for kind, block in blocks if kind.endswith("PRIVATE KEY")), None)
    cert_blocks = [block for kind, block in blocks if kind == "CERTIFICATE"]
    if key_block is None or not cert_blocks:
        raise ValueError(
            "certificate must be a PEM bundle holding the private key and its certificate "
            "(-----BEGIN PRIVATE KEY----- and -----BEGIN CERTIFICATE-----)"
        )
    key = load_signing_key(key_block, name="certificate")
    if not isinstance(key.key, rsa.RSAPrivateKey):
        raise ValueError("certificate must hold an RSA key: Entra accepts RSA certificate credentials")
    wanted = key.key.public_key().public_numbers()
    cert = None
    for block in cert_blocks:
        try:
            candidate = x509.load_pem_x509_certificate(block.encode())
        except ValueError:
            raise ValueError("certificate holds a CERTIFICATE block that is not a valid X.509 certificate") from None
        public = candidate.public_key()
        if isinstance(public, rsa.RSAPublicKey) and public.public_numbers() == wanted:
            cert = candidate
            break
    if cert is None:
        raise ValueError("certificate holds a private key that does not belong to its certificate")
    # x5t: the base64url SHA-1 thumbprint of the certificate's DER (RFC 7515 §4.1.7).
    digest = hashlib.sha1(cert.public_bytes(serialization.Encoding.DER), usedforsecurity=False).digest()
    thumbprint = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    return dataclasses.replace(key, key_id=None, headers={"x5t": thumbprint})


class EntraSettings(BaseModel):
    """``[source.entra]``: see the module docstring; secrets may be ``env:NAME`` or ``file:PATH``."""

    # Validation errors must not echo the input: it may hold the secret or the private key.
    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    tenant_id: str = Field(description="The directory (tenant) id, or a verified domain of the tenant.")
    client_id: str = Field(description="The application (client) id of the app registration.")
    client_secret: Secret | None = Field(None, description="A client secret's Value (env:NAME and file:PATH work).")
    certificate: SecretText | None = Field(
        None, description="PEM bundle: the private key and the certificate uploaded to the app."
    )
    federated_token_file: Path | None = Field(
        None, description=f"A federated token file (workload identity); default ${FEDERATED_TOKEN_ENV}."
    )
    login_url: str = Field("https://login.microsoftonline.com", description="The identity platform (national clouds).")
    graph_url: str = Field("https://graph.microsoft.com", description="Microsoft Graph (national clouds).")
    username_attribute: Literal["userPrincipalName", "mail"] = Field(
        "userPrincipalName", description="What becomes the Identity Center userName."
    )
    include_guests: bool = Field(False, description="Sync guests (userType Guest); their userName is their mail.")
    full_read_every: Duration = Field(timedelta(hours=24), description='e.g. "12h", "24h", "6d".')
    concurrency: int = Field(4, ge=1, le=16, description="Group member listings read in parallel.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 429, 5xx and network errors.")

    _signing_key: SigningKey | None = PrivateAttr(None)

    @field_validator("tenant_id")
    @classmethod
    def _check_tenant(cls, value: str) -> str:
        value = value.strip()
        if not _TENANT.match(value):
            raise ValueError("tenant_id must be the tenant's id (a GUID) or one of its domains, e.g. contoso.com")
        return value

    @field_validator("client_id")
    @classmethod
    def _check_client(cls, value: str) -> str:
        value = value.strip()
        if not value or "/" in value or " " in value:
            raise ValueError("client_id must be the app registration's Application (client) ID")
        return value

    @field_validator("login_url", "graph_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        url = value.strip().rstrip("/").removesuffix("/v1.0")
        parsed = httpx2.URL(url)
        if parsed.scheme not in {"https", "http"} or not parsed.host:
            raise ValueError("must be a URL with its scheme, e.g. https://graph.microsoft.com")
        return url

    @field_validator("full_read_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("full_read_every must be longer than zero, e.g. 24h")
        return value

    @model_validator(mode="after")
    def _one_credential(self) -> EntraSettings:
        given = [
            name for name in ("client_secret", "certificate", "federated_token_file") if getattr(self, name) is not None
        ]
        if not given and os.environ.get(FEDERATED_TOKEN_ENV):
            self.federated_token_file = Path(os.environ[FEDERATED_TOKEN_ENV])
            given = ["federated_token_file"]
        if not given:
            raise ValueError(
                "set one credential: client_secret, certificate, or federated_token_file "
                f"(or run where ${FEDERATED_TOKEN_ENV} is set, as with AKS workload identity)"
            )
        if len(given) > 1:
            raise ValueError(f"set only one credential, not {' and '.join(given)}")
        if self.certificate is not None:
            self._signing_key = certificate_key(self.certificate.get_secret_value())
        return self

    @property
    def signing_key(self) -> SigningKey | None:
        """The certificate's key with its ``x5t`` header (None with another credential)."""
        return self._signing_key

    @property
    def token_url(self) -> str:
        """The tenant's v2.0 token endpoint."""
        return f"{self.login_url}/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def scope(self) -> str:
        """``{graph_url}/.default``: the app's consented application permissions on Graph."""
        return f"{self.graph_url}/.default"
