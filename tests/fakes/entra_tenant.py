"""A synthetic Entra tenant for the tests and the benchmark: users, nested groups, guests, odd members."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tests.fakes.entra import FakeEntra


@dataclass
class Tenant:
    """What :func:`build_tenant` made, by role."""

    users: list[str]
    groups: dict[str, str]  # displayName -> id
    guests: list[str]
    disabled: str
    device: str
    others: list[str] = field(default_factory=list)
    nested: list[tuple[str, str]] = field(default_factory=list)  # (parent id, child id)


def build_tenant(fake: FakeEntra, *, users: int = 2000, groups: int = 300, seed: int = 13) -> Tenant:
    """``users`` members (one disabled), a few guests, ``groups`` groups named team-000… of 1–40
    random members (the first five larger), the first ten each nesting two others, one chain three
    deep, and a device, a contact and a service principal as members of team-001."""
    rng = random.Random(seed)
    people = [
        fake.add_user(f"given{i}.family{i}", department=rng.choice(["Eng", "Sales", "Ops"]), employeeId=f"E{i:05d}")
        for i in range(users)
    ]
    for i, person in enumerate(people[1:50], start=1):
        fake.objects[person].manager = people[0] if i % 7 == 0 else None
    guests = [fake.add_user(f"guest{i}.visitor", guest=True) for i in range(max(1, users // 400))]
    disabled = people[rng.randrange(users)]
    fake.disable_user(disabled)
    ids = {}
    for g in range(groups):
        group_id = fake.add_group(f"team-{g:03d}", description=f"Team {g}")
        ids[f"team-{g:03d}"] = group_id
        size = min(users, 150 if g < 5 else rng.randint(1, 40))
        fake.add_members(group_id, *rng.sample(people, size))
    names = sorted(ids)
    nested: list[tuple[str, str]] = []
    for g in range(min(10, groups // 3)):
        for child in (names[groups // 2 + 2 * g], names[groups // 2 + 2 * g + 1]):
            fake.add_members(ids[names[g]], ids[child])
            nested.append((ids[names[g]], ids[child]))
    if groups >= 40:  # a chain: team-030 > team-031 > team-032
        for parent, child in (("team-030", "team-031"), ("team-031", "team-032")):
            fake.add_members(ids[parent], ids[child])
            nested.append((ids[parent], ids[child]))
    host = ids[names[1 % groups]]
    device = fake.add_other("device", "build-agent-7")
    others = [device, fake.add_other("orgContact", "vendor"), fake.add_other("servicePrincipal", "ci-bot")]
    fake.add_members(host, *others, guests[0], disabled)
    for guest in guests[1:]:
        fake.add_members(ids[rng.choice(names)], guest)
    return Tenant(people, ids, guests, disabled, device, others, nested)
