"""A store with fake clocks, fed through the real decoder and read through the real exposition."""

from __future__ import annotations

import json
import re
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import bcrypt
import msgspec

from agency_telemetry.config import Config, Expiry, SecondsOrZero, parse_config
from agency_telemetry.decoder import EventDecoder
from agency_telemetry.exposition import Exposition
from agency_telemetry.routes import EXPOSITION, create_app
from agency_telemetry.selfmetrics import SelfMetrics
from agency_telemetry.simulator import FleetSimulator
from agency_telemetry.store import Applied, Store

from support.metrics import samples


def immediate(config: str | Config | None = None) -> Config:
    """``config`` with ``expiry.new_series_hold`` 0, unless it sets a hold itself: values show at
    the first scrape, for tests that read them right after sending (the hold has tests of its own)."""
    if isinstance(config, str):
        if "new_series_hold" in config:
            return parse_config(config)
        config = parse_config(config)
    config = config or Config()
    if config.expiry.new_series_hold != Expiry().new_series_hold:
        return config
    return msgspec.structs.replace(
        config, expiry=msgspec.structs.replace(config.expiry, new_series_hold=SecondsOrZero(0))
    )


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, config: str | Config | None = None) -> None:
        self.config = immediate(config)
        self.clock = FakeClock()
        self.wall = FakeClock(1_700_000_000.0)
        self.store = Store(self.config, clock=self.clock, wall_clock=self.wall)
        self.decoder = EventDecoder(
            self.config.agent_types, self.config.limits.max_label_length, self.config.limits.max_events_per_batch
        )
        self.exposition = Exposition(self.store, SelfMetrics(self.store))

    def send(self, *events: dict[str, Any]) -> Applied:
        body = "\n".join(json.dumps(e) for e in events).encode()
        return self.store.apply(self.decoder.decode(body, "application/x-ndjson"))

    def text(self, openmetrics: bool = False) -> str:
        return self.exposition.render(openmetrics).decode()

    def value(self, name: str, **labels: str) -> float | None:
        return samples(self.text()).get((name, frozenset(labels.items())))

    def series(self, prefix: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return {k: v for k, v in samples(self.text()).items() if k[0].startswith(prefix)}


@cache
def exposed_metric_names() -> frozenset[str]:
    """Metric names an exporter exposes: one fed by the demo fleet, plus the self-metrics only an
    exporter with a web configuration, an ingest tokens file and persistence has."""
    harness = Harness()
    harness.send(*FleetSimulator("http://unused", agents=8).first_batch())
    with tempfile.TemporaryDirectory() as directory:
        web, tokens = Path(directory, "web.yml"), Path(directory, "tokens.yml")
        web.write_text(f"basic_auth_users: {{prometheus: '{bcrypt.hashpw(b'x', bcrypt.gensalt(4)).decode()}'}}\n")
        tokens.write_text("tokens: [{name: a, token: a-token-of-16-characters}]\n")
        persistence = f"persistence: {{file: {Path(directory, 'state')}}}\n"
        secured = create_app(parse_config(f"web_config_file: {web}\ningest_tokens_file: {tokens}\n{persistence}"))
        text = harness.text() + secured[EXPOSITION].render(False).decode()
    return frozenset(re.findall(r"^(\w+)[{ ]", text, re.M))
