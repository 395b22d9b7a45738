"""Exemplars from end to end: the SDK's trace ids reach /metrics as OpenMetrics exemplars, and a
real Prometheus with exemplar storage scrapes them and answers them back."""

from __future__ import annotations

import asyncio
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from agency_telemetry.client import AgentPerformanceTracker, AsyncClient

from support.events import ndjson
from support.exporter import Exporter
from support.stack import Stack

OPENMETRICS = "application/openmetrics-text; version=1.0.0"
TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
WORKER = {"agent": "worker-1", "agent_type": "worker"}


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


# --- a real Prometheus ---------------------------------------------------------------------


def post_events(url: str, events: list[dict[str, Any]]) -> None:
    request = urllib.request.Request(
        f"{url}/v1/events", data=ndjson(events), headers={"Content-Type": "application/x-ndjson"}
    )
    urllib.request.urlopen(request, timeout=5).close()


def wait_for_exemplars(stack: Stack, expr: str, timeout: float = 30) -> list[dict[str, Any]]:
    """Polls Prometheus' exemplar API until ``expr`` has exemplars (a scrape or two)."""
    deadline = time.monotonic() + timeout
    while not (found := stack.exemplars(expr)):
        assert time.monotonic() < deadline, f"no exemplars for {expr} within {timeout} s:\n{stack.log('prometheus')}"
        time.sleep(0.25)
    return found


@pytest.mark.integration
async def test_prometheus_with_exemplar_storage_reads_the_trace_id_back(tmp_path: Path) -> None:
    stack = await asyncio.to_thread(
        Stack.start,
        tmp_path,
        fleet=False,
        rule_files=(),
        prometheus_args=["--enable-feature=exemplar-storage"],
    )
    try:
        event = {"type": "task_completed", **WORKER, "duration": 430, "trace_id": TRACE_ID, "span_id": SPAN_ID}
        await asyncio.to_thread(post_events, stack.exporter_url, [event])
        expr = 'agency_agent_task_duration_seconds_bucket{agent="worker-1"}'
        [series] = await asyncio.to_thread(wait_for_exemplars, stack, expr)
    finally:
        await asyncio.to_thread(stack.stop)
    assert series["seriesLabels"]["le"] == "0.5"
    [exemplar] = series["exemplars"]
    assert exemplar["labels"] == {"trace_id": TRACE_ID, "span_id": SPAN_ID}
    assert float(exemplar["value"]) == 0.43
