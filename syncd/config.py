"""Configuration: a TOML file read through pydantic-settings, with environment overrides.

Found by ``--config``, else ``$SYNCD_CONFIG``, else ``./syncd.toml``, else
``$XDG_CONFIG_HOME/syncd/syncd.toml`` (``~/.config``), else ``/etc/syncd/syncd.toml``. Any key can
be overridden as ``SYNCD_<SECTION>__<KEY>`` (``SYNCD_TARGET__REQUESTS_PER_SECOND=10``). Secrets
may be written ``env:NAME`` or ``file:PATH`` (:mod:`syncd.secrets`).

Relative paths (``cache.url = "sqlite:///syncd.db"``, ``source.file.path``) are relative to the
config file's directory, never to the current one: ``cd ~ && syncd plan -c /srv/syncd/syncd.toml``
uses ``/srv/syncd/syncd.db``. Without ``cache.url`` the cache is ``syncd.db`` in
``$STATE_DIRECTORY`` (set by systemd's ``StateDirectory=``), else beside the config file.

A bad configuration raises :class:`~syncd.errors.ConfigError` whose message names each wrong key
and what would fix it; the CLI exits 2 with it.
"""

from __future__ import annotations

import difflib
import logging
import os
import re
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from connectors import base as connectors
from syncd import secrets as secrets_module
from syncd.assignments.config import ApplicationRule, AssignmentRule, AwsConfig, PermissionSetConfig
from syncd.durations import Duration
from syncd.errors import ConfigError
from syncd.guard import Limit
from syncd.normalise import Scope
from syncd.secrets import Secret


DEFAULT_PATH = Path("syncd.toml")
SYSTEM_PATH = Path("/etc/syncd/syncd.toml")
CACHE_FILE = "syncd.db"

log = logging.getLogger("syncd.config")


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SourceConfig(BaseModel):
    """``[source]``: ``type`` picks the connector; ``[source.<type>]`` holds its settings."""

    model_config = ConfigDict(extra="allow")

    type: str

    def connector_settings(self) -> dict[str, Any]:
        """The raw ``[source.<type>]`` table (validated by the connector's own model)."""
        extra = self.model_extra or {}
        table = extra.get(self.type, {})
        return dict(table) if isinstance(table, dict) else {}


class FiltersConfig(_Section):
    """``[filters]``: which groups and users are synced."""

    groups: list[str] | None = None
    users: Literal["members", "all"] = "members"

    def scope(self) -> Scope:
        """The filters as the normaliser's Scope."""
        return Scope(groups=tuple(self.groups) if self.groups is not None else None, users=self.users)


