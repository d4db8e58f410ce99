"""Assembling the :class:`~syncd.model.SourceRead` a connector returns from its kept directory."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta

import structlog

from connectors.base import ReadContext
from connectors.kit.announce import Announcer
from connectors.kit.http import Http
from connectors.kit.kept import KeptDirectory, PackedGroup, PackedUser, resume
from syncd.model import Skipped, SourceGroup, SourceRead, SourceUser


__all__ = ["FullReadNeeded", "assemble", "read_kept"]

log = structlog.get_logger(__name__)


def assemble(
    directory: KeptDirectory,
    *,
    user: Callable[[str, PackedUser], SourceUser | Skipped],
    group: Callable[[str, PackedGroup], SourceGroup],
    skipped: list[Skipped],
    requests: int,
    prefiltered: bool = False,
    announce: Announcer | None = None,
) -> SourceRead:
    """The read: users in id order (``user`` may skip one, with its reason), groups as kept,
    the records skipped while reading, the requests it cost, and the directory as next state.

    ``prefiltered``: the connector already limited users to members of synced groups.
    ``announce``: the full read's :class:`~connectors.kit.announce.Announcer` (built with the
    same ``user`` and ``group``): what it has not announced yet is announced now, and the read
    holds the very records it announced.
    """
    made = announce or Announcer(None, user=user, group=group)
    made.finish(directory)
    read = SourceRead(skipped=skipped, prefiltered=prefiltered, requests=requests)
    for record in made.made_users(directory):
        if isinstance(record, Skipped):
            read.skipped.append(record)
        else:
            read.users.append(record)
    read.groups.extend(made.made_group(group_id, packed) for group_id, packed in directory.groups.items())
    read.state = directory.dump()
    return read


class FullReadNeeded(Exception):
    """Raised by an incremental read that cannot go on (a delta token expired, a watermark is
    missing): :func:`read_kept` then reads in full, logging the reason."""


async def read_kept(
    ctx: ReadContext,
    http: Http,
    *,
    name: str,
    digest: str,
    full_read_every: timedelta | None,
    user_width: int,
    group_width: int,
    full: Callable[[list[Skipped], Announcer], Awaitable[KeptDirectory]],
    incremental: Callable[[KeptDirectory, list[Skipped]], Awaitable[KeptDirectory]],
    user: Callable[[str, PackedUser], SourceUser | Skipped],
    group: Callable[[str, PackedGroup], SourceGroup],
    prefiltered: bool = False,
    reshare: Callable[[PackedUser], None] | None = None,
) -> SourceRead:
    """One read of an incremental connector, start to end.

    :func:`~connectors.kit.kept.resume` decides between ``incremental(kept, skipped)`` and
    ``full(skipped, announce)`` (an incremental read may still raise :class:`FullReadNeeded`); the
    result is :func:`assemble`'d with the requests this read made. ``announce`` is the full read's
    :class:`~connectors.kit.announce.Announcer` for ``ctx.listener`` (made with ``user`` and
    ``group``): announce users, the group list and each group as they become final; an
    incremental read announces nothing. ``name`` prefixes the log events
    (``<name>.read``, ``<name>.read_done``). ``http.began`` is reset for the read. ``reshare``:
    see :meth:`~connectors.kit.kept.KeptDirectory.load`.
    """
    before = http.requests
    http.mark()
    kept, why = resume(
        ctx, digest, http.now(), full_read_every, user_width=user_width, group_width=group_width, reshare=reshare
    )
    skipped: list[Skipped] = []
    directory: KeptDirectory | None = None
    announce: Announcer | None = None
    if kept is not None:
        log.info(f"{name}.read", mode="incremental")
        try:
            directory = await incremental(kept, skipped)
        except FullReadNeeded as exc:
            why, skipped = str(exc), []
    if directory is None:
        log.info(f"{name}.read", mode="full", why=why)
        announce = Announcer(ctx.listener, user=user, group=group)
        directory = await full(skipped, announce)
    read = assemble(
        directory,
        user=user,
        group=group,
        skipped=skipped,
        requests=http.requests - before,
        prefiltered=prefiltered,
        announce=announce,
    )
    log.info(
        f"{name}.read_done",
        users=len(read.users),
        groups=len(read.groups),
        skipped=len(read.skipped),
        requests=read.requests,
    )
    return read
