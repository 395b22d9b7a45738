"""Spans made and sent by the real OpenTelemetry SDK and its OTLP/HTTP exporter.

The SDK's exporter is synchronous, so everything here runs in a worker thread
(``asyncio.to_thread``) while the test's event loop serves the exporter under test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.metrics import Histogram, MeterProvider
from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import Span, Status, StatusCode, Tracer


class Recording(SpanExporter):
    """Passes each export to the OTLP exporter and keeps its result: one request per span
    with a SimpleSpanProcessor, so children go in requests before their parent's."""

    def __init__(self, inner: OTLPSpanExporter) -> None:
        self.inner = inner
        self.results: list[SpanExportResult] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        result = self.inner.export(spans)
        self.results.append(result)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()


def provider(
    endpoint: str, service: str = "agents-app", headers: dict[str, str] | None = None, **resource: Any
) -> tuple[TracerProvider, Recording]:
    """A tracer provider sending every ended span at once, gzip-compressed protobuf."""
    exporter = OTLPSpanExporter(
        endpoint=f"{endpoint}/v1/traces", compression=Compression.Gzip, headers=headers or {}, timeout=5
    )
    recording = Recording(exporter)
    tracer_provider = TracerProvider(resource=Resource.create({"service.name": service, **resource}))
    tracer_provider.add_span_processor(SimpleSpanProcessor(recording))
    return tracer_provider, recording


@contextlib.contextmanager
def span(tracer: Tracer, name: str, error: str | None = None, **attributes: Any) -> Iterator[Span]:
    with tracer.start_as_current_span(name, attributes=attributes, record_exception=False) as current:
        yield current
        if error is not None:
            current.set_status(Status(StatusCode.ERROR, "it went wrong"))
            current.set_attribute("error.type", error)


def agent_run(tracer: Tracer, agent: str, *, tokens: tuple[int, int] = (120, 30), error: str | None = None) -> None:
    """One agent task as GenAI instrumentations make it: invoke_agent > chat, execute_tool."""
    with span(
        tracer, f"invoke_agent {agent}", error, **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent}
    ):
        with span(
            tracer,
            "chat gpt-4o",
            **{
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o",
                "gen_ai.response.model": "gpt-4o-2024-08-06",
                "gen_ai.usage.input_tokens": tokens[0],
                "gen_ai.usage.output_tokens": tokens[1],
            },
        ):
            pass
        with span(
            tracer, "execute_tool search", **{"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "search"}
        ):
            pass


def meter_provider(
    endpoint: str, service: str = "agents-app", delta: bool = False, **resource: Any
) -> tuple[MeterProvider, PeriodicExportingMetricReader]:
    """A meter provider exporting on force_flush only (gzip protobuf), cumulative unless ``delta``."""
    temporality = {Histogram: AggregationTemporality.DELTA} if delta else {}
    exporter = OTLPMetricExporter(
        endpoint=f"{endpoint}/v1/metrics",
        compression=Compression.Gzip,
        timeout=5,
        preferred_temporality=temporality,  # type: ignore[arg-type]
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    resource_ = Resource.create({"service.name": service, **resource})
    return MeterProvider(resource=resource_, metric_readers=[reader]), reader


# The GenAI conventions' advised bucket bounds of gen_ai.client.operation.duration.
DURATION_BOUNDS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)


class GenAiClientMetrics:
    """The two client histograms an instrumented LLM client records per request."""

    def __init__(self, provider: MeterProvider) -> None:
        meter = provider.get_meter("genai-client")
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", explicit_bucket_boundaries_advisory=DURATION_BOUNDS
        )
        self.tokens = meter.create_histogram("gen_ai.client.token.usage", unit="{token}")

    def request(self, seconds: float, input_tokens: int, output_tokens: int, error: str | None = None) -> None:
        attributes = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
        }
        if error is not None:
            self.duration.record(seconds, {**attributes, "error.type": error})
            return
        self.duration.record(seconds, attributes)
        self.tokens.record(input_tokens, {**attributes, "gen_ai.token.type": "input"})
        self.tokens.record(output_tokens, {**attributes, "gen_ai.token.type": "output"})