class TargetConfig(_Section):
    """``[target]``: Identity Center's SCIM endpoint."""

    scim_url: str
    scim_token: Secret
    requests_per_second: float = Field(20.0, gt=0, le=1000)
    scim_token_expires: date | None = None
    """When the SCIM token expires (the console shows it); ``syncd run`` warns from 30 days before."""
    check_every: Duration = timedelta(0)
    """How often a run proves the token with one read of Identity Center; 0: every run."""

    @field_validator("check_every")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError('must be 0 (every run) or a duration such as "1h"')
        return value

    @field_validator("scim_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("https", "http") or not parts.hostname:
            raise ValueError(
                "must be the SCIM endpoint URL from the Identity Center console, "
                "like https://scim.us-east-1.amazonaws.com/<tenant>/scim/v2"
            )
        return value


class CacheConfig(_Section):
    """``[cache]``: where syncd remembers what it pushed (see the module docstring for the default)."""

    url: str = ""

    @field_validator("url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        if not value:
            return value
        from syncd.cache.database import normalise_url
        from syncd.errors import CacheError

        try:
            parsed = normalise_url(value)
        except CacheError as exc:
            raise ValueError(
                f"{exc}; write it like sqlite:///syncd.db or postgresql+psycopg://syncd@db.example.com/syncd"
            ) from None
        if parsed.get_backend_name() == "postgresql":
            require_extra("psycopg", "postgres", "a PostgreSQL cache")
        return value


def require_extra(module: str, extra: str, what: str) -> None:
    """ValueError naming the extra to install when ``module`` is missing."""
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ValueError(f"{what} needs {module}, which is not installed; install it with pip install 'syncd[{extra}]'")


class SafetyConfig(_Section):
    """``[safety]``: how much one run may remove."""

    max_deletes: str | int = "10%"
    max_member_removals: str | int = "10%"
    delete_after: Duration = timedelta(days=7)
    """Users gone from the source are deactivated at once and deleted after this; groups are
    emptied at once and deleted after it. ``0`` deletes at once."""
    write_during_read: bool = True
    """Send the safe writes (creates, member adds, adoptions) while the source is still being read;
    false: nothing is written before the whole read has succeeded and the guard has passed."""

    @field_validator("delete_after", mode="before")
    @classmethod
    def _at_once(cls, value: Any) -> Any:
        # "0" (or 0) means "delete at once": the one duration that needs no unit.
        return timedelta(0) if isinstance(value, int | str) and str(value).strip() == "0" else value

    @field_validator("max_deletes", "max_member_removals")
    @classmethod
    def _limit(cls, value: str | int) -> str | int:
        Limit.parse(value)
        return value

    def limit(self) -> Limit:
        """The parsed limit."""
        return Limit.parse(self.max_deletes)

    def member_limit(self) -> Limit:
        """The parsed limit on member removals, of the managed memberships."""
        return Limit.parse(self.max_member_removals)


class ScheduleConfig(_Section):
    """``[schedule]``: when ``syncd run`` syncs, and how long it may take to stop."""

    interval: Duration = timedelta(minutes=15)
    full_resync_every: Duration = timedelta(hours=24)
    full_resync_cron: str | None = None
    shutdown_timeout: Duration = timedelta(seconds=30)

    @field_validator("interval", "full_resync_every", "shutdown_timeout")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than zero; write it like 30s, 15m or 24h")
        return value

    @field_validator("full_resync_cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(
                f'{value!r} is not a crontab expression ({exc}); write five fields, e.g. "0 3 * * *" for 03:00 UTC'
            ) from None
        return value

    @model_validator(mode="after")
    def _one_full_resync_rule(self) -> ScheduleConfig:
        if self.full_resync_cron is not None and "full_resync_every" in self.model_fields_set:
            raise ValueError("set full_resync_every or full_resync_cron, not both")
        return self


class AccessConfig(_Section):
    """``[access]``: how plans and reports speak of access."""

    admin_permission_sets: list[str] = ["*Administrator*"]
    """Permission set names (globs, case-insensitive) that plans flag when someone new gets one."""


class HttpConfig(_Section):
    """``[http]``: where ``syncd run`` serves /healthz, /readyz and /metrics."""

    listen: str = "127.0.0.1:9464"

    @field_validator("listen")
    @classmethod
    def _host_port(cls, value: str) -> str:
        parse_listen(value)
        return value

    def address(self) -> tuple[str, int]:
        """``listen`` as ``(host, port)``; IPv6 hosts without their brackets."""
        return parse_listen(self.listen)


def parse_listen(value: str) -> tuple[str, int]:
    """``"127.0.0.1:9464"``, ``"0.0.0.0:9464"``, ``"[::]:9464"`` or ``":9464"`` (every address) → (host, port)."""
    host, sep, port = value.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"{value!r} is not host:port; write it like 127.0.0.1:9464 or 0.0.0.0:9464")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"{value!r}: write an IPv6 address in brackets, like [::]:9464")
    return host or "0.0.0.0", int(port)  # noqa: S104 - ":9464" asks for every address


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCD_",
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )
    _toml_path: ClassVar[Path | None] = None

    source: SourceConfig
    filters: FiltersConfig = FiltersConfig()
    target: TargetConfig
    cache: CacheConfig = CacheConfig()
    safety: SafetyConfig = SafetyConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    http: HttpConfig = HttpConfig()
    aws: AwsConfig = AwsConfig()
    access: AccessConfig = AccessConfig()
    assignments: list[AssignmentRule] = []
    permission_sets: list[PermissionSetConfig] = []
    applications: list[ApplicationRule] = []

    @model_validator(mode="after")
    def _aws_extra(self) -> Settings:
        if self.assignments or self.permission_sets or self.applications:
            require_extra("boto3", "aws", "[[assignments]], [[permission_sets]] and [[applications]]")
        return self

    @model_validator(mode="after")
    def _unique_permission_sets(self) -> Settings:
        seen: dict[str, int] = {}
        for index, ps in enumerate(self.permission_sets):
            if ps.name.casefold() in seen:
                raise ValueError(
                    f"permission_sets.{index}.name: {ps.name!r} is defined twice"
                    f" (also permission_sets.{seen[ps.name.casefold()]}); permission set names are unique"
                )
            seen[ps.name.casefold()] = index
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Precedence: arguments, then the environment, then the TOML file."""
        return _sources(settings_cls, init_settings, env_settings, cls._toml_path)

    def connector_settings(self) -> BaseModel:
        """The ``[source.<type>]`` table validated by that connector's settings model."""
        source_type = connectors.get(self.source.type)
        try:
            return source_type.settings.model_validate(self.source.connector_settings())
        except ValidationError as exc:
            raise ConfigError(
                format_errors(exc, prefix=("source", self.source.type), model=source_type.settings)
            ) from None


