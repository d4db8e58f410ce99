"""Synthetic directories for the benchmark, and the fewest requests each scenario needs.

A directory is the file source's export format (``connectors/file.py``): ``{"users": [...],
"groups": [...]}``, so it can be written to disk as is or loaded into the fake Okta. Everything
is drawn from ``random.Random(seed)``: the same size and seed give the same directory, byte for
byte.

Shape: every user is a direct member of at least one group and of ``memberships_per_user`` on
average; group sizes follow a Zipf-like law (a few groups of thousands, many of a dozen), so
member batches of 100 and CreateGroup's 100 inline members both matter. A share of groups nest
another group, and a share of users are suspended (synced as inactive).

The floor of a scenario is computed here from the data alone, independently of syncd's plan:
the writes Identity Center needs at the very least (one per user or group created, updated or
deleted; member changes 100 per PATCH, the first 100 members of a new group inline with its
create; an add and a remove on one group may share a PATCH), and, for a full resync, the reads
its paging requires (100 users or groups per page; members of each synced group through
``groups.value eq``, at least one page each).
"""

from __future__ import annotations

import bisect
import copy
import hashlib
import itertools
import json
import math
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


MAX_MEMBER_CHANGES = 100
"""Member changes per PATCH, and members inline with CreateGroup [DG:patchgroup, DG:creategroup]."""
PAGE = 100
"""Items per list page Identity Center returns at most [DG:listusers]."""

Directory = dict[str, list[dict[str, Any]]]

_GIVEN = (
    "Ada",
    "Alan",
    "Barbara",
    "Claude",
    "Dana",
    "Edsger",
    "Frances",
    "Grace",
    "Hedy",
    "Ivan",
    "Joan",
    "Ken",
    "Linus",
    "Margaret",
    "Niklaus",
    "Olga",
    "Radia",
    "Shafi",
    "Tim",
    "Ursula",
    "Vint",
    "Whitfield",
    "Xiao",
    "Yukihiro",
    "Zuse",
)
_FAMILY = (
    "Lovelace",
    "Turing",
    "Liskov",
    "Shannon",
    "Scott",
    "Dijkstra",
    "Allen",
    "Hopper",
    "Lamarr",
    "Sutherland",
    "Clarke",
    "Thompson",
    "Torvalds",
    "Hamilton",
    "Wirth",
    "Ladyzhenskaya",
    "Perlman",
    "Goldwasser",
    "Berners",
    "Franklin",
    "Cerf",
    "Diffie",
    "Chen",
    "Matsumoto",
    "Konrad",
)
_DEPARTMENTS = ("Engineering", "Operations", "Sales", "Finance", "Legal", "Support", "Research", "People")


@dataclass(frozen=True, slots=True)
class Size:
    """How big a synthetic directory is."""

    name: str
    users: int
    groups: int
    memberships_per_user: float = 5.0
    nested_share: float = 0.05
    suspended_share: float = 0.02
    seed: int = 20_250_601

    @property
    def memberships(self) -> int:
        """Direct memberships (before nested groups are flattened)."""
        return round(self.users * self.memberships_per_user)


SIZES = {
    "quick": Size("quick", 1_000, 100),
    "headline": Size("headline", 10_000, 1_000),
    "memory": Size("memory", 100_000, 10_000),
}


def user_id(index: int) -> str:
    """An Okta-shaped id (20 characters, sortable), also used by the file source."""
    return f"00u{index:09d}{(index * 2_654_435_761) % 16**8:08x}"


def group_id(index: int) -> str:
    """An Okta-shaped group id."""
    return f"00g{index:09d}{(index * 40_503) % 16**8:08x}"


