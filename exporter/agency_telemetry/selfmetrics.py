"""The exporter's own metrics (``agency_exporter_*``), kept in a prometheus_client registry.

Every event the exporter drops is counted here with its reason, as statsd_exporter does:
a client that sees a 4xx can tell why, and so can the operator from a dashboard.
"""

from __future__ import annotations

import platform
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from . import __version__
from .attribution import ATTRIBUTION_WAYS, RELEASE_REASONS, Attribution
from .events import EVENT_CLASSES, event_type
from .owners import CAPPED, EXPIRING, LIMITED
from .persistence import Persistence
from .refusals import INGEST_REFUSALS, WEB_REFUSALS
from .reload import Reloadable
from .store import Store

OUTCOMES = ("mapped", "ignored", "rejected")  # of OTLP spans and data points; metrics may also be superseded

# In the text format every counter's `_created` would be one more gauge series, which
# Prometheus stores and nobody queries; the agent series do not have them either.
disable_created_metrics()  # type: ignore[no-untyped-call]


class SelfMetrics:
    def __init__(self, store: Store) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.series = 0  # sample lines of agent/council series in the latest render
        self.events_rejected = Counter(
            "agency_exporter_events_rejected",
            "Events in rejected requests, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.requests_rejected = Counter(
            "agency_exporter_requests_rejected",
            "Ingest requests rejected, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.scrape_duration = Histogram(
            "agency_exporter_scrape_duration_seconds",
            "Time to render /metrics.",
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=self.registry,
        )
        build = Gauge(
            "agency_exporter_build_info",
            "Version of the exporter (value 1).",
            ["version", "python_version"],
            registry=self.registry,
        )
        build.labels(__version__, platform.python_version()).set(1)
        self.web_rejections = Counter(
            "agency_exporter_web_rejected",
            "Requests (basic_auth, rate_limit) and connections (handshake, client_san) refused "
            "under the web configuration file, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.token_events = Counter(
            "agency_exporter_token_events",
            "Events accepted per ingest token, by its name in the tokens file: is an old token still in use?",
            ["token"],
            registry=self.registry,
        )
        self.otlp_items = Counter(
            "agency_exporter_otlp_items",
            "OTLP spans and data points received, by signal and outcome: mapped to events, ignored "
            "(not GenAI), rejected (invalid; the answer's partial_success says why), or superseded "
            "(GenAI metrics of a service whose spans are counted).",
            ["signal", "outcome"],
            registry=self.registry,
        )
        for signal, outcomes in (("traces", OUTCOMES), ("metrics", (*OUTCOMES, "superseded"))):
            for outcome in outcomes:
                self.otlp_items.labels(signal, outcome)
        for refusal in INGEST_REFUSALS:
            self.events_rejected.labels(refusal.reason)
            self.requests_rejected.labels(refusal.reason)
        self.reloadables: list[Reloadable[Any]] = []
        self.registry.register(_StoreCollector(store, self))
        self.registry.register(_ReloadCollector(self.reloadables))

    def watch(self, reloadables: list[Reloadable[Any]]) -> None:
        """Report on these reloaded files: web configuration, ingest tokens."""
        self.reloadables.extend(reloadables)
        for refusal in WEB_REFUSALS if any(r.kind == "web_config" for r in reloadables) else ():
            self.web_rejections.labels(refusal.reason)

    def watch_attribution(self, attribution: Attribution) -> None:
        self.registry.register(_AttributionCollector(attribution))

    def watch_persistence(self, persistence: Persistence) -> None:
        self.registry.register(_PersistenceCollector(persistence))

    def token_used(self, token: str, events: int) -> None:
        self.token_events.labels(token).inc(events)

    def web_rejected(self, reason: str) -> None:
        self.web_rejections.labels(reason).inc()

    def rejected(self, reason: str, events: int) -> None:
        self.requests_rejected.labels(reason).inc()
        self.rejected_events(reason, events)

    def rejected_events(self, reason: str, events: int) -> None:
        """Events left out of a request that was accepted for the rest (OTLP's partial success)."""
        if events:
            self.events_rejected.labels(reason).inc(events)

    def otlp_received(self, signal: str, items: int, ignored: int, rejected: int, superseded: int = 0) -> None:
        """Counts a request's spans or data points by outcome."""
        counted = self.otlp_items
        counted.labels(signal, "ignored").inc(ignored)
        counted.labels(signal, "rejected").inc(rejected)
        if superseded:
            counted.labels(signal, "superseded").inc(superseded)
        counted.labels(signal, "mapped").inc(max(0, items - ignored - rejected - superseded))


