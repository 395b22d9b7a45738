"""Snapshots and the journal, in process: what survives, what a bad file does, what a failing
disk does. The real process across SIGTERM and kill -9 is tests/test_restarts.py."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import struct
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from agency_telemetry.persistence import STEP_OWNERS, Persistence
from agency_telemetry.snapshot import Capture, Snapshot, SnapshotError, read_header, restore

from support.events import ONE_OF_EACH
from support.harness import Harness
from support.metrics import samples

A1 = {"agent": "a1", "agent_type": "worker"}


def harness(tmp_path: Path, extra: str = "") -> Harness:
    return Harness(f"persistence: {{file: {tmp_path / 'state'}}}\n{extra}")


def opened(h: Harness) -> Persistence:
    """The harness's store restored from its files (a process starting)."""
    persistence = Persistence(h.config.persistence, h.store)
    h.exposition.self_metrics.watch_persistence(persistence)
    persistence.start()
    return persistence


def restarted(h: Harness, extra: str = "", downtime: float = 0.0) -> tuple[Harness, Persistence]:
    """A new process on the same files, ``downtime`` seconds of wall clock later."""
    again = Harness(f"persistence: {{file: {h.config.persistence.file}}}\n{extra}")
    again.wall.now = h.wall.now + downtime
    return again, opened(again)


def agent_series(h: Harness) -> dict[Any, float]:
    return {key: v for key, v in samples(h.text(openmetrics=True)).items() if not key[0].startswith("agency_exporter")}


def test_every_series_exemplar_and_dedup_id_survives_a_restart(tmp_path: Path) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send(*ONE_OF_EACH)
    h.send({"type": "task_completed", "agent": "a1", "duration": 5, "id": "retried-1"})
    persistence.close()
    before = agent_series(h)
    assert before[("agency_agent_tasks_total", frozenset(A1.items()))] == 3

    again, _ = restarted(h)
    assert agent_series(again) == before
    exemplars = 'trace_id="4bf92f3577b34da6a3ce929d0e0e4736",span_id="00f067aa0ba902b7"'
    assert exemplars in again.text(openmetrics=True)
    assert again.send({"type": "task_completed", "agent": "a1", "duration": 5, "id": "retried-1"}).duplicates == 1
    assert again.value("agency_agent_tasks_total", **A1) == 3  # the retry counted once, across the restart


def test_without_a_final_snapshot_the_journal_brings_back_every_applied_batch(tmp_path: Path) -> None:
    h = harness(tmp_path)
    opened(h)  # never closed: the process is killed
    for n in range(50):
        h.send({"type": "task_completed", "agent": f"w{n % 5}", "duration": 1, "id": f"e{n}"})
    h.send({"type": "coordination", "council": "ethics", "session": "started"})
    before = agent_series(h)

    again, persistence = restarted(h)
    assert agent_series(again) == before
    assert again.value("agency_council_sessions_active", council="ethics") == 1
    assert again.send({"type": "task_completed", "agent": "w0", "duration": 1, "id": "e49"}).duplicates == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state", f"state.journal.{persistence._segment}"]


def test_a_snapshot_is_the_state_when_it_began_and_the_journal_holds_the_rest(tmp_path: Path) -> None:
    """Events applied while a snapshot is being converted change owners not converted yet: the
    snapshot keeps their earlier values, the journal the events, so nothing counts twice."""
    h = harness(tmp_path)
    persistence = opened(h)
    h.send(*({"type": "task_completed", "agent": f"w{n}", "duration": 1} for n in range(10)))
    capture = persistence._begin()
    assert not capture.step(3)
    h.send(*({"type": "task_completed", "agent": f"w{n}", "duration": 1} for n in range(10)))  # converted or not
    h.send({"type": "agent_deregistered", "agent": "w9"})
    h.send({"type": "task_completed", "agent": "new", "duration": 1})
    snapshot = capture.finish()

    alone = Harness()
    restore(alone.store, snapshot.to_bytes())
    counted = {n: alone.value("agency_agent_tasks_total", agent=f"w{n}", agent_type="unknown") for n in range(10)}
    assert counted == dict.fromkeys(range(10), 1)
    assert alone.value("agency_agent_tasks_total", agent="new", agent_type="unknown") is None

    persistence._write(snapshot, 0.0)
    again, _ = restarted(h)
    assert agent_series(again) == agent_series(h)
    assert again.value("agency_agent_tasks_total", agent="w9", agent_type="unknown") is None


