"""Logging: structlog to stderr, JSON when stderr is not a terminal, colours when it is.

On a terminal the default level is WARNING, so that a run's INFO lines (one per change) stay out
of the way of the plan and the progress bar; JSON logs (for the audit) keep INFO. The daemon logs
INFO everywhere. Standard-library loggers (botocore, httpx2, apscheduler, alembic) go through the
same renderer, quietened to WARNING so a run's own events stay readable.

Under systemd (``$JOURNAL_STREAM`` names stderr's device and inode, systemd.exec(5)), every line
starts with its syslog priority, ``<3>`` for errors, ``<4>`` warnings, ``<6>`` info, ``<7>`` debug
(sd-daemon(3)), so that ``journalctl -p err -u syncd`` finds the failures.

Every event, its formatted traceback included, is scrubbed of secrets on its way out
(:func:`syncd.secrets.scrub`).
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping, MutableMapping
from typing import IO, Any

import structlog

from syncd.secrets import describe, scrub


_state: dict[str, Any] = {"explicit": False, "json": None}

PRIORITY = {logging.CRITICAL: 2, logging.ERROR: 3, logging.WARNING: 4, logging.INFO: 6, logging.DEBUG: 7}
"""syslog priorities by logging level (sd-daemon(3): SD_CRIT … SD_DEBUG)."""


def to_journal(stream: IO[str], environ: Mapping[str, str] | None = None) -> bool:
    """True when ``stream`` is the journal's stream (``$JOURNAL_STREAM`` is ``device:inode`` of it)."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    device, _, inode = value.partition(":")
    if not (device.isdigit() and inode.isdigit()):
        return False
    try:
        stat = os.fstat(stream.fileno())
    except (OSError, ValueError, AttributeError):
        return False
    return (stat.st_dev, stat.st_ino) == (int(device), int(inode))


class _JournalPriority(logging.Formatter):
    """Prefix each formatted line with ``<priority>`` for journald."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        """``<3>`` + the line, for an ERROR record."""
        priority = PRIORITY.get(record.levelno, 3 if record.levelno > logging.ERROR else 6)
        return f"<{priority}>" + self.inner.format(record).replace("\n", f"\n<{priority}>")


def configure(level: str | None = None, *, json: bool | None = None, stream: IO[str] | None = None) -> None:
    """Set up structlog and the stdlib root logger (again, if called again).

    ``level`` None means INFO for JSON logs and WARNING on a terminal; ``stream`` is stderr by default.
    """
    stream = stream or sys.stderr
    use_json = not stream.isatty() if json is None else json
    _state.update(explicit=level is not None, json=json, stream=stream)
    resolved = (level or ("INFO" if use_json else "WARNING")).upper()
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = structlog.processors.JSONRenderer() if use_json else structlog.dev.ConsoleRenderer()
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter: logging.Formatter = structlog.stdlib.ProcessorFormatter(
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            scrub_event,
            renderer,
        ],
        foreign_pre_chain=shared,
    )
    if to_journal(stream):
        formatter = _JournalPriority(formatter)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(resolved)
    for noisy in ("botocore", "boto3", "urllib3", "httpx2", "httpcore2", "apscheduler", "alembic", "stamina"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    _own_retry_hooks()


def _cause(exc: BaseException) -> str:
    """The innermost reason, in a few words (a DNS failure, a refused connection, a status)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    return describe(exc)


def _retry_line(details: Any) -> None:
    """One syncd-worded line per retry, instead of stamina's own event."""
    structlog.get_logger("syncd.retry").warning(
        "retrying",
        attempt=details.retry_num + 1,
        in_s=round(details.wait_for, 1),
        cause=_cause(details.caused_by),
    )


def _own_retry_hooks() -> None:
    """stamina's default hooks, with its structlog/logging line replaced by :func:`_retry_line`:
    its Prometheus counter when prometheus_client is installed, set up at the first retry as
    stamina's own default is (importing it costs every start a tenth of a second)."""
    from importlib.util import find_spec

    from stamina import instrumentation

    prometheus = [instrumentation.PrometheusOnRetryHook] if find_spec("prometheus_client") else []
    instrumentation.set_on_retry_hooks([*prometheus, _retry_line])


def daemon_defaults() -> None:
    """``syncd run``: INFO unless ``--log-level`` said otherwise (a daemon's log is its record)."""
    if not _state["explicit"]:
        configure("INFO", json=_state["json"], stream=_state.get("stream"))


def scrub_event(logger: Any, method: str, event: MutableMapping[str, Any]) -> dict[str, Any]:
    """A structlog processor: every secret out of every field, the formatted traceback included."""
    return {key: _scrubbed(value) for key, value in event.items()}


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    if isinstance(value, int | float | bool) or value is None:
        return value
    return scrub(str(value))  # anything else is rendered as its str (an exception, a path)
