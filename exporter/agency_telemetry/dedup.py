"""Event ids seen within the dedup window, so that a retried batch counts once.

Bounded: past ``max_ids`` the oldest ids are forgotten early, and the store counts each one,
because a late retry of its event would now count twice.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable

from .events import Event

_EVENT_ID = operator.attrgetter("id")


class RecentIds:
    def __init__(self, window: float, max_ids: int) -> None:
        self.window = window
        self.max_ids = max_ids
        self._forget_at: dict[str, float] = {}  # id -> forget-at; insertion order = expiry order
        self.forgotten = 0  # ids ever forgotten (window passed, or evicted): see mark()

    def __len__(self) -> int:
        return len(self._forget_at)

    def fresh(self, events: list[Event], now: float) -> tuple[list[Event], list[str]]:
        """The events whose id (if any) was not seen, in order, and their ids to remember once applied."""
        self.forget(now)
        if not any(map(_EVENT_ID, events)):  # most batches carry no ids (an id is never empty)
            return events, []
        seen = self._forget_at
        fresh: list[Event] = []
        new_ids: dict[str, None] = {}
        for event in events:
            key = event.id
            if key is not None:
                if key in seen or key in new_ids:
                    continue
                new_ids[key] = None
            fresh.append(event)
        return fresh, list(new_ids)

    def remember(self, ids: list[str], now: float) -> int:
        """Remembers ``ids`` for the window; returns how many older ids were forgotten early."""
        if not ids:
            return 0
        forget_at = now + self.window
        seen = self._forget_at
        for key in ids:
            seen[key] = forget_at
        overflow = len(seen) - self.max_ids
        if overflow <= 0:
            return 0
        for key in list(_first(seen, overflow)):
            del seen[key]
        self.forgotten += overflow
        return overflow

    def mark(self) -> tuple[int, int]:
        """Where the ids are now, to read them as they were later with :meth:`as_at` (cheaper
        than a copy: ids are only ever added at the end and forgotten from the front)."""
        return len(self._forget_at), self.forgotten

    def as_at(self, mark: tuple[int, int]) -> dict[str, float]:
        """id -> forget-at (the monotonic clock), oldest first, of the ids remembered at ``mark``
        and not forgotten since: a copy (fast, in C) less the ids added after the mark."""
        count, forgotten = mark
        ids = self._forget_at.copy()
        for _ in range(len(ids) - max(0, count - (self.forgotten - forgotten))):
            ids.popitem()
        return ids

    def restore(self, ids: dict[str, float]) -> None:
        """Remembers the ids of :meth:`copy` (its times shifted to this clock), oldest first."""
        self._forget_at.update(ids)

    def forget(self, now: float) -> None:
        """Forgets the ids whose window has passed."""
        seen = self._forget_at
        while seen:
            key = next(iter(seen))
            if seen[key] > now:
                break
            del seen[key]
            self.forgotten += 1


def _first(mapping: dict[str, float], count: int) -> Iterable[str]:
    iterator = iter(mapping)
    return (next(iterator) for _ in range(count))
