"""A realistic org: thousands of users, hundreds of groups, big groups, and a 429 in the middle."""

from __future__ import annotations

import json
import random

import pytest

from tests.fakes.okta import FakeOkta
from tests.okta.conftest import Clock, MakeSource, expected, read, summary


pytestmark = pytest.mark.anyio

USERS = 2000
GROUPS = 300


def _big_org(fake: FakeOkta) -> None:
    rng = random.Random(7)
    statuses = ["ACTIVE"] * 90 + ["SUSPENDED"] * 4 + ["DEPROVISIONED"] * 3 + ["STAGED"] * 2 + ["LOCKED_OUT"]
    users = [
        fake.add_user(
            f"person{i}@example.com",
            status=rng.choice(statuses),
            firstName=f"Given{i}",
            lastName=f"Family{i}",
            displayName=f"Given{i} Family{i}",
            department=rng.choice(["Eng", "Ops", "Sales", "Finance"]),
            employeeNumber=str(10000 + i),
        )
        for i in range(USERS)
    ]
    for g in range(GROUPS):
        group = fake.add_group(f"team-{g:03d}", type="APP_GROUP" if g % 10 == 0 else "OKTA_GROUP")
        size = 450 if g < 5 else 201 if g < 10 else rng.randint(0, 60)
        fake.add_member(group, *rng.sample(users, size))


async def test_a_large_org_is_read_completely_through_a_429(
    fake: FakeOkta, make_source: MakeSource, clock: Clock
) -> None:
    """2,000 users and 300 groups (ten over 200 members) read completely despite a 429 mid-listing."""
    _big_org(fake)
    fake.inject(429, on=40, path="/api/v1/groups/")

    result = await read(make_source())

    users, groups = summary(result)
    want_users, want_groups = expected(fake)
    staged = sum(u.status == "STAGED" for u in fake.users.values())
    assert len(users) == USERS - staged
    assert len(groups) == GROUPS
    assert sum(len(m) for _, m in groups.values()) == sum(
        len(g.members) for g in fake.groups.values() if g.type != "BUILT_IN"
    )
    assert (users, groups) == (want_users, want_groups)
    assert len([r for r in fake.responses if r.status_code == 429]) == 1
    assert len(clock.sleeps) == 1
    assert result.requests == len(fake.requests)
    member_pages = len(fake.calls("/api/v1/groups/*/users"))
    assert member_pages == GROUPS + 5 * 2 + 5 * 1 + 1  # extra pages for big groups, one retry


async def test_the_kept_state_stays_compact(fake: FakeOkta, make_source: MakeSource) -> None:
    """State is a few hundred bytes per user, so 10k users stay within a few MB of JSON."""
    _big_org(fake)

    result = await read(make_source())

    size = len(json.dumps(result.state, separators=(",", ":")))
    per_user = size / USERS
    assert per_user < 250, per_user
    assert per_user * 10_000 < 2_500_000
