"""Throttling, latency, stats, concurrency, keep-alive, and the hand-made state helpers."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx2
import pytest

from syncd.emulator import EmulatorState, RunningEmulator, ScimError, make_app, running_emulator
from syncd.emulator.throttle import TokenBucket


ErrorCheck = Callable[[httpx2.Response, int], dict[str, Any]]
Body = Callable[..., dict[str, Any]]
AUTH = {"Authorization": "Bearer emulator-test-token"}


class TestThrottle:
    def test_a_burst_over_the_rate_gets_429s(self, aws_error: ErrorCheck) -> None:
        """Over the rate, a burst of 20 requests gets 429 ThrottlingException answers without Retry-After."""
        # At 1 request/s (a bucket of one) the burst is over the rate unless 20 requests took
        # over 10 s; the bucket's own arithmetic is checked with a fake clock below.
        with running_emulator(token="emulator-test-token", requests_per_second=1) as emu:
            with httpx2.Client(base_url=emu.url, headers=AUTH) as client:
                responses = [client.get("Users") for _ in range(20)]
            statuses = [r.status_code for r in responses]
            assert set(statuses) == {200, 429}
            assert 200 == statuses[0]
            assert statuses.count(429) >= 10
            throttled = next(r for r in responses if r.status_code == 429)
            aws_error(throttled, 429)
            assert "retry-after" not in throttled.headers
            assert emu.stats.throttled == statuses.count(429)
            assert emu.stats.total == 20

    def test_bucket_refills_at_the_rate(self) -> None:
        """The bucket holds one second's worth of tokens and refills at the rate (fake clock)."""
        now = [0.0]
        bucket = TokenBucket(5, clock=lambda: now[0])
        assert [bucket.try_acquire() for _ in range(6)] == [True] * 5 + [False]
        now[0] += 0.2
        assert [bucket.try_acquire() for _ in range(2)] == [True, False]
        now[0] += 10
        assert sum(bucket.try_acquire() for _ in range(10)) == 5

    def test_unthrottled_by_default(self, scim: httpx2.Client, emu: RunningEmulator) -> None:
        """Without requests_per_second nothing is throttled."""
        assert {scim.get("Users").status_code for _ in range(30)} == {200}
        assert emu.stats.throttled == 0


class TestLatencyAndStats:
    def test_latency_delays_each_answer(self) -> None:
        """latency=0.2 makes each answer take at least 0.2 s."""
        with running_emulator(token="emulator-test-token", latency=0.2) as emu:
            started = time.perf_counter()
            response = httpx2.get(emu.url + "Users", headers=AUTH)
            assert response.status_code == 200
            assert time.perf_counter() - started >= 0.2

    def test_counts_by_method_and_status(
        self, emu: RunningEmulator, scim: httpx2.Client, user_body: Body, create_group: Callable[..., str]
    ) -> None:
        """Stats count requests by method and kind, writes, statuses; reset() forgets them."""
        user_id = scim.post("Users", json=user_body(1)).json()["id"]
        scim.post("Users", json=user_body(1))
        scim.get(f"Users/{user_id}")
        create_group()
        scim.get("Bulk")
        assert emu.stats.by_method == {"POST /Users": 2, "GET /Users": 1, "POST /Groups": 1, "GET /other": 1}
        assert (emu.stats.total, emu.stats.writes, emu.stats.throttled) == (5, 3, 0)
        assert emu.stats.counts[("POST", "Users", 409)] == 1
        assert emu.stats.by_status == {201: 2, 409: 1, 200: 1, 404: 1}
        emu.stats.reset()
        assert (emu.stats.total, emu.stats.by_method) == (0, {})


