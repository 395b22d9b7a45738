"""Soak: sustained ingest with agent ids rotating past their TTL; the exporter's RSS over time.

Starts the exporter (``agency-telemetry serve``) on a free loopback port with a short agent TTL
and persistence on (a snapshot every ``--snapshot-every`` seconds; ``0`` turns it off), then,
for ``--duration`` seconds, posts NDJSON batches of 1,000 events (every event with an id,
as the client library sends them) for a fleet whose agent names change every ``--rotate``
seconds, so agents keep arriving and expiring. Every ``--every`` seconds it prints the server's
RSS, the agents it tracks, the expired count, the events accepted so far and the latest
snapshot's size, and at the end the RSS growth once the first generations have expired: flat
means nothing leaks.

    .venv/bin/python -m benchmarks.soak [--duration 120] [--agents 2000] [--ttl 5] [--rotate 2] [--snapshot-every 10]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

from benchmarks.timing import MB, status_bytes
from benchmarks.workload import BATCH, ndjson
from scripts.local_stack import free_port, stop_process, wait_ready

NDJSON = {"Content-Type": "application/x-ndjson"}


def batch(generation: int, agents: int, counter: int) -> bytes:
    events = []
    for n in range(BATCH):
        agent = {"agent": f"soak-{generation}-{(counter + n) % agents}", "agent_type": "worker"}
        kind = n % 4
        if kind == 0:
            event = {"type": "agent_heartbeat", "cpu": 0.4, "memory": "300 MiB", **agent}
        elif kind == 1:
            event = {"type": "task_started", **agent}
        elif kind == 2:
            event = {"type": "task_completed", "duration": 200 + n % 500, "quality_score": 0.9, **agent}
        else:
            event = {"type": "task_failed", "reason": "timeout", "duration": 50, **agent}
        events.append({**event, "id": uuid.uuid4().hex})
    return ndjson(events)


def exporter_figures(text: str) -> dict[str, float]:
    """The exporter's agent counts, read off its own lines (parsing every series would stall this client)."""
    found = {}
    for line in text.splitlines():
        if line.startswith(("agency_exporter_tracked{", "agency_exporter_expired_total{")) and 'kind="agent"' in line:
            name, _, value = line.partition("{")[0], None, line.rsplit(" ", 1)[1]
            found[name] = float(value)
        elif line.startswith(("agency_exporter_snapshot_size_bytes ", "agency_exporter_journal_size_bytes ")):
            name, value = line.split(" ")
            found[name] = float(value)
    return found


async def reading(
    session: aiohttp.ClientSession, url: str, pid: int, elapsed: float, accepted: int
) -> tuple[float, float]:
    """Prints a row of figures and returns (seconds, RSS MB)."""
    async with session.get(f"{url}/metrics") as resp:
        figures = exporter_figures(await resp.text())
    rss = status_bytes("VmRSS", pid) / MB
    print(
        f"{elapsed:6.0f} {accepted:16,} {accepted / max(elapsed, 1e-9):9,.0f} {rss:8.1f} "
        f"{figures.get('agency_exporter_tracked', 0):7,.0f} "
        f"{figures.get('agency_exporter_expired_total', 0):8,.0f} "
        f"{figures.get('agency_exporter_snapshot_size_bytes', 0) / MB:11.1f} "
        f"{figures.get('agency_exporter_journal_size_bytes', 0) / MB:10.1f}",
        flush=True,
    )
    return elapsed, rss


async def soak(url: str, pid: int, args: argparse.Namespace) -> list[tuple[float, float]]:
    """Posts until the duration is over; returns (seconds, RSS MB) readings."""
    readings: list[tuple[float, float]] = []
    started = time.monotonic()
    next_report, accepted, counter = 0.0, 0, 0
    print(
        f"{'t (s)':>6} {'events accepted':>16} {'events/s':>9} {'RSS MB':>8} {'agents':>7} {'expired':>8} "
        f"{'snapshot MB':>11} {'journal MB':>10}"
    )
    async with aiohttp.ClientSession() as session:
        while (elapsed := time.monotonic() - started) < args.duration:
            generation = int(elapsed // args.rotate)
            body = batch(generation, args.agents, counter)
            async with session.post(f"{url}/v1/events", data=body, headers=NDJSON) as resp:
                payload = await resp.json()
                if resp.status != 202:
                    raise SystemExit(f"the exporter refused a batch: {resp.status} {payload}")
                accepted += payload["accepted"]
            counter += BATCH
            if elapsed >= next_report:
                readings.append(await reading(session, url, pid, elapsed, accepted))
                next_report += args.every
        # A last reading at the end, so that a slow machine that fell behind its schedule still
        # has one from after the first generations expired.
        readings.append(await reading(session, url, pid, time.monotonic() - started, accepted))
    return readings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=120, help="seconds of load (%(default)s)")
    parser.add_argument("--agents", type=int, default=2000, help="agents per generation (%(default)s)")
    parser.add_argument("--ttl", type=float, default=5, help="expiry.agent_ttl in seconds (%(default)s)")
    parser.add_argument("--rotate", type=float, default=2, help="seconds per generation of agent names (%(default)s)")
    parser.add_argument("--every", type=float, default=5, help="seconds between readings (%(default)s)")
    parser.add_argument(
        "--snapshot-every", type=float, default=10, help="persistence.interval in seconds; 0: off (%(default)s)"
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="agency-soak-") as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(
            f"expiry: {{agent_ttl: {args.ttl}s, sweep_interval: 1s, dedup_window: {2 * args.ttl}s}}\n"
            "limits: {max_agents: 50000}\n"
            + (
                f"persistence: {{file: {tmp}/state/snapshot, interval: {args.snapshot_every}s}}\n"
                if args.snapshot_every
                else ""
            )
        )
        port = free_port()
        log = Path(tmp) / "exporter.log"
        with log.open("wb") as out:
            command = [sys.executable, "-m", "agency_telemetry", "serve", "--config", str(config)]
            proc = subprocess.Popen([*command, "--listen", f"127.0.0.1:{port}"], stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_ready(proc, f"http://127.0.0.1:{port}/readyz", log)
            readings = asyncio.run(soak(f"http://127.0.0.1:{port}", proc.pid, args))
        finally:
            stop_process(proc)
    settled = [rss for t, rss in readings if t >= 2 * (args.ttl + args.rotate)]
    if len(settled) >= 2:
        growth = settled[-1] - settled[0]
        print(
            f"RSS once the first generations expired: {settled[0]:.1f} MB -> {settled[-1]:.1f} MB "
            f"({growth:+.1f} MB, {growth / settled[0]:+.1%}) over {len(settled)} readings"
        )
    else:
        print("too short to see the RSS after expiry: raise --duration")
    return 0


if __name__ == "__main__":
    sys.exit(main())