def candidates() -> list[tuple[Path, str]]:
    """Where a config is looked for when neither ``--config`` nor ``$SYNCD_CONFIG`` names one."""
    xdg = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "syncd" / "syncd.toml"
    return [(DEFAULT_PATH, "the current directory"), (xdg, "$XDG_CONFIG_HOME"), (SYSTEM_PATH, "/etc/syncd")]


def _sources(
    settings_cls: type[BaseSettings],
    init_settings: PydanticBaseSettingsSource,
    env_settings: PydanticBaseSettingsSource,
    toml_path: Path | None,
) -> tuple[PydanticBaseSettingsSource, ...]:
    """Arguments, then the environment, then the TOML file (when one is being read)."""
    sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
    if toml_path is not None:
        sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_path))
    return tuple(sources)


def find_config(explicit: Path | None) -> Path:
    """The config file to read (absolute): ``--config``, ``$SYNCD_CONFIG``, then :func:`candidates`."""
    if explicit is not None:
        path, how = explicit, "--config"
    elif os.environ.get("SYNCD_CONFIG"):
        path, how = Path(os.environ["SYNCD_CONFIG"]), "SYNCD_CONFIG"
    else:
        for path, _ in candidates():
            if path.is_file():
                return path.resolve()
        looked = ", ".join(str(p) for p, _ in candidates())
        raise ConfigError(
            f"no configuration file (looked for {looked}). Write one with `syncd init`, pass --config PATH, "
            "or set SYNCD_CONFIG. To try syncd without one, run `syncd demo`."
        )
    if not path.is_file():
        raise ConfigError(
            f"no configuration file at {path} ({how}). Write one with `syncd init --out {path}`, "
            "or fix the path. To try syncd without one, run `syncd demo`."
        )
    return path.resolve()


def _resolve_paths(settings: Settings | CacheOnly, base: Path) -> None:
    """Make relative paths relative to ``base`` (the config file's folder), and fill in the default cache."""
    if not settings.cache.url:
        folder = Path(os.environ["STATE_DIRECTORY"].split(":")[0]) if os.environ.get("STATE_DIRECTORY") else base
        settings.cache.url = f"sqlite:///{folder / CACHE_FILE}"
    elif settings.cache.url.startswith("sqlite:///") and not settings.cache.url.startswith("sqlite:////"):
        rest = settings.cache.url.removeprefix("sqlite:///")
        if rest and not rest.startswith(":memory:") and not Path(rest).is_absolute():
            settings.cache.url = f"sqlite:///{base / rest}"
    if isinstance(settings, Settings):
        table = (settings.source.model_extra or {}).get(settings.source.type)
        if isinstance(table, dict):
            for key, value in table.items():
                if _PATH_KEY.search(key) and isinstance(value, str) and value and not Path(value).is_absolute():
                    table[key] = str(base / Path(value).expanduser()) if not value.startswith("~") else value
                elif _relative_file_ref(value):
                    # A secret in a file beside the config: read from there, wherever syncd runs.
                    table[key] = f"file:{base / value[5:]}"


def _relative_file_ref(value: Any) -> bool:
    """Whether ``value`` is a ``file:`` secret reference with a relative path."""
    return (
        isinstance(value, str)
        and value.startswith("file:")
        and not value.startswith("file:~")
        and not Path(value[5:]).is_absolute()
    )


_PATH_KEY = re.compile(r"(^path$|_path$|_file$)")
"""Connector settings that name a file: resolved against the config file's folder when relative."""

_SECRET_KEY = re.compile(r"(token|secret|password|private_key)$")
_PREFIX = re.compile(r"^([A-Za-z]{2,8}):(?!//)")


def secret_warnings(data: Any, where: tuple[str, ...] = ()) -> list[str]:
    """Warnings for secrets written in the file: an unknown prefix (``evn:``) or a literal value."""
    found: list[str] = []
    if isinstance(data, dict):
        for key, value in data.items():
            found.extend(secret_warnings(value, (*where, str(key))))
        return found
    if not where or not isinstance(data, str) or not _SECRET_KEY.search(where[-1]) or not data:
        return found
    key = ".".join(where)
    prefix = _PREFIX.match(data)
    if prefix and prefix.group(1) not in ("env", "file"):
        close = difflib.get_close_matches(prefix.group(1), ["env", "file"], n=1, cutoff=0.3)
        hint = f"; did you mean {close[0]}:?" if close else "; use env:NAME or file:PATH"
        found.append(f"{key}: {prefix.group(1)}: is not a secret reference, so the text is used as the secret{hint}")
    elif not data.startswith(("env:", "file:")):
        found.append(f"{key} is written in the config file itself; keep it out of the file with env:NAME or file:PATH")
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"{path} cannot be read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None


