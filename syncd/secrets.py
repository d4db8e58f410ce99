"""Secret references: a setting written ``env:NAME`` or ``file:PATH`` is read from there.

The value lands in a ``SecretStr``, whose repr is masked, so it never reaches a log, an error
message or the cache. Only the reference (``env:SCIM_TOKEN``) is ever named.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any

from pydantic import BeforeValidator, SecretStr


def resolve(value: Any) -> Any:
    """Resolve ``env:NAME`` and ``file:PATH``; pass anything else through unchanged.

    Raises ValueError (which pydantic reports under the setting's key) when the variable is
    unset or empty, or the file cannot be read. A file's trailing newline is dropped.
    """
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if not isinstance(value, str):
        return value
    if value.startswith("env:"):
        name = value[4:]
        found = os.environ.get(name)
        if not found:
            raise ValueError(
                f"{value} names an environment variable that is not set; export {name} or change the reference"
            )
        return found
    if value.startswith("file:"):
        path = Path(value[5:]).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ValueError(f"{value} cannot be read ({exc.strerror}); check the path and its permissions") from None
        text = text.rstrip("\r\n")
        if not text:
            raise ValueError(f"{value} is empty")
        return text
    return value


Secret = Annotated[SecretStr, BeforeValidator(resolve)]
"""A ``SecretStr`` setting that may be written ``env:NAME`` or ``file:PATH``."""
