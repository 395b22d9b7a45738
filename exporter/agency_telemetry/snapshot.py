"""The snapshot format: a store's whole state as bytes, taken at one instant without stopping
ingest, and read back into a store. No I/O: :mod:`persistence` writes and reads the files.

A snapshot is one JSON header line, then records, each a 4-byte big-endian length and a
MessagePack value::

    {"format": "agency-telemetry-snapshot", "version": 1, "records": 10012,
     "body_bytes": 2301022, "crc32": 3735928559}
    <meta record> <dedup or owner record> <dedup or owner record> ...

The header's ``crc32`` covers the body, which holds everything else. The meta record, first,
holds what reading the rest needs and what belongs to no owner: the histogram bounds and error
classes the values were counted with, the principles, the store's monotonic clock and the wall
clock at the snapshot's instant, and ``journal``, the first journal segment whose events are not
in the snapshot (:mod:`persistence` replays it and the ones after). A dedup record is
``["dedup", {id: time its window ends}]`` (up to 10,000 ids, on the meta record's clock). An
owner record is ``["owner", kind, key, labels, idle, values, held, new_keys]``: ``idle`` is the
seconds since its last event, ``values`` maps family names (as in the metric catalogue) to plain
values, so families added or reordered by a later version read back by name; ``held`` and
``new_keys`` say which of its series are still exposed at zero, with their age and whether a
scrape has shown the zero. Anything else (a kind, key, label count, count or exemplar this
release does not write) makes :func:`restore` refuse the whole snapshot.

Taking a snapshot (:class:`Capture`) lists the owners at one instant, between two batches,
and then converts them a slice at a time between other work. An owner an event is about to
change, or the store to drop, is converted first (the store calls :meth:`Capture.keep`), so
the snapshot is the state at that instant, however long the slices take.
"""

from __future__ import annotations

import itertools
import json
import struct
import sys
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .catalogue import FAMILIES_OF, Exemplar, Family, Histogram
from .events import owner_key
from .owners import AGENT, WORKFLOW, OwnerKind
from .store import Entity, Store

FORMAT = "agency-telemetry-snapshot"
VERSION = 1
_LENGTH = struct.Struct(">I")
DEDUP_PER_RECORD = 10_000  # ids encoded in one slice: about a millisecond


class SnapshotError(ValueError):
    """A snapshot that cannot be read: the message says what is wrong with it."""


class Meta(msgspec.Struct, array_like=True, forbid_unknown_fields=True):
    """The first record."""

    buckets: dict[str, list[float]]
    error_classes: list[str]
    principles: list[str]
    now: float  # the store's monotonic clock when the snapshot was taken
    saved_at: float  # the wall clock then (Unix time)
    journal: int  # the first journal segment whose events are not in the snapshot


class DedupRecord(msgspec.Struct, array_like=True, forbid_unknown_fields=True, tag="dedup"):
    """Up to :data:`DEDUP_PER_RECORD` dedup ids, oldest first."""

    ids: dict[str, float]  # id -> monotonic time its dedup window ends


class OwnerRecord(msgspec.Struct, array_like=True, forbid_unknown_fields=True, tag="owner"):
    kind: str
    key: str
    labels: list[str]
    idle: float  # seconds since its last event
    values: dict[str, Any]  # family name -> plain value
    # Exposed at zero still (Store.scraped): the owner, as (seconds since it appeared, a scrape
    # has shown the zero), and new series as (family name, key, seconds, shown).
    held: tuple[float, bool] | None = None
    new_keys: list[tuple[str, list[str] | None, float, bool]] = []


@dataclass
class Restored:
    """What :func:`restore` put back, and what it had to leave out (each with a reason)."""

    saved_at: float
    journal: int
    owners: int = 0
    dedup_ids: int = 0
    left_out: list[str] = field(default_factory=list)


# --- values <-> plain data -------------------------------------------------------------