def load(path: Path | None = None, **overrides: Any) -> Settings:
    """Read and validate the configuration; ConfigError naming every bad key otherwise."""
    toml_path = find_config(path)
    raw = _read_toml(toml_path)
    Settings._toml_path = toml_path
    relative = secrets_module.RELATIVE_TO.set(toml_path.parent)
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, model=Settings, file=toml_path)) from None
    except (OSError, ValueError) as exc:  # a TOML syntax error arrives as a ValueError
        raise ConfigError(f"{toml_path} cannot be read as TOML: {exc}") from None
    finally:
        Settings._toml_path = None
        secrets_module.RELATIVE_TO.reset(relative)
    for warning in secret_warnings(raw):
        log.warning("config.secret: %s", warning, extra={"config": str(toml_path)})
    _resolve_paths(settings, toml_path.parent)
    try:
        connectors.get(settings.source.type)
    except KeyError:
        raise ConfigError(
            f"{toml_path}: source.type = {settings.source.type!r} is not a known source; "
            f"use one of: {', '.join(connectors.names())}"
        ) from None
    settings.connector_settings()
    for index, permission_set in enumerate(settings.permission_sets):
        try:
            permission_set.read_inline_policy(toml_path.parent)
        except ValueError as exc:
            raise ConfigError(f"{toml_path}: invalid configuration:\n  permission_sets.{index}.{exc}") from None
    return settings


class CacheOnly(BaseSettings):
    """The ``[cache]`` table alone, for commands that need nothing else (``status``, ``db upgrade``)."""

    model_config = SettingsConfigDict(
        env_prefix="SYNCD_", env_nested_delimiter="__", extra="ignore", case_sensitive=False
    )
    _toml_path: ClassVar[Path | None] = None

    cache: CacheConfig = CacheConfig()
    safety: SafetyConfig = SafetyConfig()  # status says when pending deletes are due (delete_after)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Arguments, the environment, then the TOML file, as for :class:`Settings`."""
        return _sources(settings_cls, init_settings, env_settings, cls._toml_path)


def load_cache_only(path: Path | None = None) -> CacheOnly:
    """The cache settings alone: no SCIM token, no IdP key is read or needed."""
    toml_path = find_config(path)
    _read_toml(toml_path)
    CacheOnly._toml_path = toml_path
    try:
        settings = CacheOnly()
    except ValidationError as exc:
        raise ConfigError(format_errors(exc, model=CacheOnly, file=toml_path)) from None
    finally:
        CacheOnly._toml_path = None
    _resolve_paths(settings, toml_path.parent)
    return settings


_FIX = {
    "missing": "add it",
    "extra_forbidden": "remove it; it is not a setting",
    "literal_error": "use one of the listed values",
}


def _known_keys(model: type[BaseModel] | None, loc: tuple[str | int, ...]) -> list[str]:
    current: Any = model
    for part in loc[:-1]:
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        current = fields[str(part)].annotation
    return list(getattr(current, "model_fields", {}) or {})


def _env_name(loc: tuple[str | int, ...]) -> str:
    return "SYNCD_" + "__".join(str(p).upper() for p in loc)


def _from_env(loc: tuple[str | int, ...]) -> str | None:
    """The SYNCD_* variable that set the value at ``loc`` (or a table above it), if one did."""
    names = {k.upper(): k for k in os.environ}
    for end in range(len(loc), 0, -1):
        name = _env_name(loc[:end])
        if name in names:
            return names[name]
    return None


def format_errors(
    exc: ValidationError,
    *,
    prefix: tuple[str, ...] = (),
    model: type[BaseModel] | None = None,
    file: Path | None = None,
) -> str:
    """One line per bad key: ``key: what is wrong; how to fix it`` (never the value of a secret).

    A value set by a ``SYNCD_*`` variable is named by that variable, not by the file; a missing
    top-level table says which table to add.
    """
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        loc = tuple(error["loc"])
        full = (*prefix, *loc)
        key = ".".join(str(p) for p in full)
        message = str(error["msg"]).removeprefix("Value error, ")
        hint = _FIX.get(error["type"], "")
        if error["type"] == "extra_forbidden":
            close = difflib.get_close_matches(str(loc[-1]), _known_keys(model, loc), n=1)
            hint = f"did you mean {close[0]!r}?" if close else hint
        env = _env_name(full)
        if error["type"] == "missing" and len(full) == 1:
            lines.append(
                f"[{key}]: the table is missing; add a [{key}] table (see `syncd config example`) or set {env}__<KEY>"
            )
            continue
        if error["type"] == "missing":
            hint = f"add it to the [{'.'.join(str(p) for p in full[:-1])}] table or set {env}"
        variable = _from_env(full) if error["type"] != "missing" else None
        where = f"{variable} (from the environment)" if variable else key
        lines.append(f"{where}: {message}" + (f"; {hint}" if hint else ""))
    head = f"{file}: invalid configuration" if file is not None else "invalid configuration"
    return head + ":\n  " + "\n  ".join(lines)
