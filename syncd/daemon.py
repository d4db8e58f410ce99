"""``syncd run``: sync on a schedule for months, beside the identity provider.

Threads, and who does what:

* **main**: start-up, then waits on a socket that signals and the other threads write to
  (``signal.set_wakeup_fd``), pings systemd's watchdog, and runs the shutdown.
* **scheduler** (APScheduler 3 ``BackgroundScheduler``): one ``sync`` job, on an interval, with
  ``max_instances=1``: a run that falls due while one is going is skipped and counted, never
  queued (one that falls due once the run has ended, while its job is returning, starts as soon
  as the job has returned). Each run gets a fresh engine and event loop (``asyncio.run``) in the job's worker.
  A run is a full resync when one is due (every ``full_resync_every`` since the start of the last
  successful one, or at each ``full_resync_cron`` time); the job is pulled forward to that time.
* **control** (every heartbeat, 0.5–10 s): checks leadership (:mod:`syncd.leader`), takes over
  when the leader is gone, publishes the leader's record, refreshes cache-backed metrics.
* **http**: ``/healthz``, ``/readyz``, ``/metrics`` (:mod:`syncd.health`).

Signals: SIGTERM and SIGINT stop scheduling, ask the run in flight to stop (its changes in flight
land and are recorded; it ends "interrupted"), and exit 0 once it has, or 1 if it has not within
``shutdown_timeout`` (a second signal does that at once). SIGHUP starts a run now.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import FrameType
from typing import Any

import structlog
from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_SUBMITTED,
    JobExecutionEvent,
)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import SQLAlchemyError

from syncd import leader as leader_module
from syncd import sdnotify
from syncd.cache import Cache
from syncd.config import Settings
from syncd.durations import format_duration
from syncd.engine import Engine, RunOptions
from syncd.errors import CacheError, SyncdError
from syncd.health import HealthApp, HealthServer
from syncd.metrics import Metrics
from syncd.results import RunResult
from syncd.status_page import StatusPage
from syncd.token_expiry import warn_token_expiry
from syncd.wiring import build_engine


__all__ = ["Daemon", "heartbeat_period", "run_daemon"]

log = structlog.get_logger("syncd.daemon")

_WAKE = 0  # byte written to the wake socket when a run ends (signal numbers are never 0)
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _now() -> datetime:
    return datetime.now(UTC)


def heartbeat_period(interval: timedelta) -> float:
    """Seconds between leadership checks: half the interval, kept within 0.5–10 s."""
    return min(10.0, max(0.5, interval.total_seconds() / 2))


@dataclass(slots=True)
class _Current:
    loop: asyncio.AbstractEventLoop
    engine: Engine


class Daemon:
    """The scheduler, leadership, HTTP endpoint and signal handling of one ``syncd run`` process.

    Use :meth:`serve` (blocking); from other threads, :meth:`stop` and :meth:`trigger`.
    """

    def __init__(self, settings: Settings) -> None:
        """Prepare; nothing is opened until :meth:`serve`."""
        self.settings = settings
        self._target_problem: str | None = None
        self._started_at = _now()
        schedule = settings.schedule
        self.interval = schedule.interval
        self.heartbeat = heartbeat_period(schedule.interval)
        self.shutdown_timeout = schedule.shutdown_timeout.total_seconds()
        self.cron = (
            CronTrigger.from_crontab(schedule.full_resync_cron, timezone=UTC) if schedule.full_resync_cron else None
        )
        self.metrics = Metrics(token_expires=settings.target.scim_token_expires)
        self.identity = leader_module.identity()
        self.started = threading.Event()
        """Set once the daemon is up (READY sent); for callers that run :meth:`serve` in a thread."""
        self.forced = False
        """True when :meth:`serve` gave up waiting for the run in flight."""
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._stopping = threading.Event()
        self._run_lock = threading.Lock()
        self._state_lock = threading.Lock()
        self._control_lock = threading.Lock()
        self._closing = False
        # The sync job's life, as the scheduler sees it (under _job_lock): the scheduler counts a
        # job as running until it has returned, a moment after the run itself has ended.
        self._job_lock = threading.Lock()
        self._job_busy = False  # submitted and not yet returned
        self._job_ended = True  # the run's work is over (only the job's return is pending)
        self._job_again = False  # a run fell due after the work ended: start it once the job returns
        self._current: _Current | None = None
        self._next_full: datetime | None = None
        self._since = _now()
        self._ticked_at = time.monotonic()
        self._token_warned_at: float | None = None
        self.cache: Cache | None = None
        self.leadership: leader_module.Leadership | None = None
        self.http: HealthServer | None = None
        self.scheduler: BackgroundScheduler | None = None

    # ----- control from other threads

    def stop(self) -> None:
        """Begin a graceful stop, as SIGTERM does."""
        self._post(signal.SIGTERM)

    def trigger(self) -> None:
        """Start a run now, as SIGHUP does (skipped and counted if one is going)."""
        self._post(signal.SIGHUP)

    def _post(self, code: int) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(bytes([code]))

    # ----- life cycle

    def serve(self, *, install_signals: bool = True) -> int:
        """Run until stopped: 0 after a clean stop, 1 when the run in flight outlived ``shutdown_timeout``.

        ``install_signals`` must be False when called outside the main thread.

        Raises:
            SyncdError: start-up failed (the cache cannot be opened, is held by another daemon,
                or the HTTP address is taken).
        """
        with self._signals(install_signals):
            try:
                self._start()
                code = self._loop()
            except BaseException:
                self._close(clean=True)
                raise
            self._close(clean=not self.forced)
            return code

    @contextlib.contextmanager
    def _signals(self, install: bool) -> Iterator[None]:
        if not install:
            yield
            return
        previous_fd = signal.set_wakeup_fd(self._wake_w.fileno(), warn_on_full_buffer=False)
        previous = {sig: signal.signal(sig, _record_only) for sig in (*_STOP_SIGNALS, signal.SIGHUP)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            signal.set_wakeup_fd(previous_fd)

    def _start(self) -> None:
        settings = self.settings
        cache = self.cache = Cache.open(settings.cache.url)
        leadership = self.leadership = leader_module.acquire_leadership(cache)
        with leadership.starting():
            cache.upgrade()
        is_leader = leadership.poll()
        self.metrics.leader.set(1 if is_leader else 0)
        self._next_full = self._compute_next_full()
        self._refresh_metrics()
        self._warn_token()
        self._check_target()
        host, port = settings.http.address()
        page = StatusPage(cache, self.readiness, token_expires=settings.target.scim_token_expires)
        self.http = HealthServer(host, port, HealthApp(self.metrics.registry, self.readiness, page))
        self.http.start()
        self.scheduler = self._make_scheduler()
        self.scheduler.start()
        self._ticked_at = time.monotonic()
        if is_leader:
            self._publish()
        log.info(
            "daemon.started",
            id=self.identity,
            role="leader" if is_leader else "standby",
            cache=cache.url,
            interval=format_duration(self.interval),
            full_resync=settings.schedule.full_resync_cron or format_duration(settings.schedule.full_resync_every),
            next_full_resync=self._next_full.isoformat() if self._next_full else "with the first run",
            http=f"{host}:{self.http.port}",
        )
        if not is_leader:
            self._log_standby()
        sdnotify.notify("READY=1", f"STATUS={self._status_line()}", f"MAINPID={os.getpid()}")
        self.started.set()

    def _make_scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(max_workers=1), "control": ThreadPoolExecutor(max_workers=1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        now = _now()
        scheduler.add_job(
            self._sync_job,
            IntervalTrigger(seconds=self.interval.total_seconds(), timezone=UTC),
            id="sync",
            name="sync",
            next_run_time=now,
        )
        scheduler.add_job(
            self._control_job,
            IntervalTrigger(seconds=self.heartbeat, timezone=UTC),
            id="control",
            name="control",
            executor="control",
            next_run_time=now + timedelta(seconds=self.heartbeat),
        )
        scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        scheduler.add_listener(self._on_skip, EVENT_JOB_MAX_INSTANCES)
        scheduler.add_listener(self._on_returned, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
        return scheduler

    def _loop(self) -> int:
        watchdog = sdnotify.watchdog_period()
        deadline: float | None = None
        while True:
            timeout = min(watchdog or 5.0, 5.0)
            if deadline is not None:
                timeout = max(0.0, min(timeout, deadline - time.monotonic()))
            readable, _, _ = select.select([self._wake_r], [], [], timeout)
            codes = b""
            if readable:
                with contextlib.suppress(BlockingIOError):
                    codes = self._wake_r.recv(256)
            for code in codes:
                if code in _STOP_SIGNALS:
                    if deadline is not None:
                        log.error("daemon.stop_forced", reason="a second stop signal")
                        self.forced = True
                        return 1
                    deadline = time.monotonic() + self.shutdown_timeout
                    self._begin_stop(signal.Signals(code).name)
                elif code == signal.SIGHUP and deadline is None:
                    self._run_now("SIGHUP")
            if watchdog is not None and self._healthy():
                sdnotify.notify("WATCHDOG=1")
            if deadline is not None:
                if not self._run_lock.locked():
                    log.info("daemon.stopped", id=self.identity)
                    return 0
                if time.monotonic() >= deadline:
                    log.error(
                        "daemon.stop_forced",
                        reason=f"the run in flight did not end within shutdown_timeout ({self.shutdown_timeout:g}s); "
                        "the next run marks it interrupted and finishes its work",
                    )
                    self.forced = True
                    return 1

    def _begin_stop(self, why: str) -> None:
        self._stopping.set()
        running = self._run_lock.locked()
        log.info("daemon.stopping", signal=why, run_in_flight=running, timeout_s=self.shutdown_timeout)
        sdnotify.notify("STOPPING=1", "STATUS=stopping: letting the changes in flight land")
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        self._request_engine_stop()

    def _close(self, *, clean: bool) -> None:
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        if self.http is not None:
            self.http.stop()
        # Let a heartbeat in progress finish (it uses the leader's connection), and start no other.
        got_control = self._control_lock.acquire(timeout=10)
        self._closing = True
        if got_control:
            self._control_lock.release()
        if clean:
            if self.leadership is not None and self.leadership.is_leader and self.cache is not None:
                with contextlib.suppress(SyncdError, SQLAlchemyError):
                    self._publish(stopped=True)
            if self.leadership is not None:
                self.leadership.release()
            if self.cache is not None:
                self.cache.close()
        self._wake_r.close()
        self._wake_w.close()

    # ----- runs

    def _sync_job(self) -> None:
        """The scheduled job: one run, if this process leads and none is going."""
        if not self._run_lock.acquire(blocking=False):
            self._count_skip("a run is in progress")
            return
        try:
            if self._stopping.is_set() or self.leadership is None or not self.leadership.is_leader:
                return
            self._run(full=self._full_due())
        finally:
            self._end_of_run()
            self._run_lock.release()
            self._post(_WAKE)

    def _run(self, *, full: bool) -> None:
        assert self.cache is not None
        self._warn_token()
        self.metrics.in_progress.set(1)
        sdnotify.notify(f"STATUS=running a {'full resync' if full else 'incremental run'}")
        try:
            result, target_statuses, source_statuses = asyncio.run(self._one_run(full))
        except Exception as exc:  # the cache could not record the run, or a bug: log, count, keep going
            log.exception("run.crashed", error=str(exc), error_type=type(exc).__name__)
            self.metrics.run_crashed()
            return
        finally:
            self.metrics.in_progress.set(0)
            self._end_of_run()
        self.metrics.observe(result, target_statuses=target_statuses, source_statuses=source_statuses)
        if full and result.status == "ok" and not result.dry_run:
            self._next_full = self._compute_next_full()
        self._refresh_metrics()
        self._align_full_resync()
        with contextlib.suppress(SyncdError, SQLAlchemyError):
            self._publish()
        sdnotify.notify(f"STATUS={self._status_line()}")

    async def _one_run(self, full: bool) -> tuple[RunResult, dict[int, int], dict[int, int] | None]:
        assert self.cache is not None
        async with build_engine(self.settings, self.cache) as engine:
            with self._state_lock:
                self._current = _Current(asyncio.get_running_loop(), engine)
            try:
                if self._stopping.is_set():
                    engine.request_stop()
                result = await engine.run(RunOptions(full_resync=full))
            finally:
                with self._state_lock:
                    self._current = None
            # A source that keeps RequestStats (every kit connector) has its requests labelled by status.
            source_by_status = getattr(getattr(engine.source, "stats", None), "by_status", None)
            source_statuses = dict(source_by_status) if source_by_status is not None else None
            return result, dict(engine.target.stats.by_status), source_statuses

    def _request_engine_stop(self) -> None:
        with self._state_lock:
            current = self._current
        if current is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop already closed: the run has ended
            current.loop.call_soon_threadsafe(_stop_engine, current.engine)

    def _run_now(self, why: str) -> None:
        if self.leadership is None or not self.leadership.is_leader:
            log.info("run.not_started", why=why, reason="this replica is a standby; the leader syncs")
            return
        if self.scheduler is not None and self.scheduler.running:
            log.info("run.requested", why=why)
            self.scheduler.modify_job("sync", next_run_time=_now())

    def _count_skip(self, reason: str) -> None:
        mode = "full" if self._full_due() else "incremental"
        self.metrics.skipped.labels(mode).inc()
        log.info("run.skipped", mode=mode, reason=reason)

    def _end_of_run(self) -> None:
        """The run is over (what follows is bookkeeping): a run that falls due from now on is started next."""
        with self._job_lock:
            self._job_ended = True

    def _on_submitted(self, event: Any) -> None:
        if event.job_id == "sync":
            with self._job_lock:
                self._job_busy, self._job_ended, self._job_again = True, False, False

    def _on_skip(self, event: Any) -> None:
        """A run fell due while the scheduler counts the job as running: skip it, unless the run has ended.

        Between the end of a run and its job's return the scheduler still refuses a new
        instance; a run asked for then (SIGHUP, or the interval) is started as soon as it returns.
        """
        if event.job_id != "sync":
            return
        with self._job_lock:
            ended, busy = self._job_ended, self._job_busy
            if ended and busy:
                self._job_again = True
        if not ended:
            self._count_skip("the previous run is still going")
        elif not busy:  # the job returned while this skip was being reported
            self._run_now("due as the previous run ended")

    def _on_returned(self, event: JobExecutionEvent) -> None:
        if event.exception is not None:
            log.error("job.failed", job=event.job_id, error=repr(event.exception))
        if event.job_id != "sync":
            return
        with self._job_lock:
            self._job_busy = False
            again, self._job_again = self._job_again, False
        if again and not self._stopping.is_set():
            self._run_now("due as the previous run ended")

    # ----- full resync schedule

    def _last_full_start(self) -> datetime | None:
        """When the newest successful, non-dry full resync started (the cache is the truth)."""
        assert self.cache is not None
        return self.cache.last_full_resync_start()

    def _compute_next_full(self) -> datetime | None:
        """When the next full resync is due; None when one is due now (none has succeeded yet)."""
        try:
            last = self._last_full_start()
        except (CacheError, SQLAlchemyError) as exc:
            cause = exc.__cause__ if isinstance(exc, CacheError) and exc.__cause__ is not None else exc
            log.warning("schedule.unknown_last_full_resync", error=str(cause.__class__.__name__))
            return None
        if last is None:
            return None
        if self.cron is not None:
            nxt: datetime | None = self.cron.get_next_fire_time(None, last + timedelta(seconds=1))
            return nxt
        return last + self.settings.schedule.full_resync_every

    def _full_due(self, now: datetime | None = None) -> bool:
        return self._next_full is None or (now or _now()) >= self._next_full - timedelta(seconds=1)

    def _align_full_resync(self) -> None:
        """Pull the next run forward to the full resync's time when that comes first."""
        if self._next_full is None or self.scheduler is None or not self.scheduler.running:
            return
        job = self.scheduler.get_job("sync")
        if job is not None and job.next_run_time is not None and _now() < self._next_full < job.next_run_time:
            self.scheduler.modify_job("sync", next_run_time=self._next_full)

    # ----- control

    def _control_job(self) -> None:
        """Every heartbeat: leadership, the leader's record, cache-backed metrics (never during shutdown)."""
        with self._control_lock:
            if self._closing:
                return
            self._control_tick()

    def _control_tick(self) -> None:
        assert self.leadership is not None
        was_leader = self.leadership.is_leader
        is_leader = self.leadership.poll()
        self.metrics.leader.set(1 if is_leader else 0)
        if is_leader and not was_leader:
            log.warning("leader.acquired", id=self.identity, reason="the previous leader is gone")
            self._next_full = self._compute_next_full()
            sdnotify.notify(f"STATUS={self._status_line()}")
            if not self._stopping.is_set():
                self._run_now("became leader")
        elif was_leader and not is_leader:
            log.error("leader.lost", id=self.identity, action="stopping the run in flight; standing by")
            self._request_engine_stop()
            sdnotify.notify(f"STATUS={self._status_line()}")
        if is_leader and not self._stopping.is_set():
            with contextlib.suppress(SyncdError, SQLAlchemyError):
                self._publish()
        self._refresh_metrics()
        self._ticked_at = time.monotonic()

    def _publish(self, *, stopped: bool = False) -> None:
        assert self.cache is not None
        next_run = None
        if self.scheduler is not None and self.scheduler.running:
            job = self.scheduler.get_job("sync")
            next_run = job.next_run_time.isoformat() if job is not None and job.next_run_time else None
        host, port = self.settings.http.address()
        record: dict[str, Any] = {
            "id": self.identity,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "since": self._since.isoformat(),
            "heartbeat_s": self.heartbeat,
            "interval_s": self.interval.total_seconds(),
            "next_run": None if stopped else next_run,
            "next_full_resync": None if stopped else (self._next_full.isoformat() if self._next_full else "next run"),
            "http": f"{host}:{self.http.port if self.http else port}",
        }
        if stopped:
            record["stopped_at"] = _now().isoformat()
        leader_module.publish(self.cache, record)

    def _refresh_metrics(self) -> None:
        assert self.cache is not None
        try:
            self.metrics.refresh(self.cache)
        except (CacheError, SQLAlchemyError) as exc:
            log.warning("metrics.refresh_failed", error=str(exc))

    def _warn_token(self) -> None:
        """Warn about the SCIM token's expiry at most once a day."""
        expires = self.settings.target.scim_token_expires
        if expires is None:
            return
        if self._token_warned_at is not None and time.monotonic() - self._token_warned_at < 86400:
            return
        if warn_token_expiry(expires) is not None:
            self._token_warned_at = time.monotonic()

    def _check_target(self) -> None:
        """One authenticated read of Identity Center at start (:func:`syncd.check.prove_target`):
        a refused token or an unreachable endpoint is logged as an error and keeps /readyz at 503
        with the reason until a run succeeds. The daemon keeps running: the next runs retry."""
        from syncd.check import prove_target

        self._started_at = _now()
        try:
            found = asyncio.run(prove_target(self.settings))
        except SyncdError as exc:
            self._target_problem = str(exc)
            log.error("target.check_failed", error=str(exc), error_type=type(exc).__name__)
            return
        self._target_problem = None
        log.info("target.checked", result=found)

    # ----- state for probes and systemd

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        """/readyz: the cache answers and (on the leader) a run succeeded within two intervals."""
        is_leader = self.leadership is not None and self.leadership.is_leader
        details: dict[str, Any] = {"role": "leader" if is_leader else "standby", "id": self.identity}
        if self._stopping.is_set():
            return False, {**details, "reason": "stopping"}
        if self.cache is None or not self.cache.ping():
            return False, {**details, "reason": "the cache does not answer"}
        if not is_leader:
            record = leader_module.read_record(self.cache)
            leader = record["id"] if record and record["alive"] else None
            return True, {
                **details,
                "leader": leader,
                "reason": "standby: another replica syncs; this one takes over if it stops",
            }
        last = self.cache.last_success()
        problem = self._target_problem
        if problem and (last is None or last.finished_at is None or last.finished_at < self._started_at):
            return False, {**details, "reason": f"the check of Identity Center at start failed: {problem}"}
        if last is None or last.finished_at is None:
            return False, {**details, "reason": "no run has succeeded yet"}
        age = _now() - last.finished_at
        details["last_success"] = last.finished_at.isoformat()
        if age > 2 * self.interval:
            return False, {
                **details,
                "reason": f"the last successful run ended {format_duration(int(age.total_seconds()))} ago, "
                f"more than two intervals ({format_duration(2 * self.interval)})",
            }
        return True, {**details, "reason": "the last run succeeded within two intervals"}

    def _healthy(self) -> bool:
        """For the watchdog: the scheduler runs and the control job ticked recently."""
        fresh = time.monotonic() - self._ticked_at < max(3 * self.heartbeat, 30.0)
        return fresh and (self._stopping.is_set() or (self.scheduler is not None and self.scheduler.running))

    def _status_line(self) -> str:
        if self.leadership is None or not self.leadership.is_leader:
            return "standby: another replica syncs"
        return f"leader; syncing every {format_duration(self.interval)}"

    def _log_standby(self) -> None:
        assert self.cache is not None
        record = None
        with contextlib.suppress(SyncdError, SQLAlchemyError):
            record = leader_module.read_record(self.cache)
        log.info(
            "leader.standby",
            id=self.identity,
            leader=record["id"] if record and record["alive"] else None,
            reason="another replica holds the lock; this one takes over if it stops",
        )


def _stop_engine(engine: Engine) -> None:
    """In the run's event loop: from here on the run starts no new change."""
    engine.request_stop()
    log.info("run.stop_requested", action="letting the changes in flight land; starting no new one")


def _record_only(signum: int, frame: FrameType | None) -> None:
    """Signal handler: nothing; ``set_wakeup_fd`` already told the main loop."""


def run_daemon(settings: Settings, *, hard_exit: Callable[[int], Any] = os._exit) -> int:
    """``syncd run``: serve until stopped; returns the exit code.

    When the run in flight outlived ``shutdown_timeout``, its worker thread cannot be joined:
    the process ends through ``hard_exit`` (``os._exit``) after flushing its logs.
    """
    daemon = Daemon(settings)
    code = daemon.serve()
    if daemon.forced:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        hard_exit(code)
    return code