def test_expiry_goes_on_from_the_saved_last_seen_times(tmp_path: Path) -> None:
    h = harness(tmp_path, "expiry: {agent_ttl: 1h}")
    persistence = opened(h)
    h.send({"type": "agent_heartbeat", "agent": "old", "cpu": 0.1})
    h.clock.now += 50 * 60
    h.wall.now += 50 * 60
    h.send({"type": "agent_heartbeat", "agent": "fresh", "cpu": 0.1})
    persistence.close()

    again, _ = restarted(h, "expiry: {agent_ttl: 1h}", downtime=5 * 60)  # down for five minutes
    again.clock.now += 4 * 60
    again.store.expire()
    assert again.value("agency_agent_cpu_usage_ratio", agent="old", agent_type="unknown") == 0.1
    again.clock.now += 2 * 60  # 50 + 5 + 6 minutes since its last event
    again.store.expire()
    assert again.value("agency_agent_cpu_usage_ratio", agent="old", agent_type="unknown") is None
    assert again.value("agency_agent_cpu_usage_ratio", agent="fresh", agent_type="unknown") == 0.1


def test_a_wall_clock_behind_the_snapshot_expires_nobody(tmp_path: Path) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send({"type": "agent_heartbeat", "agent": "a", "cpu": 0.1})
    persistence.close()
    again, _ = restarted(h, downtime=-86_400)  # the host's clock was set a day back meanwhile
    again.store.expire()
    assert again.value("agency_agent_cpu_usage_ratio", agent="a", agent_type="unknown") == 0.1


def _snapshot_bytes(tmp_path: Path) -> bytes:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send(*ONE_OF_EACH)
    persistence.close()
    return (tmp_path / "state").read_bytes()


def _flip_a_body_byte(data: bytes) -> bytes:
    at = data.index(b"\n") + 100
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def _with_version(data: bytes, version: int) -> bytes:
    line, _, body = data.partition(b"\n")
    return json.dumps({**json.loads(line), "version": version}).encode() + b"\n" + body


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda data: data[: len(data) // 2], "truncated"),
        (_flip_a_body_byte, "corrupted"),
        (lambda data: _with_version(data, 99), "format version 99; this exporter reads version 1"),
        (lambda data: b"PK\x03\x04 a zip file, not a snapshot", "no header line"),
        (lambda data: b'{"hello": 1}\n', "not a snapshot"),
        (lambda data: b"", "no header line"),
    ],
    ids=["truncated", "corrupted", "incompatible-version", "not-a-snapshot", "other-json", "empty"],
)
def test_an_unreadable_snapshot_starts_the_exporter_empty_and_keeps_the_file(
    tmp_path: Path, spoil: Any, message: str, caplog: pytest.LogCaptureFixture
) -> None:
    spoilt = spoil(_snapshot_bytes(tmp_path))
    (tmp_path / "state").write_bytes(spoilt)
    with pytest.raises(SnapshotError, match=message):
        restore(Harness().store, spoilt)

    with caplog.at_level(logging.ERROR, "agency_telemetry.persistence"):
        again, persistence = restarted(harness(tmp_path))
    assert persistence.restore_rejected
    assert again.value("agency_agent_tasks_total", **A1) is None  # empty: nothing half-restored
    assert "Starting EMPTY" in caplog.text and message in caplog.text
    kept = [p for p in tmp_path.iterdir() if ".rejected-" in p.name and ".journal." not in p.name]
    assert len(kept) == 1 and kept[0].read_bytes() == spoilt
    assert (tmp_path / "state").exists()  # a fresh snapshot of the empty store
    assert again.value("agency_exporter_persistence_restore_rejected") == 1


