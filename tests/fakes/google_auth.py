"""The fake Google authorisation side: the OAuth token endpoint and the IAM Credentials ``signJwt``.

Token endpoint (``POST {token_uri}``, "Using OAuth 2.0 for Server to Server Applications"):

* ``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with an ``assertion`` signed RS256
  by one of the service account's keys (the ``kid`` header names it): ``iss`` = the service
  account's email, ``scope`` = space-separated scopes, ``aud`` = the token URI, ``iat`` and
  ``exp`` at most an hour apart, and optionally ``sub`` = a user of the domain to impersonate.
  With ``sub``, every scope asked for must be authorised for the service account's client id in
  the Admin console (Security → API controls → Domain-wide delegation), or the answer is 401
  ``unauthorized_client`` (googleapis/google-api-php-client#1379). Without ``sub`` the token is
  issued, and the Directory API answers 403 "Not Authorized" (googleapis/google-auth-library-ruby#134).
* ``grant_type=refresh_token``: the refresh of an ``authorized_user`` credential (what
  ``gcloud auth application-default login`` writes), used by the keyless tests' ADC.

STS (``POST {sts_url}/v1/token``, "Security Token Service API: token", RFC 8693): workload
identity federation trades an external identity's OIDC token (the ``subject_token``, read by ADC
from the file its ``external_account`` configuration names) for a federated access token. The
``audience`` must be a registered workload identity pool provider; the subject token must be
signed by that provider's issuer, name it as ``iss``, carry the provider's allowed audience
(``https:`` + the provider's resource name) and not be expired. The federated principal is
``principal://iam.googleapis.com/{pool}/subject/{sub}``.

IAM Credentials (``POST {iam_url}/v1/projects/-/serviceAccounts/{email}:signJwt``, its REST
reference): the caller's token must have the ``cloud-platform`` (or ``iam``) scope and its
principal the Service Account Token Creator role on that service account, otherwise 403
"Permission 'iam.serviceAccounts.signJwt' denied on resource (or it may not exist)." — the same
answer for an account that does not exist. The payload's ``exp``, when present, must not be past
nor more than 12 hours ahead. The JWT is signed with a Google-managed key of the account, whose
id comes back as ``keyId`` and in the JWT's ``kid``.

The clock is its owner's (:attr:`FakeAuthority.now`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import httpx2
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.fakes.google_wire import oauth_error, rpc_error


JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"  # RFC 8693 §2.1
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
SUBJECT_TOKEN_TYPES = frozenset({"urn:ietf:params:oauth:token-type:jwt", "urn:ietf:params:oauth:token-type:id_token"})
SCOPE_PREFIX = "https://www.googleapis.com/auth/"
CLOUD_PLATFORM = f"{SCOPE_PREFIX}cloud-platform"
IAM_SCOPES = frozenset({CLOUD_PLATFORM, f"{SCOPE_PREFIX}iam"})
ACCESS_TOKEN_LIFETIME = 3599  # what Google's token endpoint answers in expires_in
SIGN_JWT_MAX_LIFETIME = 12 * 3600
UNAUTHORIZED_CLIENT = (
    "Client is unauthorized to retrieve access tokens using this method, or client not authorized for any "
    "of the scopes requested."
)
SHORT_LIVED = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe. "
    "Check your iat and exp values in the JWT claim."
)


def new_key() -> rsa.RSAPrivateKey:
    """A 2048-bit RSA key, the size Google's service-account keys have."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def pem(key: rsa.RSAPrivateKey) -> str:
    """The PKCS#8 PEM of a private key, as a key JSON's ``private_key`` holds it."""
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@dataclass
class ServiceAccount:
    """A service account: its user-managed key (``key_id``), a Google-managed key for signJwt,
    its numeric client id, and who may sign as it (Token Creator)."""

    email: str
    client_id: str
    project_id: str
    key: rsa.RSAPrivateKey
    key_id: str
    system_key: rsa.RSAPrivateKey
    system_key_id: str
    token_creators: set[str] = field(default_factory=set)

    def public_keys(self) -> dict[str, rsa.RSAPublicKey]:
        """Key id -> public key, for checking assertions."""
        return {self.key_id: self.key.public_key(), self.system_key_id: self.system_key.public_key()}


@dataclass
class AuthorizedUser:
    """An ``authorized_user`` credential (gcloud application-default login)."""

    email: str
    client_id: str
    client_secret: str
    refresh_token: str
    scopes: frozenset[str]


