"""Every error syncd raises on purpose, and the exit code each ends a command with.

Exception tree::

    SyncdError                      base of all; ``exit_code`` 1 unless said otherwise
    ├── ConfigError                 a bad or missing setting; names the key and the fix (exit 2)
    ├── SourceError                 the identity source could not be read completely (exit 5)
    │   └── SourceAuthError         the source refused our credentials (401/403) (exit 4)
    ├── TargetError                 Identity Center answered in a way we cannot act on
    │   ├── TargetAuthError         401/403 from the SCIM endpoint: token wrong or expired (exit 4)
    │   ├── TargetUnavailable       retries on 429, 5xx or network errors ran out (exit 5)
    │   ├── TargetNotFound          404: the object is gone (deleted by hand)
    │   └── TargetConflict          409: the userName, email, externalId or name is taken
    ├── AssignmentError             an sso-admin rule or operation failed
    └── CacheError                  the cache database cannot be used
        └── CacheBusy               another syncd holds the cache's lock

A refusal is not an error: a run the guard, a stale saved plan or a "no" at the prompt stops
ends with status ``refused`` (:class:`syncd.results.RunStatus`) and exit 3, having written nothing.

Exit codes, so that cron and monitoring can tell failures apart: 0 ok, 1 anything else,
2 configuration or usage, 3 refused (the guard, a stale saved plan, a "no" at the prompt),
4 authentication (the SCIM token or the IdP's credentials), 5 Identity Center or the source
unavailable.

A message never carries a secret: tokens live in ``SecretStr`` and only their reference
(``env:NAME``, ``file:PATH``) is ever named; and every message is passed through
:func:`syncd.secrets.scrub` when the error is made, in case it quotes another exception's text.
"""

from __future__ import annotations

from syncd.secrets import scrub


class SyncdError(Exception):
    """Base class: something syncd detected and can explain."""

    exit_code = 1

    def __init__(self, *args: object) -> None:
        super().__init__(*(scrub(a) if isinstance(a, str) else a for a in args))


class ConfigError(SyncdError):
    """The configuration is wrong; the message names the key and what would fix it."""

    exit_code = 2


class SourceError(SyncdError):
    """The source could not be read completely; nothing is written to the target."""

    exit_code = 5


class SourceAuthError(SourceError):
    """The source rejected the credentials or lacks a permission (scope)."""

    exit_code = 4


class TargetError(SyncdError):
    """Identity Center rejected a request in a way a retry cannot fix."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TargetAuthError(TargetError):
    """The SCIM bearer token was refused (401) or lacks access (403)."""

    exit_code = 4


class TargetUnavailable(TargetError):
    """Identity Center kept answering 429 or 5xx, or could not be reached, past every retry."""

    exit_code = 5


class AssignmentError(SyncdError):
    """A permission-set assignment rule is invalid or an sso-admin operation failed."""


class CacheError(SyncdError):
    """The cache database cannot be opened, migrated or written."""


class CacheBusy(CacheError):
    """Another syncd process holds the cache."""


class TargetNotFound(TargetError):
    """Identity Center has no object with that id (404): deleted by hand, or never created."""


class TargetConflict(TargetError):
    """Identity Center already holds an object with that userName, email, externalId or name (409)."""
