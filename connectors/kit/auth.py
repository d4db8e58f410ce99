"""Authentication as ``httpx2.Auth`` flows, and the OAuth 2.0 grants connectors use.

* :class:`StaticToken`: a fixed credential in ``Authorization`` (``Bearer``, or Okta's ``SSWS``).
* :class:`OAuthToken`: an access token from a token endpoint, reused until :attr:`OAuthToken.margin`
  seconds before it expires, and fetched again once when an API answers 401 (a token revoked
  or expired early); a second 401 goes back to the connector, which explains it.

The token request goes through the connector's :class:`~connectors.kit.http.Http`, so it is
counted, paced and retried like any other. What it carries is the grant's :meth:`Grant.form`:

* :class:`PrivateKeyJwt`: client credentials with a ``private_key_jwt`` client assertion
  (RFC 7523 §2.2, RFC 7521 §4.2; Okta service apps, Entra certificates);
* :class:`JwtBearer`: a JWT bearer grant whose assertion names a ``sub`` to act as (RFC 7523
  §2.1; Google domain-wide delegation), signed by any :class:`Signer` (a local key, or a
  remote signer such as Google's IAM ``signJwt``);
* :class:`ClientSecret`: client credentials with ``client_id`` + ``client_secret`` in the body
  (RFC 6749 §2.3.1, §4.4; Entra app secrets);
* :class:`FederatedAssertion`: client credentials with an assertion read from a file on each
  fetch (RFC 7521 §4.2; Entra workload identity's ``AZURE_FEDERATED_TOKEN_FILE``, which the
  platform rotates).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, Callable, Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import httpx2
import structlog
from pydantic import SecretStr

from connectors.kit.http import json_or_empty
from connectors.kit.keys import SigningKey
from syncd.errors import SourceAuthError, SourceError


if TYPE_CHECKING:
    from connectors.kit.http import Http


__all__ = [
    "ClientSecret",
    "FederatedAssertion",
    "Grant",
    "JwtBearer",
    "OAuthToken",
    "PrivateKeyJwt",
    "Signer",
    "StaticToken",
]

log = structlog.get_logger(__name__)

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"  # RFC 7523 §2.2
JWT_BEARER_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"  # RFC 7523 §2.1


class StaticToken(httpx2.Auth):
    """``Authorization: <scheme> <token>``; the token is only ever put in the header."""

    refreshable = False

    def __init__(self, token: SecretStr, scheme: str = "Bearer") -> None:
        self._token = token
        self._scheme = scheme

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        """Set the header and send."""
        request.headers["Authorization"] = f"{self._scheme} {self._token.get_secret_value()}"
        yield request


class Signer(Protocol):
    """Signs a JWT's claims; local (:class:`KeySigner`) or remote (an IAM signJwt call)."""

    async def sign(self, claims: dict[str, Any]) -> str:
        """The compact JWS of ``claims``."""
        ...


@dataclass(frozen=True, slots=True)
class KeySigner:
    """Signs with a private key held here."""

    key: SigningKey

    async def sign(self, claims: dict[str, Any]) -> str:
        """Sign locally."""
        return self.key.sign(claims)


class Grant(Protocol):
    """The form body of a token request, and who it is for (for messages)."""

    @property
    def client(self) -> str:
        """The client id (or service account) the token is for."""
        ...

    async def form(self, token_url: str, now: float) -> dict[str, str]:
        """The ``application/x-www-form-urlencoded`` fields of one token request."""
        ...


def _client_credentials(scopes: Sequence[str], **fields: str) -> dict[str, str]:
    """A client credentials form (RFC 6749 §4.4.2): the grant type, the scope if any, ``fields``."""
    return {"grant_type": "client_credentials", **({"scope": " ".join(scopes)} if scopes else {}), **fields}


def _claims(issuer: str, subject: str, audience: str, now: float, lifetime: int) -> dict[str, Any]:
    at = int(now)
    return {"iss": issuer, "sub": subject, "aud": audience, "iat": at, "exp": at + lifetime, "jti": uuid.uuid4().hex}


@dataclass(frozen=True, slots=True)
class PrivateKeyJwt:
    """Client credentials authenticated by a signed assertion with ``iss`` = ``sub`` = client id."""

    client: str
    signer: Signer
    scopes: Sequence[str] = ()
    audience: str | None = None  # default: the token URL
    lifetime: int = 300
    extra: Mapping[str, str] = field(default_factory=dict)  # e.g. {"client_id": ...} for Entra

    async def form(self, token_url: str, now: float) -> dict[str, str]:
        """``grant_type=client_credentials`` with ``client_assertion``."""
        claims = _claims(self.client, self.client, self.audience or token_url, now, self.lifetime)
        assertion = await self.signer.sign(claims)
        form = _client_credentials(self.scopes, client_assertion_type=CLIENT_ASSERTION_TYPE, client_assertion=assertion)
        return form | dict(self.extra)


