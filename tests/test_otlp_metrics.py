"""``POST /v1/metrics`` over real HTTP: the GenAI client histograms from the real OpenTelemetry
SDK and its OTLP/HTTP exporter, cumulative and delta; resets, streams older than the exporter,
spans winning over metrics of the same service, and bad input."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from support import otel
from support.exporter import Exporter
from support.metrics import agent_samples, value

PROTOBUF = "application/x-protobuf"
MODEL = {"provider": "openai", "model": "gpt-4o-mini"}
PRICING = "pricing:\n  - {model: 'gpt-4o-mini', input: 0.15, output: 0.6}\n"


def endpoint(exporter: Exporter) -> str:
    return str(exporter.client.make_url("")).rstrip("/")


async def record(exporter: Exporter, batches: list[list[tuple[Any, ...]]], **options: Any) -> list[bool]:
    """Records each batch of requests and exports after each, as an app's periodic reader would."""
    provider, reader = otel.meter_provider(endpoint(exporter), **options)

    def run() -> list[bool]:
        client = otel.GenAiClientMetrics(provider)
        flushed = []
        for batch in batches:
            for request in batch:
                client.request(*request)
            flushed.append(reader.force_flush())
        provider.shutdown()
        return flushed

    return await asyncio.to_thread(run)


BATCHES = [
    [(0.5, 100, 20), (1.0, 200, 40), (3.0, 300, 60, "RateLimitError")],
    [(0.2, 50, 10), (30.0, 400, 80)],
]


async def check_counted_once(exporter: Exporter) -> None:
    text = await exporter.metrics()
    labels = {"agent": "agents-app", "agent_type": "worker", **MODEL}
    assert value(text, "agency_agent_llm_requests_total", **labels) == 5
    assert value(text, "agency_agent_llm_request_failures_total", **labels, error_class="rate_limited") == 1
    assert value(text, "agency_agent_llm_tokens_total", **labels, token_type="input") == 750  # the failed one has none
    assert value(text, "agency_agent_llm_tokens_total", **labels, token_type="output") == 150
    assert abs(value(text, "agency_agent_llm_cost_usd_total", **labels) - (750 * 0.15 + 150 * 0.6) / 1e6) < 1e-12
    assert value(text, "agency_llm_request_duration_seconds_count", **MODEL) == 5
    assert abs(value(text, "agency_llm_request_duration_seconds_sum", **MODEL) - 34.7) < 1e-9
    assert value(text, "agency_llm_request_duration_seconds_bucket", **MODEL, le="0.64") == 2
    assert value(text, "agency_llm_request_duration_seconds_bucket", **MODEL, le="1.28") == 3
    assert value(text, "agency_llm_request_duration_seconds_bucket", **MODEL, le="40.96") == 5


async def test_cumulative_sdk_metrics_count_each_request_once(make_exporter):
    exporter = await make_exporter(PRICING)
    assert await record(exporter, BATCHES, **{"agency.agent.type": "worker"}) == [True, True]
    await check_counted_once(exporter)


async def test_delta_sdk_metrics_count_the_same(make_exporter):
    exporter = await make_exporter(PRICING)
    assert await record(exporter, BATCHES, delta=True, **{"agency.agent.type": "worker"}) == [True, True]
    await check_counted_once(exporter)


