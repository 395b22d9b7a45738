"""Our exporter in-process, as every benchmark builds it: a Store, its EventDecoder and its Exposition."""

from __future__ import annotations

from dataclasses import dataclass, field

from agency_telemetry.config import Config, parse_config
from agency_telemetry.decoder import EventDecoder
from agency_telemetry.exposition import Exposition
from agency_telemetry.selfmetrics import SelfMetrics
from agency_telemetry.store import Store


def config_for(agents: int) -> Config:
    """Limits that fit ``agents``, and new series shown at once: the benchmarks compare our
    values with the baseline's right after sending (the hold costs a scrape nothing measurable)."""
    owners = max(1000, agents)
    return parse_config(
        f"limits: {{max_agents: {max(60_000, agents)}, max_councils: {owners}, max_queues: {owners}, "
        f"max_active_alerts: {owners}, max_events_per_batch: 10000}}\n"
        "expiry: {new_series_hold: 0}"
    )


@dataclass
class Ours:
    config: Config
    store: Store = field(init=False)
    decoder: EventDecoder = field(init=False)
    exposition: Exposition = field(init=False)

    def __post_init__(self) -> None:
        limits = self.config.limits
        self.store = Store(self.config)
        self.decoder = EventDecoder(self.config.agent_types, limits.max_label_length, limits.max_events_per_batch)
        self.exposition = Exposition(self.store, SelfMetrics(self.store))

    def apply_ndjson(self, body: bytes) -> int:
        return self.store.apply(self.decoder.decode(body, "application/x-ndjson")).accepted
