"""``POST /v1/traces`` (and ``/v1/metrics``): OTLP/HTTP requests as events, behind the same gate
as ``/v1/events`` (:class:`ingest.Ingest`: tokens, scopes, rate and body limits, self-metrics).

OTLP clients cannot fix part of a request and resend it, so a request is never refused for
some of its items: what can be used is applied, and the answer's ``partial_success`` counts and
explains the rest — items that fail validation, and those naming an agent past
``limits.max_agents``. Only a request of which nothing can be read (400), or a refusal of the
whole (auth, size, rate, overload), gets an error status, with a ``google.rpc.Status`` body.
"""

from __future__ import annotations

from aiohttp import web
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from .attribution import Attribution, Plan, Released
from .config import Config
from .datapoints import PointMapper, SpanServices
from .decoder import EventDecoder, InvalidBatch
from .events import Event, TaskStarted
from .ingest import Batch, Refused
from .otlp import (
    JSON,
    MEDIA_TYPES,
    check_media_type,
    decode_metrics,
    decode_traces,
    encode,
    metrics_response,
    status,
    traces_response,
)
from .refusals import refusal_headers, refusal_status
from .selfmetrics import SelfMetrics
from .spans import SpanMapper
from .store import Applied, Store
from .tokens import Forbidden, Token, Tokens


class _OtlpReader:
    """What the OTLP readers share: media types, error answers, applying what fits."""

    def __init__(self, config: Config, self_metrics: SelfMetrics) -> None:
        self.self_metrics = self_metrics
        self.max_items = config.limits.max_events_per_batch
        self.decoder = EventDecoder(
            config.agent_types, config.limits.max_label_length, config.limits.max_events_per_batch
        )

    def check_media_type(self, media_type: str) -> None:
        check_media_type(media_type)

    def refused(self, refused: Refused) -> web.Response:
        http_status = refusal_status(refused.reason)
        encoding = refused.media_type if refused.media_type in MEDIA_TYPES else JSON
        return web.Response(
            status=http_status,
            body=encode(status(http_status, refused.message), encoding),
            content_type=encoding,
            headers=refusal_headers(refused.reason, refused.retry_after, refused.headers),
        )

    def _check_size(self, items: int, what: str) -> None:
        if items > self.max_items:
            message = (
                f"the request holds {items} {what}; at most {self.max_items} are accepted per request "
                "(limits.max_events_per_batch): lower the exporter's batch size"
            )
            raise InvalidBatch("batch_too_large", message, events=items)

    def _apply_fitting(self, store: Store, events: list[Event], batch: Batch) -> Applied:
        """Applies what fits the limits; the rest is rejected in the batch and counted by reason."""
        applied, left = store.apply_fitting(events)
        for reason, message, out in left:
            batch.rejected += sum(type(event) is not TaskStarted for event in out)  # a task's start is no span
            batch.problems.append(message)
            self.self_metrics.rejected_events(reason, len(out))
        return applied


