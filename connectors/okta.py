"""Read users, groups and memberships from an Okta org through the Management API.

References are to ``/work/shared/reference/idp-apis.md`` §1 and the Okta pages it cites.

Authentication (§1.1): an SSWS API token, or (preferred) an OAuth 2.0 service app that signs a
``private_key_jwt`` client assertion and gets a one-hour access token by client credentials.

What a read does:

* **Full read** (first run, ``--full-resync``, scope changed, or ``full_read_every`` elapsed):
  every user (``search=status pr``, which unlike the default listing includes DEPROVISIONED
  users, §1.6), every group, and the members of every synced group, in parallel.
  With ``users = "members"`` the user listing is skipped: members come back as full user
  objects (§1.2), so only members of synced groups are read at all.
* **Incremental read**: users with ``lastUpdated`` after the last watermark minus an overlap
  (the ``filter`` form, which returns DEPROVISIONED users too, §1.5), the group list (cheap:
  one request per 200 groups; it also shows deleted and renamed groups), and members only of
  groups whose ``lastUpdated`` or ``lastMembershipUpdated`` moved. The changes are merged into
  the directory kept in ``SourceRead.state``, so every read returned is complete.

  Okta leaves **no trace of a deleted user** in an incremental filter (§1.5, §1.6: "A deleted
  user simply disappears, with no tombstone"). Between full reads such a user stays in the
  kept directory; the periodic full read (``full_read_every``) is what removes it.

Status mapping (§1.6): ACTIVE, RECOVERY, LOCKED_OUT and PASSWORD_EXPIRED are active;
SUSPENDED and DEPROVISIONED are synced with ``active=false``. STAGED and PROVISIONED users
(created or activated in Okta, but never signed in) are skipped, with a reason, unless
``include_staged = true``; then they are synced *disabled* (``active=false``) so that groups and
assignments can be prepared before their first day, and enabled once Okta activates them.
Any other status is skipped with a reason.

Groups (§1.7): Okta has no nested groups. The BUILT_IN "Everyone" group is skipped unless a
``[filters] groups`` pattern names it without wildcards; APP_GROUP groups (AD, LDAP, apps) are
synced like OKTA_GROUP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote

import httpx2
import jwt
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from connectors._http import HttpSession, Sleep, gather_bounded, next_link, parse_duration, server_time
from connectors.base import ReadContext, SourceError, SourceType, register
from syncd.errors import SourceAuthError
from syncd.model import Skipped, SourceGroup, SourceRead, SourceUser
from syncd.normalise import Scope
from syncd.secrets import Secret


__all__ = ["OktaSettings", "OktaSource"]

log = structlog.get_logger(__name__)

DEFAULT_SCOPES = ("okta.users.read", "okta.groups.read")
PAGE_SIZE = "200"  # the users maximum; also what §1.3 recommends for groups and members
INCREMENTAL_OVERLAP = timedelta(minutes=5)  # §1.5: overlap the watermark, the data is eventually consistent
TOKEN_REFRESH_MARGIN = 60.0  # seconds before expiry at which a cached access token is replaced
ASSERTION_LIFETIME = 300  # seconds; Okta accepts at most one hour (§1.1)
STATE_VERSION = 1

ACTIVE_STATUSES = frozenset({"ACTIVE", "RECOVERY", "LOCKED_OUT", "PASSWORD_EXPIRED"})
INACTIVE_STATUSES = frozenset({"SUSPENDED", "DEPROVISIONED"})
STAGED_STATUSES = frozenset({"STAGED", "PROVISIONED"})

# Okta profile property -> key of SourceUser.enterprise (model.ENTERPRISE_ATTRIBUTES).
ENTERPRISE_PROPERTIES = {
    "employeeNumber": "employee_number",
    "costCenter": "cost_center",
    "organization": "organization",
    "division": "division",
    "department": "department",
    "manager": "manager",
}
# The scope each endpoint needs, for 403 messages that come without a www-authenticate scope
# (okta-sdk-python openapi/management.yaml: listUsers, listGroups, listGroupUsers; §1.1).
_SCOPE_FOR_BUCKET = {
    "users": "okta.users.read",
    "groups": "okta.groups.read",
    "group-users": "okta.groups.read",
}


# --- settings ---------------------------------------------------------------------------------


def _duration(value: Any) -> Any:
    # "24h" and friends; ISO 8601 ("PT1H") and numbers of seconds go on to pydantic.
    if isinstance(value, str) and not value.strip().upper().startswith("P"):
        return parse_duration(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_duration)]


@dataclass(frozen=True, slots=True)
class _SigningKey:
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    algorithm: str
    key_id: str | None


_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}


def _load_signing_key(text: str, key_id: str | None) -> _SigningKey:
    """Load a PEM or JWK private key; RSA signs RS256, EC P-256/384/521 ES256/384/512 (§1.1).

    Raises ValueError with a message that never quotes the key.
    """
    text = text.strip()
    key: object
    kid = key_id
    if text.startswith("{"):
        try:
            data = json.loads(text)
            if isinstance(data, dict) and isinstance(data.get("keys"), list) and len(data["keys"]) == 1:
                data = data["keys"][0]  # a JWK set holding exactly one key
            jwk = jwt.PyJWK(data)
        except (ValueError, TypeError, jwt.PyJWKError) as exc:
            raise ValueError(
                f"private_key looks like JSON but is not a JWK private key ({type(exc).__name__})"
            ) from None
        key = jwk.key
        kid = kid or (data.get("kid") if isinstance(data.get("kid"), str) else None)
    else:
        try:
            key = load_pem_private_key(text.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"private_key is neither an unencrypted PEM private key nor a JWK ({type(exc).__name__})"
            ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        return _SigningKey(key, "RS256", kid)
    if isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name in _EC_ALGORITHMS:
        return _SigningKey(key, _EC_ALGORITHMS[key.curve.name], kid)
    raise ValueError("private_key must be an RSA or EC (P-256/384/521) *private* key")


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
    private_key: Secret | None = Field(
        None, description="The service app's private key, PEM or JWK JSON (env:NAME and file:PATH work)."
    )
    key_id: str | None = Field(None, description="kid of the key registered with the app (JWK kid by default).")
    scopes: list[str] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    full_read_every: Duration = Field(timedelta(hours=24), description='e.g. "30s", "15m", "24h", "7d".')
    include_staged: bool = Field(False, description="Sync STAGED/PROVISIONED users, disabled.")
    concurrency: int = Field(4, ge=1, le=32, description="Group member listings read in parallel.")
    max_retries: int = Field(5, ge=0, le=20, description="Retries on 429, 5xx and network errors.")

    _signing_key: _SigningKey | None = PrivateAttr(None)

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

    @field_validator("full_read_every")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("full_read_every must be longer than zero, e.g. 24h")
        return value

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
        self._signing_key = _load_signing_key(self.private_key.get_secret_value(), self.key_id)
        return self

    @property
    def signing_key(self) -> _SigningKey | None:
        """The loaded OAuth signing key (None with an API token)."""
        return self._signing_key


# --- authentication ---------------------------------------------------------------------------


class _ApiToken:
    """``Authorization: SSWS <token>`` (§1.1, "Core Okta API")."""

    refreshable = False
    kind = "API token"

    def __init__(self, token: SecretStr) -> None:
        self._token = token

    async def header(self) -> str:
        return f"SSWS {self._token.get_secret_value()}"

    def invalidate(self) -> None:
        """An API token cannot be refreshed."""


class _ServiceApp:
    """Client credentials with a ``private_key_jwt`` assertion ("Implement OAuth for Okta with a
    service app"; §1.1); the access token is reused until shortly before it expires."""

    refreshable = True
    kind = "OAuth access token"

    def __init__(self, settings: OktaSettings, session: HttpSession, clock: Callable[[], float]) -> None:
        assert settings.client_id is not None
        assert settings.signing_key is not None
        self._client_id = settings.client_id
        self._key = settings.signing_key
        self._scopes = " ".join(settings.scopes)
        self._token_url = f"{settings.url}/oauth2/v1/token"
        self._session = session
        self._clock = clock
        self._lock = asyncio.Lock()
        self._token: str | None = None
        self._expires = 0.0
        self.fetched = 0

    def _assertion(self) -> str:
        now = int(self._clock())
        claims = {
            "iss": self._client_id,
            "sub": self._client_id,
            "aud": self._token_url,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME,
            "jti": uuid.uuid4().hex,
        }
        headers = {"kid": self._key.key_id} if self._key.key_id else None
        return jwt.encode(claims, self._key.key, algorithm=self._key.algorithm, headers=headers)

    async def header(self) -> str:
        async with self._lock:
            if self._token is None or self._clock() >= self._expires - TOKEN_REFRESH_MARGIN:
                await self._fetch()
            assert self._token is not None
            return f"Bearer {self._token}"

    def invalidate(self) -> None:
        self._token = None

    async def _fetch(self) -> None:
        asked_at = self._clock()
        response = await self._session.request(
            "POST",
            self._token_url,
            bucket="token",
            data={
                "grant_type": "client_credentials",
                "scope": self._scopes,
                "client_assertion_type": "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                "client_assertion": self._assertion(),
            },
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        if response.status_code != 200:
            raise self._refusal(response.status_code, body)
        token, expires_in = body.get("access_token"), body.get("expires_in")
        if str(body.get("token_type", "")).lower() != "bearer" or not isinstance(token, str):
            raise SourceAuthError(
                f"Okta's token endpoint returned a {body.get('token_type')!r} token, not a Bearer token; "
                "syncd does not support DPoP: turn off 'Require Demonstrating Proof of Possession' "
                "for the app"
            )
        self._token = token
        self._expires = asked_at + (float(expires_in) if isinstance(expires_in, int | float) else 3600.0)
        self.fetched += 1
        log.info("okta.token", client_id=self._client_id, expires_in=expires_in)

    def _refusal(self, status: int, body: Mapping[str, Any]) -> SourceAuthError:
        error = str(body.get("error") or "unknown_error")
        description = str(body.get("error_description") or "no description")
        prefix = (
            f"Okta refused an access token to service app {self._client_id} (HTTP {status}, {error}: {description})"
        )
        if error == "invalid_scope":
            return SourceAuthError(
                f"{prefix}: grant the scopes {self._scopes} to the app (Okta API Scopes tab) or fix source.okta.scopes"
            )
        if error in {"invalid_dpop_proof", "use_dpop_nonce"}:
            return SourceAuthError(
                f"{prefix}: the app requires DPoP, which syncd does not support; "
                "turn off 'Require Demonstrating Proof of Possession' for the app"
            )
        if error == "invalid_client":
            return SourceAuthError(
                f"{prefix}: the client credentials are invalid; check client_id, that the app uses "
                "public key / private key client authentication, and that its public key matches "
                "private_key (and key_id)"
            )
        return SourceAuthError(prefix)


# --- records and the kept directory ------------------------------------------------------------


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    return None


# A user as kept in state: [login, email, firstName, lastName, displayName, status, enterprise|null].
PackedUser = list[Any]
# A group as kept in state: [name, description, lastUpdated, lastMembershipUpdated, [member ids]].
PackedGroup = list[Any]


def _pack_user(raw: Any, where: str) -> tuple[str, PackedUser] | Skipped:
    """An Okta user object in compact form, or why it is skipped."""
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return Skipped("user", "?", f"a user record {where} has no id")
    profile = raw.get("profile")
    if not isinstance(profile, dict):
        return Skipped("user", raw["id"], "the record has no profile")
    enterprise = {
        key: text for prop, key in ENTERPRISE_PROPERTIES.items() if (text := _text(profile.get(prop))) is not None
    }
    return raw["id"], [
        _text(profile.get("login")),
        _text(profile.get("email")),
        _text(profile.get("firstName")),
        _text(profile.get("lastName")),
        _text(profile.get("displayName")),
        _text(raw.get("status")) or "",
        enterprise or None,
    ]


def _unpack_user(user_id: str, packed: PackedUser, include_staged: bool) -> SourceUser | Skipped:
    login, email, first, last, display, status, enterprise = packed
    if status in ACTIVE_STATUSES:
        active = True
    elif status in INACTIVE_STATUSES:
        active = False
    elif status in STAGED_STATUSES:
        if not include_staged:
            return Skipped(
                "user",
                user_id,
                f"Okta status {status}: not activated yet (include_staged = true syncs such users disabled)",
            )
        active = False
    else:
        return Skipped("user", user_id, f"unknown Okta status {status!r}")
    return SourceUser(
        id=user_id,
        user_name=login,
        email=email,
        given_name=first,
        family_name=last,
        display_name=display,
        active=active,
        enterprise=dict(enterprise or {}),
    )


@dataclass(frozen=True, slots=True)
class _GroupHead:
    """A group as the group listing shows it."""

    id: str
    name: str
    description: str | None
    type: str
    last_updated: str | None
    last_membership_updated: str | None


def _parse_group(raw: Any) -> _GroupHead | Skipped:
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str) or not raw["id"]:
        return Skipped("group", "?", "a group record has no id")
    profile = raw.get("profile")
    name = _text(profile.get("name")) if isinstance(profile, dict) else None
    if not isinstance(profile, dict) or not name:
        return Skipped("group", raw["id"], "the record has no profile.name")
    return _GroupHead(
        id=raw["id"],
        name=name,
        description=_text(profile.get("description")),
        type=_text(raw.get("type")) or "",
        last_updated=_text(raw.get("lastUpdated")),
        last_membership_updated=_text(raw.get("lastMembershipUpdated")),
    )


_GLOB = re.compile(r"[*?\[]")


def _wanted(scope: Scope, group: _GroupHead) -> bool:
    """Whether a group is synced. BUILT_IN ("Everyone", all users) needs a pattern naming it
    exactly, without wildcards, so that ``groups = ["*"]`` does not pull in the whole org (§1.7)."""
    if group.type == "BUILT_IN":
        return scope.groups is not None and any(
            not _GLOB.search(p) and p.casefold() == group.name.casefold() for p in scope.groups
        )
    return scope.wants_group(group.name)


def _okta_time(epoch: float) -> str:
    """``yyyy-MM-dd'T'HH:mm:ss.SSSZ``, the only date form filters accept (§1.4)."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_okta_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


@dataclass(slots=True)
class _Directory:
    """What the connector keeps between runs in ``SourceRead.state`` (JSON, compact).

    ``watermark``: the server's clock when the read that produced it began.
    ``last_full_read``: our clock when the last full read ran. ``scope``: a digest of the scope
    and settings the directory was read with; when it differs the next read is full.
    """

    scope: str
    last_full_read: float
    watermark: float
    users: dict[str, PackedUser] = field(default_factory=dict)
    groups: dict[str, PackedGroup] = field(default_factory=dict)

    def dump(self) -> dict[str, Any]:
        """The JSON form. User ids are written once, in ``ids``; ``users`` is parallel to its
        start and group members are indexes into it (memberships dominate the size otherwise)."""
        ids = sorted(self.users)
        index = {user_id: i for i, user_id in enumerate(ids)}

        def ref(user_id: str) -> int:
            if user_id not in index:  # a member without a kept record (e.g. created mid-read)
                index[user_id] = len(ids)
                ids.append(user_id)
            return index[user_id]

        groups = {gid: [*packed[:4], [ref(uid) for uid in packed[4]]] for gid, packed in self.groups.items()}
        return {
            "version": STATE_VERSION,
            "scope": self.scope,
            "last_full_read": _okta_time(self.last_full_read),
            "watermark": _okta_time(self.watermark),
            "ids": ids,
            "users": [self.users[user_id] for user_id in sorted(self.users)],
            "groups": groups,
        }

    @classmethod
    def load(cls, data: Mapping[str, Any]) -> _Directory:
        """Rebuild from state; raise ValueError when it is not what :meth:`dump` wrote."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"state version {data.get('version')!r} is not {STATE_VERSION}")
        ids, users, groups = data.get("ids"), data.get("users"), data.get("groups")
        if not isinstance(ids, list) or not isinstance(users, list) or not isinstance(groups, dict):
            raise ValueError("state has no ids, users or groups")
        if len(users) > len(ids) or not all(isinstance(i, str) for i in ids):
            raise ValueError("the kept user ids are malformed")
        kept_users: dict[str, PackedUser] = {}
        for user_id, packed in zip(ids, users, strict=False):
            if not isinstance(packed, list) or len(packed) != 7:
                raise ValueError("a kept user is malformed")
            kept_users[user_id] = list(packed)
        kept_groups: dict[str, PackedGroup] = {}
        for group_id, packed in groups.items():
            if not isinstance(packed, list) or len(packed) != 5 or not isinstance(packed[4], list):
                raise ValueError("a kept group is malformed")
            members = packed[4]
            if not all(isinstance(i, int) and 0 <= i < len(ids) for i in members):
                raise ValueError("a kept group refers to unknown members")
            kept_groups[str(group_id)] = [*packed[:4], [ids[i] for i in members]]
        return cls(
            scope=str(data.get("scope")),
            last_full_read=_parse_okta_time(str(data.get("last_full_read"))),
            watermark=_parse_okta_time(str(data.get("watermark"))),
            users=kept_users,
            groups=kept_groups,
        )


def _scope_key(scope: Scope, settings: OktaSettings) -> str:
    raw = json.dumps(
        {
            "groups": list(scope.groups) if scope.groups is not None else None,
            "users": scope.users,
            "url": settings.url,
        },
        sort_keys=True,
    )
    return hashlib.sha256(raw.encode()).hexdigest()[:16]


# --- the source -------------------------------------------------------------------------------


@dataclass(slots=True)
class _Members:
    """One group's member listing."""

    ids: list[str]
    users: dict[str, PackedUser]
    skipped: list[Skipped]


class OktaSource:
    """Reads an Okta org; see the module docstring for what each read does.

    ``sleep``, ``clock`` and ``rng`` are for tests (no real waits, fixed jitter).
    """

    def __init__(
        self,
        settings: OktaSettings,
        transport: httpx2.AsyncBaseTransport | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.settings = settings
        self._clock = clock
        self._client = httpx2.AsyncClient(
            transport=transport,
            timeout=httpx2.Timeout(60.0, connect=10.0),
            headers={"Accept": "application/json", "User-Agent": "syncd-okta-connector"},
        )
        self._session = HttpSession(
            self._client,
            provider="Okta",
            max_retries=settings.max_retries,
            sleep=sleep,
            clock=clock,
            rng=rng,
        )
        self._origin = httpx2.URL(settings.url)
        self._auth: _ApiToken | _ServiceApp
        if settings.token is not None:
            self._auth = _ApiToken(settings.token)
        else:
            self._auth = _ServiceApp(settings, self._session, clock)
        self._read_began: float | None = None

    @property
    def requests(self) -> int:
        """HTTP requests sent since this source was built (token requests and retries included)."""
        return self._session.requests

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    # -- HTTP ------------------------------------------------------------------------------

    async def _get(
        self, url: str, params: Mapping[str, str] | None, bucket: str, *, missing_ok: bool = False
    ) -> httpx2.Response | None:
        """GET with auth; an OAuth token refused with 401 is replaced once, then it is an error.

        Returns None for a 404 when ``missing_ok``; raises SourceError for any other failure.
        """
        for attempt in range(2):
            headers = {"Authorization": await self._auth.header()}
            response = await self._session.request("GET", url, params=params, headers=headers, bucket=bucket)
            if self._read_began is None:
                self._read_began = server_time(response)
            if response.status_code == 401 and self._auth.refreshable and attempt == 0:
                self._auth.invalidate()  # revoked or expired early: one fresh token, then give up
                continue
            break
        if response.is_success:
            return response
        if missing_ok and response.status_code == 404:
            return None
        raise self._error(response, bucket)

    def _error(self, response: httpx2.Response, bucket: str) -> SourceError:
        """Turn an Okta error response into a SourceError (branching on errorCode only, §1.9)."""
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            body = {}
        code = str(body.get("errorCode") or "no errorCode")
        summary = str(body.get("errorSummary") or response.reason_phrase)
        where = f"{response.request.method} {response.request.url.path}"
        status = response.status_code
        if status == 401:
            if isinstance(self._auth, _ApiToken):
                return SourceAuthError(
                    f"Okta rejected the API token (HTTP 401, {code}: {summary}): the token is invalid, "
                    "revoked, or expired after 30 days unused; create a new one (Security › API › Tokens) "
                    "and set source.okta.token"
                )
            return SourceAuthError(
                f"Okta rejected the OAuth access token of service app {self.settings.client_id} even "
                f"after fetching a new one (HTTP 401, {code}: {summary}): the token is invalid for this "
                "org; check url and that the app is active"
            )
        if status == 403:
            # An OAuth token without the scope gets `www-authenticate: Bearer ...,
            # error="insufficient_scope", scope="okta.users.read"` (RFC 6750 §3; §1.1, §1.9 E0000006).
            challenge = dict(re.findall(r'(\w+)="([^"]*)"', response.headers.get("www-authenticate", "")))
            scope = challenge.get("scope") or _SCOPE_FOR_BUCKET.get(bucket, "the right scope")
            if isinstance(self._auth, _ServiceApp) and challenge.get("error") == "insufficient_scope":
                return SourceAuthError(
                    f"Okta refused {where} (HTTP 403, {code}: {summary}): the access token lacks the "
                    f"scope {scope}; grant it to the service app (Okta API Scopes tab) and list it in "
                    "source.okta.scopes"
                )
            if isinstance(self._auth, _ServiceApp):
                # The token has the scope, but scopes only work together with an admin role (§1.1).
                return SourceAuthError(
                    f"Okta refused {where} (HTTP 403, {code}: {summary}): the service app needs the scope "
                    f"{scope} and an admin role that may read it; assign it one such as Read-only "
                    "Administrator (the app's Admin roles tab)"
                )
            return SourceAuthError(
                f"Okta refused {where} (HTTP 403, {code}: {summary}): the admin who created the API "
                f"token lacks the permission ({scope}); use a token created by a Read-only Administrator "
                "or higher"
            )
        return SourceError(f"Okta answered {where} with HTTP {status} ({code}: {summary})")

    async def _list(
        self, path: str, params: Mapping[str, str], bucket: str, *, missing_ok: bool = False
    ) -> list[Any] | None:
        """Every item of a listing, following ``Link: rel="next"`` as given until there is none (§1.3).

        With ``missing_ok``, a 404 on the first page (the object was deleted meanwhile) gives None.
        """
        url = f"{self.settings.url}{path}"
        query: Mapping[str, str] | None = params
        items: list[Any] = []
        seen: set[str] = set()
        while True:
            response = await self._get(url, query, bucket, missing_ok=missing_ok and not seen)
            if response is None:
                return None
            try:
                page = response.json()
            except ValueError:
                page = None
            if not isinstance(page, list):  # Okta lists are bare JSON arrays (§1.2)
                raise SourceError(
                    f"Okta answered GET {response.request.url.path} with something other than a JSON array"
                )
            items.extend(page)
            seen.add(str(response.request.url))
            link = next_link(response)
            if link is None:
                return items
            target = httpx2.URL(link)
            if (target.scheme, target.host, target.port) != (
                self._origin.scheme,
                self._origin.host,
                self._origin.port,
            ):
                # Never send our credentials to another host, whatever a Link header says.
                raise SourceError(f"Okta's next-page link for {path} points to another host ({target.host})")
            if str(target) in seen:
                raise SourceError(f"Okta's next-page link for {path} repeats a page; the listing would not end")
            url, query = link, None

    async def _users(self, params: Mapping[str, str], skipped: list[Skipped]) -> dict[str, PackedUser]:
        raw = await self._list("/api/v1/users", {**params, "limit": PAGE_SIZE}, "users")
        users: dict[str, PackedUser] = {}
        for item in raw or ():
            packed = _pack_user(item, "in the user listing")
            if isinstance(packed, Skipped):
                skipped.append(packed)
            else:
                users[packed[0]] = packed[1]
        return users

    async def _groups(self, scope: Scope, skipped: list[Skipped]) -> list[_GroupHead]:
        raw = await self._list("/api/v1/groups", {"limit": PAGE_SIZE}, "groups")
        wanted: list[_GroupHead] = []
        for item in raw or ():
            group = _parse_group(item)
            if isinstance(group, Skipped):
                skipped.append(group)
            elif _wanted(scope, group):
                wanted.append(group)
        return wanted

    async def _members(self, group_id: str) -> _Members | None:
        """A group's members (full user objects, §1.2); None when the group was deleted meanwhile.

        Only ``limit`` and ``after`` work on this endpoint (okta-sdk-python #245; §1.2).
        """
        raw = await self._list(
            f"/api/v1/groups/{quote(group_id, safe='')}/users",
            {"limit": PAGE_SIZE},
            "group-users",
            missing_ok=True,
        )
        if raw is None:
            log.info("okta.group_vanished", group=group_id)
            return None
        members = _Members([], {}, [])
        for item in raw:
            packed = _pack_user(item, f"in the members of group {group_id}")
            if isinstance(packed, Skipped):
                members.skipped.append(
                    Skipped("membership", f"{group_id}/{packed.id}", f"member record skipped: {packed.reason}")
                )
                continue
            members.ids.append(packed[0])
            members.users[packed[0]] = packed[1]
        return members

    async def _read_members(self, groups: list[_GroupHead]) -> list[_Members | None]:
        jobs = [lambda gid=group.id: self._members(gid) for group in groups]
        return await gather_bounded(jobs, self.settings.concurrency)

    # -- reads -------------------------------------------------------------------------------

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the org in scope: full or incremental (see the module docstring); always complete."""
        before = self._session.requests
        self._read_began = None
        started = self._clock()
        key = _scope_key(ctx.scope, self.settings)
        previous, why = self._previous(ctx, key, started)
        skipped: list[Skipped] = []
        if previous is None:
            log.info("okta.read", mode="full", why=why)
            directory = await self._full_read(ctx.scope, key, started, skipped)
        else:
            log.info("okta.read", mode="incremental")
            directory = await self._incremental_read(ctx.scope, previous, skipped)
        read = self._assemble(directory, ctx.scope, skipped)
        read.requests = self._session.requests - before
        read.state = directory.dump()
        log.info(
            "okta.read_done",
            users=len(read.users),
            groups=len(read.groups),
            skipped=len(read.skipped),
            requests=read.requests,
        )
        return read

    def _previous(self, ctx: ReadContext, key: str, now: float) -> tuple[_Directory | None, str]:
        """The kept directory to build on, or None and why a full read is needed."""
        if ctx.full:
            return None, "a full read was asked for"
        if not ctx.state:
            return None, "no state from an earlier run"
        try:
            previous = _Directory.load(ctx.state)
        except (ValueError, TypeError) as exc:
            return None, f"the kept state is unusable ({exc})"
        if previous.scope != key:
            return None, "the scope or org changed since the last read"
        if now - previous.last_full_read >= self.settings.full_read_every.total_seconds():
            return None, "full_read_every has passed since the last full read"
        return previous, ""

    def _began(self, fallback: float) -> float:
        """The server's clock when this read's first response was sent (our clock if unknown)."""
        return self._read_began if self._read_began is not None else fallback

    async def _full_read(self, scope: Scope, key: str, started: float, skipped: list[Skipped]) -> _Directory:
        users: dict[str, PackedUser] = {}
        if scope.users != "members":
            # The default listing leaves DEPROVISIONED users out; `search=status pr` returns every
            # status (okta/okta-sdk-java #718; §1.6).
            users = await self._users({"search": "status pr"}, skipped)
        groups = await self._groups(scope, skipped)
        kept: dict[str, PackedGroup] = {}
        await self._reread(groups, scope, kept, users, skipped)
        return _Directory(scope=key, last_full_read=started, watermark=self._began(started), users=users, groups=kept)

    async def _reread(
        self,
        groups: list[_GroupHead],
        scope: Scope,
        kept: dict[str, PackedGroup],
        users: dict[str, PackedUser],
        skipped: list[Skipped],
    ) -> None:
        """Read the members of ``groups`` into ``kept`` (and, with users="members", ``users``).

        A group gone between its listing and its member listing is left out.
        """
        listings = await self._read_members(groups)
        for group, members in zip(groups, listings, strict=True):
            if members is None:
                continue
            skipped.extend(members.skipped)
            kept[group.id] = self._pack_group(group, members.ids)
            if scope.users == "members":
                users.update(members.users)

    async def _incremental_read(self, scope: Scope, previous: _Directory, skipped: list[Skipped]) -> _Directory:
        since = _okta_time(previous.watermark - INCREMENTAL_OVERLAP.total_seconds())
        fallback = self._clock()
        # §1.5: the `filter` form with lastUpdated also returns DEPROVISIONED users.
        changed = await self._users({"filter": f'lastUpdated gt "{since}"'}, skipped)
        users = previous.users
        users.update(changed)  # in members mode, users outside synced groups are pruned below

        groups = await self._groups(scope, skipped)
        kept: dict[str, PackedGroup] = {}
        stale: list[_GroupHead] = []
        for group in groups:
            old = previous.groups.get(group.id)
            if old is not None and old[2] == group.last_updated and old[3] == group.last_membership_updated:
                kept[group.id] = self._pack_group(group, old[4])
            else:
                stale.append(group)
        await self._reread(stale, scope, kept, users, skipped)
        if scope.users == "members":
            wanted = {uid for packed in kept.values() for uid in packed[4]}
            users = {uid: packed for uid, packed in users.items() if uid in wanted}
        log.info("okta.incremental", changed_users=len(changed), reread_groups=len(stale), since=since)
        return _Directory(
            scope=previous.scope,
            last_full_read=previous.last_full_read,
            watermark=self._began(fallback),
            users=users,
            groups={gid: kept[gid] for gid in sorted(kept)},
        )

    @staticmethod
    def _pack_group(group: _GroupHead, members: list[str]) -> PackedGroup:
        return [
            group.name,
            group.description,
            group.last_updated,
            group.last_membership_updated,
            list(members),
        ]

    def _assemble(self, directory: _Directory, scope: Scope, skipped: list[Skipped]) -> SourceRead:
        read = SourceRead(skipped=skipped, prefiltered=scope.users == "members")
        for user_id in sorted(directory.users):
            user = _unpack_user(user_id, directory.users[user_id], self.settings.include_staged)
            if isinstance(user, Skipped):
                read.skipped.append(user)
            else:
                read.users.append(user)
        for group_id, (name, description, _, _, members) in directory.groups.items():
            read.groups.append(SourceGroup(id=group_id, name=name, description=description, members=tuple(members)))
        return read


def _build(settings: OktaSettings, transport: httpx2.AsyncBaseTransport | None) -> OktaSource:
    return OktaSource(settings, transport)


register(SourceType("okta", OktaSettings, _build, "Okta org (API token or OAuth service app)"))
