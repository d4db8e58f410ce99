"""The benchmark's Google: ``tests.fakes.google.FakeGoogle`` holding a synthetic directory, served over HTTP.

As with the benchmark's Okta and Entra, two departures from the tests' use of the fake: its
clock follows the machine's, and requests and responses are not recorded. Its quota is Google's,
2,400 queries per minute per user (the impersonated admin): what the read spends of it is metered
(:mod:`tests.bench.quota`) and makes the source floor; ``quotas=False`` sets it far above
(``--source-quota none``, for the memory size).

Nested groups stay nested (Google has them): a group's direct members are its users and the
groups nested in it, and the connector asks for derived membership.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import formatdate
from pathlib import Path
from typing import Any

import httpx2

from tests.bench.directory import Directory
from tests.bench.quota import Meter, Quota
from tests.fakes.google import FakeGoogle
from tests.fakes.google_records import FakeGroup, FakeUser, Member
from tests.fakes.serve import serve


ADMIN = "syncd-admin@example.com"
KEY_FILE = "google-key.json"
QUERIES_PER_MINUTE = 2_400
"""Directory API queries per minute per user ("Directory API: Limits and Quotas")."""


def _group_email(group: dict[str, Any]) -> str:
    return f"{group['name']}@example.com"


class BenchGoogle(FakeGoogle):
    """A fake domain on the machine's clock that keeps no request log."""

    def __init__(self, url: str, *, quotas: bool = True) -> None:
        per_minute = QUERIES_PER_MINUTE if quotas else 10**9
        super().__init__(api_url=url, token_uri=f"{url}/token", iam_url=url, live=True, quota_per_minute=per_minute)
        self.meter = Meter({"queries": Quota(per_minute, 60.0)})
        self.add_user(ADMIN, admin=True)
        self.account = self.add_service_account()
        self.delegate(self.account)
        self.served = 0

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer as the fake does, without recording."""
        self.now = max(self.now, time.time())
        self.served += 1
        response = self._route(request)
        response.headers["Date"] = formatdate(self.now, usegmt=True)
        return response

    def _spend(self, user: str) -> httpx2.Response | None:
        """Count the query against the quota as the fake does, and meter it."""
        refused = super()._spend(user)
        if refused is None:
            self.meter.spend("queries")
        else:
            self.meter.refuse()
        return refused

    def write_key(self, path: Path) -> None:
        """The service account's key file, where the config's ``credentials`` points."""
        path.write_text(json.dumps(self.auth.key_json(self.account)), encoding="utf-8")

    def apply(self, directory: Directory) -> None:
        """Make the domain hold ``directory``: users (suspended when inactive), groups, direct members."""
        users = {u["id"]: u for u in directory["users"]}
        for user_id in [uid for uid, u in self.users.items() if u.email != ADMIN and uid not in users]:
            self.delete_user(user_id)
        for user_id, user in users.items():
            current = self.users.get(user_id)
            if current is None:
                current = FakeUser(user_id, user["email"], user["given_name"], user["family_name"], self.now)
                self.users[user_id] = current
            current.email = user["email"]
            current.given_name, current.family_name = user["given_name"], user["family_name"]
            current.suspended = not user["active"]
            enterprise = user.get("enterprise", {})
            self.update_user(
                user_id, department=enterprise.get("department"), employee_id=enterprise.get("employee_number")
            )
        groups = {g["id"]: g for g in directory["groups"]}
        for group_id in [gid for gid in self.groups if gid not in groups]:
            del self.groups[group_id]
        for group_id, group in groups.items():
            current_group = self.groups.setdefault(group_id, FakeGroup(group_id, _group_email(group), group["name"]))
            current_group.name, current_group.email = group["name"], _group_email(group)
            current_group.description = group.get("description") or ""
            current_group.members = [
                *(Member("USER", uid, users[uid]["email"]) for uid in group["members"]),
                *(Member("GROUP", gid, _group_email(groups[gid])) for gid in group.get("groups", ())),
            ]


@contextmanager
def serving(directory: Directory, workdir: Path, *, quotas: bool = True) -> Iterator[BenchGoogle]:
    """A fake domain holding ``directory``, served on a free port of 127.0.0.1, its key in ``workdir``."""
    with serve() as served:
        fake = BenchGoogle(served.url, quotas=quotas)
        fake.apply(directory)
        fake.write_key(workdir / KEY_FILE)
        served.handler = fake.handler
        yield fake
