"""Read users, groups and memberships from a Google Workspace domain (Admin SDK Directory API).

Authentication: a service account with domain-wide delegation signs a JWT that names an admin
to act as (``sub`` = ``admin_email``) and the three read-only Directory scopes, and trades it
at the token endpoint for an hour's access token ("Using OAuth 2.0 for Server to Server
Applications", https://developers.google.com/identity/protocols/oauth2/service-account). The
JWT is signed with the key of a key file (``credentials``; its ``token_uri`` is honoured), or,
keyless, by IAM Credentials ``signJwt`` for ``service_account`` with Application Default
Credentials (:mod:`connectors.google_keyless`).

What a read does (there is no change feed for groups, so every read lists everything):

* every user, 500 a page, with ``fields=`` trimmed to what syncd uses;
* every group, 200 a page; ``[filters] groups`` globs match a group's name or its email;
* the members of each synced group, 200 a page with ``includeDerivedMembership=true`` (nested
  groups' users included, GROUP rows dropped, users de-duplicated), in parallel (``concurrency``);
  CUSTOMER rows ("everyone in the domain") and members with no user record (from outside the
  domain) are dropped and counted once per group. With ``nesting = "expand"``, or when Google
  refuses derived membership, syncd lists direct members and expands nested groups itself
  (visited set, so a cycle ends); ``includeDerivedMembership`` is reported to under-count in
  some domains (GAM-team/GAM#1210).

Quotas ("Directory API: Limits and Quotas",
https://developers.google.com/workspace/admin/directory/v1/limits): requests are paced to
``queries_per_minute`` (Google's default is 2,400 per minute per user per project); 5xx, 429,
and 403 whose reason is ``userRateLimitExceeded`` or ``rateLimitExceeded`` are retried with
exponential backoff and jitter, never another 403 (googleapis/google-api-python-client
``googleapiclient/http.py``, ``_should_retry_response``). A listing that fails midway fails the
read. Delegation not set up (``unauthorized_client`` from the token endpoint, 403 "Not
Authorized" from the Directory API) becomes one message naming the fix.

Each user's ``etag`` is kept in the read's state with its parsed record: an unchanged user is
not parsed again, and the log says how many users changed since the last read. Group etags
are not used to skip member listings: Google does not say a membership change moves a
group's etag, so every synced group's members are listed on every read.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import quote

import httpx2
import structlog
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from connectors.base import Deps, ReadContext, SourceError, SourceType, register
from connectors.google_keyless import IamSigner
from connectors.google_records import (
    GROUP_FIELDS,
    MEMBER_FIELDS,
    USER_FIELDS,
    USER_WIDTH,
    GroupHead,
    Members,
    PackedUser,
    expand,
    pack_user,
    parse_group,
    sort_members,
    unpack_user,
    wanted,
)
from connectors.kit import (
    Http,
    JwtBearer,
    KeptDirectory,
    KeySigner,
    Limits,
    OAuthToken,
    PageToken,
    Signer,
    SigningKey,
    assemble,
    bounded,
    collect,
    json_or_empty,
    load_signing_key,
    resume,
    scope_digest,
)
from syncd.errors import SourceAuthError
from syncd.model import RequestStats, Skipped, SourceGroup, SourceRead
from syncd.normalise import Scope
from syncd.secrets import SecretText


__all__ = ["SCOPES", "GoogleSettings", "GoogleSource"]

log = structlog.get_logger(__name__)

API_URL = "https://admin.googleapis.com"
TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL, not a secret
IAM_URL = "https://iamcredentials.googleapis.com"
DIRECTORY = "/admin/directory/v1"
SCOPES = (
    "https://www.googleapis.com/auth/admin.directory.user.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
    "https://www.googleapis.com/auth/admin.directory.group.member.readonly",
)
ASSERTION_LIFETIME = 3600  # Google's most (reference: "Using OAuth 2.0 for Server to Server Applications")
DIRECTORY_BUCKETS = frozenset({"users", "groups", "members"})
THROTTLED = frozenset({"userRateLimitExceeded", "rateLimitExceeded"})
GROUP_WIDTH = 4  # [name, email, description, members]


# --- settings ---------------------------------------------------------------------------------


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


# --- quotas -----------------------------------------------------------------------------------


def google_error(response: httpx2.Response) -> tuple[str, str]:
    """``errors[0].reason`` (or the newer ``status``) and the message of a Google error body."""
    body = json_or_empty(response)
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return "", response.reason_phrase
    errors = error.get("errors")
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    reason = first.get("reason") or error.get("status") or ""
    return str(reason), str(error.get("message") or first.get("message") or response.reason_phrase)


class GoogleLimits(Limits):
    """Google's quotas: rate-limit 403s are retryable; Directory queries are paced per minute."""

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._sent: deque[float] = deque()

    def retryable(self, response: httpx2.Response) -> bool:
        """5xx and 429, and a 403 only for ``userRateLimitExceeded`` or ``rateLimitExceeded``."""
        if response.status_code == 403:
            return google_error(response)[0] in THROTTLED
        return super().retryable(response)

    def decide(self, response: httpx2.Response) -> bool | float:
        """No rate-limit headers are documented: a throttling 403 backs off."""
        return True if response.status_code == 403 else super().decide(response)

    def pace(self, bucket: str, server_now: float, in_flight: int) -> tuple[float, str, dict[str, int]]:
        """Wait when the last minute already holds ``per_minute`` Directory queries."""
        if bucket not in DIRECTORY_BUCKETS:
            return 0.0, "", {}
        sent = self._sent
        while sent and sent[0] <= server_now - 60:
            sent.popleft()
        if len(sent) < self.per_minute:
            sent.append(server_now)
            return 0.0, "", {}
        wait = sent.popleft() + 60 - server_now
        sent.append(server_now + wait)
        return wait, "Directory API queries per minute used up", {"per_minute": self.per_minute}


