"""The connector kit: the parts every identity-provider connector composes, so that a connector
module holds only its provider's facts (settings, statuses, endpoints, error advice, and its
read strategy).

No base class: a connector builds its source from these parts, each small and replaceable.

``Deps`` (from :mod:`connectors.base`)
    What the world hands a factory, ``factory(settings, deps)``: ``transport`` (httpx2),
    ``clock``, ``sleep``, ``random``, ``ldap``. Tests pass fakes; never build a client on your own.
``Http`` (:mod:`.http`)
    Every request: paced and retried by the provider's ``Limits`` under the one retry policy
    (:mod:`syncd.retry`), counted by status in ``http.stats`` (which survives a failed read),
    with the ``httpx2.Auth`` flow in ``http.auth``. ``http.get(url, params, bucket=, missing_ok=)``
    returns the success, None for a tolerated 404, or raises the connector's ``error(response,
    bucket)``. ``json_or_empty(response)`` reads a body that may be empty or not JSON.
``Limits`` (:mod:`.limits`)
    ``Limits()``: retry 429/5xx/network errors, honour ``Retry-After`` on 429/503/504; override
    ``retryable(response)`` for throttling bodies (Google's 403 ``userRateLimitExceeded``).
    ``RateLimitHeaders()``: ``X-Rate-Limit-*`` buckets paced before they run dry (Okta's).
Auth (:mod:`.auth`, :mod:`.keys`)
    ``StaticToken(secret, scheme)``; ``OAuthToken(http, token_url, grant, clock=, explain=)``,
    cached until shortly before expiry and fetched again once after a 401, with a grant:
    ``PrivateKeyJwt`` (Okta, Entra certificate), ``JwtBearer`` with ``subject`` (Google
    delegation; any ``Signer``, e.g. a remote IAM signJwt), ``ClientSecret`` (Entra),
    ``FederatedAssertion`` (a token file, Entra workload identity). ``load_signing_key(text)``
    reads PEM or JWK; ``KeySigner(key)`` signs with it.
Paging (:mod:`.paging`)
    ``pages(http, url, pager, params=, bucket=, missing_ok=)`` yields ``Page(items, body,
    response)`` with the same-origin and repeated-page guards; ``collect(...)`` gathers the items;
    ``items(...)`` yields them a page at a time (for the big listings: a whole org's users).
    Pagers: ``LinkHeader`` (RFC 8288), ``PageToken(provider, key)`` (``nextPageToken``),
    ``ODataLinks`` (``@odata.nextLink``, and ``ODataLinks.delta_link(body)`` at the end).
Incremental state (:mod:`.kept`)
    ``resume(ctx, digest, now, full_read_every, user_width=, group_width=, reshare=)`` gives the
    ``KeptDirectory`` to build on, or None and why a full read is needed; merge what changed as a
    ``Delta`` with ``directory.apply(delta)``; ``scope_digest(scope, **settings)`` names what a
    read covers; ``directory.marks`` holds your watermarks or delta links. Pack the values many
    users repeat (a status, a department) through ``shared(text)``, and give ``reshare`` a pass
    that does the same to a loaded record: one string each for the whole org.
Results (:mod:`.read`) and concurrency
    ``assemble(directory, user=, group=, skipped=, requests=)`` makes the ``SourceRead`` (its
    ``state`` is the kept directory). ``read_kept(ctx, http, name=, digest=, full=, incremental=,
    user=, group=, ...)`` is a whole incremental read: resume, then your ``incremental(kept,
    skipped)`` or ``full(skipped)`` (raise ``FullReadNeeded(why)`` from the incremental one when
    a delta token expired), then assemble and log. ``bounded(items, worker, limit)`` runs
    listings in parallel, taking items in order.
Announcing a full read (:mod:`.announce`)
    ``Announcer(ctx.listener, user=, group=)`` (``read_kept`` hands one to ``full``) tells the
    run what is final while the read goes on: ``announce.users(users)`` after the user listing,
    ``announce.groups((id, packed_without_members), ...)`` after the group listing,
    ``announce.group(id, packed)`` as each group's members are final; ``member_listings(groups,
    listing, limit, pack=, announce=, users=)`` lists members in the order groups were listed and
    announces each group as its listing ends. List users before group members, so that user
    creates start first; a read whose member listings carry the users (``filters.users =
    "members"``) passes ``users=`` (or calls ``announce.found(users)``): each listing's members
    not announced before are announced, then its group.
    ``assemble(..., announce=)`` announces the rest and returns the records announced.

A connector in a few lines (an API with bearer tokens and ``nextPageToken`` paging)::

    class AcmeSource:
        def __init__(self, settings: AcmeSettings, deps: Deps) -> None:
            self.settings = settings
            self._http = Http(deps, provider="Acme", limits=Limits())
            grant = ClientSecret(settings.client_id, settings.secret, ["directory.read"])
            self._http.auth = OAuthToken(self._http, f"{settings.url}/token", grant, clock=deps.clock)
            self.stats = self._http.stats

        async def read(self, ctx: ReadContext) -> SourceRead:
            before = self._http.requests
            users = await collect(self._http, f"{self.settings.url}/users", PageToken("Acme", "users"))
            directory = KeptDirectory(scope_digest(ctx.scope), self._http.began or 0.0)
            directory.users = {u["id"]: [u["email"], u["active"]] for u in users or ()}
            return assemble(
                directory,
                user=lambda uid, p: SourceUser(id=uid, user_name=p[0], email=p[0], active=p[1]),
                group=lambda gid, p: SourceGroup(id=gid, name=p[0], members=tuple(p[-1])),
                skipped=[],
                requests=self._http.requests - before,
            )

        async def aclose(self) -> None:
            await self._http.aclose()

    register(SourceType("acme", AcmeSettings, AcmeSource, "Acme directory"))

``tests/kit/connector.py`` is a complete incremental example; ``connectors/okta.py`` a real one.
"""

