"""systemd's notify protocol (``sd_notify(3)``) with the standard library.

Under ``Type=notify`` systemd sets ``$NOTIFY_SOCKET``; a service sends ``READY=1`` once it is up,
``WATCHDOG=1`` more often than ``$WATCHDOG_USEC`` when ``WatchdogSec=`` is set, ``STATUS=...``
for ``systemctl status`` and ``STOPPING=1`` when it begins to stop. Outside systemd (no
``$NOTIFY_SOCKET``) every call is a no-op, so the daemon calls these unconditionally.
"""

from __future__ import annotations

import os
import socket

import structlog


__all__ = ["notify", "watchdog_period"]

log = structlog.get_logger("syncd.sdnotify")


def _address() -> str | None:
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return None
    if address.startswith("@"):  # an abstract socket: the name starts with a NUL byte
        return "\0" + address[1:]
    return address


def notify(*fields: str) -> bool:
    """Send ``fields`` (like ``"READY=1"``, ``"STATUS=syncing"``) in one datagram; False when not under systemd.

    Never raises: a notification that cannot be sent is logged and dropped.
    """
    address = _address()
    if address is None or not fields:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(fields).encode())
    except OSError as exc:
        log.warning("sdnotify.failed", error=str(exc), fields=[f.partition("=")[0] for f in fields])
        return False
    return True


def watchdog_period() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings systemd expects (half ``$WATCHDOG_USEC``), or None when off.

    ``$WATCHDOG_PID``, when set, must be this process (the variables may leak to children).
    """
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None
    return int(usec) / 1_000_000 / 2
