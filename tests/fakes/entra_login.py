"""The Microsoft Entra token endpoint of the fake tenant (the client credentials grant).

``POST {login_url}/{tenant}/oauth2/v2.0/token`` with ``grant_type=client_credentials``, a
``scope`` of ``{graph_url}/.default`` and one client credential:

* ``client_secret`` — compared with the app's secrets; a wrong one is 401 ``invalid_client``
  AADSTS7000215, an expired one AADSTS7000222;
* a certificate ``client_assertion`` (jwt-bearer, RFC 7523 §2.2): RS256 with ``x5t`` (the
  base64url SHA-1 thumbprint of the certificate's DER) or PS256 with ``x5t#S256``; ``aud`` the
  v2.0 token URL, ``iss`` = ``sub`` = the client id, ``exp``/``nbf`` checked on the fake's clock
  (https://learn.microsoft.com/entra/identity-platform/certificate-credentials);
* a federated ``client_assertion``: a token of an outside OIDC issuer whose ``iss``, ``sub`` and
  ``aud`` (default ``api://AzureADTokenExchange``) match one of the app's federated identity
  credentials, signed by that issuer's key
  (https://learn.microsoft.com/entra/workload-id/workload-identity-federation).

Errors have Entra's body: ``error``, ``error_description`` starting with the AADSTS code,
``error_codes``, ``timestamp``, ``trace_id``, ``correlation_id``, ``error_uri``
(https://learn.microsoft.com/entra/identity-platform/reference-error-codes). Codes whose exact
wording we could not confirm are marked **[assumed]**.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization


JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
ACCESS_TOKEN_LIFETIME = 3599  # Entra answers expires_in of about an hour


def thumbprint(certificate: x509.Certificate, algorithm: str = "sha1") -> str:
    """The base64url (unpadded) thumbprint of a certificate's DER, as ``x5t`` / ``x5t#S256`` carry it."""
    der = certificate.public_bytes(serialization.Encoding.DER)
    digest = hashlib.new(algorithm, der).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


@dataclass
class Secret:
    """A client secret of an app registration and when it stops working (epoch seconds)."""

    value: str
    expires: float = float("inf")


@dataclass(frozen=True)
class FederatedCredential:
    """A federated identity credential: which outside tokens the app trusts."""

    issuer: str
    subject: str
    audience: str = FEDERATION_AUDIENCE


@dataclass
class App:
    """An app registration (and its service principal) in the fake tenant.

    ``roles``: the application permissions granted; they reach the token only with
    ``consented`` (admin consent).
    """

    client_id: str
    secrets: list[Secret] = field(default_factory=list)
    certificates: list[x509.Certificate] = field(default_factory=list)
    federated: list[FederatedCredential] = field(default_factory=list)
    roles: frozenset[str] = frozenset({"User.Read.All", "GroupMember.Read.All"})
    consented: bool = True


@dataclass
class AccessToken:
    """An access token the fake issued for Graph."""

    client_id: str
    roles: frozenset[str]
    expires: float


