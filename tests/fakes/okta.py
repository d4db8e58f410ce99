"""A stateful fake of the Okta Management API, served through ``httpx2.MockTransport``.

It follows Okta's documentation as ``docs/references.md`` §1 lists it (section numbers below refer to it):

* lists are bare JSON arrays, paged with two separate ``Link`` headers (``self``, ``next``);
  the cursor is the last id of the page, and the connector must follow ``next`` as given (§1.3);
* ``limit`` caps: users 200 (default 200), groups 10000, members 1000 (default 1000) (§1.3);
* the unfiltered user listing hides DEPROVISIONED users; ``search`` and ``filter`` do not (§1.5, §1.6);
* ``search`` and ``filter`` are parsed and checked with Okta's rules (fields, operators, the
  date format); anything Okta rejects gets 400 ``E0000031`` (§1.4);
* ``/groups/{id}/users`` honours only ``limit`` and ``after`` (okta-sdk-python #245, §1.2);
* every response carries ``Date`` and ``X-Rate-Limit-Limit/Remaining/Reset``; per-bucket windows
  of 60 s on the fake's clock; an exhausted bucket answers 429 ``E0000047`` (§1.8);
* errors use Okta's body ``{errorCode, errorSummary, errorLink, errorId, errorCauses}`` (§1.9);
* auth: ``SSWS <token>`` or ``Bearer <access token>`` from ``POST /oauth2/v1/token``, which checks
  the ``private_key_jwt`` client assertion's signature against the registered public key, its
  ``iss``/``sub``/``aud``/``exp`` (≤ 1 h, on the fake's clock), and the requested scopes (§1.1).
  A token without the scope an endpoint needs gets 403 ``E0000006`` with a ``www-authenticate``
  challenge naming it.

Assumptions beyond those sources are marked **[assumed]**.

The fake's clock (:attr:`FakeOkta.now`, epoch seconds) only moves when a test calls
:meth:`FakeOkta.advance`; every mutation stamps ``lastUpdated`` with it.
"""

from __future__ import annotations

import itertools
import re
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt

from tests.fakes.faults import Fault, due


STATUSES = (
    "STAGED",
    "PROVISIONED",
    "ACTIVE",
    "RECOVERY",
    "LOCKED_OUT",
    "PASSWORD_EXPIRED",
    "SUSPENDED",
    "DEPROVISIONED",
)
DEFAULT_LIMITS = {
    "users": 600,
    "user": 2000,
    "groups": 500,
    "group-users": 1000,
    "logs": 120,
    "token": 600,
    "other": 1200,
}
"""Per-minute buckets, Workforce numbers ("Management rate limits"); the members bucket is [assumed]."""

TOKEN_URL_PATH = "/oauth2/v1/token"
ACCESS_TOKEN_LIFETIME = 3600  # fixed at one hour (§1.1)
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
_DATE_VALUE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")


def okta_time(epoch: float) -> str:
    """Okta's timestamp form, ``2013-06-24T16:39:18.000Z``."""
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _parse_time(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z").timestamp()


# --- the directory --------------------------------------------------------------------------------


@dataclass
class FakeUser:
    """A user in the fake org."""

    id: str
    status: str
    profile: dict[str, Any]
    created: float
    last_updated: float
    status_changed: float

    def to_json(self, base: str) -> dict[str, Any]:
        """The user as Okta serialises it (Users API, §1.2)."""
        return {
            "id": self.id,
            "status": self.status,
            "created": okta_time(self.created),
            "activated": okta_time(self.created) if self.status not in {"STAGED"} else None,
            "statusChanged": okta_time(self.status_changed),
            "lastLogin": None,
            "lastUpdated": okta_time(self.last_updated),
            "passwordChanged": None,
            "type": {"id": "oty1fakeusertype0000"},
            "profile": dict(self.profile),
            "credentials": {"provider": {"type": "OKTA", "name": "OKTA"}},
            "_links": {"self": {"href": f"{base}/api/v1/users/{self.id}"}},
        }


@dataclass
class FakeGroup:
    """A group in the fake org; ``members`` are user ids."""

    id: str
    type: str
    profile: dict[str, Any]
    created: float
    last_updated: float
    last_membership_updated: float
    members: set[str] = field(default_factory=set)

    def to_json(self, base: str) -> dict[str, Any]:
        """The group as Okta serialises it (Groups API, §1.2)."""
        data: dict[str, Any] = {
            "id": self.id,
            "created": okta_time(self.created),
            "lastUpdated": okta_time(self.last_updated),
            "lastMembershipUpdated": okta_time(self.last_membership_updated),
            "objectClass": ["okta:user_group"],
            "type": self.type,
            "profile": dict(self.profile),
            "_links": {
                "users": {"href": f"{base}/api/v1/groups/{self.id}/users"},
                "apps": {"href": f"{base}/api/v1/groups/{self.id}/apps"},
            },
        }
        if self.type == "APP_GROUP":
            data["source"] = {"id": "0oa1fakeappsource000"}
        return data


@dataclass
class OAuthClient:
    """A registered service app: its public key (and kid), granted scopes, DPoP requirement."""

    client_id: str
    public_key: Any
    scopes: frozenset[str]
    key_id: str | None = None
    require_dpop: bool = False
    admin_role: bool = True


@dataclass
class AccessToken:
    """An access token the fake issued."""

    client_id: str
    scopes: frozenset[str]
    expires: float


@dataclass
class Bucket:
    """One rate-limit bucket's current window."""

    limit: int
    remaining: int
    reset: int


@dataclass(frozen=True)
class Call:
    """A recorded request, simplified for assertions."""

    method: str
    path: str
    params: dict[str, str]
    authorization: str | None


# --- search / filter expressions (§1.4) -------------------------------------------------------------


class BadExpression(ValueError):
    """The expression would get 400 E0000031 from Okta."""


_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z_][\w.]*))')
_OPERATORS = {"eq", "sw", "gt", "ge", "lt", "le", "pr", "co", "ne"}


