"""The benchmark's Okta: ``tests.fakes.okta.FakeOkta`` holding a synthetic directory, served over HTTP.

Two departures from the tests' use of the fake, both for a long-running benchmark:

* its clock follows the machine's (the fake's clock only moves when told to, so a rate-limit
  window would never reset and every change would carry the same ``lastUpdated``);
* requests and responses are not recorded (the fake keeps them all for assertions; over a
  benchmark that is hundreds of megabytes of someone else's memory).

Its rate-limit buckets are Okta's Workforce ones (``tests.fakes.okta.DEFAULT_LIMITS``, per minute):
what the read spends of each is metered (:mod:`tests.bench.quota`) and makes the source floor.
``quotas=False`` sets them far above (``--source-quota none``, for the memory size).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx2

from tests.bench.directory import Directory, flatten
from tests.bench.quota import Meter, Quota
from tests.fakes.okta import DEFAULT_LIMITS, FakeGroup, FakeOkta, FakeUser
from tests.fakes.serve import serve


TOKEN = "00T-bench-ssws-token"  # the fake's test credential
LOADED_AGO = 86_400.0
"""How long before the benchmark the synthetic org was last changed, in seconds."""
UNLIMITED = dict.fromkeys(DEFAULT_LIMITS, 1_000_000)
"""Buckets far above Okta's, for ``--source-quota none``."""
WINDOW = 60.0
"""Okta's buckets are per minute (idp-apis §1.8; the fake's windows last 60 s)."""


def _profile(user: dict[str, Any]) -> dict[str, Any]:
    enterprise = user.get("enterprise", {})
    return {
        "login": user["user_name"],
        "email": user["email"],
        "firstName": user["given_name"],
        "lastName": user["family_name"],
        "displayName": user["display_name"],
        "department": enterprise.get("department"),
        "employeeNumber": enterprise.get("employee_number"),
    }


class BenchOkta(FakeOkta):
    """A fake org on the machine's clock that keeps no request log."""

    def __init__(self, url: str, *, quotas: bool = True) -> None:
        limits = dict(DEFAULT_LIMITS) if quotas else UNLIMITED
        super().__init__(url=url, token=TOKEN, now=time.time(), limits=limits)
        self.meter = Meter({name: Quota(limit, WINDOW) for name, limit in limits.items()})
        self.served = 0

    def tick(self) -> None:
        """Bring the fake's clock to the machine's (never backwards)."""
        self.now = max(self.now, time.time())

    def handler(self, request: httpx2.Request) -> httpx2.Response:
        """Answer as the fake does, without recording."""
        self.tick()
        self.served += 1
        response = self._handle(request)
        if response.status_code == 429:
            self.meter.refuse()
        else:  # every answer but a 429 spent a unit of its bucket
            self.meter.spend(self._bucket_name(request))
        return response

    def load(self, directory: Directory) -> None:
        """Make the org hold ``directory`` (users, groups, memberships), last changed a day ago.

        Stamped in the past, as a real org's records are: the connector's incremental reads
        overlap the last watermark by minutes, and a directory stamped just before the first run
        would come back whole in the next one.
        """
        self.users.clear()
        for gid in [g for g in self.groups if g != self.everyone]:
            del self.groups[gid]
        self.groups[self.everyone].members.clear()
        self.apply(directory, at=time.time() - LOADED_AGO)

    def apply(self, directory: Directory, at: float | None = None) -> None:
        """Change the org to hold ``directory``, stamping what changed ``at`` (default now), like Okta."""
        self.tick()
        now = self.now if at is None else at
        everyone = self.groups[self.everyone]
        for user in directory["users"]:
            status = "ACTIVE" if user["active"] else "SUSPENDED"
            profile = _profile(user)
            current = self.users.get(user["id"])
            if current is None:
                self.users[user["id"]] = FakeUser(user["id"], status, profile, now, now, now)
                everyone.members.add(user["id"])
                everyone.last_membership_updated = now
            elif current.profile != profile or current.status != status:
                if current.status != status:
                    current.status, current.status_changed = status, now
                current.profile = profile
                current.last_updated = now
        # Okta has no nested groups: a group holds its nested groups' users itself (as a group rule would).
        flat = flatten({g["id"]: g for g in directory["groups"]})
        for group in directory["groups"]:
            members = set(flat[group["id"]])
            current_group = self.groups.get(group["id"])
            if current_group is None:
                profile = {"name": group["name"], "description": group.get("description")}
                self.groups[group["id"]] = FakeGroup(group["id"], "OKTA_GROUP", profile, now, now, now, members)
            elif current_group.members != members:
                current_group.members = members
                current_group.last_membership_updated = now


@contextmanager
def serving(directory: Directory, *, quotas: bool = True) -> Iterator[BenchOkta]:
    """A fake org holding ``directory``, served on a free port of 127.0.0.1 (a thread of this process)."""
    with serve() as served:
        fake = BenchOkta(served.url, quotas=quotas)
        fake.load(directory)
        served.handler = fake.handler
        yield fake