@dataclass(frozen=True, slots=True)
class JwtBearer:
    """A JWT bearer grant: ``iss`` = the client (a service account), ``sub`` = whom it acts for."""

    client: str
    subject: str
    signer: Signer
    scopes: Sequence[str] = ()
    audience: str | None = None
    lifetime: int = 3600

    async def form(self, token_url: str, now: float) -> dict[str, str]:
        """``grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer`` with ``assertion``."""
        claims = _claims(self.client, self.subject, self.audience or token_url, now, self.lifetime)
        if self.scopes:
            claims["scope"] = " ".join(self.scopes)
        return {"grant_type": JWT_BEARER_GRANT, "assertion": await self.signer.sign(claims)}


@dataclass(frozen=True, slots=True)
class ClientSecret:
    """Client credentials with the secret in the request body."""

    client: str
    secret: SecretStr
    scopes: Sequence[str] = ()

    async def form(self, token_url: str, now: float) -> dict[str, str]:
        """``grant_type=client_credentials`` with ``client_id`` and ``client_secret``."""
        return _client_credentials(self.scopes, client_id=self.client, client_secret=self.secret.get_secret_value())


@dataclass(frozen=True, slots=True)
class FederatedAssertion:
    """Client credentials with an assertion another system writes to ``path`` (read each time)."""

    client: str
    path: Path
    scopes: Sequence[str] = ()

    async def form(self, token_url: str, now: float) -> dict[str, str]:
        """``grant_type=client_credentials`` with the file's assertion."""
        try:
            assertion = (await asyncio.to_thread(self.path.read_text, encoding="utf-8")).strip()
        except OSError as exc:
            raise SourceAuthError(f"cannot read the federated token file {self.path}: {exc.strerror}") from None
        if not assertion:
            raise SourceAuthError(f"the federated token file {self.path} is empty")
        return _client_credentials(
            self.scopes, client_id=self.client, client_assertion_type=CLIENT_ASSERTION_TYPE, client_assertion=assertion
        )


def _refused(provider: str, client: str) -> Callable[[int, Mapping[str, Any]], SourceError]:
    def explain(status: int, body: Mapping[str, Any]) -> SourceError:
        if status < 400:
            return SourceAuthError(
                f"{provider}'s token endpoint returned a {body.get('token_type')!r} token, not a Bearer token"
            )
        error = str(body.get("error") or "unknown_error")
        description = str(body.get("error_description") or "no description")
        return SourceAuthError(
            f"{provider} refused an access token to {client} (HTTP {status}, {error}: {description})"
        )

    return explain


class OAuthToken(httpx2.Auth):
    """A cached access token from ``token_url``; see the module docstring.

    :param http: the connector's client (the token request is sent without auth through it).
    :param explain: turns a refusal (status, JSON body) into the connector's SourceAuthError;
        a 2xx status means the token was not a Bearer token.
    """

    refreshable = True
    #: Seconds before expiry at which a cached token is replaced.
    margin = 60.0

    def __init__(
        self,
        http: Http,
        token_url: str,
        grant: Grant,
        *,
        clock: Callable[[], float],
        explain: Callable[[int, Mapping[str, Any]], SourceError] | None = None,
    ) -> None:
        self.token_url = token_url
        self.grant = grant
        self.fetched = 0
        self._http = http
        self._clock = clock
        self._explain = explain or _refused(http.provider, grant.client)
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires = 0.0

    def sync_auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        """Connectors are asynchronous."""
        raise RuntimeError("OAuthToken works with httpx2.AsyncClient only")
        yield request  # pragma: no cover

    async def async_auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        """Send with the cached token; after a 401, once more with a fresh one."""
        used = await self.header()
        request.headers["Authorization"] = used
        response = yield request
        if response.status_code == 401:
            await response.aread()
            async with self._lock:
                if self._token is not None and f"Bearer {self._token}" == used:
                    self._token = None  # revoked or expired early: one fresh token, then give up
            request.headers["Authorization"] = await self.header()
            yield request

    def invalidate(self) -> None:
        """Forget the cached token."""
        self._token = None

    async def header(self) -> str:
        """``Bearer <token>``, fetching a token when there is none or it is about to expire."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires - self.margin:
                await self._fetch()
            assert self._token is not None
            return f"Bearer {self._token}"

    async def _fetch(self) -> None:
        asked_at = self._clock()
        form = await self.grant.form(self.token_url, asked_at)
        response = await self._http.request("POST", self.token_url, bucket="token", data=form, auth=None)
        body = json_or_empty(response)
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            raise self._explain(response.status_code, body)
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if str(body.get("token_type", "")).lower() != "bearer" or not isinstance(token, str):
            raise self._explain(response.status_code, body)
        self._token = token
        self._expires = asked_at + (float(expires_in) if isinstance(expires_in, int | float) else 3600.0)
        self.fetched += 1
        log.info("oauth.token", provider=self._http.provider, client=self.grant.client, expires_in=expires_in)
