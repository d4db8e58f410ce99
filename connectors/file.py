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
import difflib
import io
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from pydantic import BaseModel, ConfigDict

from connectors.base import Deps, ReadContext, SourceError, SourceType, register
from syncd.model import RequestStats, SkipKind, Skipped, SourceGroup, SourceRead, SourceUser


_WHITESPACE = re.compile(r"[ \t\n\r]*")
"""JSON's whitespace (RFC 8259 §2), as ``json.decoder`` skips it."""
_SPACES = frozenset(" \t\n\r")


class FileSettings(BaseModel):
    """``[source.file]``: where the export lives."""

    model_config = ConfigDict(extra="forbid")

    path: Path


def _str(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    return str(value)


def _ids(value: Any, known: dict[str, str] | None = None) -> tuple[str, ...]:
    """The ids of a list (strings and numbers, as strings); each one ``known`` holds as that very string."""
    if not isinstance(value, list):
        return ()
    if known is None:
        return tuple([v if type(v) is str else str(v) for v in value if isinstance(v, (str, int))])
    get = known.get
    return tuple([get(v, v) if type(v) is str else get(str(v), str(v)) for v in value if isinstance(v, (str, int))])


class _Records:
    """The records of one list (users or groups) as they are parsed, and those skipped."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.skipped: list[Skipped] = []


class _Parser:
    """Turns export records into source records, one at a time.

    Strings that repeat across records are kept once: a member id is the very string of that
    user's id, enterprise keys are shared by every user, and so are the values that repeat
    from user to user (given and family names, departments, cost centres). The values are the
    same; only copies go (for 100k users and 500k memberships, that is most of what a read holds).
    """

    _UNIQUE = frozenset({"employee_number", "manager"})
    """Enterprise attributes that differ from user to user: not worth remembering."""

    def __init__(self) -> None:
        self._ids: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._values: dict[str, str] = {}

    def _shared(self, value: Any) -> str | None:
        text = _str(value)
        return None if text is None else self._values.setdefault(text, text)

    def user(self, records: _Records, index: int, item: Any) -> None:
        if not isinstance(item, dict) or not item.get("id"):
            records.skipped.append(Skipped(SkipKind.USER, f"#{index}", "not an object with an id"))
            return
        if unknown := _unknown_keys(item, USER_KEYS):
            records.skipped.append(Skipped(SkipKind.USER, str(item["id"]), unknown))
            return
        get = item.get
        enterprise = get("enterprise")
        active = get("active", True)
        user_id = str(item["id"])
        user_name = _str(get("user_name"))
        email = _str(get("email"))
        self._ids.setdefault(user_id, user_id)
        keys, values, unique = self._keys, self._values, self._UNIQUE
        records.items.append(
            SourceUser(
                id=user_id,
                user_name=user_name,
                email=user_name if email is not None and email == user_name else email,
                given_name=self._shared(get("given_name")),
                family_name=self._shared(get("family_name")),
                display_name=_str(get("display_name")),
                active=active if isinstance(active, bool) else str(active).lower() in {"true", "1", "yes"},
                enterprise={
                    keys.setdefault(str(k), str(k)): str(v) if k in unique else values.setdefault(str(v), str(v))
                    for k, v in enterprise.items()
                    if v is not None
                }
                if isinstance(enterprise, dict)
                else {},
            )
        )

    def group(self, records: _Records, index: int, item: Any) -> None:
        if not isinstance(item, dict) or not item.get("id"):
            records.skipped.append(Skipped(SkipKind.GROUP, f"#{index}", "not an object with an id"))
            return
        if unknown := _unknown_keys(item, GROUP_KEYS):
            records.skipped.append(Skipped(SkipKind.GROUP, str(item["id"]), unknown))
            return
        records.items.append(
            SourceGroup(
                id=str(item["id"]),
                name=_str(item.get("name")),
                description=_str(item.get("description")),
                members=self._member_ids(item.get("members")),
                groups=_ids(item.get("groups")),
            )
        )

    def _member_ids(self, value: Any) -> tuple[str, ...]:
        return _ids(value, self._ids)


USER_KEYS = ("id", "user_name", "email", "given_name", "family_name", "display_name", "active", "enterprise")
GROUP_KEYS = ("id", "name", "description", "members", "groups")
_KNOWN = {USER_KEYS: frozenset(USER_KEYS), GROUP_KEYS: frozenset(GROUP_KEYS)}


def _unknown_keys(item: dict[str, Any], known: tuple[str, ...]) -> str:
    """Why a record with keys the format does not have is skipped ("" when it has none): a
    misspelt ``emial`` would otherwise be synced as a user without an email."""
    if item.keys() <= _KNOWN.get(known, frozenset(known)):
        return ""  # every record of a good export: one set comparison
    unknown = sorted(str(k) for k in item if k not in known)
    if not unknown:
        return ""
    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, known, n=1)
        hints.append(f"{key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    return f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}; the export's keys are {', '.join(known)}"


def _drop_dangling(users: _Records, groups: _Records) -> list[Skipped]:
    """Take out member ids that name no user (and nested ids that name no group) of the export,
    each listed as skipped with its reason."""
    user_ids = {u.id for u in users.items}
    group_ids = {g.id for g in groups.items}
    skipped: list[Skipped] = []
    for index, group in enumerate(groups.items):
        members = tuple(m for m in group.members if m in user_ids)
        nested = tuple(g for g in group.groups if g in group_ids)
        if len(members) == len(group.members) and len(nested) == len(group.groups):
            continue
        for member in group.members:
            if member not in user_ids:
                skipped.append(
                    Skipped(SkipKind.MEMBER, f"{group.id}/{member}", f"member {member!r} is not a user of the export")
                )
        for child in group.groups:
            if child not in group_ids:
                skipped.append(
                    Skipped(
                        SkipKind.MEMBER, f"{group.id}/{child}", f"nested group {child!r} is not a group of the export"
                    )
                )
        groups.items[index] = replace(group, members=members, groups=nested)
    return skipped


def _read(users: _Records, groups: _Records) -> SourceRead:
    dangling = _drop_dangling(users, groups)
    return SourceRead(users=users.items, groups=groups.items, skipped=users.skipped + groups.skipped + dangling)


def parse_export(data: Any) -> SourceRead:
    """Turn a parsed export into a SourceRead; raise SourceError when its shape is wrong."""
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("users"), list)
        or not isinstance(data.get("groups"), list)
    ):
        raise SourceError('the export must be a JSON object with "users" and "groups" lists')
    parser = _Parser()
    users, groups = _Records(), _Records()
    for index, item in enumerate(data["users"]):
        parser.user(users, index, item)
    for index, item in enumerate(data["groups"]):
        parser.group(groups, index, item)
    return _read(users, groups)


class _NotStreamable(Exception):
    """The text is not a plain export object; parse it whole instead (for the same errors)."""


_DECODER = json.JSONDecoder()

CHUNK = 1 << 20
"""Characters read from the file at a time."""


class _Window:
    """An export's text, read a chunk at a time.

    ``raw_decode`` needs a ``str``, so values are decoded from a buffer that is refilled, its
    consumed head dropped, as parsing moves on: the whole text is never in memory at once (for
    100k users it is 40 MB, as much again while it is decoded from UTF-8).
    """

    def __init__(self, handle: TextIO, chunk: int = CHUNK) -> None:
        self._handle = handle
        self._chunk = chunk
        self._eof = False
        self.text = ""
        self.pos = 0

    def _fill(self) -> bool:
        if self._eof:
            return False
        data = self._handle.read(self._chunk)
        if not data:
            self._eof = True
            return False
        self.text = self.text[self.pos :] + data
        self.pos = 0
        return True

    def at(self, char: str) -> bool:
        """Skip whitespace; True when the next character is ``char`` (not consumed)."""
        text, pos = self.text, self.pos
        if pos < len(text) and text[pos] not in _SPACES:
            return text.startswith(char, pos)  # compact JSON: nothing to skip
        while True:
            self.pos = _WHITESPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # matches ""
            if self.pos < len(self.text) or not self._fill():
                return self.text.startswith(char, self.pos)

    def ended(self) -> bool:
        """Skip whitespace; True when nothing is left."""
        self.at("")
        return self.pos == len(self.text)

    def value(self) -> Any:
        """Decode the next JSON value."""
        self.at("")
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError:
                if self._fill():
                    continue  # cut off by the end of the chunk: try again with more text
                raise
            if end == len(self.text) and self._fill():
                continue  # a number may go on in the next chunk: decode it again with more text
            self.pos = end
            return value


def parse_text(text: str, chunk: int = CHUNK) -> SourceRead:
    """Parse an export's JSON text record by record, the same as ``parse_export(json.loads(text))``."""
    return _parse(io.StringIO(text), chunk)


def parse_file(path: Path, chunk: int = CHUNK) -> SourceRead:
    """Parse an export file record by record, the same as ``parse_export(json.loads(text))``.

    Raises:
        OSError: the file cannot be read.
        UnicodeDecodeError: it is not UTF-8.
    """
    with path.open(encoding="utf-8") as handle:
        return _parse(handle, chunk)


def _parse(handle: TextIO, chunk: int) -> SourceRead:
    """The users and groups lists are decoded one record at a time and each record is turned
    into a source record at once, so neither the text nor the document ever exists whole as
    Python objects (for 100k users that is hundreds of megabytes). Anything other than a
    well-formed export object, and every error, goes through ``json.loads`` and
    :func:`parse_export` on the whole text, so the messages are theirs.

    Raises:
        json.JSONDecodeError: the text is not JSON.
        SourceError: the JSON is not an export.
    """
    try:
        return _stream(_Window(handle, chunk))
    except UnicodeDecodeError:
        raise
    except (_NotStreamable, ValueError):
        handle.seek(0)
        text = handle.read()
    return parse_export(json.loads(text))


def _stream(window: _Window) -> SourceRead:
    parser = _Parser()
    lists: dict[str, _Records] = {}
    if not window.at("{"):
        raise _NotStreamable
    window.pos += 1
    while True:
        key = window.value()
        if not isinstance(key, str) or not window.at(":"):
            raise _NotStreamable
        window.pos += 1
        if key in ("users", "groups"):
            if not window.at("["):
                raise _NotStreamable
            window.pos += 1
            records = lists[key] = _Records()  # a repeated key: the last one counts, as in json.loads
            add = parser.user if key == "users" else parser.group
            index = 0
            while not window.at("]"):
                if index:
                    if not window.at(","):
                        raise _NotStreamable
                    window.pos += 1
                add(records, index, window.value())
                index += 1
            window.pos += 1
        else:
            window.value()
        if window.at(","):
            window.pos += 1
            continue
        if window.at("}"):
            window.pos += 1
            if window.ended() and len(lists) == 2:
                return _read(lists["users"], lists["groups"])
        raise _NotStreamable


class FileSource:
    """Reads a JSON export from disk on every run."""

    def __init__(self, settings: FileSettings) -> None:
        self.path = settings.path
        self.stats = RequestStats()  # a file costs no requests

    def _load(self) -> SourceRead:
        try:
            read = parse_file(self.path)
        except OSError as exc:
            raise SourceError(f"cannot read the export {self.path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise SourceError(f"the export {self.path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise SourceError(f"the export {self.path} is not valid JSON: {exc}") from exc
        read.requests = 0
        return read

    async def read(self, ctx: ReadContext) -> SourceRead:
        """Read the whole file; a file has no incremental mode."""
        return await asyncio.to_thread(self._load)

    async def aclose(self) -> None:
        """Nothing to release."""


def _build(settings: FileSettings, deps: Deps) -> FileSource:
    return FileSource(settings)


register(SourceType("file", FileSettings, _build, "a JSON directory export on disk"))