@dataclass(frozen=True)
class Rules:
    """What a context accepts: field -> allowed operators (``None``: any ``profile.*`` field)."""

    fields: Mapping[str, frozenset[str]]
    profile_ops: frozenset[str] | None = None
    date_fields: frozenset[str] = frozenset()


_SEARCH_OPS = frozenset({"eq", "sw", "gt", "ge", "lt", "le", "pr"})
USER_SEARCH = Rules(
    fields=dict.fromkeys(
        ("id", "status", "created", "activated", "statusChanged", "lastUpdated", "type.id"), _SEARCH_OPS
    ),
    profile_ops=_SEARCH_OPS,
    date_fields=frozenset({"created", "activated", "statusChanged", "lastUpdated"}),
)
USER_FILTER = Rules(
    fields={
        "status": frozenset({"eq"}),
        "lastUpdated": frozenset({"eq", "gt", "ge", "lt", "le"}),
        "id": frozenset({"eq"}),
        "profile.login": frozenset({"eq"}),
        "profile.email": frozenset({"eq"}),
        "profile.firstName": frozenset({"eq"}),
        "profile.lastName": frozenset({"eq"}),
    },
    date_fields=frozenset({"lastUpdated"}),
)
GROUP_FILTER = Rules(
    fields={
        "id": frozenset({"eq"}),
        "type": frozenset({"eq"}),
        "lastUpdated": frozenset({"eq", "gt", "lt"}),
        "lastMembershipUpdated": frozenset({"eq", "gt", "lt"}),
    },
    date_fields=frozenset({"lastUpdated", "lastMembershipUpdated"}),
)

LOG_FILTER = Rules(
    fields={
        "eventType": frozenset({"eq", "sw"}),
        "target.id": frozenset({"eq"}),
        "actor.id": frozenset({"eq"}),
        "outcome.result": frozenset({"eq"}),
    },
)

Predicate = Callable[[Mapping[str, Any]], bool]


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = _TOKEN.match(text, position)
        if not match or match.end() == position:
            raise BadExpression(f"cannot parse {text[position:]!r}")
        position = match.end()
        if match.group(1):
            out.append(("(", "("))
        elif match.group(2):
            out.append((")", ")"))
        elif match.group(3) is not None:
            out.append(("str", match.group(3).replace('\\"', '"')))
        else:
            out.append(("word", match.group(4)))
    return out


def _lookup(record: Mapping[str, Any], path: str) -> Any:
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(part)
    return value