class OtlpTraces(_OtlpReader):
    """``POST /v1/traces``: GenAI spans as tasks, LLM requests and tool calls (:mod:`spans`)."""

    def __init__(
        self, config: Config, self_metrics: SelfMetrics, attribution: Attribution, services: SpanServices
    ) -> None:
        super().__init__(config, self_metrics)
        self.mapper = SpanMapper(config, self.decoder)
        self.attribution = attribution
        self.services = services

    def read(self, body: bytes, media_type: str, token: Token | None) -> Batch:
        request = decode_traces(body, media_type)
        self._check_size(sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans), "spans")
        mapped = self.mapper.map(request, sender=token)
        self.self_metrics.otlp_received("traces", mapped.spans, mapped.ignored, mapped.rejected)
        plan = self.attribution.plan(mapped)
        return Batch(plan.ready, mapped.rejected, mapped.problems, plan=plan)

    def apply(self, store: Store, batch: Batch) -> Applied:
        applied = self._apply_fitting(store, batch.events, batch)
        plan: Plan = batch.plan
        self.services.saw(plan.inference_services)
        self._apply_released(store, plan.released + self.attribution.commit(plan))
        return applied

    def accepted(self, batch: Batch, applied: Applied, media_type: str) -> web.Response:
        message = _message(batch.rejected, batch.problems, "spans")
        body = encode(traces_response(batch.rejected, message), media_type)
        return web.Response(status=200, body=body, content_type=media_type)

    def sweep(self, store: Store) -> None:
        """Counts the events held past ``otlp.attribution_hold`` under their fallback agent."""
        self._apply_released(store, self.attribution.expire())

    def release_held(self, store: Store) -> None:
        """Counts every held event at once, under its fallback agent (the exporter is stopping)."""
        self._apply_released(store, self.attribution.release_all())

    def _apply_released(self, store: Store, released: list[Released]) -> None:
        """Applies events of earlier requests that are countable now, each within the scope of
        the token that sent it (one outside is dropped and counted as forbidden)."""
        allowed = [event for sender, event in released if sender is None or self._in_scope(sender, event)]
        if allowed:
            self._apply_fitting(store, allowed, Batch([]))

    def _in_scope(self, token: Token, event: Event) -> bool:
        try:
            Tokens.authorize(token, [event])
        except Forbidden:
            self.self_metrics.rejected_events("forbidden", 1)
            return False
        return True


class OtlpMetrics(_OtlpReader):
    """``POST /v1/metrics``: the GenAI client histograms as LLM usage (:mod:`datapoints`)."""

    def __init__(self, config: Config, self_metrics: SelfMetrics, services: SpanServices) -> None:
        super().__init__(config, self_metrics)
        self.mapper = PointMapper(config, self.decoder, services)
        self.services = services
        self.stream_ttl = config.expiry.agent_ttl

    def read(self, body: bytes, media_type: str, token: Token | None) -> Batch:
        request = decode_metrics(body, media_type)
        self._check_size(_points(request), "data points")
        mapped = self.mapper.map(request)
        self.self_metrics.otlp_received("metrics", mapped.points, mapped.ignored, mapped.rejected, mapped.superseded)
        return Batch(mapped.events, mapped.rejected, mapped.problems, plan=mapped)

    def apply(self, store: Store, batch: Batch) -> Applied:
        applied = self._apply_fitting(store, batch.events, batch)
        self.mapper.commit(batch.plan)
        return applied

    def accepted(self, batch: Batch, applied: Applied, media_type: str) -> web.Response:
        message = _message(batch.rejected, batch.problems, "data points")
        body = encode(metrics_response(batch.rejected, message), media_type)
        return web.Response(status=200, body=body, content_type=media_type)

    def sweep(self) -> None:
        """Forgets streams silent past ``expiry.agent_ttl``, and services whose spans stopped."""
        self.mapper.forget(self.stream_ttl)
        self.services.forget()


def _points(request: ExportMetricsServiceRequest) -> int:
    count = 0
    for resource_metrics in request.resource_metrics:
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                kind = metric.WhichOneof("data")
                count += len(getattr(metric, kind).data_points) if kind else 0
    return count


def _message(rejected: int, problems: list[str], what: str, shown: int = 5) -> str:
    if not problems:
        return ""
    more = len(problems) - shown
    listed = "; ".join(problems[:shown]) + (f"; and {more} more" if more > 0 else "")
    return f"{rejected} {what} rejected, the rest applied: {listed}"


def otlp_readers(config: Config, store: Store, self_metrics: SelfMetrics) -> tuple[OtlpTraces, OtlpMetrics]:
    """The readers of ``/v1/traces`` and ``/v1/metrics``, sharing what spans tell about metrics."""
    attribution = Attribution(config.otlp.attribution_hold, config.otlp.max_held_spans, store.clock)
    self_metrics.watch_attribution(attribution)
    services = SpanServices(config.otlp.spans_win_window)
    return OtlpTraces(config, self_metrics, attribution, services), OtlpMetrics(config, self_metrics, services)