async def test_metrics_of_a_service_whose_spans_count_are_superseded(exporter):
    resource = [{"key": "service.name", "value": {"stringValue": "agents-app"}}]
    chat = {
        "traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "0000000000000001",
        "name": "chat",
        "startTimeUnixNano": "1",
        "endTimeUnixNano": "2",
        "attributes": [{"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}}],
    }
    body = {"resourceSpans": [{"resource": {"attributes": resource}, "scopeSpans": [{"spans": [chat]}]}]}
    resp = await exporter.client.post("/v1/traces", data=json.dumps(body), headers={"Content-Type": "application/json"})
    assert resp.status == 200
    before = agent_samples(await exporter.metrics())
    assert await record(exporter, BATCHES) == [True, True]
    text = await exporter.metrics()
    assert agent_samples(text) == before
    assert value(text, "agency_exporter_otlp_items_total", signal="metrics", outcome="superseded") > 0


def histogram_request(start: int, count: int, tokens: float, service: str = "app", token_type: str = "input") -> bytes:
    """One cumulative gen_ai.client.token.usage point, built from the proto messages."""
    request = ExportMetricsServiceRequest()
    resource_metrics = request.resource_metrics.add()
    attribute = resource_metrics.resource.attributes.add(key="service.name")
    attribute.value.string_value = service
    metric = resource_metrics.scope_metrics.add().metrics.add(name="gen_ai.client.token.usage", unit="{token}")
    metric.histogram.aggregation_temporality = 2
    point = metric.histogram.data_points.add(start_time_unix_nano=start, time_unix_nano=start + 10, count=count)
    point.sum = tokens
    for key, text in (("gen_ai.token.type", token_type), ("gen_ai.provider.name", "openai")):
        point.attributes.add(key=key).value.string_value = text
    point.attributes.add(key="gen_ai.request.model").value.string_value = "gpt-4o-mini"
    point.bucket_counts.extend([count])
    other = resource_metrics.scope_metrics[0].metrics.add(name="http.client.duration")
    other.gauge.data_points.add(as_double=1.0)
    return request.SerializeToString()


async def post_metrics(exporter: Exporter, body: bytes, content_type: str = PROTOBUF) -> Any:
    return await exporter.client.post("/v1/metrics", data=body, headers={"Content-Type": content_type})


def input_tokens(text: str, agent: str = "app") -> float | None:
    return value(text, "agency_agent_llm_tokens_total", agent=agent, agent_type="unknown", **MODEL, token_type="input")


async def test_a_new_start_time_is_a_reset_and_an_older_stream_counts_from_its_next_point(exporter):
    now = time.time_ns()
    old = now - 3600 * 10**9  # an app running since before the exporter started
    for start, count, tokens in ((old, 10, 5000.0), (old, 12, 5600.0)):
        resp = await post_metrics(exporter, histogram_request(start, count, tokens))
        assert resp.status == 200
        answer = ExportMetricsServiceResponse.FromString(await resp.read())
        assert not answer.HasField("partial_success")
    assert input_tokens(await exporter.metrics()) == 600  # its history before the exporter is not a spike
    await post_metrics(exporter, histogram_request(now, 3, 90.0))  # the app restarted: a new start
    assert input_tokens(await exporter.metrics()) == 690
    await post_metrics(exporter, histogram_request(now, 4, 100.0))
    text = await exporter.metrics()
    assert input_tokens(text) == 700
    assert value(text, "agency_exporter_otlp_items_total", signal="metrics", outcome="ignored") == 4  # the gauges


async def test_bad_metrics_get_the_otlp_answer_and_change_nothing(exporter):
    before = agent_samples(await exporter.metrics())
    resp = await post_metrics(exporter, b"\x0a\xff\xff")
    assert resp.status == 400
    assert (await post_metrics(exporter, b"{}", "text/plain")).status == 415
    negative = histogram_request(time.time_ns(), 1, -5.0, service="bad app")
    resp = await post_metrics(exporter, negative)
    assert resp.status == 200
    partial = ExportMetricsServiceResponse.FromString(await resp.read()).partial_success
    assert partial.rejected_data_points == 1
    assert "'bad app' is not a valid label value" in partial.error_message
    assert agent_samples(await exporter.metrics()) == before


async def test_a_token_type_the_series_do_not_have_adds_no_agent(exporter):
    before = agent_samples(await exporter.metrics())
    resp = await post_metrics(exporter, histogram_request(time.time_ns(), 3, 90.0, token_type="cache"))
    assert not ExportMetricsServiceResponse.FromString(await resp.read()).HasField("partial_success")
    text = await exporter.metrics()
    assert agent_samples(text) == before
    assert value(text, "agency_exporter_otlp_items_total", signal="metrics", outcome="ignored") == 2  # and the gauge
