"""Listings: one :func:`pages` loop, and a :class:`Pager` per paging style.

* :class:`LinkHeader`: a bare JSON array per page, the next page in ``Link: <…>; rel="next"``
  (RFC 8288), followed exactly as given (Okta: "Pagination",
  https://developer.okta.com/docs/api/#pagination);
* :class:`PageToken`: a JSON object holding the items under a key and a ``nextPageToken`` sent
  back as a query parameter (Google: https://developers.google.com/workspace/admin/directory/v1/guides/manage-users#get_all_users);
  a missing items key is an empty page;
* :class:`ODataLinks`: ``{"value": [...], "@odata.nextLink": url}`` followed as given, the
  listing ending with an ``@odata.deltaLink`` for a delta query (Microsoft Graph:
  https://learn.microsoft.com/graph/paging, https://learn.microsoft.com/graph/delta-query-overview).

Whatever the style, :func:`pages` keeps two guards: a next page on another origin is refused
(credentials never go to a host a header names), and a page that repeats is refused (the
listing would not end).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import httpx2

from connectors.kit.http import Http, json_or_empty
from syncd.errors import SourceError


__all__ = ["LinkHeader", "ODataLinks", "Page", "PageToken", "Pager", "collect", "items", "next_link", "pages"]

_LINK_VALUE = re.compile(r"<([^>]*)>\s*((?:;\s*[^;,]*)*)")
_LINK_REL = re.compile(r"""rel\s*=\s*(?:"([^"]*)"|([^\s;,"]+))""", re.IGNORECASE)


def next_link(response: httpx2.Response) -> str | None:
    """The ``rel="next"`` target of the response's ``Link`` headers, exactly as sent, or None.

    Okta sends ``self`` and ``next`` as *separate* ``Link`` headers; others fold them into one
    comma-separated value. Both are read. ``rel`` may hold several space-separated relation
    types (RFC 8288 §3.3).
    """
    for header in response.headers.get_list("link"):
        for match in _LINK_VALUE.finditer(header):
            for rel in _LINK_REL.finditer(match.group(2)):
                relations = (rel.group(1) or rel.group(2) or "").lower().split()
                if "next" in relations:
                    return match.group(1).strip()
    return None


@dataclass(frozen=True, slots=True)
class Page:
    """One page: its items, its whole JSON body, and the response."""

    items: list[Any]
    body: Any
    response: httpx2.Response


@dataclass(frozen=True, slots=True)
class Next:
    """Where the next page is: a URL, with query parameters to send (None: the URL has them)."""

    url: str
    params: Mapping[str, str] | None = None


class Pager(Protocol):
    """A paging style: what a page's items are and where the next page is."""

    def items(self, body: Any, response: httpx2.Response) -> list[Any]:
        """The page's items; raise SourceError when the body is not a page of this style."""
        ...

    def next(self, body: Any, response: httpx2.Response, url: str, params: Mapping[str, str] | None) -> Next | None:
        """The next page after this one (fetched from ``url`` with ``params``), or None at the end."""
        ...


def _not_a_page(response: httpx2.Response, provider: str, what: str) -> SourceError:
    return SourceError(f"{provider} answered GET {response.request.url.path} with something other than {what}")


@dataclass(frozen=True, slots=True)
class LinkHeader:
    """Bare JSON arrays, ``Link: rel="next"`` paging."""

    provider: str

    def items(self, body: Any, response: httpx2.Response) -> list[Any]:
        """The array itself."""
        if not isinstance(body, list):
            raise _not_a_page(response, self.provider, "a JSON array")
        return body

    def next(self, body: Any, response: httpx2.Response, url: str, params: Mapping[str, str] | None) -> Next | None:
        """The ``rel="next"`` URL, as given."""
        link = next_link(response)
        return Next(link) if link is not None else None


@dataclass(frozen=True, slots=True)
class PageToken:
    """A JSON object with the items under ``key`` and a page token sent back as ``param``."""

    provider: str
    key: str
    token: str = "nextPageToken"  # noqa: S105 - the name of a body key, not a secret
    param: str = "pageToken"

    def items(self, body: Any, response: httpx2.Response) -> list[Any]:
        """``body[key]``; an absent key is an empty page."""
        if not isinstance(body, dict):
            raise _not_a_page(response, self.provider, "a JSON object")
        found = body.get(self.key, [])
        if not isinstance(found, list):
            raise _not_a_page(response, self.provider, f"a list under {self.key!r}")
        return found

    def next(self, body: Any, response: httpx2.Response, url: str, params: Mapping[str, str] | None) -> Next | None:
        """The same URL and parameters, with the new page token."""
        token = body.get(self.token) if isinstance(body, dict) else None
        if not isinstance(token, str) or not token:
            return None
        return Next(url, {**(params or {}), self.param: token})


