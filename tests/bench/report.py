"""What a benchmark run found: each scenario's figures, its floor, the table and the verdicts.

A scenario's floor has two sides. The target floor is the fewest requests Identity Center needs
(:mod:`tests.bench.directory`) at its 20 requests/s; the source floor is the least time the
provider's quotas need for what the read spent (:mod:`tests.bench.quota`; 0 for a file). When
the two can overlap they cost their larger: a full resync reads both sides at once, and with
``safety.write_during_read`` (the default) the writes start while the source is still being read.
When they cannot, the read comes first and they cost their sum. The whole run, from spawning
``syncd sync`` to its exit, is measured against that.
"""

from __future__ import annotations

import math
import os
import platform
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from syncd.emulator.constants import MAX_USERS
from tests.bench.directory import Floor, Size, describe, generate
from tests.bench.quota import NO_SOURCE, Quota, SourceSpend


QUOTA = 20.0
"""Identity Center's SCIM quota: 20 requests per second for the whole instance
(https://docs.aws.amazon.com/singlesignon/latest/userguide/limits.html)."""
RSS_LIMIT_MB = 250
SCENARIOS = ("initial", "nochange", "change", "fullresync")
TITLES = {
    "initial": "initial sync",
    "nochange": "no change",
    "change": "1% change",
    "fullresync": "`--full-resync`, no change",
}


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
    source: SourceSpend = NO_SOURCE
    overlap: bool = True
    """Whether the read and Identity Center's requests may overlap (their floors then cost their larger)."""

    @property
    def target_requests(self) -> int:
        """Every request syncd sent to Identity Center, retries and 429s included."""
        return int(self.result.get("requests", {}).get("target", 0))

    @property
    def source_requests(self) -> int:
        """Requests to the source, as syncd counted them (0 for a file)."""
        return int(self.result.get("requests", {}).get("source", 0))

    @property
    def run_time(self) -> float:
        """The run's own duration as syncd reports it (``duration_s``): the wall less start-up and exit."""
        return float(self.result.get("duration_s", math.nan))

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

    @property
    def target_floor(self) -> float:
        """Seconds Identity Center's quota needs for the fewest requests of the scenario."""
        return self.floor.seconds(QUOTA)

    @property
    def whole_floor(self) -> float:
        """The floor of the whole run: the two sides' larger when they overlap, else their sum."""
        return whole_floor(self.target_floor, self.source.floor, overlap=self.overlap)


def whole_floor(target: float, source: float, *, overlap: bool) -> float:
    """Both sides' floors together: ``max`` when they can overlap, their sum when one waits for the other."""
    return max(target, source) if overlap else target + source


def can_overlap(scenario: str, write_during_read: bool) -> bool:
    """A full resync reads both sides at once; any other run writes during the read only with the setting."""
    return scenario == "fullresync" or write_during_read


@dataclass(slots=True)
class Bench:
    """One benchmark: a size, a source, and where its files live."""

    size: Size
    source: str
    workdir: Path
    rate: float | None
    latency: float
    log_level: str
    source_quota: bool = True
    """The served source's quotas are the provider's (else far above them)."""
    write_during_read: bool | None = None
    """``safety.write_during_read`` written into the config; None leaves syncd's default (true)."""
    quotas: Mapping[str, Quota] = field(default_factory=dict)
    """The served source's quotas, for the description."""
    max_users: int = MAX_USERS
    """The emulator's identity store quota; raised, as AWS does on request, when the directory's
    users and the 1% change's joiners exceed Identity Center's 100,000 (the memory size)."""
    outcomes: list[Outcome] = field(default_factory=list)

    @property
    def syncd_rate(self) -> float:
        """The pace syncd is configured with: the quota, or as fast as config allows when unthrottled."""
        return self.rate if self.rate else 1000.0

    @property
    def overlapping(self) -> bool:
        """Whether writes may start during the read (the setting, true by default)."""
        return self.write_during_read is not False


# --- the table --------------------------------------------------------------------------------


def _ratio(numerator: float, denominator: float) -> str:
    if denominator <= 0:
        return "—"  # nothing is needed: the figure that counts is the absolute one
    return f"{numerator / denominator:.2f}×"


def _seconds(value: float) -> str:
    return f"{value:.1f} s"


def _target_floor(o: Outcome) -> str:
    parts = [f"{n:,} {kind}" for n, kind in ((o.floor.writes, "writes"), (o.floor.reads, "reads")) if n]
    return f"{' + '.join(parts)} = {_seconds(o.target_floor)}" if parts else "0"


def _source_floor(bench: Bench, o: Outcome) -> str:
    if bench.source == "file":
        return "0 (file)"
    binding = [
        f"{used:,} {name}"
        for name, used in sorted(o.source.used.items(), key=lambda item: -item[1])
        if name in bench.quotas and bench.quotas[name].floor(used) == o.source.floor and o.source.floor > 0
    ]
    return f"{_seconds(o.source.floor)} ({binding[0]})" if binding else _seconds(o.source.floor)


def _requests(o: Outcome) -> str:
    text = f"{o.target_requests:,}"
    if o.target_requests:
        text += f" ({o.writes:,} w, {o.reads:,} r)"
    return text