def parse_expression(text: str, rules: Rules) -> Predicate:
    """Compile an Okta ``search``/``filter`` expression; BadExpression where Okta says E0000031."""
    tokens = _tokens(text)
    position = 0

    def peek() -> tuple[str, str] | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> tuple[str, str]:
        nonlocal position
        if position >= len(tokens):
            raise BadExpression("unexpected end of expression")
        position += 1
        return tokens[position - 1]

    def comparison() -> Predicate:
        kind, name = take()
        if kind == "(":
            inner = disjunction()
            if take()[0] != ")":
                raise BadExpression("missing )")
            return inner
        if kind != "word":
            raise BadExpression(f"expected an attribute, got {name!r}")
        kind, op = take()
        op = op.lower()
        if kind != "word" or op not in _OPERATORS:
            raise BadExpression(f"unknown operator {op!r}")
        allowed = rules.fields.get(name)
        if allowed is None and name.startswith("profile.") and rules.profile_ops is not None:
            allowed = rules.profile_ops
        if allowed is None:
            raise BadExpression(f"{name} cannot be used here")
        if op not in allowed:
            raise BadExpression(f"{op} is not supported for {name} here")
        if op == "pr":
            return lambda record: _lookup(record, name) is not None
        kind, value = take()
        if kind != "str":
            raise BadExpression("values must be quoted")
        if name in rules.date_fields:
            if not _DATE_VALUE.match(value):
                raise BadExpression(f"{value!r} is not yyyy-MM-dd'T'HH:mm:ss.SSSZ")
            wanted_time = _parse_time(value)

            def by_time(record: Mapping[str, Any]) -> bool:
                raw = _lookup(record, name)
                if not isinstance(raw, str):
                    return False
                actual = _parse_time(raw)
                return {
                    "eq": actual == wanted_time,
                    "gt": actual > wanted_time,
                    "ge": actual >= wanted_time,
                    "lt": actual < wanted_time,
                    "le": actual <= wanted_time,
                }[op]

            return by_time
        folded = value.casefold()  # values are not case-sensitive (§1.4)

        def by_value(record: Mapping[str, Any]) -> bool:
            raw = _lookup(record, name)
            if raw is None:
                return False
            actual = str(raw).casefold()
            return {
                "eq": actual == folded,
                "sw": actual.startswith(folded),
                "gt": actual > folded,
                "ge": actual >= folded,
                "lt": actual < folded,
                "le": actual <= folded,
            }[op]

        return by_value

    def conjunction() -> Predicate:
        parts = [comparison()]
        while (token := peek()) is not None and token == ("word", "and"):
            take()
            parts.append(comparison())
        return lambda record: all(p(record) for p in parts)

    def disjunction() -> Predicate:
        parts = [conjunction()]
        while (token := peek()) is not None and token == ("word", "or"):
            take()
            parts.append(conjunction())
        return lambda record: any(p(record) for p in parts)

    predicate = disjunction()
    if position != len(tokens):
        raise BadExpression(f"unexpected {tokens[position][1]!r}")
    return predicate


# --- the server ------------------------------------------------------------------------------------


