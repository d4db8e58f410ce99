"""The C allocator's settings (syncd.allocator): large blocks a phase frees go back to the system."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from syncd import allocator


pytestmark = pytest.mark.skipif(allocator._glibc() is None, reason="the settings are glibc's (mallopt)")

# Frees 100 blocks of 1 MB that sit below small live ones, after one 8 MB block was freed (which
# raises glibc's dynamic mmap threshold past 1 MB); prints how much RSS grew, in kB.
_FREED_BELOW_LIVE = textwrap.dedent(
    """
    import sys
    from pathlib import Path

    def rss_kb():
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

    if sys.argv[1] == "tune":
        from syncd.allocator import tune
        tune({})
    before = rss_kb()
    big = bytearray(8 * 1024 * 1024)
    del big
    blocks, small = [], []
    for _ in range(100):
        blocks.append(bytearray(1024 * 1024))
        small.append(bytearray(2048))
    del blocks
    print(rss_kb() - before)
    """
)


def _growth_kb(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", _FREED_BELOW_LIVE, mode], capture_output=True, text=True, check=True, env={}
    )
    return int(done.stdout)


def test_large_blocks_freed_go_back_to_the_system() -> None:
    """After tune(), 100 MB of freed large blocks below live small ones leave the process's RSS."""
    assert _growth_kb("tune") < 20 * 1024


def test_tune_applies_glibc_defaults_as_fixed_thresholds_and_two_arenas() -> None:
    """With nothing set in the environment, tune() sets both thresholds to 128 kB and two arenas."""
    assert allocator.tune({}) == {
        "glibc.malloc.mmap_threshold": 128 * 1024,
        "glibc.malloc.trim_threshold": 128 * 1024,
        "glibc.malloc.arena_max": 2,
    }


def test_settings_the_operator_gave_are_left_alone() -> None:
    """A value set by MALLOC_* or GLIBC_TUNABLES is not overridden."""
    applied = allocator.tune(
        {"MALLOC_ARENA_MAX": "4", "GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536:glibc.malloc.tcache_count=0"}
    )
    assert applied == {"glibc.malloc.trim_threshold": 128 * 1024}