def _plain(shape: str, value: Any, label_values: tuple[str, ...] | None) -> Any:
    """A slot's value as MessagePack-ready data, labelled values by their label's value."""
    if shape == "scalar":
        return value
    if shape == "histogram":
        return [value.counts, value.sum, value.exemplars]
    if shape == "labelled":
        return dict(value) if label_values is None else dict(zip(label_values, value, strict=True))
    if shape == "keyed":
        if label_values is None:
            return [[list(key), count] for key, count in value.items()]
        return [[list(key), dict(zip(label_values, counts, strict=True))] for key, counts in value.items()]
    return list(value)  # a summary


def _from_plain(family: Family, plain: Any, label_values: tuple[str, ...] | None, bounds: int) -> Any:
    """The slot value of ``plain``; raises TypeError, ValueError or KeyError on a malformed one."""
    shape = family.shape
    if shape == "histogram":
        counts, total, exemplars = plain
        if len(counts) != bounds or (exemplars is not None and len(exemplars) != bounds):
            raise ValueError(f"{family.name}: {len(counts)} buckets, the configuration has {bounds}")
        histogram = Histogram(bounds)
        histogram.counts = [_count(n) for n in counts]
        histogram.sum = float(total)
        if exemplars is not None:
            histogram.exemplars = [None if e is None else _exemplar(e) for e in exemplars]
        return histogram
    if shape == "labelled":
        if label_values is None:
            return {str(key): _count(n) for key, n in plain.items()}
        return [_count(plain.get(value, 0)) for value in label_values]
    if shape == "keyed":
        width = len(family.keys)
        if label_values is None:
            return {_key(key, width): _count(n) for key, n in plain}
        return {_key(key, width): [_count(counts.get(value, 0)) for value in label_values] for key, counts in plain}
    if shape == "summary":
        total, count = plain
        return [float(total), _count(count)]
    if not isinstance(plain, int | float) or isinstance(plain, bool):
        raise TypeError(f"{family.name}: {plain!r} is not a number")
    return plain


def _key(key: Any, width: int) -> tuple[str, ...]:
    if not isinstance(key, list) or len(key) != width or not all(isinstance(part, str) for part in key):
        raise ValueError(f"{key!r} is not {width} label values")
    return tuple(key)


def _exemplar(fields: Any) -> Exemplar:
    trace_id, span_id, value, timestamp = fields
    if not isinstance(trace_id, str) or not (span_id is None or isinstance(span_id, str)):
        raise ValueError(f"exemplar {fields!r}: ids must be strings")
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in (value, timestamp)):
        raise ValueError(f"exemplar {fields!r}: value and time must be numbers")
    return Exemplar(trace_id, span_id, value, timestamp)


def _count(value: Any) -> Any:
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


# --- taking a snapshot ---------------------------------------------------------------