@dataclass
class WorkloadProvider:
    """A workload identity pool provider: its resource name and the issuer whose tokens it trusts."""

    name: str  # projects/N/locations/global/workloadIdentityPools/POOL/providers/PROVIDER
    issuer: str
    key: Any  # the issuer's public key

    @property
    def audience(self) -> str:
        """What ADC sends as the STS ``audience``."""
        return f"//iam.googleapis.com/{self.name}"

    def principal(self, subject: str) -> str:
        """The federated principal of an external subject."""
        return f"principal://iam.googleapis.com/{self.name.split('/providers/')[0]}/subject/{subject}"


@dataclass
class AccessToken:
    """An access token the fake issued: whose it is, whom it acts as, for what, until when."""

    principal: str
    subject: str | None
    scopes: frozenset[str]
    expires: float


class FakeAuthority:
    """Service accounts, delegation grants, ADC users and the tokens issued to them.

    :param token_uri: where the token endpoint is served (the only audience it accepts).
    :param is_user: whether an email is a user of the domain (a ``sub`` must be one).
    :param clock: the owner's clock.
    """

    def __init__(self, token_uri: str, is_user: Callable[[str], bool], clock: Callable[[], float]) -> None:
        self.token_uri = token_uri
        self.is_user = is_user
        self._clock = clock
        self.accounts: dict[str, ServiceAccount] = {}
        self.delegations: dict[str, frozenset[str]] = {}
        self.authorized_users: dict[str, AuthorizedUser] = {}
        self.providers: dict[str, WorkloadProvider] = {}
        self.tokens: dict[str, AccessToken] = {}
        self.assertions: list[dict[str, Any]] = []
        self.signed: list[dict[str, Any]] = []

    @property
    def now(self) -> float:
        """The owner's clock, epoch seconds."""
        return self._clock()

    # -- set-up ------------------------------------------------------------------------------

    def add_service_account(
        self,
        email: str,
        *,
        key: rsa.RSAPrivateKey | None = None,
        system_key: rsa.RSAPrivateKey | None = None,
        project_id: str = "syncd-test",
    ) -> ServiceAccount:
        """Create a service account with a user-managed ``key`` and a Google-managed ``system_key``
        (new ones unless given: tests pass keys made once, generating them is slow)."""
        account = ServiceAccount(
            email=email,
            client_id=str(100_000_000_000_000_000_000 + len(self.accounts) + 1),
            project_id=project_id,
            key=key or new_key(),
            key_id=secrets.token_hex(20),
            system_key=system_key or new_key(),
            system_key_id=secrets.token_hex(20),
        )
        self.accounts[email] = account
        return account

    def delegate(self, client_id: str, scopes: Iterable[str]) -> None:
        """Authorise a client id for domain-wide delegation with ``scopes`` (the Admin console step)."""
        self.delegations[client_id] = frozenset(scopes)

    def key_json(self, account: ServiceAccount) -> dict[str, str]:
        """The JSON key file the Cloud console gives for ``account``, pointing at the fake token URI."""
        return {
            "type": "service_account",
            "project_id": account.project_id,
            "private_key_id": account.key_id,
            "private_key": pem(account.key),
            "client_email": account.email,
            "client_id": account.client_id,
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{account.email}",
            "universe_domain": "googleapis.com",
        }

    def add_authorized_user(self, email: str, scopes: Iterable[str] = (CLOUD_PLATFORM,)) -> dict[str, str]:
        """A user credential as ADC finds it; returns the ``authorized_user`` JSON."""
        user = AuthorizedUser(
            email,
            f"{secrets.token_hex(6)}.apps.googleusercontent.com",
            secrets.token_urlsafe(12),
            f"1//{secrets.token_urlsafe(24)}",
            frozenset(scopes),
        )
        self.authorized_users[user.refresh_token] = user
        return {
            "type": "authorized_user",
            "client_id": user.client_id,
            "client_secret": user.client_secret,
            "refresh_token": user.refresh_token,
            "token_uri": self.token_uri,
        }

    def add_workload_provider(self, issuer: str, public_key: Any, *, project: str = "123456789012") -> WorkloadProvider:
        """Register a workload identity pool provider trusting ``issuer``'s tokens."""
        name = f"projects/{project}/locations/global/workloadIdentityPools/syncd/providers/p{len(self.providers)}"
        provider = WorkloadProvider(name, issuer, public_key)
        self.providers[provider.audience] = provider
        return provider

    def external_account(self, provider: WorkloadProvider, token_file: str, sts_url: str) -> dict[str, Any]:
        """The ``external_account`` configuration ``gcloud iam workload-identity-pools
        create-cred-config`` writes, reading the subject token from ``token_file``."""
        return {
            "type": "external_account",
            "audience": provider.audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": f"{sts_url}/v1/token",
            "credential_source": {"file": token_file},
        }

    def sts_exchange(self, request: httpx2.Request) -> httpx2.Response:
        """``POST {sts_url}/v1/token``: an external OIDC token for a federated access token."""
        if request.method != "POST":
            return oauth_error(405, "invalid_request", "Only POST is supported.")
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != TOKEN_EXCHANGE:
            return oauth_error(400, "unsupported_grant_type", f"Unsupported grant type: {form.get('grant_type')}")
        if (
            form.get("requested_token_type") != ACCESS_TOKEN_TYPE
            or form.get("subject_token_type") not in SUBJECT_TOKEN_TYPES
        ):
            return oauth_error(400, "invalid_request", "Invalid requested_token_type or subject_token_type.")
        provider = self.providers.get(form.get("audience", ""))
        if provider is None:
            return oauth_error(
                400, "invalid_target", 'The target service indicated by the "audience" parameters is invalid.'
            )
        try:
            claims = jwt.decode(
                form.get("subject_token", ""),
                provider.key,
                algorithms=["RS256"],
                audience=f"https:{provider.audience}",
                issuer=provider.issuer,
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False, "require": ["sub", "exp"]},
            )
        except jwt.PyJWTError as exc:
            return oauth_error(400, "invalid_grant", f"The subject token is invalid: {exc}")
        if float(claims["exp"]) <= self.now:
            return oauth_error(400, "invalid_grant", "The subject token has expired.")
        scopes = frozenset(form.get("scope", "").split()) or frozenset({CLOUD_PLATFORM})
        token = self.issue(provider.principal(str(claims["sub"])), scopes)
        body = {
            "access_token": token,
            "issued_token_type": ACCESS_TOKEN_TYPE,
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
        }
        return httpx2.Response(200, json=body)

    def issue(self, principal: str, scopes: Iterable[str], subject: str | None = None) -> str:
        """Issue an access token directly (for tests of the fake)."""
        token = f"ya29.fake-{secrets.token_urlsafe(24)}"
        self.tokens[token] = AccessToken(principal, subject, frozenset(scopes), self.now + ACCESS_TOKEN_LIFETIME)
        return token

    # -- bearer tokens -----------------------------------------------------------------------

    def bearer(self, request: httpx2.Request) -> AccessToken | None:
        """The live access token a request carries, or None."""
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        token = self.tokens.get(credential) if scheme.lower() == "bearer" else None
        if token is None or token.expires <= self.now:
            return None
        return token

    # -- the token endpoint --------------------------------------------------------------------

    def token_endpoint(self, request: httpx2.Request) -> httpx2.Response:
        """``POST {token_uri}``: the JWT-bearer grant (RFC 7523 §2.1) or a refresh-token grant."""
        if request.method != "POST":
            return oauth_error(405, "invalid_request", "Only POST is supported.")
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return oauth_error(400, "invalid_request", "The request must be form-encoded.")
        form = {key: values[0] for key, values in parse_qs(request.content.decode()).items()}
        grant = form.get("grant_type", "")
        if grant == JWT_BEARER:
            return self._jwt_bearer(form.get("assertion", ""))
        if grant == "refresh_token":
            return self._refresh(form)
        return oauth_error(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")

    def _jwt_bearer(self, assertion: str) -> httpx2.Response:
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return oauth_error(400, "invalid_grant", "Invalid JWT: malformed.")
        account = self.accounts.get(str(unverified.get("iss")))
        if account is None:
            return oauth_error(400, "invalid_grant", "Invalid grant: account not found")
        keys = account.public_keys()
        kid = header.get("kid")
        candidates = [keys[kid]] if kid in keys else [] if kid is not None else list(keys.values())
        claims: dict[str, Any] | None = None
        for public in candidates:
            try:
                claims = jwt.decode(
                    assertion,
                    public,
                    algorithms=["RS256"],
                    options={
                        "verify_aud": False,
                        "verify_exp": False,
                        "verify_iat": False,
                        "verify_nbf": False,
                    },
                )
                break
            except jwt.InvalidSignatureError:
                continue
            except jwt.PyJWTError:
                return oauth_error(400, "invalid_grant", "Invalid JWT: malformed.")
        if claims is None:
            return oauth_error(400, "invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") != self.token_uri:
            return oauth_error(
                400, "invalid_grant", f"Invalid JWT: Failed audience check. The right audience is {self.token_uri}"
            )
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int) or not isinstance(exp, int):
            return oauth_error(400, "invalid_grant", SHORT_LIVED)
        # A minute of clock skew is tolerated [assumed]; an hour at most between iat and exp.
        if exp <= self.now or iat > self.now + 60 or exp - iat > 3600:
            return oauth_error(400, "invalid_grant", SHORT_LIVED)
        scopes = frozenset(str(claims.get("scope") or "").split())
        if not scopes:
            return oauth_error(400, "invalid_scope", "Invalid OAuth scope or ID token audience provided.")
        subject = claims.get("sub")
        self.assertions.append(claims)
        if subject is not None:
            if not isinstance(subject, str) or not self.is_user(subject):
                return oauth_error(400, "invalid_grant", "Invalid email or User ID")
            if not scopes <= self.delegations.get(account.client_id, frozenset()):
                return oauth_error(401, "unauthorized_client", UNAUTHORIZED_CLIENT)
        token = self.issue(account.email, scopes, subject)
        return httpx2.Response(
            200, json={"access_token": token, "expires_in": ACCESS_TOKEN_LIFETIME, "token_type": "Bearer"}
        )

    def _refresh(self, form: dict[str, str]) -> httpx2.Response:
        user = self.authorized_users.get(form.get("refresh_token", ""))
        if user is None or (form.get("client_id"), form.get("client_secret")) != (user.client_id, user.client_secret):
            return oauth_error(400, "invalid_grant", "Token has been expired or revoked.")
        asked = frozenset(form.get("scope", "").split()) or user.scopes
        if not asked <= user.scopes:
            return oauth_error(400, "invalid_scope", "Bad Request")
        token = self.issue(user.email, asked)
        body = {
            "access_token": token,
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "scope": " ".join(sorted(asked)),
            "token_type": "Bearer",
        }
        return httpx2.Response(200, json=body)

    # -- IAM Credentials signJwt ---------------------------------------------------------------

    def sign_jwt(self, request: httpx2.Request, account_email: str) -> httpx2.Response:
        """``projects/-/serviceAccounts/{email}:signJwt``: sign a JWT with a Google-managed key."""
        token = self.bearer(request)
        if token is None:
            return rpc_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
                "or other valid authentication credential.",
                "UNAUTHENTICATED",
                "CREDENTIALS_MISSING",
                "googleapis.com",
            )
        if not token.scopes & IAM_SCOPES:
            return rpc_error(
                403,
                "Request had insufficient authentication scopes.",
                "PERMISSION_DENIED",
                "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "googleapis.com",
            )
        account = self.accounts.get(unquote(account_email))
        if account is None or token.principal not in account.token_creators:
            return rpc_error(
                403,
                "Permission 'iam.serviceAccounts.signJwt' denied on resource (or it may not exist).",
                "PERMISSION_DENIED",
                "IAM_PERMISSION_DENIED",
                "iam.googleapis.com",
            )
        try:
            payload = json.loads(json.loads(request.content).get("payload", ""))
        except (ValueError, AttributeError):
            payload = None
        if not isinstance(payload, dict):
            return rpc_error(
                400,
                "Invalid JWT payload: it must be a JSON object.",
                "INVALID_ARGUMENT",
                "BAD_PAYLOAD",
                "iam.googleapis.com",
            )
        exp = payload.get("exp")
        if exp is not None and (not isinstance(exp, int) or exp <= self.now or exp > self.now + SIGN_JWT_MAX_LIFETIME):
            return rpc_error(
                400,
                "The exp claim must be an integer timestamp, not in the past and at most 12 hours in the future.",
                "INVALID_ARGUMENT",
                "BAD_PAYLOAD",
                "iam.googleapis.com",
            )
        self.signed.append(payload)
        signed = jwt.encode(payload, account.system_key, algorithm="RS256", headers={"kid": account.system_key_id})
        return httpx2.Response(200, json={"keyId": account.system_key_id, "signedJwt": signed})
