"""Local stand-ins for chat and pager, and the Alertmanager bundle adapted to deliver to them."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
from collections.abc import AsyncIterator, Callable
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


def receiver_paths(bundle: Path, receiver: str) -> list[str]:
    """The sink paths the adapted bundle's ``receiver`` delivers to, one per integration, sorted."""
    config = yaml.safe_load(bundle.read_text())
    [spec] = [r for r in config["receivers"] if r["name"] == receiver]
    urls = [c["url"] for kind in ("pagerduty_configs", "webhook_configs") for c in spec.get(kind, [])]
    urls += [Path(c["api_url_file"]).read_text().strip() for c in spec.get("slack_configs", [])]
    return sorted(urllib.parse.urlsplit(url).path for url in urls)


def notified(sinks: Sinks, since: int = 0) -> list[tuple[str, str]]:
    """(path, title) of every notification the sinks got after the first ``since`` ones."""
    titles = []
    for path, payload in sinks.received[since:]:
        if path == "/pagerduty":
            titles.append((path, payload["payload"]["summary"]))
        elif path.startswith("/slack/"):
            titles.append((path, payload["attachments"][0]["title"]))
        else:
            titles.append((path, f"{payload['status']} {payload['groupLabels']}"))
    return titles


async def eventually(check: Callable[[], Any], timeout: float, what: str) -> Any:
    """Polls ``check`` (in a thread, so it may block) until it returns something true, and returns that."""
    deadline = time.monotonic() + timeout
    while not (result := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
        await asyncio.sleep(0.25)
    return result