@dataclass(frozen=True, slots=True)
class ODataLinks:
    """``value`` arrays with ``@odata.nextLink``; the last page of a delta query has a deltaLink."""

    provider: str

    def items(self, body: Any, response: httpx2.Response) -> list[Any]:
        """``body["value"]``."""
        if not isinstance(body, dict) or not isinstance(body.get("value", []), list):
            raise _not_a_page(response, self.provider, "an OData collection")
        return list(body.get("value", []))

    def next(self, body: Any, response: httpx2.Response, url: str, params: Mapping[str, str] | None) -> Next | None:
        """``@odata.nextLink`` as given (a page may be empty and still have one)."""
        link = body.get("@odata.nextLink") if isinstance(body, dict) else None
        return Next(link) if isinstance(link, str) and link else None

    @staticmethod
    def delta_link(body: Any) -> str | None:
        """The ``@odata.deltaLink`` of a delta listing's last page, to resume from next time."""
        link = body.get("@odata.deltaLink") if isinstance(body, dict) else None
        return link if isinstance(link, str) and link else None


def _origin(url: httpx2.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


async def pages(
    http: Http,
    url: str,
    pager: Pager,
    *,
    params: Mapping[str, str] | None = None,
    bucket: str | None = None,
    what: str | None = None,
    missing_ok: bool = False,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Page]:
    """Every page of a listing, in order, with the same-origin and repeated-page guards.

    With ``missing_ok``, a 404 on the first page (the object was deleted meanwhile) ends the
    listing with no page at all. ``what`` names the listing in errors (default: the URL path).
    ``headers`` go with *every* page: a next link carries the query, not the headers (Graph's
    ``ConsistencyLevel``, "Paging Microsoft Graph data", https://learn.microsoft.com/graph/paging).

    A page is let go here before the next one is asked for; a caller lets its ``page`` go too
    (``del page`` at the end of the loop), or two pages of each listing are held at once.
    """
    origin = _origin(httpx2.URL(url))
    name = what or httpx2.URL(url).path
    seen: set[str] = set()
    query: Mapping[str, str] | None = params
    while True:
        response = await http.get(url, query, bucket=bucket, missing_ok=missing_ok and not seen, headers=headers)
        if response is None:
            return
        body = json_or_empty(response)
        found = pager.items(body, response)
        seen.add(str(response.request.url))
        following = pager.next(body, response, url, query)
        yield Page(found, body, response)
        # Not held while the next page is asked for: one page of full user records decoded is
        # up to a few MB, and a read runs several listings at once. (The caller lets its go too.)
        del found, body, response
        if following is None:
            return
        target = httpx2.URL(following.url)
        if _origin(target) != origin:
            # Never send our credentials to another host, whatever a header or body says.
            raise SourceError(f"{http.provider}'s next-page link for {name} points to another host ({target.host})")
        if str(target.copy_merge_params(following.params or {})) in seen:
            raise SourceError(f"{http.provider}'s next-page link for {name} repeats a page; the listing would not end")
        url, query = following.url, following.params


async def items(
    http: Http,
    url: str,
    pager: Pager,
    *,
    params: Mapping[str, str] | None = None,
    bucket: str | None = None,
    what: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[Any]:
    """Every item of a listing, one page at a time: a page's decoded JSON is let go before the
    next is asked for. For the big listings (every user of an org), which :func:`collect` would
    hold whole: 100k Okta users are ~360 MB as decoded JSON, ~30 MB once packed."""
    async for page in pages(http, url, pager, params=params, bucket=bucket, what=what, headers=headers):
        for item in page.items:
            yield item
        del page  # before the next page is asked for


async def collect(
    http: Http,
    url: str,
    pager: Pager,
    *,
    params: Mapping[str, str] | None = None,
    bucket: str | None = None,
    what: str | None = None,
    missing_ok: bool = False,
    headers: Mapping[str, str] | None = None,
) -> list[Any] | None:
    """Every item of a listing; None when ``missing_ok`` and the first page was a 404."""
    items: list[Any] = []
    found = False
    async for page in pages(
        http, url, pager, params=params, bucket=bucket, what=what, missing_ok=missing_ok, headers=headers
    ):
        found = True
        items.extend(page.items)
        del page  # before the next page is asked for
    return items if found or not missing_ok else None
