"""OTLP metrics as LLM usage, following the OpenTelemetry GenAI conventions.

The two client histograms are read: ``gen_ai.client.operation.duration`` gives the requests
(its count; those with ``error.type`` failed) and their latency buckets,
``gen_ai.client.token.usage`` the input and output tokens (its sum, by ``gen_ai.token.type``).
They carry no agent: the agent is the point's ``gen_ai.agent.name`` if an instrumentation adds
one, else the resource's ``service.name``. Each request's increments become ``llm_usage``
events, validated by the same decoder as the JSON API. Other metrics are acknowledged and
counted as ignored.

Cumulative streams are turned into increments per stream (resource, metric, attributes): the
difference from the stream's previous point, or the whole value when its start time changed or
a value went down (a reset). A stream first seen counts in full only if it started after the
exporter did; an older one (the exporter restarted under a running app) counts from its next
point, so a restart never shows an app's whole history as one spike. Delta points count as
they are.

An app that exports both spans and these metrics for the same calls would count twice: spans
win. A service that sent GenAI inference spans within ``otlp.spans_win_window`` has its
metrics acknowledged and counted as ``superseded``, never applied (spans know the agent).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from .config import Config
from .decoder import EventDecoder
from .events import Event
from .genai import UNKNOWN, AgentTypes, attributes, describe, provider_and_model, text, whole

TOKEN_USAGE = "gen_ai.client.token.usage"
OPERATION_DURATION = "gen_ai.client.operation.duration"
DELTA, CUMULATIVE = 1, 2  # opentelemetry.proto.metrics.v1.AggregationTemporality
TOKEN_FIELDS = {"input": "input_tokens", "output": "output_tokens"}  # gen_ai.token.type → llm_usage field
MILLISECONDS = {"s": 1000.0, "ms": 1.0}  # a bare llm_usage duration_sum is in milliseconds

StreamKey = tuple[Any, ...]
UsageKey = tuple[str, str | None, str, str, str | None]  # agent, agent type, provider, model, failure reason


class SpanServices:
    """Services that sent GenAI inference spans lately, by the wall-clock time they last did."""

    def __init__(self, window: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window = window
        self.clock = clock
        self.last: dict[str, float] = {}

    def saw(self, services: Iterable[str]) -> None:
        now = self.clock()
        for service in services:
            self.last[service] = now

    def recent(self, service: str | None) -> bool:
        seen = self.last.get(service or "")
        return seen is not None and self.clock() - seen <= self.window

    def forget(self) -> None:
        since = self.clock() - self.window
        for service in [s for s, seen in self.last.items() if seen < since]:
            del self.last[service]


@dataclass
class _Point:
    """A histogram point's values: count, sum, bucket counts, the start of its stream and its time."""

    start: int
    time: int
    count: int
    sum: float
    buckets: list[int]

    def minus(self, previous: _Point | None) -> _Point:
        """The increment since ``previous``: all of it after a reset."""
        if previous is None or previous.start != self.start or self._went_down(previous):
            return self
        buckets = [now - before for now, before in zip(self.buckets, previous.buckets, strict=True)]
        return _Point(self.start, self.time, self.count - previous.count, self.sum - previous.sum, buckets)

    def _went_down(self, previous: _Point) -> bool:
        return (
            self.count < previous.count
            or len(self.buckets) != len(previous.buckets)
            or any(now < before for now, before in zip(self.buckets, previous.buckets, strict=True))
        )


class _Resource(NamedTuple):
    attrs: dict[str, Any]
    identity: tuple[Any, ...]  # every attribute: part of each stream's key
    superseded: bool  # its service sent GenAI spans lately: spans win


@dataclass
class MappedPoints:
    """What one request's data points give, and the new last points of its cumulative streams."""

    usages: dict[UsageKey, _Usage] = field(default_factory=dict)
    events: list[Event] = field(default_factory=list)
    streams: dict[StreamKey, _Point] = field(default_factory=dict)  # cumulative streams' new last points
    points: int = 0
    ignored: int = 0
    superseded: int = 0
    rejected: int = 0
    problems: list[str] = field(default_factory=list)


class _Usage:
    """One llm_usage event being summed up from data points."""

    def __init__(self, key: UsageKey) -> None:
        agent, agent_type, provider, model, reason = key
        self.body: dict[str, Any] = {"type": "llm_usage", "agent": agent, "provider": provider, "model": model}
        if agent_type:
            self.body["agent_type"] = agent_type
        if reason:
            self.body["reason"] = reason
        self.failed = reason is not None
        self.where: list[str] = []

    def add_tokens(self, field_name: str, tokens: float) -> None:
        self.body[field_name] = self.body.get(field_name, 0) + whole(tokens)

    def add_durations(self, increment: _Point, bounds: list[float], to_milliseconds: float) -> None:
        body = self.body
        body["requests"] = body.get("requests", 0) + increment.count
        if self.failed:
            body["failures"] = body.get("failures", 0) + increment.count
        seconds = 1000.0 / to_milliseconds
        pairs = body.setdefault("durations", [])
        for index, count in enumerate(increment.buckets):
            if count:
                pairs.append([bounds[index] / seconds if index < len(bounds) else None, count])
        body["duration_sum"] = body.get("duration_sum", 0.0) + increment.sum * to_milliseconds


