"""Local stand-ins for chat and pager, and the Alertmanager bundle adapted to deliver to them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from scripts.local_stack import alertmanager_bundle, free_port


class Sinks:
    """One HTTP server standing in for every receiver; it records what each path was sent."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    async def handle(self, request: web.Request) -> web.Response:
        self.received.append((request.path, await request.json()))
        return web.Response(text="ok")

    def at(self, path: str) -> list[dict[str, Any]]:
        return [payload for got, payload in self.received if got == path]


async def serve_sinks() -> AsyncIterator[Sinks]:
    """Runs the sinks on their port for the duration of the ``async for``/fixture."""
    sink = Sinks()
    app = web.Application()
    app.router.add_post("/{tail:.*}", sink.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", sink.port).start()
    try:
        yield sink
    finally:
        await runner.cleanup()


FAST_ROUTE_TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


def fast_copy(tmp_path: Path, sinks: Sinks, timings: dict[str, str] = FAST_ROUTE_TIMINGS) -> Path:
    """The bundle in a temp dir delivering to the sinks, with every wait shortened.

    Routing, matchers, grouping labels, inhibition and templates are the bundle's own; beyond
    what the local stack changes (paths, secrets, URLs), only the timings and the office-hours
    window (widened to now, so info is deliverable) change.
    """
    path = alertmanager_bundle(tmp_path / "alertmanager", sinks.url, timings)
    config = yaml.safe_load(path.read_text())
    [office] = config["time_intervals"]
    office["time_intervals"] = [{"times": [{"start_time": "00:00", "end_time": "24:00"}]}]
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path