class TestServer:
    def test_parallel_creates(self, emu: RunningEmulator, user_body: Body) -> None:
        """16 clients creating 160 users at once all succeed with distinct ids."""
        with (
            httpx2.Client(base_url=emu.url, headers=AUTH, limits=httpx2.Limits(max_connections=16)) as client,
            ThreadPoolExecutor(16) as pool,
        ):
            responses = list(pool.map(lambda n: client.post("Users", json=user_body(n)), range(160)))
        assert {r.status_code for r in responses} == {201}
        assert len({r.json()["id"] for r in responses}) == 160
        assert len(emu.state.users) == 160

    def test_parallel_duplicates_create_one(self, emu: RunningEmulator, user_body: Body) -> None:
        """Racing creates of the same user yield exactly one 201; the rest are 409."""
        with (
            httpx2.Client(base_url=emu.url, headers=AUTH, limits=httpx2.Limits(max_connections=16)) as client,
            ThreadPoolExecutor(16) as pool,
        ):
            statuses = list(pool.map(lambda _: client.post("Users", json=user_body(1)).status_code, range(32)))
        assert sorted(statuses) == [201] + [409] * 31

    def test_early_error_keeps_connection_usable(self, emu: RunningEmulator) -> None:
        """A 401 to a request with an unread body does not corrupt the next request on the same connection."""
        with httpx2.Client(base_url=emu.url) as client:
            refused = client.post("Users", content=b'{"userName": "x"}' * 100, headers={"Authorization": "Bearer no"})
            accepted = client.get("Users", headers=AUTH)
        assert (refused.status_code, accepted.status_code) == (401, 200)

    def test_url_and_shutdown(self) -> None:
        """The URL ends in /scim/v2/, and the port stops answering after the context exits."""
        with running_emulator(token="emulator-test-token") as emu:
            url = emu.url
            assert url.startswith("http://127.0.0.1:")
            assert url.endswith("/scim/v2/")
        with pytest.raises(httpx2.ConnectError):
            httpx2.get(url + "Users", headers=AUTH)

    def test_make_app_is_wsgi(self) -> None:
        """make_app returns a WSGI callable that answers in-process."""
        app = make_app(EmulatorState(), token="x")
        captured: list[str] = []
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": "/scim/v2/Users",
            "QUERY_STRING": "",
            "HTTP_AUTHORIZATION": "Bearer x",
        }
        body = b"".join(app(environ, lambda status, headers: captured.append(status)))
        assert captured == ["200 OK"]
        assert b'"totalResults": 0' in body


class TestStateHelpers:
    def test_hand_made_objects_are_served(self, emu: RunningEmulator, scim: httpx2.Client) -> None:
        """Users, groups and memberships made through the state show up over HTTP."""
        user = emu.state.add_user(
            user_name="Hand@Example.com",
            display_name="Hand",
            given_name="H",
            family_name="M",
            email="hand@example.com",
        )
        group = emu.state.add_group(display_name="Hand-made", external_id="hm")
        emu.state.add_member(group["id"], user["id"])
        assert scim.get(f"Users/{user['id']}").json()["emails"][0]["value"] == "hand@example.com"
        listed = scim.get("Users", params={"filter": f'groups.value eq "{group["id"]}"'}).json()["Resources"]
        assert [u["id"] for u in listed] == [user["id"]]
        emu.state.remove_member(group["id"], user["id"])
        assert emu.state.members(group["id"]) == set()

    def test_find_user_ignores_case(self, emu: RunningEmulator) -> None:
        """find_user matches userName without regard to case and returns None when absent."""
        user = emu.state.add_user(user_name="Ann@Example.com", display_name="Ann", given_name="A", family_name="N")
        found = emu.state.find_user("ann@example.COM")
        assert found is not None
        assert found["id"] == user["id"]
        assert emu.state.find_user("bob@example.com") is None

    def test_helpers_keep_the_rules(self, emu: RunningEmulator) -> None:
        """Hand-made duplicates and unknown ids raise ScimError with the HTTP status."""
        emu.state.add_user(user_name="a@example.com", display_name="A", given_name="A", family_name="A")
        with pytest.raises(ScimError) as duplicate:
            emu.state.add_user(user_name="A@example.com", display_name="A", given_name="A", family_name="A")
        with pytest.raises(ScimError) as unknown:
            emu.state.delete_group("no-such-group")
        assert (duplicate.value.status, unknown.value.status) == (409, 404)

    def test_returned_copies_do_not_change_the_state(self, emu: RunningEmulator) -> None:
        """Mutating what the helpers return leaves the stored user untouched."""
        emu.state.add_user(user_name="c@example.com", display_name="C", given_name="C", family_name="C")
        emu.state.users[0]["displayName"] = "changed"
        assert emu.state.users[0]["displayName"] == "C"
