"""The WSGI application: auth, throttling, routing and the AWS response envelope.

Served at ``/scim/v2/`` (AWS puts ``/<tenant-id>`` in front; the emulator has no tenant).
Every request needs ``Authorization: Bearer <token>``; anything else is 401
[DG:making-api-requests]. Responses carry ``Content-Type: application/json`` and an
``x-amzn-RequestId`` header, like AWS's [DG examples]. Routes [DG:supported-apis, DG:limitations]:

==========================  =====================================================
POST / GET   /Users         create (201) / list (200)
GET PUT PATCH DELETE /Users/{id}   200 / 200 / 200 (full user) / 204
POST / GET   /Groups        create (201, no ``members``) / list (200)
GET PATCH DELETE /Groups/{id}      200 (``"members": []``) / 204 / 204
GET /ServiceProviderConfig, /Schemas, /Schemas/{urn}, /ResourceTypes
==========================  =====================================================

Anything else (``/Bulk``, ``/Me``, ``/.search``, ``PUT /Groups/{id}``, unknown paths or methods)
is 404, since GetUser's 404 text is "Specified user or endpoint does not exist"
[docs/references.md §A.2]. Throttling happens before authentication (a gateway-level
choice; AWS's order is UNCONFIRMED). ``latency`` is slept after the work, before answering.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any, Final

from syncd.emulator.constants import (
    BASE_PATH,
    ENDPOINT_NOT_FOUND,
    INTERNAL,
    INVALID_JSON,
    LIST_RESPONSE_URN,
    THROTTLED,
    UNAUTHORIZED,
)
from syncd.emulator.discovery import list_response, resource_types, schemas, service_provider_config
from syncd.emulator.errors import ScimError, error_body
from syncd.emulator.filters import Kind, parse_filter
from syncd.emulator.paging import ListParams, parse_query
from syncd.emulator.stats import Stats
from syncd.emulator.store import EmulatorState, with_members
from syncd.emulator.throttle import TokenBucket


_log = logging.getLogger(__name__)

StartResponse = Callable[..., Any]
Environ = dict[str, Any]
_KINDS: Final = frozenset({"Users", "Groups", "ServiceProviderConfig", "Schemas", "ResourceTypes"})
REASON_HEADER: Final = "x-syncd-emulator-reason"
"""Non-AWS debug header: why the emulator refused, when the body holds AWS's generic text."""


def _read_body(environ: Environ) -> bytes:
    try:
        length = int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    if length <= 0:
        return b""
    data: bytes = environ["wsgi.input"].read(length)
    return data