class _StoreCollector(Collector):
    """Reads the store's sizes and counts at scrape time, so the hot path keeps no extra state."""

    def __init__(self, store: Store, metrics: SelfMetrics) -> None:
        self.store = store
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        store, stats, limits = self.store, self.store.stats, self.store.limits
        tracked = GaugeMetricFamily(
            "agency_exporter_tracked", "Owners of series tracked now, by kind.", labels=["kind"]
        )
        for kind in (*LIMITED, *CAPPED):
            tracked.add_metric([kind.name], len(store.tracked[kind]))
        yield tracked
        limit = GaugeMetricFamily("agency_exporter_limit", "Configured limits, by name.", labels=["limit"])
        for name in limits.__struct_fields__:
            limit.add_metric([name], getattr(limits, name))
        yield limit
        yield GaugeMetricFamily(
            "agency_exporter_series",
            "Agent, council, queue and alert series in the last scrape.",
            value=self.metrics.series,
        )
        expired = CounterMetricFamily(
            "agency_exporter_expired", "Owners removed after staying silent past their TTL.", labels=["kind"]
        )
        for kind in EXPIRING:
            expired.add_metric([kind.name], stats.expired[kind.name])
        yield expired
        received = CounterMetricFamily(
            "agency_exporter_events_received", "Events accepted, by type (duplicates included).", labels=["type"]
        )
        for cls in EVENT_CLASSES:
            received.add_metric([event_type(cls)], stats.received[cls])
        yield received
        yield CounterMetricFamily(
            "agency_exporter_events_duplicate",
            "Events acknowledged but not applied again (repeated id).",
            value=stats.duplicates,
        )
        yield CounterMetricFamily(
            "agency_exporter_dedup_evictions",
            "Event ids forgotten before the dedup window ended because dedup_max_ids was reached.",
            value=stats.dedup_evicted,
        )
        yield GaugeMetricFamily(
            "agency_exporter_dedup_ids", "Event ids remembered for deduplication.", value=store.dedup_ids
        )
        overflow = CounterMetricFamily(
            "agency_exporter_overflow",
            'LLM requests and tool calls counted under model or tool "other": their kind\'s limit '
            "(limits.max_models, limits.max_tools) was reached.",
            labels=["kind"],
        )
        for kind in CAPPED:
            overflow.add_metric([kind.name], stats.overflow[kind.name])
        yield overflow
        unpriced = CounterMetricFamily(
            "agency_exporter_llm_unpriced_requests",
            "LLM requests with no cost of their own and no entry in the pricing table: their spend is not counted.",
            labels=["provider", "model"],
        )
        for (provider, model), count in stats.unpriced.items():
            unpriced.add_metric([provider, model], count)
        yield unpriced


class _AttributionCollector(Collector):
    def __init__(self, attribution: Attribution) -> None:
        self.attribution = attribution

    def collect(self) -> Iterator[Metric]:
        counts = self.attribution.counts
        yield _counts(
            "agency_exporter_otlp_attributions",
            "OTLP LLM requests, tool calls and span events by the agent they were counted for: their "
            "invoke_agent ancestor's, or (none arrived) their own gen_ai.agent.name or service.name.",
            "via",
            {via: counts[via] for via in ATTRIBUTION_WAYS},
        )
        yield _counts(
            "agency_exporter_otlp_held_released",
            "Held OTLP events counted under their fallback agent: held past otlp.attribution_hold, "
            "or released early because otlp.max_held_spans was reached.",
            "why",
            {why: counts[why] for why in RELEASE_REASONS},
        )
        held = GaugeMetricFamily(
            "agency_exporter_otlp_held",
            "OTLP events waiting for their invoke_agent ancestor (events), and the parent links of "
            "their traces remembered to find it (links); together bounded by otlp.max_held_spans.",
            labels=["what"],
        )
        events = self.attribution.held
        held.add_metric(["events"], events)
        held.add_metric(["links"], self.attribution.size - events)
        yield held


def _counts(name: str, documentation: str, label: str, counts: dict[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for value, count in counts.items():
        family.add_metric([value], count)
    return family


class _PersistenceCollector(Collector):
    def __init__(self, persistence: Persistence) -> None:
        self.persistence = persistence

    def collect(self) -> Iterator[Metric]:
        state = self.persistence
        yield GaugeMetricFamily(
            "agency_exporter_persistence_writable",
            "1 while the latest snapshot and journal writes succeeded; 0: a restart may lose what "
            "was acknowledged since the last good snapshot.",
            value=int(state.writable),
        )
        yield GaugeMetricFamily(
            "agency_exporter_persistence_restore_rejected",
            "1 when the snapshot found at start could not be read: this process started empty "
            "(the file was moved aside).",
            value=int(state.restore_rejected),
        )
        yield _counts(
            "agency_exporter_persistence_failures",
            "Snapshot and journal writes that failed (disk full, read-only, permissions).",
            "operation",
            dict(state.failures),
        )
        yield GaugeMetricFamily(
            "agency_exporter_snapshot_last_success_timestamp_seconds",
            "When the latest snapshot was written.",
            value=state.last_success,
        )
        yield GaugeMetricFamily(
            "agency_exporter_snapshot_duration_seconds",
            "Time the latest snapshot took, from capture to rename.",
            value=state.last_duration,
        )
        yield GaugeMetricFamily(
            "agency_exporter_snapshot_longest_step_seconds",
            "The longest the event loop waited for one slice of the latest snapshot's capture.",
            value=state.longest_step,
        )
        yield GaugeMetricFamily(
            "agency_exporter_snapshot_size_bytes", "Size of the latest snapshot.", value=state.last_size
        )
        yield GaugeMetricFamily(
            "agency_exporter_journal_size_bytes",
            "Bytes journalled since the latest snapshot began.",
            value=state.journal_bytes,
        )


class _ReloadCollector(Collector):
    def __init__(self, reloadables: list[Reloadable[Any]]) -> None:
        self.reloadables = reloadables

    def collect(self) -> Iterator[Metric]:
        if not self.reloadables:
            return
        success = GaugeMetricFamily(
            "agency_exporter_reload_success",
            "1 when the last reload of the file succeeded; 0 while the previous settings stay in force.",
            labels=["file"],
        )
        when = GaugeMetricFamily(
            "agency_exporter_reload_success_timestamp_seconds",
            "When the file was last loaded successfully.",
            labels=["file"],
        )
        failures = CounterMetricFamily(
            "agency_exporter_reload_failures", "Reloads of the file that failed.", labels=["file"]
        )
        for reloadable in self.reloadables:
            success.add_metric([reloadable.kind], int(reloadable.success))
            when.add_metric([reloadable.kind], reloadable.success_time)
            failures.add_metric([reloadable.kind], reloadable.failures)
        yield from (success, when, failures)
