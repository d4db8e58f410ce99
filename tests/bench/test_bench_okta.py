"""The benchmark's Okta meters what the read spends of Okta's per-minute buckets, and what they refuse."""

from __future__ import annotations

import httpx2

from tests.bench.okta import TOKEN, BenchOkta


URL = "http://127.0.0.1:1"


def _list_users(fake: BenchOkta) -> int:
    request = httpx2.Request("GET", f"{URL}/api/v1/users?limit=200", headers={"Authorization": f"SSWS {TOKEN}"})
    return fake.handler(request).status_code


def test_the_users_bucket_is_oktas_and_each_answer_spends_it() -> None:
    """600 user listings a minute go through and are metered; the 601st is a 429, counted as refused."""
    fake = BenchOkta(URL)
    statuses = [_list_users(fake) for _ in range(601)]
    assert statuses.count(200) == 600
    assert statuses[-1] == 429
    assert (600, 1) == (fake.meter.used["users"], fake.meter.throttled)
    assert 0.0 == fake.meter.floor()  # 600 fit the first window


def test_lifted_quotas_refuse_nothing() -> None:
    """With --source-quota none the same listings all go through."""
    fake = BenchOkta(URL, quotas=False)
    assert {_list_users(fake) for _ in range(601)} == {200}
    assert (601, 0) == (fake.meter.used["users"], fake.meter.throttled)
