"""Run the benchmark: syncd against an emulated Identity Center throttled like AWS, one table out.

Three kinds of process, so that none distorts another's clock, GIL or memory:

* the emulator (``python -m tests.bench.emulator``), throttled at 20 requests/s with a latency
  per answer, counting what it is sent;
* each scenario as ``python -m syncd sync --json`` (through :mod:`tests.bench.peak`), timed
  from spawn to exit, its peak RSS read by syncd's own process as it exits;
* this one, which writes the directory (or serves the fake Okta, Google or Entra from a thread,
  metering what the read spends of its quotas) and waits.

Each scenario's whole run is measured against both sides' floors (:mod:`tests.bench.report`).
After each scenario the emulator's state is compared with what the directory says Identity
Center should hold, so a fast run that got it wrong does not pass as a good figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from syncd.emulator.constants import MAX_USERS
from tests.bench.directory import (
    SIZES,
    Directory,
    describe,
    generate,
    one_percent_change,
    read_floor,
    target_digest,
    target_of,
    write_floor,
)
from tests.bench.quota import NO_SOURCE
from tests.bench.report import QUOTA, SCENARIOS, Bench, Outcome, can_overlap, report


SCIM_TOKEN = "bench-scim-token-0123456789"  # the emulator's test credential
_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: child processes start here so that ``python -m tests.bench...`` finds the tests package."""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SYNCD_")}
    env["SYNCD_BENCH_SCIM_TOKEN"] = SCIM_TOKEN
    from tests.bench.entra import SECRET
    from tests.bench.okta import TOKEN

    env["SYNCD_BENCH_OKTA_TOKEN"] = TOKEN
    env["SYNCD_BENCH_ENTRA_SECRET"] = SECRET
    return env


class Emulator:
    """The emulator process and its control channel."""

    def __init__(self, rate: float | None, latency: float, max_users: int = MAX_USERS) -> None:
        command = [sys.executable, "-m", "tests.bench.emulator", "--latency", str(latency)]
        command += ["--max-users", str(max_users)]
        if rate:
            command += ["--requests-per-second", str(rate)]
        self.process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_env(), cwd=_ROOT
        )
        self.url = self._line()

    def _line(self) -> str:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the emulator process ended before it answered")
        return line.strip()

    def ask(self, command: str) -> dict[str, Any]:
        """Send one command; return its JSON answer."""
        assert self.process.stdin is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self._line())
        return answer

    def close(self) -> None:
        """End the process (closing its stdin ends it)."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


@contextmanager
def emulator(rate: float | None, latency: float, max_users: int = MAX_USERS) -> Iterator[Emulator]:
    """An emulator process for the length of the block."""
    emu = Emulator(rate, latency, max_users)
    try:
        yield emu
    finally:
        emu.close()


def write_config(bench: Bench, emu_url: str, source_url: str | None) -> Path:
    """The syncd.toml of the benchmark."""
    if bench.source == "file":
        source = f'[source]\ntype = "file"\n\n[source.file]\npath = "{bench.workdir / "directory.json"}"\n'
    elif bench.source == "entra":
        from tests.bench.entra import CLIENT_ID
        from tests.fakes.entra import TENANT_ID

        source = (
            f'[source]\ntype = "entra"\n\n[source.entra]\ntenant_id = "{TENANT_ID}"\nclient_id = "{CLIENT_ID}"\n'
            f'client_secret = "env:SYNCD_BENCH_ENTRA_SECRET"\nlogin_url = "{source_url}"\ngraph_url = "{source_url}"\n'
        )
    elif bench.source == "google":
        from tests.bench.google import ADMIN, KEY_FILE

        source = (
            f'[source]\ntype = "google"\n\n[source.google]\ncredentials = "file:{bench.workdir / KEY_FILE}"\n'
            f'admin_email = "{ADMIN}"\napi_url = "{source_url}"\n'
        )
    else:
        source = (
            f'[source]\ntype = "okta"\n\n[source.okta]\nurl = "{source_url}"\ntoken = "env:SYNCD_BENCH_OKTA_TOKEN"\n'
        )
    safety = ""
    if bench.write_during_read is not None:
        safety = f"\n[safety]\nwrite_during_read = {str(bench.write_during_read).lower()}\n"
    config = bench.workdir / "syncd.toml"
    config.write_text(
        f"""{source}{safety}
