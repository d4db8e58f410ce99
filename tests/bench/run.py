"""Run the benchmark: syncd against an emulated Identity Center throttled like AWS, one table out.

Three kinds of process, so that none distorts another's clock, GIL or memory:

* the emulator (``python -m tests.bench.emulator``), throttled at 20 requests/s with a latency
  per answer, counting what it is sent;
* each scenario as ``python -m syncd sync --json`` (through :mod:`tests.bench.peak`), timed
  from spawn to exit, its peak RSS read by syncd's own process as it exits;
* this one, which writes the directory (or serves the fake Okta from a thread) and waits.

After each scenario the emulator's state is compared with what the directory says Identity
Center should hold, so a fast run that got it wrong does not pass as a good figure.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from tests.bench.directory import (
    SIZES,
    Directory,
    Floor,
    Size,
    describe,
    generate,
    one_percent_change,
    read_floor,
    target_digest,
    target_of,
    write_floor,
)


SCENARIOS = ("initial", "nochange", "change", "fullresync")
TITLES = {
    "initial": "initial sync",
    "nochange": "no change",
    "change": "1% change",
    "fullresync": "`--full-resync`, no change",
}
SCIM_TOKEN = "bench-scim-token-0123456789"  # the emulator's test credential
QUOTA = 20.0
"""Identity Center's SCIM quota: 20 requests per second for the whole instance [UG:limits]."""
RSS_LIMIT_MB = 250
_ROOT = Path(__file__).resolve().parents[2]
"""The checkout: child processes start here so that ``python -m tests.bench...`` finds the tests package."""


@dataclass(slots=True)
class Outcome:
    """One scenario's figures."""

    scenario: str
    wall: float
    exit_code: int
    result: dict[str, Any]
    emulator: dict[str, Any]
    floor: Floor
    peak_rss_mb: float
    converged: bool

    @property
    def target_requests(self) -> int:
        """Every request syncd sent to Identity Center, retries and 429s included."""
        return int(self.result.get("requests", {}).get("target", 0))

    @property
    def source_requests(self) -> int:
        """Requests to the source (0 for a file)."""
        return int(self.result.get("requests", {}).get("source", 0))

    @property
    def writes(self) -> int:
        """Writes Identity Center accepted or refused, 429s left out (the emulator's count)."""
        return int(self.emulator.get("writes", 0))

    @property
    def reads(self) -> int:
        """Reads, 429s left out."""
        return int(self.emulator.get("reads", 0))

    @property
    def throttled(self) -> int:
        """Requests the emulator answered 429."""
        return int(self.emulator.get("throttled", 0))


