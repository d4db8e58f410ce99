"""The kit's parts on their own: grants, pagers and their guards, body-classified retries, the kept directory."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx2
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import SecretStr

from connectors.base import Deps, ReadContext
from connectors.kit import (
    ClientSecret,
    Delta,
    FederatedAssertion,
    Http,
    JwtBearer,
    KeptDirectory,
    KeySigner,
    Limits,
    OAuthToken,
    PageToken,
    PrivateKeyJwt,
    SigningKey,
    collect,
    load_signing_key,
    resume,
    scope_digest,
)
from syncd.errors import SourceAuthError, SourceError
from syncd.normalise import Scope
from tests.kit.conftest import Sleeps


pytestmark = pytest.mark.anyio
TOKEN_URL = "https://login.example/token"


def _http(handler: Callable[[httpx2.Request], httpx2.Response], limits: Limits | None = None) -> tuple[Http, Sleeps]:
    sleeps = Sleeps()
    deps = Deps(transport=httpx2.MockTransport(handler), sleep=sleeps, random=lambda: 0.0, clock=lambda: 1_000.0)
    return Http(deps, provider="Test", limits=limits), sleeps


def _token_endpoint(forms: list[dict[str, str]]) -> Callable[[httpx2.Request], httpx2.Response]:
    def handle(request: httpx2.Request) -> httpx2.Response:
        if request.url.path == "/token":
            forms.append({k: v[0] for k, v in parse_qs(request.content.decode()).items()})
            return httpx2.Response(200, json={"access_token": "at", "token_type": "Bearer", "expires_in": 3600})
        assert request.headers["authorization"] == "Bearer at"
        return httpx2.Response(200, json={"items": []})

    return handle


async def _fetch_form(grant: Any) -> dict[str, str]:
    forms: list[dict[str, str]] = []
    http, _ = _http(_token_endpoint(forms))
    http.auth = OAuthToken(http, TOKEN_URL, grant, clock=lambda: 1_000.0)
    await http.get("https://api.example/users")
    await http.aclose()
    (form,) = forms
    return form


class RecordingSigner:
    """A remote signer stand-in (like Google's IAM signJwt): signs what it is given, records it."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.claims: list[dict[str, Any]] = []

    async def sign(self, claims: dict[str, Any]) -> str:
        self.claims.append(claims)
        return self.key.sign(claims)


@pytest.fixture(scope="module")
def ec_key() -> SigningKey:
    """An EC P-256 key (fast to make), which signs ES256."""
    key = ec.generate_private_key(ec.SECP256R1())
    return SigningKey(key, "ES256", "kid-1")


async def test_jwt_bearer_acts_for_its_subject_through_any_signer(ec_key: SigningKey) -> None:
    """The JWT bearer grant carries iss, sub, scope and aud=token URL, signed by the pluggable signer."""
    signer = RecordingSigner(ec_key)
    grant = JwtBearer("svc@project.iam.example", "admin@example.com", signer, ["directory.readonly"])

    form = await _fetch_form(grant)

    assert form["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = jwt.decode(
        form["assertion"],
        ec_key.key.public_key(),
        algorithms=["ES256"],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert (claims["iss"], claims["sub"], claims["scope"]) == (
        "svc@project.iam.example",
        "admin@example.com",
        "directory.readonly",
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert signer.claims == [claims]
    assert jwt.get_unverified_header(form["assertion"])["kid"] == "kid-1"


async def test_private_key_jwt_is_a_client_assertion_with_extra_fields(ec_key: SigningKey) -> None:
    """Client credentials with iss = sub = client id, and extra form fields (Entra wants client_id)."""
    grant = PrivateKeyJwt("app-1", KeySigner(ec_key), ["https://graph.example/.default"], extra={"client_id": "app-1"})

    form = await _fetch_form(grant)

    assert (form["grant_type"], form["client_id"], form["scope"]) == (
        "client_credentials",
        "app-1",
        "https://graph.example/.default",
    )
    assert form["client_assertion_type"] == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
    claims = jwt.decode(
        form["client_assertion"],
        ec_key.key.public_key(),
        algorithms=["ES256"],
        audience=TOKEN_URL,
        options={"verify_exp": False, "verify_iat": False},
    )
    assert claims["iss"] == claims["sub"] == "app-1"


async def test_client_secret_goes_in_the_body() -> None:
    """The client secret grant posts client_id and client_secret with the scope."""
    form = await _fetch_form(ClientSecret("app-2", SecretStr("shh"), ["s1", "s2"]))

    assert form == {"grant_type": "client_credentials", "client_id": "app-2", "scope": "s1 s2", "client_secret": "shh"}


async def test_a_federated_assertion_is_read_from_its_file_each_time(tmp_path: Path) -> None:
    """The workload-identity token file is read on every token request (the platform rotates it)."""
    path = tmp_path / "token"
    path.write_text("first-assertion\n", encoding="utf-8")
    grant = FederatedAssertion("app-3", path, ["s"])

    first = await grant.form(TOKEN_URL, 0.0)
    path.write_text("second-assertion", encoding="utf-8")
    second = await grant.form(TOKEN_URL, 0.0)

    assert (first["client_assertion"], second["client_assertion"]) == ("first-assertion", "second-assertion")
    assert first["client_id"] == "app-3"
    with pytest.raises(SourceAuthError, match="cannot read the federated token file"):
        await FederatedAssertion("app-3", tmp_path / "missing", ["s"]).form(TOKEN_URL, 0.0)


def test_signing_keys_load_from_pem_or_jwk_and_never_quote_the_key() -> None:
    """A JWK set of one EC key loads with its kid; garbage names the setting, not its text."""
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = jwt.algorithms.ECAlgorithm.to_jwk(key, as_dict=True) | {"kid": "k9"}
    loaded = load_signing_key(jwt.api_jwk.json.dumps({"keys": [jwk]}))
    assert (loaded.algorithm, loaded.key_id) == ("ES384", "k9")
    with pytest.raises(ValueError, match="certificate_key is neither") as caught:
        load_signing_key("not a key at all", name="certificate_key")
    assert "not a key at all" not in str(caught.value)


async def test_page_tokens_are_followed_and_a_missing_items_key_is_an_empty_page() -> None:
    """nextPageToken goes back as pageToken with the same parameters; a page without the key has no items."""
    seen: list[dict[str, str]] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        params = dict(request.url.params)
        seen.append(params)
        if "pageToken" not in params:
            return httpx2.Response(200, json={"users": [1, 2], "nextPageToken": "p2"})
        if params["pageToken"] == "p2":
            return httpx2.Response(200, json={"nextPageToken": "p3"})
        return httpx2.Response(200, json={"users": [3]})

    http, _ = _http(handle)
    items = await collect(http, "https://api.example/users", PageToken("Test", "users"), params={"customer": "c"})

    assert items == [1, 2, 3]
    assert [p.get("pageToken") for p in seen] == [None, "p2", "p3"]
    assert all(p["customer"] == "c" for p in seen)


async def test_a_repeated_page_token_and_a_foreign_next_link_are_refused() -> None:
    """The one pages() loop stops a listing that would not end, and never follows a link to another host."""
    http, _ = _http(lambda request: httpx2.Response(200, json={"users": [], "nextPageToken": "same"}))
    with pytest.raises(SourceError, match="repeats a page"):
        await collect(http, "https://api.example/users", PageToken("Test", "users"))

    from connectors.kit import ODataLinks

    elsewhere = {"value": [], "@odata.nextLink": "https://evil.example/users?$skiptoken=x"}
    http, _ = _http(lambda request: httpx2.Response(200, json=elsewhere))
    with pytest.raises(SourceError, match=r"points to another host \(evil\.example\)"):
        await collect(http, "https://api.example/users", ODataLinks("Test"))


class QuotaBodies(Limits):
    """Google-style: a 403 whose reason is userRateLimitExceeded is throttling, not a refusal."""

    def retryable(self, response: httpx2.Response) -> bool:
        if response.status_code == 403:
            reasons = {e.get("reason") for e in response.json().get("error", {}).get("errors", [])}
            return bool(reasons & {"userRateLimitExceeded", "rateLimitExceeded"})
        return super().retryable(response)


async def test_a_provider_can_call_a_throttling_body_retryable() -> None:
    """A 403 userRateLimitExceeded is retried with backoff; a plain 403 comes straight back."""
    answers = [
        httpx2.Response(403, json={"error": {"errors": [{"reason": "userRateLimitExceeded"}]}}),
        httpx2.Response(200, json={}),
        httpx2.Response(403, json={"error": {"errors": [{"reason": "forbidden"}]}}),
    ]
    http, sleeps = _http(lambda request: answers.pop(0), QuotaBodies())

    assert (await http.request("GET", "https://api.example/x")).status_code == 200
    assert (await http.request("GET", "https://api.example/x")).status_code == 403
    assert sleeps == [1.0]
    assert http.stats.by_status == {403: 2, 200: 1}


async def test_a_request_that_gets_no_answer_is_counted_as_status_0() -> None:
    """A connection error is sent, unanswered: it counts, under status 0, and is retried."""
    answers: list[Any] = [httpx2.ConnectError("refused"), httpx2.Response(200, json=[])]

    def handle(request: httpx2.Request) -> httpx2.Response:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    http, _ = _http(handle)
    await http.request("GET", "https://api.example/x")

    assert http.stats.by_status == {0: 1, 200: 1}


def test_the_kept_directory_round_trips_and_applies_a_delta() -> None:
    """Dump/load keeps users, groups and marks; a delta removes, upserts and changes members."""
    kept = KeptDirectory("d1", 1_000.0, {"cursor": "c1"}, {"u1": ["a"], "u2": ["b"]}, {"g": ["G", ["u1", "u2"]]})
    loaded = KeptDirectory.load(kept.dump(), user_width=1, group_width=2)
    assert (loaded.users, loaded.groups, loaded.marks) == (kept.users, kept.groups, {"cursor": "c1"})

    delta = Delta(users={"u3": ["c"]}, removed_users={"u2"})
    delta.change_members("g", added=["u3", "u3"], removed=["u1"])
    loaded.apply(delta)

    assert loaded.users == {"u1": ["a"], "u3": ["c"]}
    assert loaded.groups == {"g": ["G", ["u3"]]}
    with pytest.raises(ValueError, match="marks may not be named users"):
        KeptDirectory("d", 0.0, {"users": 1}).dump()


def test_the_kept_directory_loads_the_ids_a_read_interns() -> None:
    """A loaded user's id and its group's member entry are the interned id a connector's read names the user with."""
    kept = KeptDirectory("d1", 1_000.0, {}, {"00u-kept-1": ["a"]}, {"g": ["G", ["00u-kept-1"]]})
    loaded = KeptDirectory.load(json.loads(json.dumps(kept.dump())), user_width=1, group_width=2)

    read_id = sys.intern("".join(["00u-kept-", "1"]))
    assert next(iter(loaded.users)) is read_id
    assert loaded.groups["g"][-1][0] is read_id


def test_resume_passes_each_loaded_user_through_the_connectors_reshare() -> None:
    """resume(reshare=...) hands every kept user to the connector once, in place, before the read builds on it."""
    state = KeptDirectory("d1", 1_000.0, {}, {"u1": ["a"], "u2": ["b"]}, {}).dump()
    seen: list[list[Any]] = []

    def reshare(packed: list[Any]) -> None:
        seen.append(packed)
        packed[0] = packed[0].upper()

    kept, why = resume(
        ReadContext(full=False, state=state), "d1", 1_000.0, None, user_width=1, group_width=2, reshare=reshare
    )

    assert (why, len(seen)) == ("", 2)
    assert kept is not None
    assert kept.users == {"u1": ["A"], "u2": ["B"]}


@pytest.mark.parametrize(
    ("ctx", "digest", "now", "why"),
    [
        (ReadContext(full=True, state={"x": 1}), "d1", 1_000.0, "a full read was asked for"),
        (ReadContext(full=False), "d1", 1_000.0, "no state from an earlier run"),
        (ReadContext(full=False, state={"version": 7}), "d1", 1_000.0, "the kept state is unusable"),
        (ReadContext(full=False, state=KeptDirectory("d1", 1_000.0).dump()), "d2", 1_000.0, "scope or settings"),
        (ReadContext(full=False, state=KeptDirectory("d1", 1_000.0).dump()), "d1", 90_000.0, "full_read_every"),
    ],
)
def test_resume_says_why_a_full_read_is_needed(ctx: ReadContext, digest: str, now: float, why: str) -> None:
    """Each reason for a full read is named; otherwise the kept directory comes back."""
    kept, reason = resume(ctx, digest, now, timedelta(days=1), user_width=1, group_width=2)
    assert kept is None
    assert why in reason
    ok, none = resume(
        ReadContext(full=False, state=KeptDirectory("d1", 1_000.0).dump()),
        "d1",
        2_000.0,
        timedelta(days=1),
        user_width=1,
        group_width=2,
    )
    assert (ok is not None, none) == (True, "")


def test_resume_consumes_the_state_it_builds_on() -> None:
    """The state a read builds on is emptied once loaded (not held beside the directory); an unusable one is left."""
    kept = KeptDirectory("d1", 1_000.0, {}, {"u1": ["a"]}, {"g": ["G", ["u1"]]})
    state = kept.dump()
    loaded, _ = resume(ReadContext(full=False, state=state), "d1", 2_000.0, None, user_width=1, group_width=2)
    assert loaded is not None
    assert (loaded.users, loaded.groups) == (kept.users, kept.groups)
    assert {} == state
    unusable = {"version": 7}
    resume(ReadContext(full=False, state=unusable), "d1", 2_000.0, None, user_width=1, group_width=2)
    assert {"version": 7} == unusable


def test_the_scope_digest_changes_with_scope_and_settings() -> None:
    """Another group filter or another setting gives another digest; the same gives the same."""
    base = scope_digest(Scope(groups=("a*",)), url="u")
    assert base == scope_digest(Scope(groups=("a*",)), url="u")
    assert base != scope_digest(Scope(groups=("b*",)), url="u")
    assert base != scope_digest(Scope(groups=("a*",)), url="v")


@pytest.mark.parametrize("gather", ["items", "collect"])
async def test_a_listing_lets_each_page_go_before_it_asks_for_the_next(gather: str) -> None:
    """While the next page is fetched, no earlier page's response is still held (a decoded page is MBs)."""
    import gc
    import weakref

    from connectors.kit import items

    answered: list[weakref.ref[httpx2.Response]] = []
    alive_when_asked: list[int] = []

    def handle(request: httpx2.Request) -> httpx2.Response:
        gc.collect()
        alive_when_asked.append(sum(ref() is not None for ref in answered))
        token = request.url.params.get("pageToken")
        page = int(token) if token else 1
        response = httpx2.Response(
            200, json={"users": [{"n": page}], **({"nextPageToken": str(page + 1)} if page < 3 else {})}
        )
        answered.append(weakref.ref(response))
        return response

    http, _ = _http(handle)
    url, pager = "https://api.example/users", PageToken("Test", "users")
    got = [item async for item in items(http, url, pager)] if gather == "items" else await collect(http, url, pager)

    assert got == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert alive_when_asked == [0, 0, 0]
