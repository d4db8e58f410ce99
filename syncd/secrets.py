"""Secrets: read from ``env:NAME`` / ``file:PATH`` references, checked, and kept out of every text.

A setting written ``env:NAME`` or ``file:PATH`` is read from there; anything else is the value
itself. Every value, however given, loses its surrounding whitespace (``echo > file`` and
Kubernetes secrets end in a newline) and lands in a ``SecretStr``, whose repr is masked. Only the
reference (``env:SCIM_TOKEN``) is ever named in a message.

Two kinds, checked when the configuration loads (a bad one names its key, exit 2, and never
shows the value):

* :data:`Secret`: a token, client secret or password that goes into an HTTP header or form.
  Only printable ASCII is allowed: a line break, tab or other control character inside the
  value, or a character outside ASCII, is refused (an HTTP library would otherwise reject the
  header later, in a message that quotes it).
* :data:`SecretText`: key material that spans lines (a PEM private key or certificate, a JSON
  key file). Line breaks and tabs are allowed inside; other control characters are not.

:func:`scrub` takes every secret resolved in this process, and anything shaped like an
``Authorization`` credential, out of a text. It is the one helper used wherever an exception's
text becomes a message, a log field, ``runs.error`` or a ``--json`` error: :class:`syncd.errors.SyncdError`
scrubs its message, the logging set-up scrubs every event, the cache scrubs what it stores as an
error, and the ``syncd`` command prints a crash's traceback scrubbed.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import traceback
from contextvars import ContextVar
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr


__all__ = [
    "Secret",
    "SecretPassword",
    "SecretText",
    "describe",
    "forget_all",
    "install_excepthooks",
    "remember",
    "resolve",
    "scrub",
]

MASK = "***"
_SHORTEST = 4  # shorter values are not scrubbed by value: every "abc" in every message would go
_KEY_LINE = 16  # lines of multi-line key material at least this long are scrubbed on their own too

_known: set[str] = set()
_ordered: tuple[str, ...] = ()  # _known, longest first, so a secret inside another is not half-masked
_lock = threading.Lock()

# An Authorization header's credential in any text that quotes a request, for a secret not
# remembered: a scheme, whitespace and a token68 (RFC 9110 §11.4, RFC 6750 §2.1 b64token) of
# 8 characters or more, so that prose ("Basic checks") is left alone.
_CREDENTIAL = re.compile(r"\b(Bearer|bearer|SSWS|Basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*")


def remember(value: str) -> None:
    """Scrub ``value`` (and each long line of it) from every text from now on."""
    parts = {value, *(line.strip() for line in value.splitlines())}
    fresh = {p for p in parts if len(p) >= _SHORTEST and (p == value or len(p) >= _KEY_LINE)}
    global _ordered
    with _lock:
        if fresh <= _known:
            return
        _known.update(fresh)
        _ordered = tuple(sorted(_known, key=len, reverse=True))


def forget_all() -> None:
    """Forget every remembered secret (for tests that load many configurations)."""
    global _ordered
    with _lock:
        _known.clear()
        _ordered = ()


def scrub(text: str) -> str:
    """``text`` with every remembered secret and every ``Bearer``/``SSWS``/``Basic`` credential masked."""
    for secret in _ordered:
        if secret in text:
            text = text.replace(secret, MASK)
    return _CREDENTIAL.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)


def describe(exc: BaseException) -> str:
    """An exception as one scrubbed line, ``Type: message`` (just the type when it has no message)."""
    text = " ".join(str(exc).split())
    return scrub(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)


def scrubbing_excepthook(kind: type[BaseException], exc: BaseException, tb: TracebackType | None, /) -> None:
    """A ``sys.excepthook`` that prints the usual traceback, scrubbed."""
    sys.stderr.write(scrub("".join(traceback.format_exception(kind, exc, tb))))


def _scrubbing_thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is not None and not isinstance(args.exc_value, SystemExit):
        scrubbing_excepthook(args.exc_type, args.exc_value, args.exc_traceback)


def install_excepthooks() -> None:
    """Print any crash's traceback scrubbed (it may quote a request's headers), in every thread."""
    sys.excepthook = scrubbing_excepthook
    threading.excepthook = _scrubbing_thread_hook


RELATIVE_TO: ContextVar[Path | None] = ContextVar("syncd_secrets_relative_to", default=None)
"""The folder a relative ``file:`` reference is read from while a config loads (the config's own)."""


def _read(value: str) -> tuple[str, str]:
    """The value a setting names, and how to name it in a message (never the value itself)."""
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if not found or not found.strip():
            raise ValueError(
                f"{value} names an environment variable that is not set or is blank; "
                f"export {name} or change the reference"
            )
        return found, value
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        base = RELATIVE_TO.get()
        if not path.is_absolute() and base is not None:
            path = base / path  # relative to the config file's folder, like every path in it
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{value} cannot be read ({exc.strerror}); check the path and its permissions") from None
        except UnicodeDecodeError:
            raise ValueError(f"{value} is not UTF-8 text") from None
        if not text.strip():
            raise ValueError(f"{value} is empty")
        return text, value
    return value, "the value"


def _resolve(value: Any, *, multiline: bool, ascii_only: bool = True) -> Any:
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    raw, named = _read(value)
    text = raw.strip()
    if not text:
        raise ValueError("is empty")
    remember(text)
    allowed = "\n\r\t" if multiline else ""
    if any((ord(c) < 0x20 or ord(c) == 0x7F) and c not in allowed for c in text):
        if multiline:
            raise ValueError(f"{named} has a control character inside it; store the key exactly as issued")
        raise ValueError(
            f"{named} has a line break, tab or other control character inside it (surrounding "
            "whitespace is ignored); store the secret on one line exactly as issued"
        )
    if not multiline and ascii_only and not text.isascii():
        raise ValueError(
            f"{named} has a character outside ASCII; a token goes into an HTTP header, which carries "
            "only ASCII: copy it again from where it was issued"
        )
    return text


def resolve(value: Any) -> Any:
    """Resolve a single-line secret: ``env:NAME``, ``file:PATH`` or the value itself, stripped and checked.

    Raises ValueError (which pydantic reports under the setting's key) when the variable is
    unset or blank, the file cannot be read or is empty, or the value holds a control character
    or a character outside ASCII. The message names the reference, never the value.
    """
    return _resolve(value, multiline=False)


def resolve_password(value: Any) -> Any:
    """Resolve a single-line password sent outside HTTP headers (an LDAP bind): like :func:`resolve`,
    but any Unicode letter may be in it (LDAP passwords are UTF-8, RFC 4513 §5.1.2)."""
    return _resolve(value, multiline=False, ascii_only=False)


def resolve_text(value: Any) -> Any:
    """Resolve multi-line key material like :func:`resolve`; line breaks and tabs may be inside."""
    return _resolve(value, multiline=True)


Secret = Annotated[SecretStr, BeforeValidator(resolve)]
"""A single-line ``SecretStr`` setting (a token or password) that may be written ``env:NAME`` or ``file:PATH``."""

SecretPassword = Annotated[SecretStr, BeforeValidator(resolve_password)]
"""A single-line ``SecretStr`` password that may hold any Unicode letter (not a header token)."""

SecretText = Annotated[SecretStr, BeforeValidator(resolve_text)]
"""A multi-line ``SecretStr`` setting (a PEM key, a JSON key file) that may be written ``env:NAME`` or ``file:PATH``."""