class Login:
    """The token endpoint's state: apps, outside issuers' keys, issued tokens."""

    def __init__(self, tenant_id: str, login_url: str, graph_url: str) -> None:
        self.tenant_id = tenant_id
        self.login_url = login_url.rstrip("/")
        self.graph_url = graph_url.rstrip("/")
        self.apps: dict[str, App] = {}
        self.issuers: dict[str, Any] = {}  # issuer URL -> public key that signs its tokens
        self.tokens: dict[str, AccessToken] = {}
        self.tokens_issued = 0

    @property
    def token_path(self) -> str:
        """The v2.0 token endpoint's path."""
        return f"/{self.tenant_id}/oauth2/v2.0/token"

    @property
    def token_url(self) -> str:
        """The v2.0 token endpoint, which a certificate assertion's ``aud`` must name."""
        return f"{self.login_url}{self.token_path}"

    def add_app(
        self,
        client_id: str,
        *,
        secret: str | None = None,
        secret_expires: float = float("inf"),
        certificate: x509.Certificate | None = None,
        federated: Iterable[FederatedCredential] = (),
        roles: Iterable[str] = ("User.Read.All", "GroupMember.Read.All"),
        consented: bool = True,
    ) -> App:
        """Register an app with the given credentials and application permissions."""
        app = App(client_id, roles=frozenset(roles), consented=consented, federated=list(federated))
        if secret is not None:
            app.secrets.append(Secret(secret, secret_expires))
        if certificate is not None:
            app.certificates.append(certificate)
        self.apps[client_id] = app
        return app

    def add_issuer(self, issuer: str, public_key: Any) -> None:
        """Trust an outside OIDC issuer's signing key (Entra reads it from the issuer's JWKS)."""
        self.issuers[issuer] = public_key

    def revoke(self) -> None:
        """Invalidate every access token issued so far."""
        self.tokens.clear()

    # -- the endpoint ----------------------------------------------------------------------------

    def error(self, status: int, error: str, code: int, text: str, now: float) -> httpx2.Response:
        """Entra's OAuth error body (reference-error-codes page)."""
        trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
        stamp = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        body = {
            "error": error,
            "error_description": f"AADSTS{code}: {text} Trace ID: {trace} Correlation ID: {correlation} "
            f"Timestamp: {stamp}",
            "error_codes": [code],
            "timestamp": stamp,
            "trace_id": trace,
            "correlation_id": correlation,
            "error_uri": f"{self.login_url}/error?code={code}",
        }
        return httpx2.Response(status, json=body)

    def handle(self, request: httpx2.Request, now: float) -> httpx2.Response:
        """Answer a token request."""
        if request.method != "POST":
            return self.error(405, "invalid_request", 900561, "The endpoint only accepts POST requests.", now)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self.error(400, "invalid_request", 900144, "The request body must contain the grant_type.", now)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return self.error(400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type.", now)
        client_id = form.get("client_id", "")
        app = self.apps.get(client_id)
        if app is None:
            return self.error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed by the "
                "administrator of the tenant or consented to by any user in the tenant.",
                now,
            )
        if form.get("scope") != f"{self.graph_url}/.default":
            return self.error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {form.get('scope', '')} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
                now,
            )
        if "client_secret" in form:
            refused = self._check_secret(app, form["client_secret"], now)
        elif form.get("client_assertion_type") == JWT_BEARER and "client_assertion" in form:
            refused = self._check_assertion(app, form["client_assertion"], now)
        else:
            refused = self.error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
                now,
            )
        if refused is not None:
            return refused
        token = secrets.token_urlsafe(32)
        roles = app.roles if app.consented else frozenset()
        self.tokens[token] = AccessToken(app.client_id, roles, now + ACCESS_TOKEN_LIFETIME)
        self.tokens_issued += 1
        body = {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "ext_expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": token,
        }
        return httpx2.Response(200, json=body)

    def _check_secret(self, app: App, value: str, now: float) -> httpx2.Response | None:
        for secret in app.secrets:
            if secrets.compare_digest(secret.value, value):
                if secret.expires <= now:
                    return self.error(
                        401,
                        "invalid_client",
                        7000222,
                        f"The provided client secret keys for app '{app.client_id}' are expired. Visit the "
                        "Azure portal to create new keys for your app.",
                        now,
                    )
                return None
        return self.error(
            401,
            "invalid_client",
            7000215,
            "Invalid client secret provided. Ensure the secret being sent in the request is the client secret "
            f"value, not the client secret ID, for a secret added to app '{app.client_id}'.",
            now,
        )

    def _check_assertion(self, app: App, assertion: str, now: float) -> httpx2.Response | None:
        try:
            header = jwt.get_unverified_header(assertion)
            claims = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return self.error(
                401, "invalid_client", 50027, "JWT token is invalid or malformed.", now
            )  # [assumed] the code Entra gives a malformed assertion
        if claims.get("iss") in self.issuers:
            return self._check_federated(app, assertion, claims, now)
        return self._check_certificate(app, assertion, header, claims, now)

    def _time_window(self, claims: dict[str, Any], now: float) -> httpx2.Response | None:
        exp, nbf = claims.get("exp"), claims.get("nbf", claims.get("iat"))
        if not isinstance(exp, int | float) or exp <= now or (isinstance(nbf, int | float) and nbf > now + 300):
            return self.error(
                401,
                "invalid_client",
                700024,
                f"Client assertion is not within its valid time range. Current time: {int(now)}, "
                f"assertion valid until: {exp}.",
                now,
            )
        return None

    def _check_certificate(
        self, app: App, assertion: str, header: dict[str, Any], claims: dict[str, Any], now: float
    ) -> httpx2.Response | None:
        if header.get("alg") == "RS256" and "x5t" in header:
            wanted, algorithm = header["x5t"], "sha1"
        elif header.get("alg") == "PS256" and "x5t#S256" in header:
            wanted, algorithm = header["x5t#S256"], "sha256"
        else:
            return self.error(
                401,
                "invalid_client",
                700027,
                "Client assertion failed signature validation: the header must be RS256 with x5t or PS256 "
                "with x5t#S256.",
                now,
            )  # [assumed] wording
        certificate = next((c for c in app.certificates if thumbprint(c, algorithm) == wanted), None)
        if certificate is None:
            return self.error(
                401,
                "invalid_client",
                700027,
                f"The certificate with identifier used to sign the client assertion is not registered on "
                f"application. [Reason - The key was not found., Thumbprint of key used by client: '{wanted}', "
                f"Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys "
                f"for app Id '{app.client_id}'.]",
                now,
            )
        try:
            jwt.decode(
                assertion,
                certificate.public_key(),  # type: ignore[arg-type]
                algorithms=[header["alg"]],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return self.error(401, "invalid_client", 700027, "Client assertion failed signature validation.", now)
        if claims.get("aud") != self.token_url:
            return self.error(
                401,
                "invalid_client",
                700212,
                f"The audience claim of the client assertion must be '{self.token_url}'.",
                now,
            )  # [assumed] code and wording
        if claims.get("iss") != app.client_id or claims.get("sub") != app.client_id:
            return self.error(
                401,
                "invalid_client",
                700023,
                "The client assertion's iss and sub claims must both be the client id.",
                now,
            )  # [assumed] code and wording
        return self._time_window(claims, now)

    def _check_federated(self, app: App, assertion: str, claims: dict[str, Any], now: float) -> httpx2.Response | None:
        issuer = str(claims["iss"])
        audiences = claims.get("aud")
        audience_list = [audiences] if isinstance(audiences, str) else list(audiences or [])
        try:
            jwt.decode(
                assertion,
                self.issuers[issuer],
                algorithms=["RS256", "ES256"],
                options={"verify_aud": False, "verify_exp": False, "verify_nbf": False, "verify_iat": False},
            )
        except jwt.PyJWTError:
            return self.error(401, "invalid_client", 700027, "Client assertion failed signature validation.", now)
        matching = [f for f in app.federated if f.issuer == issuer]
        if not matching:
            return self.error(
                401,
                "invalid_client",
                700211,
                f"No matching federated identity record found for presented assertion issuer '{issuer}'. "
                "Please check your federated identity credential Subject, Audience and Issuer against the "
                "presented assertion.",
                now,
            )
        if not any(f.subject == claims.get("sub") for f in matching):
            return self.error(
                401,
                "invalid_client",
                70021,
                f"No matching federated identity record found for presented assertion. Assertion Issuer: "
                f"'{issuer}'. Assertion Subject: '{claims.get('sub')}'. Assertion Audience: "
                f"'{','.join(audience_list)}'.",
                now,
            )
        if not any(f.subject == claims.get("sub") and f.audience in audience_list for f in matching):
            return self.error(
                401,
                "invalid_client",
                700212,
                "No matching federated identity record found for presented assertion audience "
                f"'{','.join(audience_list)}'.",
                now,
            )
        return self._time_window(claims, now)
