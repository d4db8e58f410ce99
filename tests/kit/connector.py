"""A small incremental connector built only from the kit: what a new connector has to write.

"Acme" is a made-up directory API in the style of Microsoft Graph's delta queries: an OAuth
token by client secret, ``/users/delta`` and ``/groups/delta`` pages linked by
``@odata.nextLink``, the last page carrying an ``@odata.deltaLink`` to resume from; removed
objects come as ``{"id", "@removed": {}}`` and membership changes as ``members@delta``.

Everything below is Acme's facts; there is no paging loop, retry, token cache or state codec
here: those are the kit's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, SecretStr

from connectors.base import Deps, ReadContext, SourceType
from connectors.kit import (
    Announcer,
    ClientSecret,
    Delta,
    Http,
    KeptDirectory,
    Limits,
    OAuthToken,
    ODataLinks,
    PackedGroup,
    PackedUser,
    assemble,
    pages,
    resume,
    scope_digest,
)
from syncd.durations import Duration
from syncd.model import RequestStats, Skipped, SourceGroup, SourceRead, SourceUser


class AcmeSettings(BaseModel):
    """``[source.acme]``."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    url: str
    client_id: str
    client_secret: SecretStr
    full_read_every: Duration = timedelta(days=7)


class AcmeSource:
    """Reads Acme users and groups; incremental through delta links kept in the state."""

    def __init__(self, settings: AcmeSettings, deps: Deps) -> None:
        self.settings = settings
        self._clock = deps.clock
        self._http = Http(deps, provider="Acme", limits=Limits(), max_retries=3)
        grant = ClientSecret(settings.client_id, settings.client_secret, ["directory.read"])
        self._http.auth = OAuthToken(self._http, f"{settings.url}/token", grant, clock=deps.clock)
        self._pager = ODataLinks("Acme")

    @property
    def stats(self) -> RequestStats:
        """Requests by status."""
        return self._http.stats

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._http.aclose()

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Full on the first run (or when the kit's resume says so), else only the changes.

        A full read announces its users once listed; members come in ``members@delta`` slices
        that are final only at the end, so ``assemble`` announces the groups then.
        """
        before = self._http.requests
        digest = scope_digest(ctx.scope, url=self.settings.url)
        kept, _why = resume(ctx, digest, self._clock(), self.settings.full_read_every, user_width=2, group_width=2)
        announce = None
        if kept is None:
            kept = KeptDirectory(scope=digest, last_full_read=self._clock())
            announce = Announcer(ctx.listener, user=_make_user, group=_make_group)
        delta = Delta()
        kept.marks["users_delta"] = await self._changes("users", kept, delta)
        if announce is not None:
            announce.users(delta.users)  # a first delta round lists every user, none removed
        kept.marks["groups_delta"] = await self._changes("groups", kept, delta)
        kept.apply(delta)
        skipped: list[Skipped] = []
        return assemble(
            kept,
            user=_make_user,
            group=_make_group,
            skipped=skipped,
            requests=self._http.requests - before,
            announce=announce,
        )

    async def _changes(self, kind: str, kept: KeptDirectory, delta: Delta) -> str:
        """Read one delta listing into ``delta``; returns the delta link to resume from."""
        link = kept.marks.get(f"{kind}_delta")
        url = link if isinstance(link, str) else f"{self.settings.url}/{kind}/delta"
        resume_from = url
        async for page in pages(self._http, url, self._pager, bucket=kind):
            for item in page.items:
                if kind == "users":
                    _user(item, delta)
                else:
                    _group(item, kept, delta)
            resume_from = ODataLinks.delta_link(page.body) or resume_from
        return resume_from


def _make_user(user_id: str, packed: PackedUser) -> SourceUser:
    return SourceUser(id=user_id, user_name=packed[0], email=packed[0], active=packed[1])


def _make_group(group_id: str, packed: PackedGroup) -> SourceGroup:
    return SourceGroup(id=group_id, name=packed[0], members=tuple(packed[-1]))


def _user(item: dict[str, Any], delta: Delta) -> None:
    if "@removed" in item:
        delta.removed_users.add(item["id"])
        return
    packed: PackedUser = [item["email"], bool(item.get("enabled", True))]
    delta.users[item["id"]] = packed


def _group(item: dict[str, Any], kept: KeptDirectory, delta: Delta) -> None:
    group_id = item["id"]
    if "@removed" in item:
        delta.removed_groups.add(group_id)
        return
    if "name" in item:  # a rename keeps the members; their changes come in members@delta
        old = delta.groups.get(group_id) or kept.groups.get(group_id)
        packed: PackedGroup = [item["name"], list(old[-1]) if old else []]
        delta.groups[group_id] = packed
    changes = item.get("members@delta", [])
    delta.change_members(
        group_id,
        added=[m["id"] for m in changes if "@removed" not in m],
        removed=[m["id"] for m in changes if "@removed" in m],
    )


ACME = SourceType("acme", AcmeSettings, AcmeSource, "a test connector built on the kit")
