"""The benchmark's Entra holds the synthetic directory as Graph would, nesting included."""

from __future__ import annotations

import httpx2

from tests.bench.directory import Size, flatten, generate, one_percent_change
from tests.bench.entra import BenchEntra


TINY = Size("tiny", 60, 12, nested_share=0.5)


def _flat(fake: BenchEntra) -> dict[str, frozenset[str]]:
    return {g.id: frozenset(m for m in fake.transitive(g.id) if fake.objects[m].type == "user") for g in fake.groups()}


def test_load_and_apply_hold_the_directory() -> None:
    """After load and after the 1% change, each group's transitive users are the directory's flattened ones."""
    base = generate(TINY)
    fake = BenchEntra("http://127.0.0.1:1")
    fake.load(base)
    assert _flat(fake) == flatten({g["id"]: g for g in base["groups"]})

    changed, _ = one_percent_change(base)
    fake.apply(changed)

    assert _flat(fake) == flatten({g["id"]: g for g in changed["groups"]})
    assert {u.id for u in fake.users()} == {u["id"] for u in changed["users"]}
    assert fake.delta.changes  # the change went through the helpers that delta queries see


def test_resource_units_are_graphs_and_metered() -> None:
    """8,000 resource units per 10 s: what a request costs is metered, and one over the budget is refused."""
    fake = BenchEntra("http://127.0.0.1:1")
    assert isinstance(fake.charge(7_999), dict)
    assert isinstance(fake.charge(2), httpx2.Response)  # over the 8,000 of this window
    assert (7_999, 1) == (fake.meter.used["resource units"], fake.meter.throttled)
