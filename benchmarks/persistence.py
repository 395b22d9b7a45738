"""Persistence at 10,000 agents: what the journal adds to ingest, how long the event loop waits
for a snapshot, how big it is, and how long a restart's restore takes.

Baseline and ours side by side, in one process: applying the same batches without persistence
(baseline) and with every batch journalled (ours); the longest stall of an event loop that
applies a batch every millisecond, with no snapshot running (baseline) and while one is taken
(ours: the target is a few milliseconds).

    .venv/bin/python -m benchmarks.persistence [--agents 10000] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from agency_telemetry.config import parse_config
from agency_telemetry.decoder import EventDecoder
from agency_telemetry.events import Event
from agency_telemetry.persistence import Persistence
from agency_telemetry.store import Store

from benchmarks.workload import EventMix, fleet_events, ndjson

NDJSON = "application/x-ndjson"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    directory = Path(tempfile.mkdtemp(prefix="agency-persistence-"))
    config = parse_config(f"persistence: {{file: {directory / 'state'}}}\nlimits: {{max_agents: {args.agents * 2}}}\n")
    decoder = EventDecoder(config.agent_types, 128, 100_000)
    fleet = decoder.decode(ndjson(fleet_events(args.agents)), NDJSON)
    # The SDK gives every event an id: the dedup set holds its maximum, 100,000, all in the snapshot.
    ids = [{"type": "agent_heartbeat", "agent": "agent-0", "cpu": 0.5, "id": f"{n:032x}"} for n in range(100_000)]
    fleet += decoder.decode(ndjson(ids), NDJSON)
    mix = EventMix(args.agents)
    batches = [decoder.decode(ndjson(mix.events(1000)), NDJSON) for _ in range(50)]

    plain, journalled = Store(config), Store(config)
    for store in (plain, journalled):
        store.apply(fleet)
    persistence = Persistence(config.persistence, journalled)
    persistence.start()
    print(f"{args.agents} agents (every series), 100,000 dedup ids; batches of 1000 mixed events\n")
    print(f"{'':44} {'baseline':>12} {'ours':>12}")
    base, ours = [], []
    for _ in range(args.rounds):  # alternating, as this VM's speed drifts
        base.append(_apply_time(plain, batches))
        ours.append(_apply_time(journalled, batches))
    _row("apply a 1000-event batch (ms, median)", base, ours, scale=1000)
    idle = [asyncio.run(_stall(plain, batches, None)) for _ in range(args.rounds)]
    during = [asyncio.run(_stall(journalled, batches, persistence)) for _ in range(args.rounds)]
    _row("longest event-loop stall (ms, median)", idle, during, scale=1000)
    print(
        f"\nsnapshot: {persistence.last_size / 2**20:.1f} MiB, {persistence.last_duration * 1000:.0f} ms from "
        f"capture to rename, longest slice on the loop {persistence.longest_step * 1000:.1f} ms"
    )
    persistence.close()
    started = time.perf_counter()
    restored = Store(config)
    Persistence(config.persistence, restored).start()
    print(
        f"restore at start (read, rebuild, first snapshot): {(time.perf_counter() - started) * 1000:.0f} ms, "
        f"{len(restored.agents)} agents"
    )


def _apply_time(store: Store, batches: list[list[Event]]) -> float:
    started = time.perf_counter()
    for batch in batches:
        store.apply(batch)
    return (time.perf_counter() - started) / len(batches)


async def _stall(store: Store, batches: list[list[Event]], persistence: Persistence | None) -> float:
    """Applies a batch every millisecond for the length of one snapshot (or 0.3 s without one);
    the longest gap between two of them beyond that millisecond."""
    snapshot = asyncio.create_task(persistence.write()) if persistence else None
    deadline = time.perf_counter() + 0.3
    longest, last, index = 0.0, time.perf_counter(), 0
    while (snapshot is not None and not snapshot.done()) or (snapshot is None and time.perf_counter() < deadline):
        await asyncio.sleep(0.001)
        now = time.perf_counter()
        longest = max(longest, now - last - 0.001)
        store.apply(batches[index % len(batches)])
        index += 1
        last = time.perf_counter()
    if snapshot is not None:
        await snapshot
    return longest


def _row(label: str, baseline: list[float], ours: list[float], scale: float) -> None:
    b, o = statistics.median(baseline) * scale, statistics.median(ours) * scale
    print(f"{label:44} {b:12.2f} {o:12.2f}   ({o / b:.2f}x)")


if __name__ == "__main__":
    main()
