"""Whether a batch would track more owners of a kind than the configuration allows.

Counted for the owners each event class declares it may add (:attr:`events.Event.owners`),
so a new event type cannot add owners past a limit unseen.
"""

from __future__ import annotations

import collections
import operator
from collections.abc import Collection

from .config import Limits
from .events import EVENT_CLASSES, Event, Names
from .owners import OwnerKind


class LimitExceeded(Exception):
    """Applying the batch would track more owners of ``kind`` than the configuration allows."""

    def __init__(self, kind: OwnerKind, limit: int) -> None:
        assert kind.limit is not None
        what = kind.limit.removeprefix("max_").replace("_", " ")
        super().__init__(
            f"the batch would track more than {limit} {what} (limits.{kind.limit}); nothing was applied. "
            f"Wait for idle {what} to expire, deregister some, or raise the limit"
        )
        self.reason = kind.limit_reason
        self.kind = kind
        self.kept_part = (
            f"events naming {what} not tracked yet were left out: more than {limit} would be tracked "
            f"(limits.{kind.limit}). Wait for idle {what} to expire, deregister some, or raise the limit"
        )


class OwnerLimit:
    """At most ``limit`` owners of ``kind``: the event classes that may add one, and how to find
    the id each adds.

    Most name it in a field, unconditionally: those are read by field for the whole batch at
    once, as fast as a hand-written comprehension. The few that add one only sometimes (an
    active alert, a violation) are asked through :meth:`Event.new_owner`."""

    def __init__(self, kind: OwnerKind, limits: Limits) -> None:
        assert kind.limit is not None, kind
        self.kind = kind
        self.limit: int = getattr(limits, kind.limit)
        by_field: dict[str, set[type[Event]]] = {}
        self.conditional: list[tuple[type[Event], Names]] = []
        for cls in EVENT_CLASSES:
            for names in cls.owners:
                if names.kind is not kind or not names.creates:
                    continue
                if cls.new_owner is Event.new_owner and names.field is not None:
                    by_field.setdefault(names.field, set()).add(cls)
                else:
                    self.conditional.append((cls, names))
        self.by_field = [(operator.attrgetter(field), frozenset(classes)) for field, classes in by_field.items()]
        self.classes = frozenset(cls for _, classes in self.by_field for cls in classes) | {
            cls for cls, _ in self.conditional
        }

    def check(self, events: list[Event], per_type: collections.Counter[type[Event]], tracked: Collection[str]) -> None:
        """Raises :class:`LimitExceeded` if applying ``events`` would track more than the limit.

        ``per_type`` counts the batch before its duplicates were dropped: it only bounds how
        many events could add an owner, which is all the quick look needs."""
        # Fewer events that could add one than there is room left: no need to look closer.
        could_add = sum(per_type[cls] for cls in self.classes)
        if len(tracked) + could_add > self.limit and len(tracked) + len(self.new_owners(events, tracked)) > self.limit:
            raise LimitExceeded(self.kind, self.limit)

    def new_owners(self, events: list[Event], tracked: Collection[str]) -> set[str]:
        found: set[str | None] = set()
        for read, classes in self.by_field:
            found.update(key for e in events if type(e) in classes and (key := read(e)) not in tracked)
        for cls, names in self.conditional:
            found.update(key for e in events if type(e) is cls and (key := e.new_owner(names)) not in tracked)
        return {key for key in found if key is not None}  # a Decision names its agent or its council