def test_a_histogram_whose_buckets_changed_starts_empty_and_the_rest_is_restored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _snapshot_bytes(tmp_path)
    buckets = "buckets: {task_duration_seconds: [1, 10, 100]}\n"
    with caplog.at_level(logging.WARNING, "agency_telemetry.persistence"):
        again, persistence = restarted(harness(tmp_path), buckets)
    assert not persistence.restore_rejected
    assert "task_duration_seconds" in caplog.text and "bounds differ" in caplog.text
    assert again.value("agency_agent_tasks_total", **A1) == 2
    assert again.value("agency_agent_task_duration_seconds_count", **A1) == 0
    assert again.value("agency_agent_task_duration_seconds_bucket", le="10.0", **A1) == 0
    assert again.value("agency_tool_call_duration_seconds_count", tool="web_search") == 2  # other bounds unchanged


def test_an_error_class_no_longer_configured_loses_its_counts_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _snapshot_bytes(tmp_path)
    classes = "error_classes: [{name: network, pattern: network}]\n"
    with caplog.at_level(logging.WARNING, "agency_telemetry.persistence"):
        again, _ = restarted(harness(tmp_path), classes)
    assert "'timeout': no longer configured" in caplog.text
    failures = {dict(k[1])["error_class"]: v for k, v in again.series("agency_agent_task_failures_total").items()}
    assert failures == {"network": 0, "other": 0}  # "Network timeout" was counted as timeout