[target]
scim_url = "{emu_url}"
scim_token = "env:SYNCD_BENCH_SCIM_TOKEN"
requests_per_second = {bench.syncd_rate}

[cache]
url = "sqlite:///{bench.workdir / "syncd.db"}"
""",
        encoding="utf-8",
    )
    return config


def write_directory(bench: Bench, directory: Directory) -> None:
    """The file source's export."""
    path = bench.workdir / "directory.json"
    path.write_text(json.dumps(directory, separators=(",", ":")), encoding="utf-8")


def run_sync(bench: Bench, config: Path, scenario: str, *extra: str) -> tuple[float, int, dict[str, Any], float]:
    """Run ``syncd sync --json`` once; return wall seconds, exit code, its JSON and its peak RSS in MB."""
    peak_path = bench.workdir / f"{scenario}.peak"
    peak_path.unlink(missing_ok=True)
    # syncd's own peak RSS, read inside it as it exits (tests.bench.peak says why not wait4's).
    command = [sys.executable, "-m", "tests.bench.peak", str(peak_path)]
    command += ["--log-level", bench.log_level, "--log-json", "sync", "--json", "--config", str(config), *extra]
    out_path = bench.workdir / f"{scenario}.json"
    err_path = bench.workdir / f"{scenario}.log"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        started = time.perf_counter()
        process = subprocess.Popen(command, stdout=out, stderr=err, env=_env(), cwd=_ROOT)
        exit_code = process.wait()
        wall = time.perf_counter() - started
    lines = [line for line in out_path.read_text(encoding="utf-8").splitlines() if line.startswith("{")]
    result: dict[str, Any] = json.loads(lines[-1]) if lines else {"status": "no output"}
    peak_mb = int(peak_path.read_text(encoding="ascii")) / 1024 if peak_path.exists() else float("nan")
    return wall, exit_code, result, peak_mb


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def run(bench: Bench, scenarios: tuple[str, ...]) -> None:
    """Run the scenarios in order on one emulator and one cache; fill ``bench.outcomes``."""
    base = generate(bench.size)
    changed, summary = one_percent_change(base)
    stats = describe(base)
    _progress(f"directory: {stats}")
    _progress(f"1% change: {summary}")
    # The 1% change's joiners join and its leavers stay (inactive): over 100,000 users (the memory
    # size), Identity Center's quota is raised, as AWS does on request [UG:limits].
    bench.max_users = max(bench.max_users, len(changed["users"]))
    with ExitStack() as stack:
        emu = stack.enter_context(emulator(bench.rate, bench.latency, bench.max_users))
        served: Any = None  # the served source (Okta, Entra or Google), None for the file
        if bench.source == "okta":
            from tests.bench.okta import serving

            served = stack.enter_context(serving(base, quotas=bench.source_quota))
        elif bench.source == "entra":
            from tests.bench.entra import serving as serving_entra

            served = stack.enter_context(serving_entra(base, quotas=bench.source_quota))
        elif bench.source == "google":
            from tests.bench.google import serving as serving_google

            served = stack.enter_context(serving_google(base, bench.workdir, quotas=bench.source_quota))
        else:
            write_directory(bench, base)
        if served is not None:
            bench.quotas = served.meter.quotas
        urls = {"okta": "url", "entra": "graph_url", "google": "api_url"}
        config = write_config(bench, emu.url, getattr(served, urls[bench.source]) if served else None)
        held = None  # what Identity Center holds (None: empty)
        current = base
        for scenario in SCENARIOS:
            if scenario not in scenarios:
                continue
            if scenario == "change":
                current = changed
                if served is not None:
                    served.apply(changed)
                else:
                    write_directory(bench, changed)
            wanted = target_of(current)
            floor = read_floor(wanted) if scenario == "fullresync" else write_floor(held, wanted)
            extra = ("--full-resync",) if scenario == "fullresync" else ()
            emu.ask("reset")
            if served is not None:
                served.meter.reset()
            _progress(f"{scenario}: running (floor {floor.writes} writes, {floor.reads} reads)...")
            wall, code, result, rss = run_sync(bench, config, scenario, *extra)
            counts = emu.ask("stats")
            state = emu.ask("state")
            spent = served.meter.snapshot() if served is not None else NO_SOURCE
            converged = state.get("digest") == target_digest(wanted)
            overlap = can_overlap(scenario, bench.overlapping)
            outcome = Outcome(scenario, wall, code, result, counts, floor, rss, converged, spent, overlap)
            bench.outcomes.append(outcome)
            _progress(
                f"{scenario}: {result.get('status')} in {wall:.1f} s (run {outcome.run_time:.1f} s),"
                f" {counts['total']} target requests ({counts['throttled']} 429s), source spent"
                f" {dict(spent.used)} ({spent.throttled} refused, floor {spent.floor:.1f} s),"
                f" floor {outcome.whole_floor:.1f} s, peak RSS {rss:.0f} MB, converged={converged}"
            )
            for error in result.get("errors", [])[:5]:
                _progress(f"{scenario}: error: {error}")
            held = wanted