class Capture:
    """A snapshot being taken: the owners listed at the instant it began, converted by
    :meth:`step` or, just before an event changes one, by :meth:`keep`."""

    def __init__(self, store: Store, journal: int) -> None:
        self.store = store
        self.journal = journal
        self.now, self.saved_at = store.clock(), store.wall_clock()
        self._fields = {
            kind: [(f.name, f.slot, f.shape, store.label_values(f)) for f in families if f.slot is not None]
            for kind, families in FAMILIES_OF.items()
        }
        # The owners at this instant, in order, and the ids of those not converted yet (both
        # built in C: at 10,000 agents this is the longest the loop waits for a snapshot to begin).
        # Keys and owners in two lists, not a list of pairs: 10,000 pairs would be 10,000 more
        # objects for the garbage collector, enough to set off a full collection mid-snapshot.
        self._order = [
            (kind, list(entities), list(entities.values()))
            for kind, entities in store.entities.items()
            if kind is not WORKFLOW
        ]
        self._waiting = {kind: set(map(id, entities.values())) for kind, entities in store.entities.items()}
        self._next = 0  # owners of _order converted or skipped by step()
        self._total = sum(len(keys) for _, keys, _ in self._order)
        self._meta: Meta | None = Meta(
            buckets={name: list(bounds) for name, bounds in store.bounds.items()},
            error_classes=list(store.classifier.names),
            principles=sorted(store.principles),
            now=self.now,
            saved_at=self.saved_at,
            journal=journal,
        )
        # What is still shown at zero, as it is now: a scrape during the slices changes it
        # without an event, so without telling keep() (few owners: the new ones).
        self._held = {id(e): (e.held, dict(e.new_keys or {})) for e in store.holding}
        self._dedup_mark = store.recent_ids.mark()
        self._dedup: Iterator[tuple[str, float]] | None = None  # the ids at the mark, once copied
        # Encoded records, joined into one chunk per slice: the file is written chunk by chunk
        # in a thread, which then never holds the interpreter long enough to stall the loop.
        self._chunks: list[bytes] = []
        self._slice: list[bytes] = []
        self._records = 0
        self._add(WORKFLOW, "", store.workflow)  # events change it without naming it: convert it now
        store.capture = self.keep

    def keep(self, kind: OwnerKind, key: str, entity: Entity) -> None:
        """Called by the store before it changes or drops ``entity``, the owner ``key`` of ``kind``."""
        waiting = self._waiting[kind]
        if id(entity) in waiting:
            waiting.remove(id(entity))
            self._add(kind, key, entity)

    def step(self, owners: int) -> bool:
        """Converts up to ``owners`` more owners; True once every one is converted."""
        if self._meta is not None:  # first, and alone: the records after it need it to be read
            self._chunks.insert(0, self._encode(self._meta))
            self._records += 1
            self._meta = None
            self._dedup = iter(self.store.recent_ids.as_at(self._dedup_mark).items())
            return False
        if self._dedup is not None:  # then the dedup ids, a slice of them at a time
            ids = dict(itertools.islice(self._dedup, DEDUP_PER_RECORD))
            if ids:
                self._chunks.append(self._encode(DedupRecord(ids)))
                self._records += 1
                return False
            self._dedup = None
        done = self._convert(owners)
        self._records += len(self._slice)
        self._chunks.append(b"".join(self._slice))
        self._slice = []
        return done

    def _convert(self, owners: int) -> bool:
        skipped = self._next
        for kind, keys, entities in self._order:
            if skipped >= len(keys):
                skipped -= len(keys)
                continue
            waiting = self._waiting[kind]
            for key, entity in zip(keys[skipped:], entities[skipped:], strict=True):
                self._next += 1
                if id(entity) in waiting:
                    waiting.remove(id(entity))
                    self._add(kind, key, entity)
                    owners -= 1
                    if owners <= 0:
                        return self._next == self._total
            skipped = 0
        return True

    def finish(self) -> Snapshot:
        """The snapshot (converting what :meth:`step` has not); the store runs on uncaptured."""
        while not self.step(1 << 62):
            pass
        self.cancel()
        return Snapshot(self._chunks, self._records, self.journal)

    def cancel(self) -> None:
        if self.store.capture == self.keep:
            self.store.capture = None

    def _add(self, kind: OwnerKind, key: str, entity: Entity) -> None:
        values = entity.values
        plain = {
            name: _plain(shape, value, labels)
            for name, slot, shape, labels in self._fields[kind]
            if (value := values[slot]) is not None
        }
        record = OwnerRecord(kind.name, key, list(entity.labels), max(0.0, self.now - entity.touched), plain)
        held, new_keys = self._held.get(id(entity), (None, {}))
        if held is not None:
            record.held = (self.now - held[0], held[1])
        names = _NAMES[kind]
        record.new_keys = [
            (names[slot], None if k is None else list(k), self.now - appeared, shown)
            for (slot, k), (appeared, shown) in new_keys.items()
        ]
        self._slice.append(self._encode(record))

    @staticmethod
    def _encode(value: Any) -> bytes:
        data = _ENCODER.encode(value)
        return _LENGTH.pack(len(data)) + data


