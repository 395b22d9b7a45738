"""The compose stack's demo fleet: the exporter's simulator, feeding an exporter over HTTP.

`agency-telemetry demo` runs a fleet inside its own exporter; in the compose stack the exporter
is a plain `serve`, as in production, and this process plays the agents, speaking only the
public event API. After every batch the exporter accepted (202) it touches a heartbeat file,
which the container's health check reads:

    python deploy/fleet.py --url http://exporter:9477 [--agents 24] [--tick 0.5]
    python deploy/fleet.py --check [--max-age 30]   # exit 0 while batches are getting through
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from agency_telemetry.simulator import FleetSimulator

HEARTBEAT = Path("/tmp/agency-fleet.heartbeat")
log = logging.getLogger("fleet")


@dataclass
class HeartbeatFleet(FleetSimulator):
    """The simulator, touching ``heartbeat`` only when the exporter accepted a batch.

    The simulator counts a batch refused for good (a 4xx) as done, so as not to resend it; the
    health check must not count it as getting through, or a fleet whose every batch is refused
    would look healthy: only :meth:`accepted` touches the file.
    """

    heartbeat: Path = HEARTBEAT

    def accepted(self) -> None:
        self.heartbeat.touch()


async def run(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):  # as PID 1, SIGTERM would otherwise be ignored
        loop.add_signal_handler(sig, stop.set)
    fleet = HeartbeatFleet(args.url, agents=args.agents, tick=args.tick, heartbeat=args.heartbeat)
    log.info("simulating %d agents, a batch every %ss, into %s", args.agents, args.tick, args.url)
    await fleet.run(stop)
    log.info("stopped")


def check(heartbeat: Path, max_age: float) -> int:
    try:
        age = time.time() - os.stat(heartbeat).st_mtime
    except FileNotFoundError:
        print(f"no batch has got through yet ({heartbeat} missing)")
        return 1
    if age > max_age:
        print(f"the last batch got through {age:.0f}s ago (more than {max_age:.0f}s)")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default="http://exporter:9477", help="the exporter's base URL (%(default)s)")
    parser.add_argument("--agents", type=int, default=24, help="agents in the fleet (%(default)s)")
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between batches (%(default)s)")
    parser.add_argument("--heartbeat", type=Path, default=HEARTBEAT, help="file touched after each batch")
    parser.add_argument("--check", action="store_true", help="health check: was a batch accepted lately?")
    parser.add_argument("--max-age", type=float, default=30, help="with --check: seconds (%(default)s)")
    args = parser.parse_args(argv)
    if args.check:
        return check(args.heartbeat, args.max_age)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
