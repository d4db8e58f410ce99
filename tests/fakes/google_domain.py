"""A Workspace domain shaped like the Google issue's "done when": made in a fake, with its expected sync.

About 2,000 users (some suspended, some archived, each with a manager, a department and an
employee id) and 300 groups: ten top groups each holding three middle groups, each holding two
leaf groups (nesting three levels deep), one group over 250 direct members, one pair of groups
that hold each other (a cycle, which Google refuses to create but which the connector must
survive), CUSTOMER members ("everyone in the domain") and members from outside the domain.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from tests.fakes.google import FakeGoogle


@dataclass
class Domain:
    """What :func:`populate` made, by id."""

    users: list[str]
    groups: list[str]
    top: list[str]
    big: str
    cycle: tuple[str, str]
    suspended: list[str] = field(default_factory=list)
    archived: list[str] = field(default_factory=list)
    external: list[str] = field(default_factory=list)
    customer_groups: list[str] = field(default_factory=list)


def populate(fake: FakeGoogle, *, users: int = 2000, groups: int = 300, seed: int = 12) -> Domain:
    """Fill ``fake`` with the domain (deterministic for a ``seed``)."""
    assert groups >= 110, "the nesting alone takes 100 groups, the special ones 4 more"
    rng = random.Random(seed)
    people: list[str] = []
    domain = Domain(users=people, groups=[], top=[], big="", cycle=("", ""))
    for i in range(users):
        roll = rng.random()
        suspended, archived = roll < 0.04, 0.04 <= roll < 0.06
        manager = fake.users[people[i // 10]].email if i >= 10 else None
        uid = fake.add_user(
            f"person{i:04d}@{fake.domain}",
            given_name=f"Given{i}",
            family_name=f"Family{i}",
            suspended=suspended,
            archived=archived,
            department=rng.choice(["Engineering", "Operations", "Sales", "Finance"]),
            cost_center=f"CC{i % 7}",
            title=rng.choice(["Engineer", "Manager", "Analyst", None]),
            employee_id=str(100_000 + i),
            manager=manager,
        )
        people.append(uid)
        if suspended:
            domain.suspended.append(uid)
        if archived:
            domain.archived.append(uid)

    def group(name: str, size: int) -> str:
        gid = fake.add_group(f"{name}@{fake.domain}", name, description=f"The {name} group")
        fake.add_member(gid, *rng.sample(people, size))
        domain.groups.append(gid)
        return gid

    for t in range(10):
        top = group(f"top-{t}", rng.randint(1, 5))
        domain.top.append(top)
        for m in range(3):
            middle = group(f"mid-{t}-{m}", rng.randint(2, 10))
            fake.add_member(top, middle)
            for leaf in range(2):
                fake.add_member(middle, group(f"leaf-{t}-{m}-{leaf}", rng.randint(3, 15)))
    domain.big = group("all-engineering", min(260, users))
    a, b = group("cycle-a", 4), group("cycle-b", 4)
    fake.add_member(a, b)
    fake.add_member(b, a, allow_cycle=True)
    domain.cycle = (a, b)
    for g in range(len(domain.groups), groups):
        domain.groups.append(group(f"team-{g:03d}", rng.randint(0, 30)))
    for gid in (domain.groups[-1], domain.top[0]):
        fake.add_customer_member(gid)
        domain.customer_groups.append(gid)
    for n, gid in enumerate(domain.groups[-6:-1]):
        domain.external.append(fake.add_external_member(gid, f"partner{n}@partner.example"))
    return domain


def flattened(fake: FakeGoogle, group_id: str) -> frozenset[str]:
    """The users (with a user record) in a group and every group nested below it, cycle-safe."""
    found: set[str] = set()
    stack, seen = [group_id], set()
    while stack:
        current = stack.pop()
        if current in seen or current not in fake.groups:
            continue
        seen.add(current)
        for member in fake.groups[current].members:
            if member.type == "GROUP":
                stack.append(member.id)
            elif member.id in fake.users:
                found.add(member.id)
    return frozenset(found)


def expected_groups(fake: FakeGoogle) -> dict[str, frozenset[str]]:
    """What Identity Center should hold: each group's name -> the ids of its flattened users."""
    return {g.name: flattened(fake, gid) for gid, g in fake.groups.items()}