class PointMapper:
    """Maps metrics requests for one configuration; keeps the last point of cumulative streams."""

    def __init__(
        self, config: Config, decoder: EventDecoder, services: SpanServices, wall_clock: Callable[[], float] = time.time
    ) -> None:
        self.decoder = decoder
        self.services = services
        self.max_streams = config.otlp.max_metric_streams
        self.started = int(wall_clock() * 1e9)  # streams that started before the exporter count from their next point
        self.last: dict[StreamKey, _Point] = {}
        self.agent_types = AgentTypes(config)

    def map(self, request: ExportMetricsServiceRequest) -> MappedPoints:
        mapped = MappedPoints()
        for resource_metrics in request.resource_metrics:
            attrs = attributes(resource_metrics.resource.attributes)
            resource = _Resource(attrs, tuple(sorted(attrs.items())), self.services.recent(attrs.get("service.name")))
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    self._metric(metric, resource, mapped)
        self._validate(mapped)
        return mapped

    def commit(self, mapped: MappedPoints) -> None:
        self.last.update(mapped.streams)

    def forget(self, idle_seconds: float, wall_clock: Callable[[], float] = time.time) -> None:
        """Drops cumulative streams whose last point is older than ``idle_seconds`` (their app is gone)."""
        idle_before = int((wall_clock() - idle_seconds) * 1e9)
        for key in [key for key, point in self.last.items() if point.time < idle_before]:
            del self.last[key]

    def _metric(self, metric: Any, resource: _Resource, mapped: MappedPoints) -> None:
        kind = metric.WhichOneof("data")
        points = getattr(metric, kind).data_points if kind else ()
        mapped.points += len(points)
        if metric.name not in (TOKEN_USAGE, OPERATION_DURATION) or kind != "histogram":
            mapped.ignored += len(points)
            return
        temporality = metric.histogram.aggregation_temporality
        to_milliseconds = MILLISECONDS.get(metric.unit or "s")
        if temporality not in (DELTA, CUMULATIVE) or (metric.name == OPERATION_DURATION and to_milliseconds is None):
            mapped.rejected += len(points)
            what = f"unit {metric.unit!r} (give s or ms)" if to_milliseconds is None else "no temporality"
            mapped.problems.append(f"{metric.name}: {what}")
            return
        for point in points:
            attrs = attributes(point.attributes)
            stream = (resource.identity, metric.name, tuple(sorted(attrs.items())))
            increment = self._increment(stream, point, temporality, mapped)
            if resource.superseded:
                mapped.superseded += 1
                continue
            if increment is None or not (increment.count or increment.sum):
                continue
            token_field = TOKEN_FIELDS.get(attrs.get("gen_ai.token.type", ""))
            if metric.name == TOKEN_USAGE and token_field is None:
                mapped.ignored += 1  # a token type the series do not have: no usage, not even an empty one
                continue
            key = self._usage_key(attrs, resource.attrs)
            usage = mapped.usages.get(key) or mapped.usages.setdefault(key, _Usage(key))
            usage.where.append(metric.name)
            if token_field is not None and metric.name == TOKEN_USAGE:
                usage.add_tokens(token_field, increment.sum)
            else:
                usage.add_durations(increment, list(point.explicit_bounds), to_milliseconds or 1.0)

    def _increment(self, key: StreamKey, point: Any, temporality: int, mapped: MappedPoints) -> _Point | None:
        """The point's increment; None for the first point of a cumulative stream older than the exporter."""
        current = _Point(
            point.start_time_unix_nano, point.time_unix_nano, point.count, point.sum, list(point.bucket_counts)
        )
        if temporality == DELTA:
            return current
        previous = mapped.streams.get(key) or self.last.get(key)
        if previous is None and len(self.last) + len(mapped.streams) >= self.max_streams:
            mapped.problems.append(f"{key[1]}: more than {self.max_streams} streams (otlp.max_metric_streams)")
            mapped.rejected += 1
            return None
        mapped.streams[key] = current
        if previous is None and current.start < self.started:
            return None
        return current.minus(previous)

    def _usage_key(self, attrs: dict[str, Any], resource: dict[str, Any]) -> UsageKey:
        provider, model = provider_and_model(attrs)
        agent = text(attrs.get("gen_ai.agent.name")) or text(resource.get("service.name")) or UNKNOWN
        return agent, self.agent_types.of(agent, attrs, resource), provider, model, text(attrs.get("error.type"))

    def _validate(self, mapped: MappedPoints) -> None:
        ordered = list(mapped.usages.values())
        events, problems = self.decoder.validate([usage.body for usage in ordered])
        for problem in problems:
            usage = ordered[problem.index or 0]
            mapped.problems.append(
                f"{' and '.join(sorted(set(usage.where)))} of {usage.body['agent']}: {describe(problem)}"
            )
        mapped.rejected += len({problem.index for problem in problems})
        mapped.events.extend(event for event in events if event is not None)
