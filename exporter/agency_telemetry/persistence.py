"""The store on disk: a snapshot file rewritten every ``persistence.interval`` and a journal of
every batch applied since, so a restart continues from where the exporter stopped.

Files, all beside ``persistence.file``:

* ``<file>``: the latest snapshot (:mod:`snapshot`), replaced atomically (written to
  ``<file>.tmp``, fsynced, renamed over it, directory fsynced);
* ``<file>.journal.<n>``: the batches applied since the snapshot that names segment ``n``, each
  written (one ``write``) before the batch is acknowledged. A killed process loses none of them:
  the kernel holds what was written. They are not fsynced (that would cost every batch a disk
  flush), so a power loss costs what was journalled since the last snapshot: one interval;
* ``<file>.rejected-<unix time>`` (and its segments): a snapshot that could not be read,
  moved aside for inspection; the exporter then starts empty and says so (log, self-metric,
  alert) rather than refusing to start, so agents' events keep being counted.

At start: read the snapshot, replay its segments, and take a snapshot at once (which leaves a
single, empty segment). A failing disk never stops ingest: failures are logged, counted and
shown by ``agency_exporter_persistence_writable``; the next snapshot tries again.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import struct
import time
import zlib
from pathlib import Path
from typing import cast

import msgspec

from .config import PersistenceSettings
from .events import AnyEvent, Event
from .limits import LimitExceeded
from .snapshot import Capture, Snapshot, SnapshotError, restore
from .store import EXPIRED, REVEALED, SCRAPED, Store

log = logging.getLogger("agency_telemetry.persistence")

STEP_OWNERS = 100  # owners converted per slice of a snapshot: about 1 ms of the event loop
JOURNAL_SNAPSHOT_BYTES = 64 * 2**20  # a segment this big brings the next snapshot forward
_RECORD_HEAD = struct.Struct(">II")  # payload length, CRC-32 of the payload


class JournalRecord(msgspec.Struct, array_like=True):
    wall: float  # Unix time the batch was applied, or the mark made
    events: list[AnyEvent]  # the batch's; none for a mark
    mark: str = ""  # store.SCRAPED, EXPIRED or REVEALED: what the store did then, besides events


_JOURNAL_ENCODER = msgspec.msgpack.Encoder()
_JOURNAL_DECODER = msgspec.msgpack.Decoder(JournalRecord)


class Persistence:
    """Snapshots and journal of one store; its fields are what the self-metrics report."""

    def __init__(self, settings: PersistenceSettings, store: Store) -> None:
        assert settings.file is not None
        self.path = Path(settings.file)
        self.interval = settings.interval
        self.store = store
        self.writable = True  # the latest snapshot and journal writes succeeded
        self.restore_rejected = False  # the snapshot at start could not be read: started empty
        self.failures: collections.Counter[str] = collections.Counter({"snapshot": 0, "journal": 0})
        self.last_success = 0.0  # Unix time of the latest snapshot written
        self.last_duration = 0.0  # seconds, capture to rename, of the latest snapshot
        self.last_size = 0  # bytes of the latest snapshot
        self.longest_step = 0.0  # seconds: the longest the event loop waited for one slice
        self.journal_bytes = 0  # in the segment being written
        self._segment = 0
        self._fd: int | None = None
        self._due = asyncio.Event()
        self._busy = False
        self._stopping = False

    # start ----------------------------------------------------------------------------

    def start(self) -> None:
        """Restores the store from the files (or starts it empty, saying why), replays the
        journal and takes a first snapshot, which also opens the journal. Creates the file's
        directory if it is missing."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            log.error("cannot create %s: %s", self.path.parent, exc.strerror)
        with contextlib.suppress(OSError):
            self.path.with_name(f"{self.path.name}.tmp").unlink()  # a write a crash cut short
        try:
            self._restore()
        except Exception as exc:  # SnapshotError, OSError, or a bug: the exporter must start all the same
            self.restore_rejected = True
            self.store.clear()  # nothing half-restored
            reason = exc.strerror if isinstance(exc, OSError) else str(exc) or type(exc).__name__
            if not isinstance(exc, SnapshotError | OSError):
                log.exception("unexpected error restoring %s", self.path)
            log.error(
                "cannot restore %s: %s. Starting EMPTY: every counter restarts from 0. The file is kept as %s; "
                "see the runbook (AgencyExporterPersistenceFailing).",
                self.path,
                reason,
                self._move_aside(),
            )
        self.write_now()

    def _restore(self) -> None:
        if not self.path.exists():
            if self._segments():  # the snapshot they follow was removed: their counts alone mean nothing
                log.warning("journal segments without their snapshot %s: kept as %s", self.path, self._move_aside())
            log.info("no snapshot at %s: starting empty", self.path)
            return
        restored = restore(self.store, self.path.read_bytes())
        downtime = max(0.0, self.store.wall_clock() - restored.saved_at)
        replayed, skipped = self._replay(restored.journal)
        self._segment = max([restored.journal, *self._segments()])
        log.info(
            "restored %s: %d owners, %d dedup ids, %d journal events replayed (saved %.0f s ago)%s",
            self.path,
            restored.owners,
            restored.dedup_ids,
            replayed,
            downtime,
            f"; {skipped} journal records unreadable and skipped" if skipped else "",
        )
        for what in restored.left_out:
            log.warning("%s: left out %s", self.path, what)

    def _replay(self, first: int) -> tuple[int, int]:
        """Applies the journal segments from ``first`` on, in order; (events, unreadable records)."""
        events = skipped = 0
        store = self.store
        for number, segment in sorted(self._segments().items()):
            if number < first:
                segment.unlink()  # a snapshot newer than it was written before it could be removed
                continue
            try:
                data = segment.read_bytes()
            except OSError as exc:
                log.error("%s: cannot read it (%s); its batches are not replayed", segment, exc.strerror)
                skipped += 1
                continue
            for record in _journal_records(data):
                if record is None:
                    skipped += 1
                    continue
                downtime = max(0.0, store.wall_clock() - record.wall)
                at = (store.clock() - downtime, record.wall)
                try:
                    events += self._replay_one(record, at)
                except Exception:  # a record this release cannot apply: say so, go on with the rest
                    log.exception("%s: a journal record could not be replayed; skipped", segment)
                    skipped += 1
        store.hold_again()
        return events, skipped

    def _replay_one(self, record: JournalRecord, at: tuple[float, float]) -> int:
        store = self.store
        if record.mark == SCRAPED:
            store.scraped(at)
        elif record.mark == EXPIRED:
            store.expire(at)
        elif record.mark == REVEALED:
            store.reveal()
        elif record.mark:
            raise ValueError(f"unknown journal mark {record.mark!r}")
        batch = cast(list[Event], record.events)
        try:
            store.apply(batch, at)
        except LimitExceeded:
            store.apply_fitting(batch, at)  # the limits were lowered meanwhile
        return len(batch)

    def _segments(self) -> dict[int, Path]:
        prefix = self.path.name + ".journal."
        found = {}
        for path in self.path.parent.glob(prefix + "*"):
            number = path.name.removeprefix(prefix)
            if number.isdigit():
                found[int(number)] = path
        return found

    def _move_aside(self) -> Path:
        """Renames the snapshot and its journal segments out of the way, keeping them; the new name."""
        suffix = f".rejected-{int(time.time())}"
        aside = self.path.with_name(self.path.name + suffix)
        for path in [self.path, *self._segments().values()]:
            with contextlib.suppress(OSError):
                path.rename(path.with_name(path.name + suffix))
        return aside

    # snapshots ------------------------------------------------------------------------

    async def run(self) -> None:
        """Takes a snapshot every interval, or sooner when the journal segment grows big, until
        :meth:`stop`. Never cancelled: a snapshot being written is finished first."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), self.interval)
            self._due.clear()
            if not self._stopping:
                await self.write()

    def stop(self) -> None:
        """Ends :meth:`run` once the snapshot it may be writing is written."""
        self._stopping = True
        self._due.set()

    async def write(self) -> None:
        """One snapshot, converted in slices between other work and written in a thread."""
        if self._busy:
            return
        self._busy = True
        started = time.perf_counter()
        capture = self._begin()
        try:
            longest = time.perf_counter() - started
            while True:
                await asyncio.sleep(0)
                step = time.perf_counter()
                done = capture.step(STEP_OWNERS)
                longest = max(longest, time.perf_counter() - step)
                if done:
                    break
            snapshot = capture.finish()
            self.longest_step = longest
            await asyncio.to_thread(self._write, snapshot, started)
        finally:
            capture.cancel()
            self._busy = False

    def write_now(self) -> None:
        """One snapshot at once (at start, and at shutdown once ingest has stopped)."""
        started = time.perf_counter()
        self._write(self._begin().finish(), started)

    def _begin(self) -> Capture:
        """Starts a capture and, at the same instant, a new journal segment for what follows it."""
        self._segment += 1
        self._open_journal(self._segment)
        return Capture(self.store, self._segment)

    def _write(self, snapshot: Snapshot, started: float) -> None:
        temporary = self.path.with_name(f"{self.path.name}.tmp")
        try:
            with open(temporary, "xb") as file:  # never two writers of one file
                size = file.write(snapshot.header())
                for chunk in snapshot.chunks:
                    size += file.write(chunk)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path)
            _fsync_directory(self.path.parent)
        except FileExistsError as exc:  # another write is under way: leave its file alone
            self._failed("snapshot", exc)
            return
        except OSError as exc:
            self._failed("snapshot", exc)
            with contextlib.suppress(OSError):
                temporary.unlink()
            return
        for number, segment in self._segments().items():
            if number < snapshot.journal:
                with contextlib.suppress(OSError):
                    segment.unlink()
        self.last_success = time.time()
        self.last_duration = time.perf_counter() - started
        self.last_size = size
        self.writable = self._fd is not None

    def close(self) -> None:
        """The final snapshot (ingest has stopped, so it holds every acknowledged event)."""
        self.write_now()
        self._close_journal()

    # journal --------------------------------------------------------------------------

    def _open_journal(self, number: int) -> None:
        self._close_journal()
        path = self.path.with_name(f"{self.path.name}.journal.{number}")
        try:
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            self._failed("journal", exc)
            return
        self.journal_bytes = 0
        self.store.journal = self

    def applied(self, events: list[Event], wall: float) -> None:
        """Journals one applied batch; called by the store before the batch is acknowledged."""
        self._append(JournalRecord(wall, events))  # type: ignore[arg-type]

    def marked(self, mark: str, wall: float) -> None:
        """Journals a scrape that showed series held at zero, an expiry that dropped owners, or the
        final reveal: replayed in order after a kill -9, no series a scrape showed drops back to
        zero and no expired owner comes back."""
        self._append(JournalRecord(wall, [], mark))

    def _append(self, entry: JournalRecord) -> None:
        payload = _JOURNAL_ENCODER.encode(entry)
        record = _RECORD_HEAD.pack(len(payload), zlib.crc32(payload)) + payload
        assert self._fd is not None
        try:
            written = os.write(self._fd, record)
            if written != len(record):
                raise OSError(0, f"short write ({written} of {len(record)} bytes): is the disk full?")
        except OSError as exc:
            self._failed("journal", exc)
            self._close_journal()
            return
        self.journal_bytes += written
        if self.journal_bytes >= JOURNAL_SNAPSHOT_BYTES:
            self._due.set()

    def _close_journal(self) -> None:
        self.store.journal = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _failed(self, operation: str, exc: OSError) -> None:
        self.failures[operation] += 1
        if self.writable:
            log.error("persistence: %s failed: %s; state since the last snapshot may not survive", operation, exc)
        self.writable = False


def _journal_records(data: bytes) -> list[JournalRecord | None]:
    """The records of a segment; None for one that cannot be read (a write cut short)."""
    records: list[JournalRecord | None] = []
    offset, view = 0, memoryview(data)
    while offset < len(view):
        if offset + _RECORD_HEAD.size > len(view):
            records.append(None)
            break
        length, crc = _RECORD_HEAD.unpack_from(view, offset)
        payload = view[offset + _RECORD_HEAD.size : offset + _RECORD_HEAD.size + length]
        offset += _RECORD_HEAD.size + length
        if len(payload) != length or zlib.crc32(payload) != crc:
            records.append(None)
            break  # the length itself may be wrong: nothing after it can be found
        try:
            records.append(_JOURNAL_DECODER.decode(payload))
        except msgspec.DecodeError:
            records.append(None)
    return records


def _fsync_directory(directory: Path) -> None:
    """Makes a rename in ``directory`` durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
