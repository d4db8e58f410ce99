"""The connector seam: what a source is, and the registry that picks one by ``source.type``.

A connector module registers itself with :func:`register`, giving its settings model (the
``[source.<type>]`` table) and a factory ``factory(settings, deps)``; :class:`Deps` carries what
the world gives a connector (HTTP transport, clock, sleep, randomness; an LDAP connection
factory), so tests swap fakes in there. The engine calls :meth:`Source.read` once per run.
Connector authors build on :mod:`connectors.kit`.

Contract of ``read``:

* return everything in scope, or raise :class:`connectors.base.SourceError`; never return a
  partial read as if it were whole (set ``complete=False`` when it knows it is partial);
* skip a malformed record by adding a ``Skipped`` to the result, not by raising;
* make HTTP calls only through ``deps.transport`` (tests swap a fake in there), count them in
  ``SourceRead.requests``, and keep ``stats`` (requests by HTTP status) true even when a read
  fails, so a failed read still reports the requests it made.
"""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2
from pydantic import BaseModel

from syncd.errors import SourceError
from syncd.model import RequestStats, SourceGroup, SourceRead, SourceUser
from syncd.normalise import Scope


__all__ = ["Deps", "ReadContext", "ReadListener", "Source", "SourceError", "SourceType", "get", "names", "register"]


@dataclass(frozen=True, slots=True)
class Deps:
    """What the outside world hands a connector; every factory receives one.

    ``transport``: the httpx2 transport for every HTTP call (None: real HTTP).
    ``clock``: epoch seconds now. ``sleep``: waits (None: real waits, taken by the retry policy's
    stamina, so ``stamina.set_testing`` skips them; tests that move a fake server's clock pass
    their own). ``random``: a number in [0, 1) for jitter. ``ldap``: a factory of LDAP
    connections, for directory connectors (None: the connector's default).
    """

    transport: httpx2.AsyncBaseTransport | None = None
    clock: Callable[[], float] = time.time
    sleep: Callable[[float], Awaitable[None]] | None = None
    random: Callable[[], float] = random.random
    ldap: Callable[..., Any] | None = None


class ReadListener(Protocol):
    """Told during a read which parts of it are already final, so that the run can start the
    writes that are safe before the read ends (``[safety] write_during_read``).

    Every call is optional: a connector that makes none is taken as a whole at the end, as
    before. A part announced is final for this read: the :class:`SourceRead` returned at the end
    holds the same records, unchanged (a read that fails or comes back incomplete makes the run
    remove nothing, whatever was announced). Calls are made from the read's own coroutine, on the
    event loop; they return at once (the listener only takes note).
    """

    def users_read(self, users: Sequence[SourceUser]) -> None:
        """Every user this read will return (called at most once, after the last user page)."""
        ...

    def users_found(self, users: Sequence[SourceUser]) -> None:
        """Some of the users this read will return, final, before the whole set is known.

        For reads that learn users from group member listings (``filters.users = "members"``):
        each call brings users not announced before (each user once, in any number of calls), and
        every member of a group that the read returns is announced, here or by :meth:`users_read`,
        before its :meth:`group_read`. :meth:`users_read` may still follow, with every user.
        """
        ...

    def groups_listed(self, groups: Sequence[SourceGroup]) -> None:
        """Every group this read will return, with ids, names, emails and descriptions final and
        members not yet known (called at most once, before any :meth:`group_read`)."""
        ...

    def group_read(self, group: SourceGroup) -> None:
        """One group of :meth:`groups_listed` with its final direct members and nested group ids."""
        ...


@dataclass(frozen=True, slots=True)
class ReadContext:
    """What the engine tells a connector about this read.

    ``full``: a full read is required (``--full-resync``, or no state yet); incremental
    connectors must then ignore ``state``. ``state``: what the connector returned in
    ``SourceRead.state`` on the last successful run (a connector may consume it: the kit's
    :func:`~connectors.kit.kept.resume` empties it once loaded). ``listener``: told which parts of a read
    are final before it ends (None: nobody asks; see :class:`ReadListener`).
    """

    scope: Scope = field(default_factory=Scope)
    full: bool = True
    state: Mapping[str, Any] = field(default_factory=dict)
    listener: ReadListener | None = None


class Source(Protocol):
    """A readable identity source."""

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read users, groups and memberships in scope."""
        ...

    async def aclose(self) -> None:
        """Release connections."""
        ...

    @property
    def stats(self) -> RequestStats:
        """Requests sent since the source was built, by HTTP status (kept when a read fails)."""
        ...


Factory = Callable[[Any, Deps], Source]
"""``factory(settings, deps)``: a source for the validated ``[source.<type>]`` settings."""


@dataclass(frozen=True, slots=True)
class SourceType:
    """A registered connector: its ``source.type`` name, settings model and factory."""

    name: str
    settings: type[BaseModel]
    factory: Factory
    description: str = ""


_REGISTRY: dict[str, SourceType] = {}
# Built-in connectors, imported on first lookup so that importing the seam stays cheap.
_BUILTIN = {
    "file": "connectors.file",
    "okta": "connectors.okta",
    "entra": "connectors.entra",
    "google": "connectors.google",
    "ldap": "connectors.ldap",
}


def register(source_type: SourceType) -> SourceType:
    """Make a connector available under ``source_type.name``."""
    _REGISTRY[source_type.name] = source_type
    return source_type


def _load_builtins(*names: str) -> None:
    """Import the built-in connectors named (every one when none is), each registering itself."""
    for module in (_BUILTIN[name] for name in names) if names else _BUILTIN.values():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real import error inside the connector
                raise


def names() -> list[str]:
    """The registered source types, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get(name: str) -> SourceType:
    """The connector registered as ``name``; KeyError when there is none.

    A built-in one is imported alone: a run of the file source does not load Okta's JWT signing,
    nor LDAP's client.
    """
    if name in _BUILTIN:
        _load_builtins(name)
    elif name not in _REGISTRY:
        _load_builtins()
    return _REGISTRY[name]
