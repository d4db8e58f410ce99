"""``MemberSet``: an immutable set of user ids, stored as one sorted tuple.

A directory of 100k users in 10k groups has half a million memberships, and a run holds them
twice: as the source says they should be, and as the cache says they were pushed. In a
``frozenset`` each one costs 30 to 60 bytes (a hash table kept at most 60% full, and often
resized to four times its size); in a sorted tuple it costs 8. A ``MemberSet`` is that tuple
behind the read-only :class:`collections.abc.Set` interface:

* ``in`` is a binary search, ``len`` and iteration (in sorted order) are the tuple's;
* two ``MemberSet`` compare equal by comparing their tuples, which is the common case of a
  run with nothing to do (a group whose members did not change);
* ``&``, ``-`` and ``|`` return ``MemberSet`` and work with any other set on either side
  (``set - MemberSet`` included: the built-in set defers to the reflected operator).

It is a value, not a container to fill: code that needs to add and remove members one by
one (the engine's record of what it pushed) copies it into a ``set`` first.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Iterator
from collections.abc import Set as AbstractSet


__all__ = ["MemberSet"]


class MemberSet(AbstractSet[str]):
    """A sorted, duplicate-free tuple of ids with the operations of a frozenset."""

    __slots__ = ("_ids",)

    _ids: tuple[str, ...]

    def __init__(self, ids: Iterable[str] = ()) -> None:
        """The ids of ``ids``, each once, in sorted order."""
        if isinstance(ids, MemberSet):
            self._ids = ids._ids
        else:
            self._ids = tuple(sorted(set(ids)))

    @classmethod
    def _sorted(cls, ids: tuple[str, ...]) -> MemberSet:
        """Wrap a tuple already sorted and without duplicates (the result of an operation)."""
        made = cls.__new__(cls)
        made._ids = ids
        return made

    def __contains__(self, value: object) -> bool:
        """Binary search."""
        if not isinstance(value, str):
            return False
        ids = self._ids
        at = bisect_left(ids, value)
        return at < len(ids) and ids[at] == value

    def __iter__(self) -> Iterator[str]:
        """The ids in sorted order."""
        return iter(self._ids)

    def __len__(self) -> int:
        """How many ids."""
        return len(self._ids)

    def __eq__(self, other: object) -> bool:
        """Equal to any set holding the same ids."""
        if isinstance(other, MemberSet):
            return self._ids == other._ids
        if isinstance(other, AbstractSet):
            return len(self._ids) == len(other) and all(value in other for value in self._ids)
        return NotImplemented

    def __hash__(self) -> int:
        """The hash of the frozenset of the same ids, as equality with a frozenset requires."""
        return hash(frozenset(self._ids))

    def __and__(self, other: object) -> MemberSet:
        """The ids also in ``other`` (any container), in order."""
        if not isinstance(other, Iterable):
            return NotImplemented
        container = other if isinstance(other, AbstractSet) else set(other)
        return MemberSet._sorted(tuple(value for value in self._ids if value in container))

    __rand__ = __and__

    def __sub__(self, other: object) -> MemberSet:
        """The ids not in ``other``, in order."""
        if not isinstance(other, Iterable):
            return NotImplemented
        container = other if isinstance(other, AbstractSet) else set(other)
        return MemberSet._sorted(tuple(value for value in self._ids if value not in container))

    def __rsub__(self, other: object) -> MemberSet:
        """The ids of ``other`` not in this set (``set - MemberSet``)."""
        if not isinstance(other, Iterable):
            return NotImplemented
        return MemberSet(value for value in other if value not in self)

    def __or__(self, other: object) -> MemberSet:
        """The ids in either."""
        if not isinstance(other, Iterable):
            return NotImplemented
        return MemberSet([*self._ids, *other])

    __ror__ = __or__

    def __repr__(self) -> str:
        """The first ids and how many there are; a group may have tens of thousands."""
        shown = ", ".join(repr(i) for i in self._ids[:5])
        more = f", ... {len(self._ids) - 5} more" if len(self._ids) > 5 else ""
        return f"MemberSet([{shown}{more}])"