# --- the source -------------------------------------------------------------------------------


class _DerivedRefused(SourceError):
    """Google refused ``includeDerivedMembership``: expand nested groups ourselves."""


class GoogleSource:
    """Reads a Workspace domain; see the module docstring."""

    def __init__(self, settings: GoogleSettings, deps: Deps | None = None) -> None:
        deps = deps or Deps()
        self.settings = settings
        self._clock = deps.clock
        self._http = Http(
            deps,
            provider="Google",
            limits=GoogleLimits(settings.queries_per_minute),
            max_retries=settings.max_retries,
            error=self._error,
            headers={"User-Agent": "syncd-google-connector"},
        )
        key = settings.key
        signer: Signer
        if key is not None:
            client, signer, token_uri = key.email, KeySigner(key.signing_key), key.token_uri
            self.client_id: str | None = key.client_id
        else:
            assert settings.service_account is not None
            client, token_uri, self.client_id = settings.service_account, TOKEN_URI, None
            signer = IamSigner(self._http, settings.iam_url, settings.service_account)
        grant = JwtBearer(client, settings.admin_email, signer, SCOPES, lifetime=ASSERTION_LIFETIME)
        self.client = client
        self._http.auth = OAuthToken(
            self._http, settings.token_uri or token_uri, grant, clock=deps.clock, explain=self._refusal
        )
        self._base = f"{settings.api_url}{DIRECTORY}"

    @property
    def stats(self) -> RequestStats:
        """Those requests by HTTP status; a failed read leaves its requests here."""
        return self._http.stats

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    # -- Google's error advice ---------------------------------------------------------------

    def delegation_advice(self, what: str) -> str:
        """The one message for delegation not set up: which client id, which scopes, which admin."""
        client = self.client_id or (
            f"the unique ID of {self.client} (Cloud console › IAM › Service accounts › Details, or "
            f"`gcloud iam service-accounts describe {self.client} --format='value(oauth2ClientId)'`)"
        )
        return (
            f"Google refused domain-wide delegation ({what}). In the Admin console (admin.google.com) open "
            "Security › Access and data control › API controls › Domain-wide delegation and authorise client "
            f"ID {client} with the scopes {','.join(SCOPES)}; the admin syncd acts as, "
            f"{self.settings.admin_email} (admin_email), must be an administrator allowed to read users and "
            "groups. A delegation change can take up to 24 hours to apply"
        )

    def _refusal(self, status: int, body: Mapping[str, Any]) -> SourceAuthError:
        """Why the token endpoint gave no access token, and what fixes it."""
        error = str(body.get("error") or "unknown_error")
        description = str(body.get("error_description") or "no description")
        said = f"HTTP {status}, {error}: {description}"
        if error == "unauthorized_client":
            return SourceAuthError(self.delegation_advice(f"the token endpoint answered {said}"))
        if error == "invalid_grant" and "email or user id" in description.lower():
            return SourceAuthError(
                f"Google does not know {self.settings.admin_email} ({said}): set source.google.admin_email "
                "to the primary email of an administrator of the domain"
            )
        if error == "invalid_grant":
            return SourceAuthError(
                f"Google refused the assertion of {self.client} ({said}): the key may be deleted or disabled "
                "(create a new one), the service account deleted, or this machine's clock off by minutes"
            )
        return SourceAuthError(f"Google refused an access token to {self.client} ({said})")

    def _error(self, response: httpx2.Response, bucket: str) -> SourceError:
        """Turn a final Directory API error into a SourceError (branching on errors[0].reason)."""
        reason, message = google_error(response)
        status = response.status_code
        where = f"{response.request.method} {response.request.url.path}"
        said = f"HTTP {status}, {reason or 'no reason'}: {message}"
        if status == 403 and (reason in {"forbidden", "insufficientPermissions"} or "Not Authorized" in message):
            return SourceAuthError(self.delegation_advice(f"{where} answered {said}"))
        if status == 401:
            return SourceAuthError(
                f"Google rejected the access token even after fetching a new one ({where}: {said}); check that "
                "api_url and the token endpoint belong to the same Google"
            )
        if status == 400 and bucket == "members" and response.request.url.params.get("includeDerivedMembership"):
            return _DerivedRefused(f"Google refused includeDerivedMembership ({where}: {said})")
        return SourceError(f"Google answered {where} with {said}")

    # -- listings ----------------------------------------------------------------------------

    async def _users(self, kept: Mapping[str, PackedUser], skipped: list[Skipped]) -> dict[str, PackedUser]:
        params = {"customer": self.settings.customer, "maxResults": "500", "fields": USER_FIELDS}
        raw = await collect(
            self._http, f"{self._base}/users", PageToken("Google", "users"), params=params, bucket="users"
        )
        users: dict[str, PackedUser] = {}
        reused = 0
        for item in raw or ():
            previous = kept.get(str(item.get("id"))) if isinstance(item, dict) else None
            if previous is not None and previous[-1] is not None and previous[-1] == item.get("etag"):
                users[item["id"]] = previous  # unchanged since the last read: its etag says so
                reused += 1
                continue
            packed = pack_user(item)
            if isinstance(packed, Skipped):
                skipped.append(packed)
            else:
                users[packed[0]] = packed[1]
        log.info("google.users", users=len(users), changed=len(users) - reused, kept=bool(kept))
        return users

    async def _groups(self, scope: Scope, skipped: list[Skipped]) -> list[GroupHead]:
        params = {"customer": self.settings.customer, "maxResults": "200", "fields": GROUP_FIELDS}
        raw = await collect(
            self._http, f"{self._base}/groups", PageToken("Google", "groups"), params=params, bucket="groups"
        )
        heads: list[GroupHead] = []
        for item in raw or ():
            group = parse_group(item)
            if isinstance(group, Skipped):
                skipped.append(group)
            elif wanted(scope, group):
                heads.append(group)
        return heads

    async def _member_rows(self, group_id: str, derived: bool) -> list[Any] | None:
        """A group's member rows; None when the group is gone (404) since it was listed."""
        params = {"maxResults": "200", "fields": MEMBER_FIELDS}
        if derived:
            params["includeDerivedMembership"] = "true"
        return await collect(
            self._http,
            f"{self._base}/groups/{quote(group_id, safe='')}/members",
            PageToken("Google", "members"),
            params=params,
            bucket="members",
            missing_ok=True,
        )

    async def _derived(self, groups: list[GroupHead], known: Mapping[str, Any]) -> dict[str, Members | None]:
        async def one(group: GroupHead) -> Members | None:
            rows = await self._member_rows(group.id, derived=True)
            return None if rows is None else sort_members(rows, known)

        listings = await bounded(groups, one, self.settings.concurrency)
        return {g.id: m for g, m in zip(groups, listings, strict=True)}

    async def _expanded(self, groups: list[GroupHead], known: Mapping[str, Any]) -> dict[str, Members | None]:
        """Direct members of the synced groups and of every group nested below them, level by
        level, then flattened here (each group listed once, so a cycle ends)."""
        direct: dict[str, Members] = {}
        gone: set[str] = set()
        frontier = [g.id for g in groups]
        while frontier:

            async def one(group_id: str) -> Members | None:
                rows = await self._member_rows(group_id, derived=False)
                return None if rows is None else sort_members(rows, known)

            listings = await bounded(frontier, one, self.settings.concurrency)
            following: list[str] = []
            for group_id, listing in zip(frontier, listings, strict=True):
                if listing is None:
                    gone.add(group_id)
                    continue
                direct[group_id] = listing
                following += [n for n in listing.groups if n not in direct and n not in gone and n not in following]
            frontier = [n for n in following if n not in direct]
        out: dict[str, Members | None] = {}
        for group in groups:
            if group.id in gone:
                out[group.id] = None
                continue
            own = direct[group.id]
            out[group.id] = Members(expand(group.id, direct), own.groups, own.everyone, own.outsiders, own.unreadable)
        return out

    async def _memberships(self, groups: list[GroupHead], known: Mapping[str, Any]) -> dict[str, Members | None]:
        if self.settings.nesting == "derived":
            try:
                return await self._derived(groups, known)
            except _DerivedRefused as exc:
                log.warning("google.derived_refused", error=str(exc), fallback="syncd expands nested groups")
        return await self._expanded(groups, known)

    # -- reads -------------------------------------------------------------------------------

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the domain in scope (see the module docstring); always complete, or an error."""
        before = self._http.requests
        self._http.mark()
        digest = scope_digest(ctx.scope, customer=self.settings.customer, api_url=self.settings.api_url)
        previous, why = resume(ctx, digest, self._clock(), None, user_width=USER_WIDTH, group_width=GROUP_WIDTH)
        log.info("google.read", etags_from_last_read=previous is not None, why=why or None)
        skipped: list[Skipped] = []
        users = await self._users(previous.users if previous is not None else {}, skipped)
        groups = await self._groups(ctx.scope, skipped)
        listings = await self._memberships(groups, users)
        directory = KeptDirectory(digest, self._clock())
        for group in groups:
            members = listings[group.id]
            if members is None:
                log.info("google.group_vanished", group=group.email)
                continue
            self._count_dropped(group, members, skipped)
            directory.groups[group.id] = [group.name, group.email, group.description, members.users]
        directory.users = users
        if ctx.scope.users == "members":
            directory.prune_users(directory.member_ids())
        managers = {packed[0].casefold(): uid for uid, packed in directory.users.items()}
        read = assemble(
            directory,
            user=lambda uid, packed: unpack_user(uid, packed, managers),
            group=lambda gid, p: SourceGroup(id=gid, name=p[0], email=p[1], description=p[2], members=tuple(p[3])),
            skipped=skipped,
            requests=self._http.requests - before,
            prefiltered=ctx.scope.users == "members",
        )
        log.info(
            "google.read_done",
            users=len(read.users),
            groups=len(read.groups),
            skipped=len(read.skipped),
            requests=read.requests,
        )
        return read

    @staticmethod
    def _count_dropped(group: GroupHead, members: Members, skipped: list[Skipped]) -> None:
        """Log and count, once for the group, the members that cannot be synced."""
        if not (members.everyone or members.outsiders or members.unreadable):
            return
        log.info(
            "google.members_dropped",
            group=group.email,
            everyone=members.everyone,
            outside_domain=members.outsiders,
            unreadable=members.unreadable,
        )
        parts = []
        if members.outsiders:
            parts.append(f"{members.outsiders} member(s) from outside the domain (no user record)")
        if members.everyone:
            parts.append("the 'everyone in the domain' (CUSTOMER) entry")
        if members.unreadable:
            parts.append(f"{members.unreadable} member row(s) without an id")
        skipped.append(Skipped("membership", group.id, f"{' and '.join(parts)} in {group.email}: not synced"))


def _build(settings: GoogleSettings, deps: Deps) -> GoogleSource:
    return GoogleSource(settings, deps)


register(SourceType("google", GoogleSettings, _build, "Google Workspace (service account with domain-wide delegation)"))