def table(bench: Bench) -> str:
    """The Markdown table of the outcomes."""
    header = (
        "| scenario | wall | run | target requests | source requests | target floor | source floor | floor"
        " | wall ÷ floor | target requests ÷ floor | 429s target / source | peak RSS |\n"
        "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"
    )
    rows = [header]
    for o in bench.outcomes:
        is_read = o.scenario == "fullresync"
        floor_requests = o.floor.reads + o.floor.writes
        measured = o.reads + o.writes if is_read else o.writes
        combined = "max" if o.overlap else "sum"
        floor_text = f"{combined} {_seconds(o.whole_floor)}" if o.whole_floor > 0 else "0"
        wall_ratio = _ratio(o.wall, o.whole_floor) if bench.rate else "n/a (unthrottled)"
        status = "" if o.exit_code == 0 and o.converged else f" ⚠ {o.result.get('status')}, converged={o.converged}"
        rows.append(
            f"| {TITLES[o.scenario]}{status} | {_seconds(o.wall)} | {_seconds(o.run_time)} | {_requests(o)}"
            f" | {o.source_requests:,} | {_target_floor(o)} | {_source_floor(bench, o)} | {floor_text}"
            f" | {wall_ratio} | {_ratio(measured, floor_requests)} | {o.throttled} / {o.source.throttled}"
            f" | {o.peak_rss_mb:.0f} MB |"
        )
    return "\n".join(rows)


# --- the targets ------------------------------------------------------------------------


def verdicts(bench: Bench) -> list[tuple[str, bool]]:
    """The targets that apply to this run, each met or not (issue 18's, for the whole run)."""
    checks: list[tuple[str, bool]] = []
    throttled = bench.rate is not None
    for o in bench.outcomes:
        converged = o.exit_code == 0 and o.converged
        checks.append((f"{o.scenario}: exit 0 and Identity Center holds the directory", converged))
        if o.scenario == "initial":
            if throttled:
                checks.append(("initial: whole run within 1.10× the floor", o.wall <= 1.10 * o.whole_floor))
            checks.append(("initial: no 429 from either side", o.throttled == 0 and o.source.throttled == 0))
        if o.scenario == "nochange":
            token_check_only = o.writes == 0 and o.target_requests <= 1
            checks.append(("no change: no writes, at most one read (the token check)", token_check_only))
            if bench.source == "file" and bench.size.users <= 10_000:
                checks.append(("no change: run time under 2 s with the file source", o.run_time < 2))
        if o.scenario == "change":
            checks.append(("1% change: target writes equal the floor", o.writes == o.floor.writes))
            if throttled:
                checks.append(("1% change: whole run within 2× the floor + 2 s", o.wall <= 2 * o.whole_floor + 2))
        if o.scenario == "fullresync":
            only_reads = o.writes == 0 and o.reads == o.floor.reads
            checks.append(("full resync: no writes, only the reads paging requires", only_reads))
            if throttled:
                checks.append(("full resync: whole run within 1.2× its read floor", o.wall <= 1.2 * o.whole_floor))
        if bench.size.users >= 100_000:
            checks.append((f"{o.scenario}: peak RSS under {RSS_LIMIT_MB} MB", o.peak_rss_mb <= RSS_LIMIT_MB))
    return checks


def _quotas(bench: Bench) -> str:
    if bench.source == "file":
        return "no source quota"
    if not bench.source_quota:
        return "source quotas lifted"
    shown = ", ".join(
        f"{name} {q.limit:,}/{q.seconds:g} s" for name, q in bench.quotas.items() if name not in ("token", "logs")
    )
    return f"source quotas {shown}"


def describe_run(bench: Bench) -> str:
    """One line: the directory, the source and its quotas, the emulator, the machine."""
    stats = describe(generate(bench.size))
    throttle = (
        f"throttled at {bench.rate:g} requests/s, {bench.latency * 1000:g} ms per answer"
        if bench.rate
        else f"unthrottled, {bench.latency * 1000:g} ms per answer"
    )
    writes = "writes during the read" if bench.overlapping else "no write before the read ends"
    if bench.max_users > MAX_USERS:
        writes += f"; Identity Center's user quota raised to {bench.max_users:,} (AWS raises it on request)"
    return (
        f"{bench.size.name}: {stats['users']:,} users ({stats['suspended']:,} suspended), {stats['groups']:,} groups"
        f" ({stats['nested_groups']} nesting another), {stats['memberships']:,} memberships"
        f" ({stats['flattened_memberships']:,} flattened; largest group {stats['largest_group']:,},"
        f" {stats['groups_over_100']} over 100); source: {bench.source} ({_quotas(bench)}); {writes};"
        f" emulator {throttle}; {os.cpu_count()} CPUs, Python {platform.python_version()}."
    )


def report(bench: Bench, command: str, out: IO[str]) -> bool:
    """Print the run's description, the table and the verdicts; True when every target is met."""
    print(f"$ {command}", file=out)
    print(f"\n{describe_run(bench)}\n", file=out)
    print(table(bench), file=out)
    checks = verdicts(bench)
    print("", file=out)
    for name, ok in checks:
        print(f"- {'met' if ok else 'MISSED'}: {name}", file=out)
    return all(ok for _, ok in checks)
