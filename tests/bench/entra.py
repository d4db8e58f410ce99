"""The benchmark's Entra: ``tests.fakes.entra.FakeEntra`` holding a synthetic directory, served over HTTP.

As with the benchmark's Okta (:mod:`tests.bench.okta`), two departures from the tests' use of the
fake: its clock follows the machine's, and requests and responses are not recorded. Its
resource-unit budget is Graph's for a tenant over 500 users, 8,000 per 10 s ("Microsoft Graph
service-specific throttling limits", identity and access): what the read spends of it is metered
(:mod:`tests.bench.quota`) and makes the source floor; ``quotas=False`` sets it far above
(``--source-quota none``, for the memory size).

Nested groups stay nested here (Graph has them): a group's direct members are its users and the
groups nested in it, and the connector flattens them through ``transitiveMembers``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from tests.bench.directory import Directory
from tests.bench.quota import Meter, Quota
from tests.fakes.entra import BUCKET_WINDOW, DirObject, FakeEntra, graph_time
from tests.fakes.serve import serve


CLIENT_ID = "5b0c7e2a-9d41-4f3b-8a6e-1c2d3e4f5a6b"
SECRET = "bench~entra-client-secret"  # the fake's test credential
RESOURCE_UNITS = 8_000
"""Graph's resource units per 10 s for an app in a tenant of over 500 users (L)."""


def _props(user: dict[str, Any]) -> dict[str, Any]:
    enterprise = user.get("enterprise", {})
    return {
        "userPrincipalName": user["user_name"],
        "mail": user["email"],
        "givenName": user["given_name"],
        "surname": user["family_name"],
        "displayName": user["display_name"],
        "accountEnabled": user["active"],
        "department": enterprise.get("department"),
        "employeeId": enterprise.get("employee_number"),
    }


class BenchEntra(FakeEntra):
    """A fake tenant on the machine's clock that keeps no request log."""

    def __init__(self, url: str, *, quotas: bool = True) -> None:
        units = RESOURCE_UNITS if quotas else 10**9
        super().__init__(graph_url=url, login_url=url, now=time.time(), resource_units=units)
        self.meter = Meter({"resource units": Quota(units, BUCKET_WINDOW)})
        self.add_app(CLIENT_ID, secret=SECRET)
        self.served = 0

    def tick(self) -> None:
        """Bring the fake's clock to the machine's (never backwards)."""
        self.now = max(self.now, time.time())

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer as the fake does, without recording."""
        self.tick()
        self.served += 1
        return self._handle(request)

    def charge(self, cost: int) -> dict[str, str] | httpx2.Response:
        """Spend resource units as the fake does, and meter them."""
        charged = super().charge(cost)
        if isinstance(charged, httpx2.Response):
            self.meter.refuse()
        else:
            self.meter.spend("resource units", cost)
        return charged

    def load(self, directory: Directory) -> None:
        """Hold ``directory``: users, groups, direct members (users and nested groups)."""
        base = {"userType": "Member", "businessPhones": [], "createdDateTime": graph_time(self.now)}
        for user in directory["users"]:
            self.objects[user["id"]] = DirObject(user["id"], "user", {"id": user["id"], **base, **_props(user)})
        for group in directory["groups"]:
            props = {"id": group["id"], "displayName": group["name"], "description": group.get("description")}
            members = dict.fromkeys([*group["members"], *group.get("groups", ())])
            self.objects[group["id"]] = DirObject(
                group["id"], "group", {**props, "securityEnabled": True}, members=members
            )

    def apply(self, directory: Directory) -> None:
        """Change the tenant to hold ``directory``, through the helpers that delta queries see."""
        self.tick()
        users = {u["id"]: u for u in directory["users"]}
        for user_id in [o.id for o in self.users() if o.id not in users]:
            self.delete_user(user_id)
        for user_id, user in users.items():
            current = self.objects.get(user_id)
            props = _props(user)
            if current is None:
                self.objects[user_id] = DirObject(user_id, "user", {"id": user_id, "userType": "Member", **props})
                self.delta.created("users", user_id)
            else:
                changed = {k: v for k, v in props.items() if current.props.get(k) != v}
                if changed:
                    self.update_user(user_id, **changed)
        groups = {g["id"]: g for g in directory["groups"]}
        for group_id in [o.id for o in self.groups() if o.id not in groups]:
            self.delete_group(group_id)
        for group_id, group in groups.items():
            if group_id not in self.objects:
                self.objects[group_id] = DirObject(group_id, "group", {"id": group_id, "displayName": group["name"]})
                self.delta.created("groups", group_id)
            current = self.objects[group_id]
            if current.props.get("displayName") != group["name"]:
                self.update_group(group_id, displayName=group["name"])
            wanted = [*group["members"], *group.get("groups", ())]
            self.remove_members(group_id, *[m for m in current.members if m not in set(wanted)])
            self.add_members(group_id, *[m for m in wanted if m not in current.members])


@contextmanager
def serving(directory: Directory, *, quotas: bool = True) -> Iterator[BenchEntra]:
    """A fake tenant holding ``directory``, served on a free port of 127.0.0.1 (a thread of this process)."""
    with serve() as served:
        fake = BenchEntra(served.url, quotas=quotas)
        fake.load(directory)
        served.handler = fake.handler
        yield fake