_ENCODER = msgspec.msgpack.Encoder()
_RECORD_DECODER = msgspec.msgpack.Decoder(OwnerRecord | DedupRecord)


@dataclass(frozen=True)
class Snapshot:
    """A finished capture: its records in chunks, and the journal segment that follows it."""

    chunks: list[bytes]
    records: int
    journal: int

    def header(self) -> bytes:
        """The header line. Safe in another thread (checksumming megabytes takes milliseconds,
        with the interpreter released)."""
        crc = 0
        for chunk in self.chunks:
            crc = zlib.crc32(chunk, crc)
        header = {
            "format": FORMAT,
            "version": VERSION,
            "records": self.records,
            "body_bytes": sum(map(len, self.chunks)),
            "crc32": crc,
        }
        return json.dumps(header).encode() + b"\n"

    def to_bytes(self) -> bytes:
        return b"".join([self.header(), *self.chunks])


# --- reading a snapshot --------------------------------------------------------------


def read_header(data: bytes) -> tuple[dict[str, Any], memoryview]:
    """The header and the body it describes; SnapshotError when either is not a snapshot's."""
    line, newline, _ = data[:4096].partition(b"\n")
    if not newline:
        raise SnapshotError("no header line: not a snapshot, or cut off at the start")
    try:
        header = json.loads(line)
    except ValueError:
        raise SnapshotError("the header line is not JSON: not a snapshot") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SnapshotError(f"the header does not say format {FORMAT!r}: not a snapshot")
    if header.get("version") != VERSION:
        raise SnapshotError(
            f"format version {header.get('version')!r}; this exporter reads version {VERSION} "
            "(written by a newer or older release)"
        )
    body = memoryview(data)[len(line) + 1 :]
    if len(body) != header.get("body_bytes"):
        raise SnapshotError(f"the body has {len(body)} bytes, the header says {header.get('body_bytes')}: truncated")
    if zlib.crc32(body) != header.get("crc32"):
        raise SnapshotError("the body's CRC-32 does not match the header's: the file is corrupted")
    return header, body


def _records(body: memoryview) -> Iterator[memoryview]:
    offset = 0
    while offset < len(body):
        if offset + 4 > len(body):
            raise SnapshotError(f"a record's length is cut off at byte {offset}")
        (length,) = _LENGTH.unpack_from(body, offset)
        offset += 4
        if offset + length > len(body):
            raise SnapshotError(f"a record at byte {offset} is cut off")
        yield body[offset : offset + length]
        offset += length


def restore(store: Store, data: bytes) -> Restored:
    """Puts the snapshot ``data`` into ``store`` (a new, empty one), or raises SnapshotError
    and leaves it empty. The time since it was saved (by the wall clock; never below 0) is
    added to every owner's idle time and taken from every dedup id's window, so expiry goes on
    from there.

    A histogram whose buckets differ from the configuration's starts empty, and an error class
    no longer configured loses its counts: both are listed in :attr:`Restored.left_out`."""
    header, body = read_header(data)
    records = _records(body)
    try:
        meta = msgspec.msgpack.decode(next(records, b""), type=Meta)
        rest = [_RECORD_DECODER.decode(record) for record in records]
    except msgspec.DecodeError as exc:
        raise SnapshotError(f"a record cannot be read: {exc}") from None
    if len(rest) + 1 != header.get("records"):
        raise SnapshotError(f"{len(rest) + 1} records, the header says {header.get('records')}")
    owners = [record for record in rest if isinstance(record, OwnerRecord)]
    saved_ids = [record.ids for record in rest if isinstance(record, DedupRecord)]
    restored = Restored(saved_at=meta.saved_at, journal=meta.journal)
    downtime = max(0.0, store.wall_clock() - restored.saved_at)
    changed = {name for name, bounds in meta.buckets.items() if tuple(bounds) != store.bounds.get(name)}
    renamed = set(meta.error_classes) - set(store.classifier.names)
    restored.left_out += [f"histograms with buckets {name!r}: the configured bounds differ" for name in changed]
    restored.left_out += [f"failures of error class {name!r}: no longer configured" for name in sorted(renamed)]
    now = store.clock()
    kinds = {kind.name: kind for kind in store.entities}
    built = [_entity(store, kinds, record, now - downtime, changed) for record in owners]
    store.holding.discard(store.workflow)
    for kind, key, entity in built:  # nothing is changed until every record has been read
        owner = store.workflow if kind is WORKFLOW else entity
        if kind is WORKFLOW:
            owner.values[:] = entity.values
            owner.held, owner.new_keys = entity.held, entity.new_keys
        else:
            store.entities[kind][key] = entity
        if owner.held is not None or owner.new_keys:
            store.holding.add(owner)
    store.principles.update(meta.principles)
    shift = now - meta.now - downtime  # saved monotonic times -> this process's clock
    dedup = {key: at + shift for ids in saved_ids for key, at in ids.items() if at + shift > now}
    store.recent_ids.restore(dedup)
    restored.owners, restored.dedup_ids = len(built), len(dedup)
    return restored