def _json_body(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ScimError(400, INVALID_JSON) from None  # [UG:scim-logging-using-cloudtrail]


def _kind_of(path: str) -> str:
    if path.startswith(BASE_PATH + "/"):
        first = path[len(BASE_PATH) + 1 :].split("/", 1)[0]
        if first in _KINDS:
            return first
    return "other"


def _not_found() -> ScimError:
    return ScimError(404, ENDPOINT_NOT_FOUND)


class EmulatorApp:
    """A WSGI callable emulating one Identity Center SCIM endpoint over an `EmulatorState`.

    Args:
        state: the directory to serve.
        token: the bearer token every request must carry.
        requests_per_second: if set, a token bucket (burst = one second's worth) over all
            requests; over it the answer is 429 ThrottlingException [UG:limits].
        latency: seconds to sleep before each answer (benchmarks).

    Attributes:
        stats: request counters (`Stats`).
    """

    def __init__(
        self,
        state: EmulatorState,
        *,
        token: str,
        requests_per_second: float | None = None,
        latency: float = 0.0,
    ) -> None:
        self.state = state
        self.stats = Stats()
        self.latency = latency
        self._token = token.encode()
        self._bucket = TokenBucket(requests_per_second) if requests_per_second else None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Answer one request."""
        request_id = str(uuid.uuid4())
        method = str(environ.get("REQUEST_METHOD", "GET")).upper()
        # PEP 3333: PATH_INFO arrives as latin-1 decoded bytes.
        path = str(environ.get("PATH_INFO", "")).encode("latin-1").decode("utf-8", "replace")
        raw = _read_body(environ)
        reason: str | None = None
        try:
            if self._bucket is not None and not self._bucket.try_acquire():
                raise ScimError(429, THROTTLED)
            self._authenticate(environ)
            status, payload = self._route(method, path, str(environ.get("QUERY_STRING", "")), raw)
        except ScimError as error:
            status, payload, reason = (
                error.status,
                error_body(error.status, error.detail, request_id),
                error.reason,
            )
        except Exception:
            _log.exception("emulator failed on %s %s", method, path)
            status, payload = 500, error_body(500, INTERNAL, request_id)
        self.stats.record(method, _kind_of(path), status)
        if self.latency > 0:
            time.sleep(self.latency)
        headers = [("x-amzn-RequestId", request_id)]
        data = b""
        if payload is not None:
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            headers += [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        if reason:
            headers.append((REASON_HEADER, reason.encode("ascii", "backslashreplace").decode("ascii")))
        start_response(f"{status} {HTTPStatus(status).phrase}", headers)
        return [data] if data else []

    def rotate_token(self, token: str) -> None:
        """Accept only ``token`` from now on, as after the old one is deleted or replaced in the console."""
        self._token = token.encode()

    def _authenticate(self, environ: Environ) -> None:
        header = str(environ.get("HTTP_AUTHORIZATION", ""))
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), self._token):
            raise ScimError(401, UNAUTHORIZED)  # [DG:making-api-requests]

    def _route(self, method: str, path: str, query: str, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        if not path.startswith(BASE_PATH + "/"):
            raise _not_found()
        resource, *rest = path[len(BASE_PATH) + 1 :].split("/")
        if resource in ("Users", "Groups"):
            kind: Kind = "Users" if resource == "Users" else "Groups"
            if not rest:
                return self._collection(kind, method, query, raw)
            if len(rest) == 1 and rest[0]:
                return self._item(kind, rest[0], method, query, raw)
            raise _not_found()
        if method != "GET":
            raise _not_found()
        if resource == "ServiceProviderConfig" and not rest:
            parse_query(query, list_endpoint=False)
            return 200, service_provider_config()
        if resource == "Schemas" and not rest:
            parse_query(query, list_endpoint=False)
            return 200, list_response(schemas())
        if resource == "Schemas" and len(rest) == 1:
            parse_query(query, list_endpoint=False)
            for schema in schemas():
                if schema["id"] == rest[0]:
                    return 200, schema
            raise _not_found()
        if resource == "ResourceTypes" and not rest:
            parse_query(query, list_endpoint=False)
            return 200, list_response(resource_types())
        raise _not_found()

    def _collection(self, kind: Kind, method: str, query: str, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        if method == "GET":
            return 200, self._list(kind, parse_query(query, list_endpoint=True))
        if method == "POST":
            parse_query(query, list_endpoint=False)
            body = _json_body(raw)
            created = self.state.create_user(body) if kind == "Users" else self.state.create_group(body)
            return 201, created
        raise _not_found()

    def _item(self, kind: Kind, item_id: str, method: str, query: str, raw: bytes) -> tuple[int, dict[str, Any] | None]:
        state = self.state
        if method not in ("GET", "PUT", "PATCH", "DELETE") or (kind == "Groups" and method == "PUT"):
            raise _not_found()  # no documented PutGroup [docs/references.md §A.2]
        parse_query(query, list_endpoint=False)
        if method == "GET":
            return 200, state.get_user(item_id) if kind == "Users" else with_members(state.get_group(item_id))
        if method == "DELETE":
            if kind == "Users":
                state.delete_user(item_id)
            else:
                state.delete_group(item_id)
            return 204, None
        body = _json_body(raw)
        if method == "PUT":
            return 200, state.replace_user(item_id, body)
        if kind == "Users":
            return 200, state.patch_user(item_id, body)  # [DG:patchuser] 200 + full user
        state.patch_group(item_id, body)
        return 204, None  # [DG:patchgroup] 204, no body

    def _list(self, kind: Kind, params: ListParams) -> dict[str, Any]:
        criteria = parse_filter(kind, params.filter) if params.filter is not None else {}
        if params.cursor is None:
            # No cursor: the first page only, totalResults = what was returned [DG:listusers].
            items, _ = self.state.list_page(kind, criteria, 0, params.count)
            return list_response(items)
        after = 0 if params.cursor == "" else self.state.cursors.decode(kind, params.cursor, params.filter)
        items, next_after = self.state.list_page(kind, criteria, after, params.count)
        body: dict[str, Any] = {"itemsPerPage": len(items)}
        if next_after is not None:
            body["nextCursor"] = self.state.cursors.encode(kind, next_after, params.filter)
        body["schemas"] = [LIST_RESPONSE_URN]
        body["Resources"] = items
        return body


def make_app(
    state: EmulatorState,
    token: str = "t",  # noqa: S107 - the emulator is a test double; the default suits tests
    requests_per_second: float | None = None,
    latency: float = 0.0,
) -> EmulatorApp:
    """Build the emulator's WSGI application over ``state`` (see `EmulatorApp`)."""
    return EmulatorApp(state, token=token, requests_per_second=requests_per_second, latency=latency)