def main(argv: list[str] | None = None) -> int:
    """``python -m tests.bench``."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="quick")
    parser.add_argument("--source", choices=("file", "okta", "entra", "google"), default="file")
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated, run in this order: {','.join(SCENARIOS)} (each builds on the ones before)",
    )
    parser.add_argument(
        "--requests-per-second",
        type=float,
        default=None,
        help="the emulator's throttle (default 20; 0 for none, the default of --size memory)",
    )
    parser.add_argument("--latency", type=float, default=None, help="seconds per answer (default 0.02; 0 unthrottled)")
    parser.add_argument(
        "--source-quota",
        choices=("real", "none"),
        default=None,
        help="the served source's quotas: the provider's (default) or far above them (the default of --size memory)",
    )
    parser.add_argument(
        "--write-during-read",
        choices=("true", "false"),
        default=None,
        help="set safety.write_during_read (default: syncd's own default, true); false measures against the sum",
    )
    parser.add_argument("--workdir", type=Path, default=None, help="keep the files here (default: a temporary folder)")
    parser.add_argument("--log-level", default="INFO", help="syncd's log level (logs go to <workdir>/<scenario>.log)")
    args = parser.parse_args(argv)
    scenarios = tuple(s.strip() for s in args.scenarios.split(",") if s.strip())
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    unthrottled_default = args.size == "memory"
    rate = args.requests_per_second if args.requests_per_second is not None else (0 if unthrottled_default else QUOTA)
    latency = args.latency if args.latency is not None else (0.02 if rate else 0.0)
    command = "python -m tests.bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    with ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="syncd-bench-")))
        workdir.mkdir(parents=True, exist_ok=True)
        source_quota = args.source_quota == "real" if args.source_quota else not unthrottled_default
        write_during_read = None if args.write_during_read is None else args.write_during_read == "true"
        bench = Bench(
            SIZES[args.size],
            args.source,
            workdir,
            rate or None,
            latency,
            args.log_level,
            source_quota=source_quota,
            write_during_read=write_during_read,
        )
        started = time.perf_counter()
        run(bench, scenarios)
        _progress(f"benchmark took {time.perf_counter() - started:.0f} s")
        ok = report(bench, command.strip(), sys.stdout)
    return 0 if ok else 1
