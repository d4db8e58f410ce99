"""The benchmark's Google holds the synthetic directory as the Directory API would, nesting included."""

from __future__ import annotations

from tests.bench.directory import Size, flatten, generate, one_percent_change
from tests.bench.google import ADMIN, BenchGoogle
from tests.fakes.google_domain import flattened


TINY = Size("tiny", 60, 12, nested_share=0.5)


def _flat(fake: BenchGoogle) -> dict[str, frozenset[str]]:
    return {gid: flattened(fake, gid) for gid in fake.groups}


def test_apply_holds_the_directory_and_its_change() -> None:
    """After loading and after the 1% change, each group's flattened users are the directory's, users
    suspended where inactive, and the admin syncd acts as is there too."""
    base = generate(TINY)
    fake = BenchGoogle("http://127.0.0.1:1")
    fake.apply(base)
    assert _flat(fake) == flatten({g["id"]: g for g in base["groups"]})

    changed, _ = one_percent_change(base)
    fake.apply(changed)

    assert _flat(fake) == flatten({g["id"]: g for g in changed["groups"]})
    assert {u.id for u in fake.users.values() if u.email != ADMIN} == {u["id"] for u in changed["users"]}
    inactive = {u["id"] for u in changed["users"] if not u["active"]}
    assert {uid for uid, u in fake.users.items() if u.suspended} == inactive
    assert fake.user_by_email(ADMIN) is not None


def test_queries_are_googles_per_minute_quota_and_metered() -> None:
    """2,400 queries a minute per user go through and are metered; the next one is refused."""
    fake = BenchGoogle("http://127.0.0.1:1")
    answers = [fake._spend(ADMIN) for _ in range(2_401)]
    assert answers[:2_400] == [None] * 2_400
    assert answers[-1] is not None
    assert (2_400, 1) == (fake.meter.used["queries"], fake.meter.throttled)
