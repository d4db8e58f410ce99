"""A fake of the made-up "Acme" API that :mod:`tests.kit.connector` reads (see its docstring).

Rules it enforces, each as Graph's delta queries do (https://learn.microsoft.com/graph/delta-query-overview):
a bearer token from ``POST /token`` (client credentials, form-encoded, ``client_secret`` in the
body, RFC 6749 §2.3.1 and §4.4); delta listings paged by ``@odata.nextLink``, two items a page;
the last page has an ``@odata.deltaLink`` whose token returns only what changed since; removed
objects as ``{"id", "@removed": {"reason": "deleted"}}``; members as ``members@delta``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import httpx2


PAGE = 2


@dataclass
class Version:
    """An object's state at one change number."""

    changed: int
    data: dict[str, Any] | None  # None: removed


@dataclass
class FakeAcme:
    """The fake; change it with the helpers, then hand :attr:`transport` to the connector."""

    url: str = "https://acme.example"
    client_id: str = "app"
    client_secret: str = "s3cret-value"
    clock: int = 1
    users: dict[str, Version] = field(default_factory=dict)
    groups: dict[str, Version] = field(default_factory=dict)
    member_log: list[tuple[int, str, str, bool]] = field(default_factory=list)  # (change, group, user, added)
    tokens: set[str] = field(default_factory=set)
    requests: list[httpx2.Request] = field(default_factory=list)
    faults: list[httpx2.Response] = field(default_factory=list)  # answered first, in order

    @property
    def transport(self) -> httpx2.MockTransport:
        """Routes every request to :meth:`handle`."""
        return httpx2.MockTransport(self.handle)

    def _tick(self) -> int:
        self.clock += 1
        return self.clock

    def put_user(self, user_id: str, email: str, enabled: bool = True) -> None:
        """Create or change a user."""
        self.users[user_id] = Version(self._tick(), {"id": user_id, "email": email, "enabled": enabled})

    def remove_user(self, user_id: str) -> None:
        """Delete a user."""
        self.users[user_id] = Version(self._tick(), None)

    def put_group(self, group_id: str, name: str) -> None:
        """Create or rename a group."""
        self.groups[group_id] = Version(self._tick(), {"id": group_id, "name": name})

    def remove_group(self, group_id: str) -> None:
        """Delete a group."""
        self.groups[group_id] = Version(self._tick(), None)

    def member(self, group_id: str, user_id: str, *, added: bool = True) -> None:
        """Add (or remove) a member."""
        self.member_log.append((self._tick(), group_id, user_id, added))

    def members(self, group_id: str) -> set[str]:
        """A group's members now."""
        now: set[str] = set()
        for _, gid, uid, added in self.member_log:
            if gid == group_id:
                (now.add if added else now.discard)(uid)
        return now

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one request."""
        self.requests.append(request)
        if self.faults:
            return self.faults.pop(0)
        if request.url.path == "/token":
            return self._token(request)
        if request.headers.get("authorization", "").removeprefix("Bearer ") not in self.tokens:
            return httpx2.Response(401, json={"error": {"code": "InvalidAuthenticationToken"}})
        kind = request.url.path.removeprefix("/").removesuffix("/delta")
        if kind not in ("users", "groups") or not request.url.path.endswith("/delta"):
            return httpx2.Response(404, json={"error": {"code": "NotFound"}})
        since = int(request.url.params.get("token", "0"))
        skip = int(request.url.params.get("skip", "0"))
        items = self._changes(kind, since)
        page = items[skip : skip + PAGE]
        body: dict[str, Any] = {"value": page}
        if skip + PAGE < len(items):
            body["@odata.nextLink"] = f"{self.url}/{kind}/delta?token={since}&skip={skip + PAGE}"
        else:
            body["@odata.deltaLink"] = f"{self.url}/{kind}/delta?token={self.clock}"
        return httpx2.Response(200, json=body)

    def _token(self, request: httpx2.Request) -> httpx2.Response:
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        if form.get("grant_type") != "client_credentials":
            return httpx2.Response(400, json={"error": "unsupported_grant_type"})
        if (form.get("client_id"), form.get("client_secret")) != (self.client_id, self.client_secret):
            return httpx2.Response(401, json={"error": "invalid_client", "error_description": "bad secret"})
        token = f"tok{len(self.tokens)}"
        self.tokens.add(token)
        return httpx2.Response(200, json={"access_token": token, "token_type": "Bearer", "expires_in": 3600})

    def _changes(self, kind: str, since: int) -> list[dict[str, Any]]:
        table = self.users if kind == "users" else self.groups
        out: list[dict[str, Any]] = []
        for object_id, version in sorted(table.items()):
            moved = [m for m in self.member_log if kind == "groups" and m[1] == object_id and m[0] > since]
            if version.changed <= since and not moved:
                continue
            if version.data is None:
                if since:  # a first read does not list what is already gone
                    out.append({"id": object_id, "@removed": {"reason": "deleted"}})
                continue
            item: dict[str, Any] = dict(version.data) if version.changed > since else {"id": object_id}
            if moved:
                item["members@delta"] = [
                    {"id": uid} if added else {"id": uid, "@removed": {"reason": "deleted"}}
                    for _, _, uid, added in moved
                ]
            out.append(item)
        return out