@dataclass(slots=True)
class Bench:
    """One benchmark: a size, a source, and where its files live."""

    size: Size
    source: str
    workdir: Path
    rate: float | None
    latency: float
    log_level: str
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def syncd_rate(self) -> float:
        """The pace syncd is configured with: the quota, or as fast as config allows when unthrottled."""
        return self.rate if self.rate else 1000.0


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

    def __init__(self, rate: float | None, latency: float) -> None:
        command = [sys.executable, "-m", "tests.bench.emulator", "--latency", str(latency)]
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
def emulator(rate: float | None, latency: float) -> Iterator[Emulator]:
    """An emulator process for the length of the block."""
    emu = Emulator(rate, latency)
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
    config = bench.workdir / "syncd.toml"
    config.write_text(
        f"""{source}
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
    with ExitStack() as stack:
        emu = stack.enter_context(emulator(bench.rate, bench.latency))
        served: Any = None  # the served source (Okta, Entra or Google), None for the file
        if bench.source == "okta":
            from tests.bench.okta import serving

            served = stack.enter_context(serving(base))
        elif bench.source == "entra":
            from tests.bench.entra import serving as serving_entra

            served = stack.enter_context(serving_entra(base))
        elif bench.source == "google":
            from tests.bench.google import serving as serving_google

            served = stack.enter_context(serving_google(base, bench.workdir))
        else:
            write_directory(bench, base)
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
            _progress(f"{scenario}: running (floor {floor.writes} writes, {floor.reads} reads)...")
            wall, code, result, rss = run_sync(bench, config, scenario, *extra)
            counts = emu.ask("stats")
            state = emu.ask("state")
            converged = state.get("digest") == target_digest(wanted)
            bench.outcomes.append(Outcome(scenario, wall, code, result, counts, floor, rss, converged))
            _progress(
                f"{scenario}: {result.get('status')} in {wall:.1f} s, {counts['total']} target requests"
                f" ({counts['throttled']} 429s), peak RSS {rss:.0f} MB, converged={converged}"
            )
            held = wanted


# --- the table --------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> str:
    if denominator <= 0:
        return "—"  # nothing is needed: the figure that counts is the absolute one
    return f"{numerator / denominator:.2f}×"


def table(bench: Bench) -> str:
    """The Markdown table of the outcomes."""
    rate = QUOTA
    header = (
        "| scenario | wall | target requests | floor | wall ÷ floor | requests ÷ floor | 429s"
        " | source requests | peak RSS |\n|---|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    rows = [header]
    for o in bench.outcomes:
        is_read = o.scenario == "fullresync"
        floor_requests = o.floor.reads if is_read else o.floor.writes
        kind = "reads" if is_read else "writes"
        floor_text = f"{floor_requests:,} {kind} = {o.floor.seconds(rate):.1f} s" if floor_requests else "0"
        requests = f"{o.target_requests:,}"
        if o.target_requests:
            requests += f" ({o.writes:,} writes, {o.reads:,} reads)"
        measured = o.reads + o.writes if is_read else o.writes
        wall_ratio = _ratio(o.wall, o.floor.seconds(rate)) if bench.rate else "n/a (unthrottled)"
        status = "" if o.exit_code == 0 and o.converged else f" ⚠ {o.result.get('status')}, converged={o.converged}"
        rows.append(
            f"| {TITLES[o.scenario]}{status} | {o.wall:.1f} s | {requests} | {floor_text} | {wall_ratio}"
            f" | {_ratio(measured, floor_requests)} | {o.throttled}"
            f" | {o.source_requests:,} | {o.peak_rss_mb:.0f} MB |"
        )
    return "\n".join(rows)


def verdicts(bench: Bench) -> list[tuple[str, bool]]:
    """The issue's targets that apply to this run, each met or not."""
    checks: list[tuple[str, bool]] = []
    for o in bench.outcomes:
        converged = o.exit_code == 0 and o.converged
        checks.append((f"{o.scenario}: exit 0 and Identity Center holds the directory", converged))
        if o.scenario == "initial" and bench.rate:
            checks.append(("initial: within 1.15× of the floor", o.wall <= 1.15 * o.floor.seconds(QUOTA)))
            few_429s = o.throttled < 0.01 * max(1, o.target_requests)
            checks.append(("initial: under 1% of requests answered 429", few_429s))
        if o.scenario == "nochange":
            token_check_only = o.writes == 0 and o.target_requests <= 1
            checks.append(("no change: no writes, one read (the token check)", token_check_only))
            if bench.source == "file" and bench.size.users <= 10_000:
                checks.append(("no change: under 10 s with the file source", o.wall < 10))
        if o.scenario == "change":
            checks.append(("1% change: target writes equal the floor", o.writes == o.floor.writes))
        if o.scenario == "fullresync":
            checks.append(
                (
                    "full resync: no writes, only the reads paging requires",
                    o.writes == 0 and o.reads == o.floor.reads,
                )
            )
        if bench.size.users >= 100_000:
            checks.append((f"{o.scenario}: peak RSS under {RSS_LIMIT_MB} MB", o.peak_rss_mb < RSS_LIMIT_MB))
    return checks


def report(bench: Bench, command: str, out: IO[str]) -> bool:
    """Print the run's description, the table and the verdicts; True when every target is met."""
    stats = describe(generate(bench.size))
    throttle = (
        f"throttled at {bench.rate:g} requests/s, {bench.latency * 1000:g} ms per answer"
        if bench.rate
        else f"unthrottled, {bench.latency * 1000:g} ms per answer"
    )
    print(f"$ {command}", file=out)
    print(
        f"\n{bench.size.name}: {stats['users']:,} users ({stats['suspended']:,} suspended), {stats['groups']:,} groups"
        f" ({stats['nested_groups']} nesting another), {stats['memberships']:,} memberships"
        f" ({stats['flattened_memberships']:,} flattened; largest group {stats['largest_group']:,},"
        f" {stats['groups_over_100']} over 100); source: {bench.source}; emulator {throttle};"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()}.\n",
        file=out,
    )
    print(table(bench), file=out)
    checks = verdicts(bench)
    print("", file=out)
    for name, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {name}", file=out)
    return all(ok for _, ok in checks)


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
        bench = Bench(SIZES[args.size], args.source, workdir, rate or None, latency, args.log_level)
        started = time.perf_counter()
        run(bench, scenarios)
        _progress(f"benchmark took {time.perf_counter() - started:.0f} s")
        ok = report(bench, command.strip(), sys.stdout)
    return 0 if ok else 1
