"""A source that reads a JSON directory export: the demo's, the tests', and HR exports.

Format::

    {"users":  [{"id", "user_name", "email", "given_name", "family_name", "display_name",
                 "active", "enterprise": {"department": ...}}],
     "groups": [{"id", "name", "description", "members": [user ids], "groups": [group ids]}]}

A file that cannot be read or parsed fails the read (and so the run, before any write); a
record that is not an object or has no id is skipped with its reason.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx2
from pydantic import BaseModel, ConfigDict

from connectors.base import ReadContext, SourceError, SourceType, register
from syncd.model import Skipped, SourceGroup, SourceRead, SourceUser


class FileSettings(BaseModel):
    """``[source.file]``: where the export lives."""

    model_config = ConfigDict(extra="forbid")

    path: Path


def _str(value: Any) -> str | None:
    if value is None:
        return None
    return str(value)


def _ids(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(str(v) for v in value if isinstance(v, str | int))


def parse_export(data: Any) -> SourceRead:
    """Turn a parsed export into a SourceRead; raise SourceError when its shape is wrong."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("users"), list)
        or not isinstance(data.get("groups"), list)
    ):
        raise SourceError('the export must be a JSON object with "users" and "groups" lists')
    read = SourceRead()
    for index, item in enumerate(data["users"]):
        if not isinstance(item, dict) or not item.get("id"):
            read.skipped.append(Skipped("user", f"#{index}", "not an object with an id"))
            continue
        enterprise = item.get("enterprise") if isinstance(item.get("enterprise"), dict) else {}
        active = item.get("active", True)
        read.users.append(
            SourceUser(
                id=str(item["id"]),
                user_name=_str(item.get("user_name")),
                email=_str(item.get("email")),
                given_name=_str(item.get("given_name")),
                family_name=_str(item.get("family_name")),
                display_name=_str(item.get("display_name")),
                active=active if isinstance(active, bool) else str(active).lower() in {"true", "1", "yes"},
                enterprise={str(k): str(v) for k, v in (enterprise or {}).items() if v is not None},
            )
        )
    for index, item in enumerate(data["groups"]):
        if not isinstance(item, dict) or not item.get("id"):
            read.skipped.append(Skipped("group", f"#{index}", "not an object with an id"))
            continue
        read.groups.append(
            SourceGroup(
                id=str(item["id"]),
                name=_str(item.get("name")),
                description=_str(item.get("description")),
                members=_ids(item.get("members")),
                groups=_ids(item.get("groups")),
            )
        )
    return read


class FileSource:
    """Reads a JSON export from disk on every run."""

    def __init__(self, settings: FileSettings) -> None:
        self.path = settings.path

    def _load(self) -> SourceRead:
        try:
            text = self.path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SourceError(f"cannot read the export {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise SourceError(f"the export {self.path} is not valid JSON: {exc}") from exc
        read = parse_export(data)
        read.requests = 0
        return read

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the whole file; a file has no incremental mode."""
        return await asyncio.to_thread(self._load)

    async def aclose(self) -> None:
        """Nothing to release."""


def _build(settings: FileSettings, transport: httpx2.AsyncBaseTransport | None) -> FileSource:
    return FileSource(settings)


register(SourceType("file", FileSettings, _build, "a JSON directory export on disk"))
