"""``python -m tests.bench.peak OUT ARGS...``: run ``python -m syncd ARGS...`` in this process and,
as it exits, write its own peak RSS in kB (``VmHWM``) to the file OUT.

The benchmark reads syncd's peak this way, not from ``wait4``'s ``ru_maxrss``: on Linux the
rusage of a child that was forked (or vforked) and then exec'd keeps the high-water mark of
the memory it replaced, which is the *parent's*, so a benchmark process holding a 100k-user
directory made every syncd it started look 300 MB big. ``VmHWM`` belongs to the memory the
exec'd program got, and counts nothing else (proc(5), /proc/pid/status).
"""

from __future__ import annotations

import atexit
import runpy
import sys
from pathlib import Path


def peak_kb() -> int:
    """This process's peak resident set size in kB, as the kernel keeps it."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line")  # pragma: no cover - Linux only


def main() -> None:
    """Run syncd's command line with the arguments after OUT."""
    out = Path(sys.argv[1])
    atexit.register(lambda: out.write_text(str(peak_kb()), encoding="ascii"))
    sys.argv = ["syncd", *sys.argv[2:]]
    runpy.run_module("syncd", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
