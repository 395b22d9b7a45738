"""Local stand-ins for chat and pager, and the Alertmanager bundle adapted to deliver to them."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from conftest import free_port

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "alertmanager"


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


def fast_copy(tmp_path: Path, sinks: Sinks) -> Path:
    """The bundle in a temp dir with secrets pointing at the sinks and every wait shortened.

    Routing, matchers, grouping labels, inhibition and templates are the bundle's own; only
    paths (/etc/alertmanager → the temp dir), URLs, timings and the office-hours window
    (widened to now, so info is deliverable) change.
    """
    target = tmp_path / "alertmanager"
    shutil.copytree(BUNDLE, target, ignore=shutil.ignore_patterns("secrets"))
    secrets = target / "secrets"
    secrets.mkdir()
    for name, path in {
        "slack-team-webhook-url": "/slack/team",
        "slack-incident-webhook-url": "/slack/incident",
        "slack-security-webhook-url": "/slack/security",
    }.items():
        (secrets / name).write_text(sinks.url + path + "\n")
    (secrets / "pagerduty-routing-key").write_text("test-routing-key\n")
    (secrets / "webhook-token").write_text("test-token\n")
    text = (target / "alertmanager.yml").read_text().replace("/etc/alertmanager/", f"{target}/")
    config = yaml.safe_load(text)
    for route in [config["route"], *config["route"]["routes"]]:
        for key, value in (("group_wait", "1s"), ("group_interval", "2s"), ("repeat_interval", "1h")):
            if key in route:
                route[key] = value
    for receiver in config["receivers"]:
        for pager in receiver.get("pagerduty_configs", []):
            pager["url"] = sinks.url + "/pagerduty"
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = sinks.url + "/webhook"
    [office] = config["time_intervals"]
    office["time_intervals"] = [{"times": [{"start_time": "00:00", "end_time": "24:00"}]}]
    (target / "alertmanager.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    return target / "alertmanager.yml"
