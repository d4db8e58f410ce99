"""``python -m syncd.emulator``: serve an empty emulator until Ctrl-C.

The token comes from ``--token`` or the ``SYNCD_EMULATOR_TOKEN`` environment variable.
"""

from __future__ import annotations

import argparse
import os

from syncd.emulator.server import serve


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m syncd.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--token", default=os.environ.get("SYNCD_EMULATOR_TOKEN"))
    parser.add_argument("--rps", type=float, default=None, help="throttle above this many requests per second")
    parser.add_argument("--latency", type=float, default=0.0, help="seconds to wait before each answer")
    args = parser.parse_args(argv)
    if not args.token:
        parser.error("a token is required: --token or SYNCD_EMULATOR_TOKEN")
    serve(args.host, args.port, token=args.token, requests_per_second=args.rps, latency=args.latency)


if __name__ == "__main__":
    main()
