"""Exemplars from end to end: the SDK's trace ids reach /metrics as OpenMetrics exemplars."""

from __future__ import annotations

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from agency_telemetry.client import AgentPerformanceTracker, AsyncClient

from support.exporter import Exporter

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def exemplar_traces(text: str) -> dict[str, set[tuple[str, str | None]]]:
    """Histogram family -> the (trace_id, span_id) of the exemplars on its buckets."""
    found: dict[str, set[tuple[str, str | None]]] = {}
    for family in parse_openmetrics(text):
        for sample in family.samples:
            if sample.exemplar is not None:
                labels = sample.exemplar.labels
                found.setdefault(family.name, set()).add((labels["trace_id"], labels.get("span_id")))
    return found


async def test_the_sdk_passes_trace_ids_through_to_the_exemplars(exporter: Exporter) -> None:
    async with AsyncClient(str(exporter.client.make_url("")), flush_interval=0.01) as client:
        tracker = AgentPerformanceTracker("worker-1", "worker", client)
        async with tracker.task(trace_id=TRACE_ID, span_id=SPAN_ID):
            pass
        tracker.record_task_failure("timed out", 30_000, trace_id="1" * 32)
        tracker.record_llm_request("openai", "gpt-4o", 900, input_tokens=10, trace_id="2" * 32, span_id="3" * 16)
        tracker.record_tool_call("web_search", 30, trace_id="4" * 32)
        tracker.record_tool_call("web_search", 40)
        assert await client.flush(10)
    assert client.stats.rejected == 0
    assert exemplar_traces(await exporter.metrics(OPENMETRICS)) == {
        "agency_agent_task_duration_seconds": {(TRACE_ID, SPAN_ID), ("1" * 32, None)},
        "agency_llm_request_duration_seconds": {("2" * 32, "3" * 16)},
        "agency_tool_call_duration_seconds": {("4" * 32, None)},
    }
    assert TRACE_ID not in await exporter.metrics()