from __future__ import annotations

from connectors.base import Deps
from connectors.kit.announce import Announcer, member_listings
from connectors.kit.auth import (
    ClientSecret,
    FederatedAssertion,
    Grant,
    JwtBearer,
    KeySigner,
    OAuthToken,
    PrivateKeyJwt,
    Signer,
    StaticToken,
)
from connectors.kit.http import Http, json_or_empty
from connectors.kit.kept import (
    Delta,
    KeptDirectory,
    PackedGroup,
    PackedUser,
    format_time,
    parse_time,
    resume,
    scope_digest,
    shared,
)
from connectors.kit.keys import SigningKey, load_signing_key
from connectors.kit.limits import Limits, RateLimit, RateLimitHeaders, rate_limit, retry_after, server_time
from connectors.kit.paging import LinkHeader, ODataLinks, Page, Pager, PageToken, collect, items, next_link, pages
from connectors.kit.read import FullReadNeeded, assemble, read_kept
from syncd.aio import bounded


__all__ = [
    "Announcer",
    "ClientSecret",
    "Delta",
    "Deps",
    "FederatedAssertion",
    "FullReadNeeded",
    "Grant",
    "Http",
    "JwtBearer",
    "KeptDirectory",
    "KeySigner",
    "Limits",
    "LinkHeader",
    "OAuthToken",
    "ODataLinks",
    "PackedGroup",
    "PackedUser",
    "Page",
    "PageToken",
    "Pager",
    "PrivateKeyJwt",
    "RateLimit",
    "RateLimitHeaders",
    "Signer",
    "SigningKey",
    "StaticToken",
    "assemble",
    "bounded",
    "collect",
    "format_time",
    "items",
    "json_or_empty",
    "load_signing_key",
    "member_listings",
    "next_link",
    "pages",
    "parse_time",
    "rate_limit",
    "read_kept",
    "resume",
    "retry_after",
    "scope_digest",
    "server_time",
    "shared",
]