def _entity(
    store: Store, kinds: dict[str, OwnerKind], record: OwnerRecord, then: float, changed: set[str]
) -> tuple[OwnerKind, str, Entity]:
    """The owner of ``record``, its times on this process's clock (``then``: the snapshot's
    instant on it); SnapshotError when anything in it is not as this release writes it."""
    kind = kinds.get(record.kind)
    if kind is None:
        raise SnapshotError(f"owner {record.key!r}: unknown kind {record.kind!r}")
    if len(record.labels) != len(kind.labels) or (kind is not WORKFLOW and record.key != _key_of(kind, record.labels)):
        raise SnapshotError(f"{kind.name} {record.key!r}: label values {record.labels} do not fit {kind.labels}")
    values = store.new_values(kind)
    slots = _SLOTS[kind]
    for family in _slotted(FAMILIES_OF[kind]):
        plain = record.values.get(family.name)
        if plain is None or (family.buckets is not None and family.buckets in changed):
            continue
        bounds = len(store.bounds[family.buckets]) + 1 if family.buckets is not None else 0
        try:
            values[family.slot] = _from_plain(family, plain, store.label_values(family), bounds)  # type: ignore[index]
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise SnapshotError(f"{kind.name} {record.key!r}, {family.name}: {exc}") from None
    labels = tuple(record.labels)
    if kind is AGENT:  # interned, as the store does
        labels = (labels[0], sys.intern(labels[1]))
    entity = Entity(labels, values, then - max(0.0, record.idle))
    if record.held is not None:
        age, shown = record.held
        entity.held = (then - age, shown)
    held_keys: dict[tuple[int, Any], tuple[float, bool]] = {}
    for name, key, age, shown in record.new_keys:
        slot = slots.get(name)
        found = None if slot is None else values[slot]
        part = None if key is None else tuple(key)
        if slot is None or found is None or (part is not None and (not isinstance(found, dict) or part not in found)):
            raise SnapshotError(f"{kind.name} {record.key!r}: held series {name} {key} has no value")
        held_keys[slot, part] = (then - age, shown)
    entity.new_keys = held_keys or None
    return kind, record.key, entity


# Each kind's families with a slot: name -> slot, and slot -> name (records name families, the
# store numbers them).
_SLOTS: dict[OwnerKind, dict[str, int]] = {
    kind: {f.name: f.slot for f in families if f.slot is not None} for kind, families in FAMILIES_OF.items()
}
_NAMES: dict[OwnerKind, dict[int, str]] = {kind: {v: k for k, v in slots.items()} for kind, slots in _SLOTS.items()}


def _key_of(kind: OwnerKind, labels: list[str]) -> str:
    """The store's key of an owner with these label values."""
    return owner_key(*labels) if kind.overflow else labels[0]


def _slotted(families: Iterable[Family]) -> Iterator[Family]:
    """The families that have a slot (not the constant, info-style ones)."""
    return (family for family in families if family.slot is not None)