def test_a_journal_cut_off_mid_record_replays_up_to_the_cut(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    for n in range(3):
        h.send({"type": "task_completed", "agent": "w", "duration": 1, "id": f"e{n}"})
    segment = tmp_path / f"state.journal.{persistence._segment}"
    segment.write_bytes(segment.read_bytes()[:-5])  # the last write was cut short
    with caplog.at_level(logging.INFO, "agency_telemetry.persistence"):
        again, _ = restarted(h)
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 2
    assert "1 journal records unreadable" in caplog.text


def test_a_full_disk_keeps_the_exporter_serving_and_says_so(tmp_path: Path) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    for number in range(persistence._segment + 1, persistence._segment + 4):
        os.symlink("/dev/full", tmp_path / f"state.journal.{number}")
    os.symlink("/dev/full", tmp_path / "state.tmp")
    asyncio.run(persistence.write())
    assert not persistence.writable and persistence.failures["snapshot"] == 1
    h.send({"type": "task_completed", "agent": "w", "duration": 1})  # journal write fails: still applied
    assert persistence.failures["journal"] == 1
    assert h.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 2
    text = h.text()
    assert samples(text)[("agency_exporter_persistence_writable", frozenset())] == 0
    assert samples(text)[("agency_exporter_persistence_failures_total", frozenset({("operation", "journal")}))] == 1

    for path in tmp_path.glob("state.*"):
        if path.is_symlink():
            path.unlink()
    asyncio.run(persistence.write())  # space again: the next snapshot recovers
    assert persistence.writable
    again, _ = restarted(h)
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 2


def test_a_snapshot_is_converted_in_slices_and_records_how_long_each_took(tmp_path: Path) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send(*({"type": "agent_heartbeat", "agent": f"a{n}", "cpu": 0.5} for n in range(1000)))
    slices = 0

    async def count_slices() -> None:
        nonlocal slices
        task = asyncio.create_task(persistence.write())
        while not task.done():
            slices += 1
            await asyncio.sleep(0)
        await task

    asyncio.run(count_slices())
    assert slices >= 1000 // STEP_OWNERS  # the loop ran between slices
    assert 0 < persistence.longest_step < persistence.last_duration
    assert persistence.last_size == (tmp_path / "state").stat().st_size
    assert h.value("agency_exporter_snapshot_size_bytes") == persistence.last_size


def test_capture_without_persistence_changes_nothing() -> None:
    h = Harness()
    h.send(*ONE_OF_EACH)
    capture = Capture(h.store, 1)
    capture.cancel()
    assert h.store.capture is None and h.store.journal is None


def test_what_a_scrape_showed_stays_shown_and_what_is_held_stays_held_across_a_restart(tmp_path: Path) -> None:
    """A restored owner must not drop to zero for a scrape (Prometheus would read a reset), and
    one still held at zero when saved must not appear above zero at once (its increase lost)."""
    hold = "expiry: {new_series_hold: 30s}"
    h = harness(tmp_path, hold)
    persistence = opened(h)
    h.send({"type": "task_completed", "agent": "seen", "duration": 1}, {"type": "business", "completed": True})
    h.store.scraped()
    h.clock.now += 31
    h.store.scraped()  # "seen" and the workflow are shown from now on
    h.send({"type": "task_completed", "agent": "new", "duration": 1})
    h.send({"type": "tool_call", "agent": "seen", "tool": "search", "duration": 1})  # a new key of a shown owner
    persistence.close()

    again, _ = restarted(h, hold)
    again.store.scraped()
    assert again.value("agency_agent_tasks_total", agent="seen", agent_type="unknown") == 1
    assert again.value("agency_workflow_tasks_total") == 1
    assert again.value("agency_agent_tasks_total", agent="new", agent_type="unknown") == 0
    assert again.value("agency_agent_tool_calls_total", agent="seen", agent_type="unknown", tool="search") == 0
    again.clock.now += 31
    again.store.scraped()
    assert again.value("agency_agent_tasks_total", agent="new", agent_type="unknown") == 1
    assert again.value("agency_agent_tool_calls_total", agent="seen", agent_type="unknown", tool="search") == 1


def test_journal_segments_without_their_snapshot_are_kept_aside_not_replayed(tmp_path: Path) -> None:
    h = harness(tmp_path)
    opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    (tmp_path / "state").unlink()  # someone removed the snapshot, not its journal
    again, persistence = restarted(h)
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") is None
    assert not persistence.restore_rejected
    assert [p.name for p in tmp_path.iterdir() if ".journal." in p.name and ".rejected-" in p.name]


def test_an_unreadable_journal_segment_is_skipped_and_the_others_replayed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    asyncio.run(persistence.write())  # the first batch is in the snapshot now
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    (tmp_path / f"state.journal.{persistence._segment + 1}").mkdir()  # a later segment nobody can read
    with caplog.at_level(logging.ERROR, "agency_telemetry.persistence"):
        again, restored = restarted(h)
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 2
    assert "cannot read it" in caplog.text and not restored.restore_rejected


def test_dedup_ids_are_saved_as_they_were_when_the_snapshot_began(tmp_path: Path) -> None:
    """Ids arrive and expire while a snapshot is taken a slice at a time: the snapshot holds
    those of its instant, the journal the new ones, and each event still counts once."""
    h = harness(tmp_path, "expiry: {dedup_window: 60s}")
    persistence = opened(h)
    for part in range(5):
        h.send(
            *({"type": "task_completed", "agent": "w", "duration": 1, "id": f"early-{part}-{n}"} for n in range(5_000))
        )
    h.clock.now += 30
    h.send(*({"type": "task_completed", "agent": "w", "duration": 1, "id": f"late-{n}"} for n in range(5_000)))
    capture = persistence._begin()
    assert not capture.step(100)  # the first slice: the ids of the instant copied
    h.send(*({"type": "task_completed", "agent": "w", "duration": 1, "id": f"new-{n}"} for n in range(100)))
    snapshot = capture.finish()
    alone = Harness("expiry: {dedup_window: 60s}")
    alone.wall.now = h.wall.now + 31  # restored 31 s later: the early ids had 30 s left, the late ones 60 s
    restored = restore(alone.store, snapshot.to_bytes())
    assert restored.dedup_ids == 5_000  # the late ids; not the early ones, nor the new ones that came after
    persistence._write(snapshot, 0.0)

    again, _ = restarted(h, "expiry: {dedup_window: 60s}", downtime=31)
    retried = [
        {"type": "task_completed", "agent": "w", "duration": 1, "id": f"{k}-{n}"}
        for k in ("late", "new")
        for n in range(50)
    ]
    assert again.send(*retried).duplicates == 100
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 30_100


def test_after_a_kill_the_journal_replays_the_scrapes_too(tmp_path: Path) -> None:
    """An owner born after the last snapshot and shown by scrapes before a kill -9 must not drop
    back to zero after it (Prometheus would count its value twice, as a reset); one not shown
    yet must still start at zero."""
    hold = "expiry: {new_series_hold: 30s}"
    h = harness(tmp_path, hold)
    opened(h)  # never closed
    h.send({"type": "task_completed", "agent": "shown", "duration": 1})
    h.store.scraped()
    h.clock.now += 31
    h.wall.now += 31
    h.store.scraped()
    h.send({"type": "task_completed", "agent": "unseen", "duration": 1})
    assert h.value("agency_agent_tasks_total", agent="shown", agent_type="unknown") == 1

    again, _ = restarted(h, hold, downtime=5)
    again.store.scraped()
    assert again.value("agency_agent_tasks_total", agent="shown", agent_type="unknown") == 1
    assert again.value("agency_agent_tasks_total", agent="unseen", agent_type="unknown") == 0


def test_an_owner_held_at_the_snapshot_and_shown_since_stays_shown_after_a_kill(tmp_path: Path) -> None:
    hold = "expiry: {new_series_hold: 30s}"
    h = harness(tmp_path, hold)
    persistence = opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    h.store.scraped()  # shown at zero
    h.clock.now += 20
    h.wall.now += 20
    asyncio.run(persistence.write())  # saved while still held: 20 s old, its zero shown
    h.clock.now += 11
    h.wall.now += 11
    h.store.scraped()  # 31 s old: shown from now on (journalled)
    assert h.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 1

    again, _ = restarted(h, hold, downtime=3)  # killed: no final snapshot
    again.store.scraped()
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 1  # not back to 0


def test_an_owner_still_held_after_a_restart_is_held_for_a_whole_hold_again(tmp_path: Path) -> None:
    """Whether a second scraper saw its zero before the restart is unknown: the hold starts over."""
    hold = "expiry: {new_series_hold: 30s}"
    h = harness(tmp_path, hold)
    persistence = opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    h.store.scraped()
    persistence.close()
    again, _ = restarted(h, hold, downtime=120)
    for _ in range(2):
        again.store.scraped()
        assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 0
    again.clock.now += 30
    again.store.scraped()
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 1

    off, _ = restarted(h, "expiry: {new_series_hold: 0}")  # restarted with the hold turned off
    assert off.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 1


def test_expiry_is_replayed_so_an_expired_owner_does_not_come_back(tmp_path: Path) -> None:
    config = "expiry: {agent_ttl: 1h}\nlimits: {max_agents: 2}"
    h = harness(tmp_path, config)
    opened(h)  # never closed
    h.send(
        {"type": "task_completed", "agent": "old", "duration": 1},
        {"type": "task_completed", "agent": "b", "duration": 1},
    )
    h.clock.now += 3601
    h.wall.now += 3601
    h.send({"type": "agent_heartbeat", "agent": "b", "cpu": 0.1})
    h.store.expire()  # "old" goes
    h.send({"type": "task_completed", "agent": "new", "duration": 1})  # fits only because "old" went
    h.send({"type": "task_completed", "agent": "b", "duration": 1})
    before = agent_series(h)

    again, _ = restarted(h, config, downtime=2)
    assert agent_series(again) == before
    assert again.value("agency_agent_tasks_total", agent="old", agent_type="unknown") is None
    assert again.value("agency_agent_tasks_total", agent="new", agent_type="unknown") == 1


def test_the_final_scrapes_reveal_is_replayed_after_a_kill_before_the_last_snapshot(tmp_path: Path) -> None:
    hold = "expiry: {new_series_hold: 30s}"
    h = harness(tmp_path, hold)
    opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    h.store.reveal()  # the final scrape after ingest stopped shows everything; then killed
    again, _ = restarted(h, hold)
    again.store.scraped()
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 1


def test_stopping_lets_a_snapshot_being_written_finish_before_the_final_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    h = harness(tmp_path)
    persistence = opened(h)
    h.send({"type": "task_completed", "agent": "w", "duration": 1})
    header = Snapshot.header

    def slow_header(snapshot: Snapshot) -> bytes:
        time.sleep(0.3)  # the thread is still writing when the exporter is told to stop
        return header(snapshot)

    monkeypatch.setattr(Snapshot, "header", slow_header)

    async def stop_during_a_write() -> None:
        running = asyncio.create_task(persistence.run())
        persistence._due.set()
        await asyncio.sleep(0.1)
        h.send({"type": "task_completed", "agent": "w", "duration": 1})
        persistence.stop()
        await running

    asyncio.run(stop_during_a_write())
    monkeypatch.setattr(Snapshot, "header", header)
    persistence.close()
    assert persistence.failures["snapshot"] == 0
    again, restored = restarted(h)
    assert again.value("agency_agent_tasks_total", agent="w", agent_type="unknown") == 2
    assert not restored.restore_rejected


def _rewritten(data: bytes, change: Any) -> bytes:
    """The snapshot with its owner records changed by ``change`` (a list of plain records), re-framed
    with a valid CRC: content this release never writes, which restore must refuse cleanly."""
    _, body = read_header(data)
    records, offset = [], 0
    while offset < len(body):
        (length,) = struct.unpack_from(">I", body, offset)
        records.append(msgspec.msgpack.decode(body[offset + 4 : offset + 4 + length]))
        offset += 4 + length
    change(records)
    encoded = [struct.pack(">I", len(r)) + r for r in map(msgspec.msgpack.encode, records)]
    return Snapshot(encoded, len(encoded), 0).to_bytes()


def _owner(records: list[Any], kind: str) -> list[Any]:
    return next(r for r in records if isinstance(r, list) and r[:2] == ["owner", kind])


@pytest.mark.parametrize(
    "change",
    [
        lambda rs: _owner(rs, "agent").__setitem__(1, "principle"),
        lambda rs: _owner(rs, "agent")[5]["agency_agent_tool_calls_total"][0].__setitem__(0, "web_search"),
        lambda rs: _owner(rs, "agent")[5]["agency_agent_task_duration_seconds"][2].__setitem__(5, ["t", 1, "x", 2]),
        lambda rs: _owner(rs, "agent").__setitem__(7, [["agency_agent_decisions_total", ["nope"], 1.0, False]]),
        lambda rs: _owner(rs, "agent")[3].__setitem__(0, "someone-else"),
        lambda rs: _owner(rs, "agent")[5].__setitem__("agency_agent_tasks_total", "many"),
    ],
    ids=[
        "principle-kind",
        "key-not-a-list",
        "exemplar-types",
        "held-series-missing",
        "labels-not-the-key",
        "text-count",
    ],
)
def test_content_this_release_never_writes_is_refused_whole(tmp_path: Path, change: Any) -> None:
    data = _snapshot_bytes(tmp_path)
    spoilt = _rewritten(data, change)
    with pytest.raises(SnapshotError):
        restore(Harness().store, spoilt)
    (tmp_path / "state").write_bytes(spoilt)
    again, persistence = restarted(harness(tmp_path))
    assert persistence.restore_rejected
    assert agent_series(again) == agent_series(Harness())  # empty, and every scrape renders