class FakeOkta:
    """The fake org. Build it, fill it with the helpers, and hand :attr:`transport` to the connector.

    :param url: the org URL the connector is configured with.
    :param token: the SSWS API token it accepts (None: no API token works).
    :param token_scopes: what that token's admin may read (default: everything).
    :param now: the fake's clock, epoch seconds.
    :param limits: per-minute bucket sizes, overriding :data:`DEFAULT_LIMITS`.
    """

    def __init__(
        self,
        url: str = "https://acme.okta.com",
        *,
        token: str | None = "00T-fake-ssws-token",  # noqa: S107 - a fake's test credential
        token_scopes: Iterable[str] = ("okta.users.read", "okta.groups.read"),
        now: float = 1_750_000_000.0,
        limits: Mapping[str, int] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.token_scopes = frozenset(token_scopes)
        self.now = now
        self.limits = {**DEFAULT_LIMITS, **(limits or {})}
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.clients: dict[str, OAuthClient] = {}
        self.access_tokens: dict[str, AccessToken] = {}
        self.requests: list[httpx2.Request] = []
        self.responses: list[httpx2.Response] = []
        self.before: Callable[[httpx2.Request], None] | None = None
        self.extra_user_records: list[Any] = []
        self.faults: list[Fault] = []
        self.events: list[dict[str, Any]] = []  # the System Log, oldest first
        self.buckets: dict[str, Bucket] = {}
        self.tokens_issued = 0
        self._used_jti: set[str] = set()
        self._ids = itertools.count(1)
        self.everyone = self.add_group("Everyone", type="BUILT_IN", description="All users in your organization")

    @property
    def transport(self) -> httpx2.MockTransport:
        """A transport that routes every request to :meth:`handler`."""
        return httpx2.MockTransport(self.handler)

    # -- clock -------------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Move the fake's clock forward."""
        self.now += seconds

    # -- directory helpers -------------------------------------------------------------------------

    def _new_id(self, prefix: str) -> str:
        # Okta ids are 20 characters; a counter keeps them sortable so `after=<id>` works.
        return f"{prefix}{next(self._ids):09d}{secrets.token_hex(4)}"

    def add_user(self, login: str | None = None, *, status: str = "ACTIVE", **profile: Any) -> str:
        """Add a user; ``profile`` keys are Okta's (firstName, employeeNumber, ...). Returns its id."""
        assert status in STATUSES, status
        user_id = self._new_id("00u")
        login = login or f"user{user_id[-12:]}@example.com"
        base = {"login": login, "email": login, "firstName": "First", "lastName": "Last"}
        self.users[user_id] = FakeUser(user_id, status, {**base, **profile}, self.now, self.now, self.now)
        group = self.groups.get(self.everyone) if hasattr(self, "everyone") else None
        if group is not None:
            group.members.add(user_id)
            group.last_membership_updated = self.now
        return user_id

    def update_user(self, user_id: str, **profile: Any) -> None:
        """Change profile properties (None removes one); bumps ``lastUpdated``."""
        user = self.users[user_id]
        for key, value in profile.items():
            if value is None:
                user.profile.pop(key, None)
            else:
                user.profile[key] = value
        user.last_updated = self.now

    def touch_user(self, user_id: str) -> None:
        """Bump a user's ``lastUpdated`` without changing anything else."""
        self.users[user_id].last_updated = self.now

    def touch_group(self, group_id: str, *, membership: bool = False) -> None:
        """Bump a group's ``lastUpdated`` (or ``lastMembershipUpdated`` with ``membership``)."""
        group = self.groups[group_id]
        if membership:
            group.last_membership_updated = self.now
        else:
            group.last_updated = self.now

    def set_status(self, user_id: str, status: str) -> None:
        """Move a user to ``status``; bumps ``statusChanged`` and ``lastUpdated``."""
        assert status in STATUSES, status
        user = self.users[user_id]
        user.status = status
        user.status_changed = user.last_updated = self.now

    def suspend(self, user_id: str) -> None:
        """Suspend a user (keeps groups and apps, §1.6)."""
        self.set_status(user_id, "SUSPENDED")

    def deactivate(self, user_id: str) -> None:
        """Deactivate a user: DEPROVISIONED."""
        self.set_status(user_id, "DEPROVISIONED")

    def delete_user(self, user_id: str) -> None:
        """Delete a user outright: it disappears with no tombstone (§1.6) and leaves its groups.

        The System Log records ``user.lifecycle.delete.completed`` with the user as target.
        """
        user = self.users.pop(user_id)
        self._log("user.lifecycle.delete.completed", user_id, "User", user.profile["login"])
        for group in self.groups.values():
            if user_id in group.members:
                group.members.discard(user_id)
                group.last_membership_updated = self.now

    def add_group(self, name: str, *, type: str = "OKTA_GROUP", description: str | None = None) -> str:
        """Add a group (OKTA_GROUP, APP_GROUP or BUILT_IN). Returns its id."""
        group_id = self._new_id("00g")
        profile: dict[str, Any] = {"name": name, "description": description}
        self.groups[group_id] = FakeGroup(group_id, type, profile, self.now, self.now, self.now)
        return group_id

    def rename_group(self, group_id: str, name: str) -> None:
        """Change a group's name; bumps its ``lastUpdated`` only."""
        group = self.groups[group_id]
        group.profile["name"] = name
        group.last_updated = self.now

    def delete_group(self, group_id: str) -> None:
        """Delete a group; the System Log records ``group.lifecycle.delete.completed``."""
        group = self.groups.pop(group_id)
        self._log("group.lifecycle.delete.completed", group_id, "UserGroup", group.profile["name"])

    def _log(self, event_type: str, target_id: str, target_type: str, name: str) -> None:
        self.events.append(
            {
                "uuid": secrets.token_hex(16),
                "published": okta_time(self.now),
                "eventType": event_type,
                "version": "0",
                "severity": "INFO",
                "displayMessage": event_type,
                "actor": {"id": "00ufakeadmin", "type": "User", "alternateId": "admin@example.com"},
                "outcome": {"result": "SUCCESS"},
                "target": [{"id": target_id, "type": target_type, "alternateId": name, "displayName": name}],
            }
        )

    def add_member(self, group_id: str, *user_ids: str) -> None:
        """Add users to a group; bumps its ``lastMembershipUpdated``."""
        group = self.groups[group_id]
        group.members.update(user_ids)
        group.last_membership_updated = self.now

    def remove_member(self, group_id: str, *user_ids: str) -> None:
        """Remove users from a group; bumps its ``lastMembershipUpdated``."""
        group = self.groups[group_id]
        group.members.difference_update(user_ids)
        group.last_membership_updated = self.now

    # -- auth helpers -------------------------------------------------------------------------------

    def add_oauth_client(
        self,
        client_id: str,
        public_key: Any,
        scopes: Iterable[str] = ("okta.users.read", "okta.groups.read"),
        *,
        key_id: str | None = None,
        require_dpop: bool = False,
        admin_role: bool = True,
    ) -> None:
        """Register a service app with its public key, the scopes granted to it, and whether it
        holds an admin role (scopes alone do not let an app read, §1.1)."""
        self.clients[client_id] = OAuthClient(
            client_id, public_key, frozenset(scopes), key_id, require_dpop, admin_role
        )

    def revoke_tokens(self) -> None:
        """Invalidate every access token issued so far."""
        self.access_tokens.clear()

    # -- faults and records -------------------------------------------------------------------------

    def inject(self, kind: str | int, *, on: int = 1, path: str | None = None, times: int = 1) -> None:
        """Fail the ``on``-th request and the ``times - 1`` after it (1-based; counting only those
        whose path starts with ``path``).

        ``kind``: ``429`` (rate limit: the bucket is emptied, consistent headers),
        ``"concurrency"`` (429 with Limit and Remaining 0, §1.8), ``"network"`` (a connection
        error), or any other HTTP status (500 gets Okta's E0000009 body).
        """
        self.faults.append(Fault(str(kind), on, path, times))

    def spend(self, bucket: str, requests: int) -> None:
        """Another client of the org spends ``requests`` from ``bucket``'s current window
        (the buckets are shared org-wide, §1.8); never below zero."""
        state = self._bucket(bucket)
        state.remaining = max(0, state.remaining - requests)

    def calls(self, path: str | None = None, method: str = "GET") -> list[Call]:
        """The recorded requests, optionally only those whose path is ``path`` (``*`` matches a segment)."""
        pattern = None
        if path is not None:
            pattern = re.compile("^" + re.escape(path).replace(r"\*", "[^/]+") + "$")
        out = []
        for request in self.requests:
            if request.method != method or (pattern and not pattern.match(request.url.path)):
                continue
            params = dict(request.url.params.multi_items())
            out.append(Call(request.method, request.url.path, params, request.headers.get("authorization")))
        return out

    def member_listings(self) -> list[str]:
        """The group ids whose first member page was requested, in order."""
        return [c.path.split("/")[4] for c in self.calls("/api/v1/groups/*/users") if "after" not in c.params]

    # -- HTTP ---------------------------------------------------------------------------------------

    def _bucket_name(self, request: httpx2.Request) -> str:
        path = request.url.path
        if path == TOKEN_URL_PATH:
            return "token"
        if path == "/api/v1/users":
            return "users"
        if path == "/api/v1/groups":
            return "groups"
        if re.fullmatch(r"/api/v1/groups/[^/]+/users", path):
            return "group-users"
        if re.fullmatch(r"/api/v1/users/[^/]+", path):
            return "user"
        if path == "/api/v1/logs":
            return "logs"
        return "other"

    def _bucket(self, name: str) -> Bucket:
        bucket = self.buckets.get(name)
        if bucket is None or self.now >= bucket.reset:
            limit = self.limits[name]
            bucket = Bucket(limit, limit, int(self.now) + 60)  # windows of about 60 s (§1.8)
            self.buckets[name] = bucket
        return bucket

    def _headers(self, bucket: Bucket | None, extra: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        headers = [("Date", formatdate(self.now, usegmt=True)), ("Content-Type", "application/json")]
        if bucket is not None:
            headers += [
                ("X-Rate-Limit-Limit", str(bucket.limit)),
                ("X-Rate-Limit-Remaining", str(bucket.remaining)),
                ("X-Rate-Limit-Reset", str(bucket.reset)),
            ]
        headers += list((extra or {}).items())
        return headers

    def _respond(
        self,
        status: int,
        body: Any,
        bucket: Bucket | None,
        extra: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
    ) -> httpx2.Response:
        headers = self._headers(bucket)
        if isinstance(extra, Mapping):
            headers += list(extra.items())
        elif extra is not None:
            headers += list(extra)
        return httpx2.Response(status, json=body, headers=headers)

    def _error(
        self,
        status: int,
        code: str,
        summary: str,
        bucket: Bucket | None,
        extra: Mapping[str, str] | None = None,
    ) -> httpx2.Response:
        body = {
            "errorCode": code,
            "errorSummary": summary,
            "errorLink": code,
            "errorId": f"oae{secrets.token_hex(10)}",
            "errorCauses": [],
        }
        return self._respond(status, body, bucket, extra)

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request the way Okta would (and record both)."""
        self.requests.append(request)
        if self.before is not None:
            self.before(request)
        response = self._handle(request)
        self.responses.append(response)
        return response

    def _handle(self, request: httpx2.Request) -> httpx2.Response:
        fault = due(self.faults, request)
        if fault is not None and fault.kind == "network":
            raise httpx2.ConnectError("fake: connection refused", request=request)
        bucket = self._bucket(self._bucket_name(request))
        if fault is not None and fault.kind == "concurrency":
            # A concurrency 429 has Limit and Remaining at 0 and only an estimated Reset (§1.8).
            return self._error(
                429,
                "E0000047",
                "API call exceeded rate limit due to too many requests.",
                Bucket(0, 0, int(self.now) + 60),
            )
        if fault is not None and fault.kind == "429":
            bucket.remaining = 0
        if bucket.remaining <= 0:
            return self._error(429, "E0000047", "API call exceeded rate limit due to too many requests.", bucket)
        bucket.remaining -= 1
        if fault is not None:
            status = int(fault.kind)
            if status >= 500:
                return self._error(status, "E0000009", "Internal Server Error", bucket)
            return self._error(status, "E0000001", "Api validation failed: injected", bucket)
        if request.url.path == TOKEN_URL_PATH:
            return self._token_endpoint(request, bucket)
        if request.method != "GET":
            return self._error(405, "E0000022", "The endpoint does not support the provided HTTP method", bucket)
        route = self._bucket_name(request)
        needed = {
            "users": "okta.users.read",
            "user": "okta.users.read",
            "groups": "okta.groups.read",
            "group-users": "okta.groups.read",
            "logs": "okta.logs.read",
        }
        if route not in needed:
            return self._error(404, "E0000007", f"Not found: Resource not found: {request.url.path}", bucket)
        denied = self._authorize(request, needed[route], bucket)
        if denied is not None:
            return denied
        if route == "users":
            return self._list_users(request, bucket)
        if route == "user":
            return self._get_user(request, bucket)
        if route == "logs":
            return self._list_logs(request, bucket)
        if route == "groups":
            return self._list_groups(request, bucket)
        return self._list_members(request, bucket)

    def _authorize(self, request: httpx2.Request, scope: str, bucket: Bucket) -> httpx2.Response | None:
        header = request.headers.get("authorization", "")
        scheme, _, credential = header.partition(" ")
        invalid = self._error(401, "E0000011", "Invalid token provided", bucket)
        if scheme == "SSWS":
            if self.token is None or credential != self.token:
                return invalid
            if scope not in self.token_scopes:
                return self._error(
                    403, "E0000006", "You do not have permission to perform the requested action", bucket
                )
            return None
        if scheme == "Bearer":
            token = self.access_tokens.get(credential)
            if token is None or token.expires <= self.now:
                return self._error(
                    401,
                    "E0000011",
                    "Invalid token provided",
                    bucket,
                    {
                        "WWW-Authenticate": 'Bearer realm="IdpMyAccountAPI", error="invalid_token", '
                        'error_description="The token is not valid as it was issued by an unknown '
                        'authorization server or has expired."'
                    },
                )
            if scope not in token.scopes:
                challenge = (
                    f'Bearer authorization_uri="{self.url}/oauth2/v1/authorize", realm="IdpMyAccountAPI", '
                    f'scope="{scope}", error="insufficient_scope", '
                    'error_description="The access token provided does not contain the required scopes.", '
                    f'resource="{request.url.path}"'
                )
                return self._error(
                    403,
                    "E0000006",
                    "You do not have permission to perform the requested action",
                    bucket,
                    {"WWW-Authenticate": challenge},
                )
            client = self.clients.get(token.client_id)
            if client is not None and not client.admin_role:
                # [assumed] an app without an admin role gets a plain 403, with no scope challenge.
                return self._error(
                    403, "E0000006", "You do not have permission to perform the requested action", bucket
                )
            return None
        return invalid

    # -- listings -----------------------------------------------------------------------------------

    def _limit(self, request: httpx2.Request, default: int, maximum: int, bucket: Bucket) -> int | httpx2.Response:
        raw = request.url.params.get("limit")
        if raw is None:
            return default
        try:
            value = int(raw)
        except ValueError:
            return self._error(400, "E0000001", "Api validation failed: limit", bucket)
        if value < 1:
            return self._error(400, "E0000001", "Api validation failed: limit", bucket)
        return min(value, maximum)  # [assumed] larger values are capped, not refused

    def _page(
        self,
        request: httpx2.Request,
        records: list[dict[str, Any]],
        limit: int,
        bucket: Bucket,
    ) -> httpx2.Response:
        after = request.url.params.get("after")
        if after:
            records = [r for r in records if r["id"] > after]
        page = records[:limit]
        links = [("Link", f'<{request.url}>; rel="self"')]
        if len(records) > limit:
            # Two separate Link headers; the cursor is the page's last id (§1.3, §1.10).
            links.append(("Link", f'<{request.url.copy_set_param("after", page[-1]["id"])}>; rel="next"'))
        return self._respond(200, page, bucket, links)

    def _list_users(self, request: httpx2.Request, bucket: Bucket) -> httpx2.Response:
        params = request.url.params
        if "q" in params or "sortBy" in params:
            return self._error(501, "E0000009", "fake: q and sortBy are not implemented", bucket)
        limit = self._limit(request, 200, 200, bucket)
        if isinstance(limit, httpx2.Response):
            return limit
        records = [self.users[uid].to_json(self.url) for uid in sorted(self.users)]
        search, filter_ = params.get("search"), params.get("filter")
        if search is not None and filter_ is not None:
            return self._error(501, "E0000009", "fake: search with filter is not implemented", bucket)
        try:
            if search is not None:
                predicate = parse_expression(search, USER_SEARCH)
                records = [r for r in records if predicate(r)]
            elif filter_ is not None:
                predicate = parse_expression(filter_, USER_FILTER)
                records = [r for r in records if predicate(r)]
            else:
                # The default listing leaves DEPROVISIONED users out (§1.6).
                records = [r for r in records if r["status"] != "DEPROVISIONED"]
        except BadExpression as exc:
            return self._error(400, "E0000031", f"Invalid search criteria. {exc}", bucket)
        response = self._page(request, records, limit, bucket)
        if self.extra_user_records and "after" not in params:
            # Test hook: malformed records, served on the first page only.
            page = [*response.json(), *self.extra_user_records]
            headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() != "content-length"]
            return httpx2.Response(200, json=page, headers=headers)
        return response

    def _list_groups(self, request: httpx2.Request, bucket: Bucket) -> httpx2.Response:
        params = request.url.params
        if "q" in params or "search" in params or "expand" in params:
            return self._error(501, "E0000009", "fake: q, search and expand are not implemented", bucket)
        limit = self._limit(request, 10000, 10000, bucket)
        if isinstance(limit, httpx2.Response):
            return limit
        records = [self.groups[gid].to_json(self.url) for gid in sorted(self.groups)]
        if "filter" in params:
            try:
                predicate = parse_expression(params["filter"], GROUP_FILTER)
            except BadExpression as exc:
                return self._error(400, "E0000031", f"Invalid search criteria. {exc}", bucket)
            records = [r for r in records if predicate(r)]
        return self._page(request, records, limit, bucket)

    def _list_members(self, request: httpx2.Request, bucket: Bucket) -> httpx2.Response:
        group_id = request.url.path.split("/")[4]
        group = self.groups.get(group_id)
        if group is None:
            return self._error(404, "E0000007", f"Not found: Resource not found: {group_id} (UserGroup)", bucket)
        # Only limit and after work here; filter and search are ignored (okta-sdk-python #245).
        limit = self._limit(request, 1000, 1000, bucket)
        if isinstance(limit, httpx2.Response):
            return limit
        records = [self.users[uid].to_json(self.url) for uid in sorted(group.members) if uid in self.users]
        return self._page(request, records, limit, bucket)

    def _get_user(self, request: httpx2.Request, bucket: Bucket) -> httpx2.Response:
        """``GET /api/v1/users/{id}``: any status, DEPROVISIONED included; 404 once deleted."""
        user_id = request.url.path.rsplit("/", 1)[1]
        user = self.users.get(user_id) or next(
            (u for u in self.users.values() if u.profile.get("login", "").casefold() == user_id.casefold()), None
        )
        if user is None:
            return self._error(404, "E0000007", f"Not found: Resource not found: {user_id} (User)", bucket)
        return self._respond(200, user.to_json(self.url), bucket)

    def _list_logs(self, request: httpx2.Request, bucket: Bucket) -> httpx2.Response:
        """``GET /api/v1/logs`` (System Log API): ``since``/``until`` bound ``published``, ``filter``
        on ``eventType`` (``eq``, ``or``, ``and``), ``limit`` 0-1000 (default 100), ``after``.

        A bounded request (``until`` given) ends with no ``next`` link; a polling request always
        has one (§1.5). The filter fields are [assumed] to be those of the event itself.
        """
        params = request.url.params
        if "q" in params or params.get("sortOrder", "ASCENDING") != "ASCENDING":
            return self._error(501, "E0000009", "fake: q and sortOrder are not implemented", bucket)
        if "since" in params and "after" in params:
            return self._error(400, "E0000001", "Api validation failed: since and after are exclusive", bucket)
        limit = self._limit(request, 100, 1000, bucket)
        if isinstance(limit, httpx2.Response):
            return limit
        try:
            since = _parse_time(params["since"]) if "since" in params else self.now - 7 * 86400
            until = _parse_time(params["until"]) if "until" in params else self.now
        except ValueError:
            return self._error(400, "E0000001", "Api validation failed: since/until must be ISO 8601", bucket)
        records = [e for e in self.events if since <= _parse_time(e["published"]) <= until]
        if "filter" in params:
            try:
                predicate = parse_expression(params["filter"], LOG_FILTER)
            except BadExpression as exc:
                return self._error(400, "E0000053", f"Invalid filter. {exc}", bucket)
            records = [e for e in records if predicate(e)]
        after = params.get("after")
        if after is not None:
            index = next((i for i, e in enumerate(records) if e["uuid"] == after), None)
            records = records[index + 1 :] if index is not None else []
        page = records[:limit]
        links = [("Link", f'<{request.url}>; rel="self"')]
        if len(records) > limit or ("until" not in params and page):
            cursor = page[-1]["uuid"] if page else after or ""
            following = request.url.copy_remove_param("since").copy_set_param("after", cursor)
            links.append(("Link", f'<{following}>; rel="next"'))
        return self._respond(200, page, bucket, links)

    # -- OAuth --------------------------------------------------------------------------------------

    def _oauth_error(self, status: int, error: str, description: str, bucket: Bucket) -> httpx2.Response:
        return self._respond(status, {"error": error, "error_description": description}, bucket)

    def _token_endpoint(self, request: httpx2.Request, bucket: Bucket) -> httpx2.Response:
        """``POST /oauth2/v1/token``: client credentials with a private_key_jwt assertion (§1.1)."""
        if request.method != "POST":
            return self._error(405, "E0000022", "The endpoint does not support the provided HTTP method", bucket)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return self._oauth_error(400, "invalid_request", "The request must be form-encoded.", bucket)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return self._oauth_error(400, "unsupported_grant_type", "The grant type is not supported.", bucket)
        if form.get("client_assertion_type") != JWT_BEARER or "client_assertion" not in form:
            return self._oauth_error(
                401, "invalid_client", "Client authentication failed: no client assertion.", bucket
            )
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
            unverified = jwt.decode(assertion, options={"verify_signature": False})
        except jwt.PyJWTError:
            return self._oauth_error(401, "invalid_client", "The client_assertion token is malformed.", bucket)
        client = self.clients.get(str(unverified.get("iss")))
        if client is None:
            return self._oauth_error(401, "invalid_client", "Invalid value for 'client_id' parameter.", bucket)
        if client.key_id is not None and header.get("kid") not in {None, client.key_id}:
            return self._oauth_error(
                401, "invalid_client", "The client_assertion kid does not match a registered key.", bucket
            )
        token_url = f"{self.url}{TOKEN_URL_PATH}"
        try:
            claims = jwt.decode(
                assertion,
                client.public_key,
                algorithms=["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"],
                audience=token_url,
                # exp is checked below against the fake's clock, not the machine's.
                options={
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                    "require": ["iss", "sub", "aud", "exp"],
                },
            )
        except jwt.InvalidSignatureError:
            return self._oauth_error(401, "invalid_client", "The client_assertion signature is invalid.", bucket)
        except jwt.InvalidAudienceError:
            return self._oauth_error(
                401,
                "invalid_client",
                f"The audience claim for client_assertion must be '{token_url}'.",
                bucket,
            )
        except jwt.PyJWTError as exc:
            return self._oauth_error(401, "invalid_client", f"The client_assertion is invalid: {exc}", bucket)
        if claims["iss"] != client.client_id or claims["sub"] != client.client_id:
            return self._oauth_error(
                401, "invalid_client", "The client_assertion iss and sub must both be the client_id.", bucket
            )
        expires = float(claims["exp"])
        if expires <= self.now:
            return self._oauth_error(401, "invalid_client", "The client_assertion token is expired.", bucket)
        if expires > self.now + 3600:
            return self._oauth_error(
                401,
                "invalid_client",
                "The client_assertion token has an expiration too far in the future.",
                bucket,
            )
        jti = claims.get("jti")
        if jti is not None:
            # [assumed] a jti is accepted once.
            if jti in self._used_jti:
                return self._oauth_error(
                    401, "invalid_client", "The client_assertion token has already been used.", bucket
                )
            self._used_jti.add(jti)
        if client.require_dpop:
            return self._oauth_error(400, "invalid_dpop_proof", "The DPoP proof JWT header is missing.", bucket)
        requested = frozenset(form.get("scope", "").split())
        if not requested:
            return self._oauth_error(400, "invalid_scope", "The 'scope' parameter must be provided.", bucket)
        refused = sorted(requested - client.scopes)
        if refused:
            return self._oauth_error(
                400, "invalid_scope", f"The following scopes are not allowed: {', '.join(refused)}", bucket
            )
        access_token = secrets.token_urlsafe(32)
        self.access_tokens[access_token] = AccessToken(client.client_id, requested, self.now + ACCESS_TOKEN_LIFETIME)
        self.tokens_issued += 1
        body = {
            "token_type": "Bearer",
            "expires_in": ACCESS_TOKEN_LIFETIME,
            "access_token": access_token,
            "scope": " ".join(sorted(requested)),
        }
        return self._respond(200, body, bucket)
