"""The C allocator's settings for a long run: memory freed in one phase goes back to the system.

Python keeps its small objects in arenas of its own, which it returns to the system when they
empty; anything larger (a dict of 100k users, a list, a response body of a few hundred kB)
comes from the C library's ``malloc``. glibc's defaults suit short programs, not a run that
holds a directory, lets it go and builds the next form of it:

* a freed block of more than the *mmap threshold* raises that threshold to its size
  ("dynamic mmap threshold", mallopt(3)), so that later large blocks (the next page of a
  listing, the next dict) come from the heap, where a block freed below a live one cannot go
  back to the system;
* each thread that allocates (asyncio resolves addresses in a thread pool) may get an arena of
  its own, up to eight per CPU, each keeping what its thread freed.

:func:`tune` fixes the thresholds at glibc's default of 128 kB (setting them turns the dynamic
adjustment off) and caps the arenas at two. Measured at 30k users with the Okta source, an
initial sync peaked at 171 MB of RSS instead of 190. The settings are those of the tunables
``glibc.malloc.mmap_threshold``, ``trim_threshold`` and ``arena_max``
(https://www.gnu.org/software/libc/manual/html_node/Memory-Allocation-Tunables.html); a value
the environment already gives (``GLIBC_TUNABLES``, or the older ``MALLOC_MMAP_THRESHOLD_``,
``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_ARENA_MAX``) is left as the operator set it. Elsewhere
than on glibc (musl, macOS) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from collections.abc import Mapping


# mallopt(3) parameter numbers, from glibc's <malloc.h>.
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

THRESHOLD = 128 * 1024
"""glibc's default mmap and trim thresholds (mallopt(3)), kept fixed instead of growing."""
ARENAS = 2
"""One arena for the event loop's thread, one shared by the others."""

_SETTINGS = (
    # (mallopt parameter, value, the environment variable and the GLIBC_TUNABLES name that set it)
    (M_MMAP_THRESHOLD, THRESHOLD, "MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold"),
    (M_TRIM_THRESHOLD, THRESHOLD, "MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold"),
    (M_ARENA_MAX, ARENAS, "MALLOC_ARENA_MAX", "glibc.malloc.arena_max"),
)


def _glibc() -> ctypes.CDLL | None:
    """The process's C library when it is glibc (it has ``gnu_get_libc_version``), else None."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return None
    return libc


def tune(environ: Mapping[str, str] = os.environ) -> dict[str, int]:
    """Apply the settings the environment does not give; return those applied, by tunable name."""
    libc = _glibc()
    if libc is None:
        return {}
    tunables = environ.get("GLIBC_TUNABLES", "")
    applied: dict[str, int] = {}
    for param, value, variable, tunable in _SETTINGS:
        if variable in environ or f"{tunable}=" in tunables:
            continue
        if libc.mallopt(ctypes.c_int(param), ctypes.c_int(value)) == 1:  # 1 on success, 0 on error
            applied[tunable] = value
    return applied