def _user(index: int, rng: random.Random, *, active: bool) -> dict[str, Any]:
    given = _GIVEN[index % len(_GIVEN)]
    family = _FAMILY[(index // len(_GIVEN)) % len(_FAMILY)]
    login = f"{given}.{family}.{index}@example.com".lower()
    return {
        "id": user_id(index),
        "user_name": login,
        "email": login,
        "given_name": given,
        "family_name": family,
        "display_name": f"{given} {family}",
        "active": active,
        "enterprise": {"department": rng.choice(_DEPARTMENTS), "employee_number": str(100_000 + index)},
    }


def generate(size: Size) -> Directory:
    """The directory of ``size``: deterministic for a given size and seed."""
    rng = random.Random(size.seed)
    users = [_user(i, rng, active=rng.random() >= size.suspended_share) for i in range(size.users)]
    members: list[set[int]] = [set() for _ in range(size.groups)]
    # Every user in one group (spread evenly), the rest drawn by a Zipf-like weight of the group's rank.
    for i in range(size.users):
        members[rng.randrange(size.groups)].add(i)
    cumulative = list(itertools.accumulate(1.0 / (rank + 1) ** 0.9 for rank in range(size.groups)))
    total = cumulative[-1]
    extra = size.memberships - size.users
    placed = 0
    while placed < extra:
        g = min(bisect.bisect_left(cumulative, rng.random() * total), size.groups - 1)
        u = rng.randrange(size.users)
        if u not in members[g]:
            members[g].add(u)
            placed += 1
    groups = []
    for g in range(size.groups):
        nested: list[str] = []
        if g + 1 < size.groups and rng.random() < size.nested_share:
            nested.append(group_id(rng.randrange(g + 1, size.groups)))  # a smaller group, no cycles
        groups.append(
            {
                "id": group_id(g),
                "name": f"aws-team-{g:05d}",
                "description": f"Team {g}",
                "members": [user_id(i) for i in sorted(members[g])],
                "groups": nested,
            }
        )
    return {"users": users, "groups": groups}


@dataclass(frozen=True, slots=True)
class ChangeSummary:
    """What :func:`one_percent_change` did."""

    renamed: int
    left: int
    joined: int
    moved: int

    @property
    def total(self) -> int:
        """Every change made."""
        return self.renamed + self.left + self.joined + self.moved


def one_percent_change(directory: Directory, seed: int = 1) -> tuple[Directory, ChangeSummary]:
    """A copy of ``directory`` with 1% of its users changed, a quarter each way.

    * renames: a new userName and email (a PUT, the Identity Center id survives);
    * leavers: suspended (deactivated), memberships kept, as Okta does;
    * joiners: new users in one or two groups;
    * moves: a user leaves one group and joins another.
    """
    rng = random.Random(seed)
    new = {"users": copy.deepcopy(directory["users"]), "groups": copy.deepcopy(directory["groups"])}
    users, groups = new["users"], new["groups"]
    count = max(4, round(len(users) * 0.01))
    quarter = count // 4
    picks = rng.sample(range(len(users)), 3 * quarter)
    renamed, leavers, movers = picks[:quarter], picks[quarter : 2 * quarter], picks[2 * quarter :]
    for i in renamed:
        user = users[i]
        login = f"{user['given_name']}.{user['family_name']}-renamed.{i}@example.com".lower()
        user["user_name"] = user["email"] = login
    for i in leavers:
        users[i]["active"] = False
    direct: dict[str, list[int]] = {}
    for g, group in enumerate(groups):
        for member in group["members"]:
            direct.setdefault(member, []).append(g)
    for i in movers:
        uid = users[i]["id"]
        source = rng.choice(direct[uid])
        target = rng.randrange(len(groups))
        while target in direct[uid]:
            target = rng.randrange(len(groups))
        groups[source]["members"].remove(uid)
        groups[target]["members"].append(uid)
    joined = count - 3 * quarter
    start = max(int(u["id"][3:12]) for u in users) + 1
    for index in range(start, start + joined):
        users.append(_user(index, rng, active=True))
        for g in rng.sample(range(len(groups)), rng.choice((1, 2))):
            groups[g]["members"].append(user_id(index))
    return new, ChangeSummary(quarter, quarter, joined, quarter)


# --- what Identity Center should hold, and the floors ------------------------------------------


@dataclass(frozen=True, slots=True)
class Target:
    """What Identity Center holds once a directory is synced (``filters.users = "members"``)."""

    users: Mapping[str, tuple[Any, ...]]
    groups: Mapping[str, str]
    members: Mapping[str, frozenset[str]]

    @property
    def memberships(self) -> int:
        """Memberships after nested groups are flattened."""
        return sum(len(m) for m in self.members.values())


def flatten(groups: Mapping[str, Mapping[str, Any]]) -> dict[str, frozenset[str]]:
    """Each group's user ids, nested groups' included (cycles are safe)."""
    flat: dict[str, frozenset[str]] = {}
    for gid in groups:
        seen: set[str] = set()
        users: set[str] = set()
        stack = [gid]
        while stack:
            current = stack.pop()
            if current in seen or current not in groups:
                continue
            seen.add(current)
            users.update(groups[current]["members"])
            stack.extend(groups[current].get("groups", ()))
        flat[gid] = frozenset(users)
    return flat


def target_of(directory: Directory) -> Target:
    """The users, groups and flattened memberships a sync of ``directory`` leaves in Identity Center."""
    by_id = {g["id"]: g for g in directory["groups"]}
    flat = flatten(by_id)
    in_groups = set().union(*flat.values()) if flat else set()
    users = {
        u["id"]: (
            u["user_name"],
            u["email"],
            u["given_name"],
            u["family_name"],
            u["display_name"],
            u["active"],
            *sorted(u.get("enterprise", {}).items()),
        )
        for u in directory["users"]
        if u["id"] in in_groups
    }
    members = {gid: frozenset(m & users.keys()) for gid, m in flat.items()}
    return Target(users, {g["id"]: g["name"] for g in directory["groups"]}, members)


@dataclass(frozen=True, slots=True)
class Floor:
    """The fewest requests a scenario needs, and how long they take at ``rate`` per second."""

    writes: int
    reads: int = 0

    def seconds(self, rate: float) -> float:
        """The time the requests take at Identity Center's quota."""
        return (self.writes + self.reads) / rate


def _batches(n: int) -> int:
    return math.ceil(n / MAX_MEMBER_CHANGES)


def write_floor(before: Target | None, after: Target) -> Floor:
    """The fewest writes that take Identity Center from ``before`` (None: empty) to ``after``."""
    old_users = before.users if before else {}
    old_groups = before.groups if before else {}
    old_members = before.members if before else {}
    writes = sum(1 for uid, attrs in after.users.items() if old_users.get(uid) != attrs)  # creates + updates
    writes += sum(1 for uid in old_users if uid not in after.users)  # deletes (memberships go with them)
    writes += sum(1 for gid in old_groups if gid not in after.groups)
    for gid, name in after.groups.items():
        members = after.members.get(gid, frozenset())
        if gid not in old_groups:
            writes += 1 + _batches(max(0, len(members) - MAX_MEMBER_CHANGES))
            continue
        writes += old_groups[gid] != name
        had = old_members.get(gid, frozenset())
        removed = {u for u in had - members if u in after.users}  # deleting a user drops its memberships
        writes += _batches(len(members - had) + len(removed))
    return Floor(writes)


def read_floor(target: Target) -> Floor:
    """The reads a full resync cannot avoid: every user and group page, every synced group's members."""
    pages = max(1, math.ceil(len(target.users) / PAGE)) + max(1, math.ceil(len(target.groups) / PAGE))
    pages += sum(max(1, math.ceil(len(m) / PAGE)) for m in target.members.values())
    return Floor(0, pages)


def describe(directory: Directory) -> dict[str, int]:
    """Counts that say what a directory is: users, groups, direct and flattened memberships."""
    target = target_of(directory)
    sizes = sorted((len(m) for m in target.members.values()), reverse=True)
    return {
        "users": len(directory["users"]),
        "groups": len(directory["groups"]),
        "memberships": sum(len(g["members"]) for g in directory["groups"]),
        "flattened_memberships": target.memberships,
        "nested_groups": sum(1 for g in directory["groups"] if g.get("groups")),
        "suspended": sum(1 for u in directory["users"] if not u["active"]),
        "largest_group": sizes[0] if sizes else 0,
        "groups_over_100": sum(1 for s in sizes if s > MAX_MEMBER_CHANGES),
    }


def digest(
    users: Iterable[tuple[str, str, bool]],
    groups: Iterable[tuple[str, str]],
    members: Mapping[Any, Iterable[str]],
) -> str:
    """A short hash of (externalId, userName, active) users, (externalId, name) groups and members."""
    text = json.dumps(
        [sorted(users), sorted(groups), sorted((str(g), sorted(m)) for g, m in members.items())],
        separators=(",", ":"),
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def target_digest(target: Target) -> str:
    """The digest of what Identity Center should hold, as the emulator's ``state`` command computes it."""
    return digest(
        ((uid, attrs[0], bool(attrs[5])) for uid, attrs in target.users.items()),
        target.groups.items(),
        target.members,
    )
