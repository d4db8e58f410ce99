"""A local, strict emulator of AWS IAM Identity Center's SCIM v2 endpoint.

It follows ``docs/references.md`` §A (the SCIM Implementation Developer Guide and captured
AWS responses) rather than RFC 7644 where they differ: ``eq``/``and`` filters only, cursor
paging with opaque cursors that may hold ``+``, ``/`` and ``=``, one value per multi-valued user
attribute, no members on GET /Groups, PATCH /Groups answering 204 with at most 100 membership
changes, AWS's error body, and an optional 20-TPS-style throttle. Modules, one job each:

* `store` — the thread-safe directory (`EmulatorState`) and its indexes;
* `validation`, `patch`, `filters`, `paging` — request rules;
* `app` — the WSGI application; `server` — the threaded HTTP server;
* `errors`, `constants`, `discovery`, `throttle`, `stats` — the supporting parts.

Typical use::

    with running_emulator(token="t") as emu:
        client = httpx2.Client(base_url=emu.url, headers={"Authorization": "Bearer t"})
"""

from __future__ import annotations

from syncd.emulator.app import EmulatorApp, make_app
from syncd.emulator.errors import ScimError
from syncd.emulator.server import RunningEmulator, running_emulator, serve
from syncd.emulator.stats import Stats
from syncd.emulator.store import EmulatorState


__all__ = [
    "EmulatorApp",
    "EmulatorState",
    "RunningEmulator",
    "ScimError",
    "Stats",
    "make_app",
    "running_emulator",
    "serve",
]
