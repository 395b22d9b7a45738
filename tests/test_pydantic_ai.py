"""A real agent framework end to end, offline: the Pydantic AI agents of
examples/pydantic_ai_agents.py, traced by Pydantic AI's own OpenTelemetry instrumentation and
sent by the OpenTelemetry SDK's OTLP/HTTP exporter (BatchSpanProcessor, gzip protobuf) to an
exporter configured with examples/pydantic_ai.yaml.

Every expected number comes from what the example's fake models answered (their responses,
with the usage they reported, and the requests they refused) and the example's data, never
from the exporter. Nothing may leave the loopback interface while the agents run."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export import SpanExportResult
from pydantic_ai.messages import ToolCallPart

from agency_telemetry.config import Price, parse_config

from examples import pydantic_ai_agents as example
from support import otel
from support.exporter import Exporter
from support.metrics import agent_samples, samples, value

CONFIG = Path(__file__).resolve().parent.parent / "examples/pydantic_ai.yaml"
TYPES = {"triage": "orchestrator", "researcher": "researcher"}  # as examples/pydantic_ai.yaml types them


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Refuses every connection and name lookup past the loopback interface, in every thread;
    no OTEL_* setting of the environment redirects or disables the SDK, and Logfire (were it
    installed) sends nothing."""
    for name in (
        "OTEL_SDK_DISABLED",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
        "OTEL_EXPORTER_OTLP_HEADERS",
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LOGFIRE_SEND_TO_LOGFIRE", "false")
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            raise OSError(f"the test is offline: no connection to {address}")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
            raise OSError(f"the test is offline: no name lookup of {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def test_the_offline_guard_refuses_the_network() -> None:
    with pytest.raises(OSError, match="offline"):
        socket.create_connection(("203.0.113.7", 443), timeout=1)
    with pytest.raises(OSError, match="offline"):
        socket.getaddrinfo("api.openai.com", 443)
    with pytest.raises(OSError, match="offline"), socket.socket() as sock:
        sock.connect(("api.openai.com", 443))


def endpoint(exporter: Exporter) -> str:
    return str(exporter.client.make_url("")).rstrip("/")


async def run_example(
    exporter: Exporter, batch: int = 512, **fleet_options: Any
) -> tuple[example.Fleet, list[example.Outcome], otel.Recording]:
    """The example's runs in a worker thread (the SDK's exporter blocks), the provider shut down
    (so every span was exported) before this returns."""
    recording = otel.Recording(example.otlp_exporter(endpoint(exporter)))
    provider = example.tracer_provider(recording, max_export_batch_size=batch)
    fleet = example.build_fleet(provider, **fleet_options)

    def run() -> list[example.Outcome]:
        try:
            return asyncio.run(example.run_fleet(fleet))
        finally:
            provider.shutdown()

    outcomes = await asyncio.to_thread(run)
    return fleet, outcomes, recording


def tool_calls(model: example.FakeModel) -> list[ToolCallPart]:
    return [part for response in model.responses for part in response.parts if isinstance(part, ToolCallPart)]


def series(text: str, name: str, *keys: str) -> set[tuple[str, ...]]:
    """The values of ``keys`` of every sample of ``name``: which series there are."""
    return {tuple(dict(labels)[key] for key in keys) for (n, labels), _ in samples(text).items() if n == name}


def total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` that have ``labels``, over their other labels."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples(text).items() if n == name and wanted <= ls)


def reported(model: example.FakeModel) -> dict[str, int]:
    """The tokens a fake model reported, by token_type: input includes cache_read, output reasoning."""
    usages = [response.usage for response in model.responses]
    return {
        "input": sum(usage.input_tokens for usage in usages),
        "output": sum(usage.output_tokens for usage in usages),
        "cache_read": sum(usage.cache_read_tokens for usage in usages),
        "cache_write": sum(usage.cache_write_tokens for usage in usages),
        "reasoning": sum(usage.details.get("reasoning_tokens", 0) for usage in usages),
    }


def spend(price: Price, tokens: dict[str, int]) -> float:
    """USD per million tokens: cached input at cache_read, reasoning output at reasoning."""
    assert tokens["cache_write"] == 0 and price.cache_read is not None and price.reasoning is not None
    uncached = tokens["input"] - tokens["cache_read"]
    answered = tokens["output"] - tokens["reasoning"]
    usd = uncached * price.input + tokens["cache_read"] * price.cache_read
    return (usd + answered * price.output + tokens["reasoning"] * price.reasoning) / 1e6


@pytest.mark.parametrize(
    "options",
    [
        {},  # Pydantic AI's defaults: agent spans repeat their usage as gen_ai.aggregated_usage.*
        {"aggregated_usage_names": False},  # ... as gen_ai.usage.*, which must not be counted again
        {"include_content": False},  # no status descriptions: failures are known by exception.type alone
        {"batch": 2},  # children in earlier requests than their agent span: held until it comes
    ],
    ids=["defaults", "usage_on_agent_spans", "without_content", "small_batches"],
)
async def test_pydantic_ai_agents_count_per_agent_tasks_llm_requests_tokens_spend_and_tool_calls(
    make_exporter: Any, options: dict[str, Any]
) -> None:
    config = parse_config(CONFIG.read_text(), str(CONFIG))
    exporter = await make_exporter(config)
    fleet, outcomes, recording = await run_example(exporter, **options)
    assert set(recording.results) == {SpanExportResult.SUCCESS}
    if "batch" in options:  # else the short runs' spans usually all go in one request, at shutdown
        assert len(recording.results) > 1

    # The scenario the example promises: ticket 404 does not exist, and the third triage run
    # failed because its researcher's provider refused a request.
    failed = [outcome for outcome in outcomes if outcome.error is not None]
    assert len(outcomes) == len(example.RUNS) and len(failed) == 1 and failed[0].error.status_code == 429
    assert fleet.models["researcher"].refused == 1 and fleet.models["triage"].refused == 0

    text = await exporter.metrics()
    calls = {agent: Counter(call.tool_name for call in tool_calls(model)) for agent, model in fleet.models.items()}
    runs = {"triage": len(outcomes), "researcher": calls["triage"]["ask_researcher"]}  # one run per delegation
    failures = {"triage": len(failed), "researcher": fleet.models["researcher"].refused}  # a refusal ends its run
    check_tasks(text, runs, failures)
    check_llm_requests(text, fleet, {price.model: price for price in config.pricing})
    check_tool_calls(text, fleet, calls, failures)

    # Every chat and tool span found its invoke_agent ancestor; nothing counted for the service,
    # nothing rejected, nothing left held once the provider shut down.
    children = sum(model.requests for model in fleet.models.values()) + sum(sum(c.values()) for c in calls.values())
    assert value(text, "agency_exporter_otlp_attributions_total", via="ancestor") == children
    assert value(text, "agency_exporter_otlp_attributions_total", via="agent_name") == 0
    assert value(text, "agency_exporter_otlp_attributions_total", via="service") == 0
    mapped = sum(runs.values()) + children
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="mapped") == mapped
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="rejected") == 0
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="ignored") == 0
    assert value(text, "agency_exporter_otlp_held", what="events") == 0
    assert value(text, "agency_exporter_otlp_held", what="links") == 0
    agents = {dict(labels).get("agent") for _, labels in agent_samples(text)} - {None}
    assert agents == set(TYPES)  # not the service.name


def check_tasks(text: str, runs: dict[str, int], failures: dict[str, int]) -> None:
    """Every run of each agent is a task; a failed one is rate_limited (a 429 ended it)."""
    for agent, agent_type in TYPES.items():
        labels = {"agent": agent, "agent_type": agent_type}
        assert value(text, "agency_agent_tasks_total", **labels) == runs[agent], agent
        assert value(text, "agency_agent_task_duration_seconds_count", **labels) == runs[agent], agent
        assert value(text, "agency_agent_task_failures_total", **labels, error_class="rate_limited") == failures[agent]
        assert total(text, "agency_agent_task_failures_total", **labels) == failures[agent], agent
        assert value(text, "agency_agent_active_tasks", **labels) == 0  # a span is a whole task


def check_llm_requests(text: str, fleet: example.Fleet, prices: dict[str, Price]) -> None:
    """Requests, tokens as the fake models reported them and their spend, from chat spans only:
    the agent spans repeat their run's usage (as gen_ai.aggregated_usage.* or gen_ai.usage.*)."""
    for agent, model in fleet.models.items():
        labels = {"agent": agent, "agent_type": TYPES[agent], "provider": example.PROVIDER, "model": model.name}
        tokens = reported(model)
        assert tokens["input"] > tokens["cache_read"] > 0 and tokens["output"] > 0
        assert value(text, "agency_agent_llm_requests_total", **labels) == model.requests, agent
        for token_type, count in tokens.items():
            assert value(text, "agency_agent_llm_tokens_total", **labels, token_type=token_type) == count, token_type
        cost = value(text, "agency_agent_llm_cost_usd_total", **labels)
        assert cost == pytest.approx(spend(prices[model.name], tokens), rel=1e-9), agent
        refused = value(text, "agency_agent_llm_request_failures_total", **labels, error_class="rate_limited")
        assert (refused or 0) == model.refused, agent
        assert total(text, "agency_agent_llm_request_failures_total", **labels) == model.refused, agent
        model_labels = {"provider": example.PROVIDER, "model": model.name}
        assert value(text, "agency_llm_request_duration_seconds_count", **model_labels) == model.requests
        assert value(text, "agency_exporter_llm_unpriced_requests_total", **model_labels) is None
    models = {(agent, example.PROVIDER, model.name) for agent, model in fleet.models.items()}
    assert series(text, "agency_agent_llm_requests_total", "agent", "provider", "model") == models
    assert series(text, "agency_agent_llm_tokens_total", "agent", "provider", "model") == models


def check_tool_calls(text: str, fleet: example.Fleet, calls: dict[str, Counter[str]], failures: dict[str, int]) -> None:
    """Every call the models asked for, under the agent whose model asked; failed where the tool
    failed (no such ticket: ToolFailed) or the run it delegated to did."""
    tickets = [
        call.args_as_dict()["ticket"]
        for call in tool_calls(fleet.models["triage"])
        if call.tool_name == "lookup_ticket"
    ]
    missing = sum(ticket not in example.TICKETS for ticket in tickets)
    assert missing == 1
    failed = {("triage", "lookup_ticket"): missing, ("triage", "ask_researcher"): failures["researcher"]}
    assert set(calls["triage"]) == {"lookup_ticket", "ask_researcher"} and set(calls["researcher"]) == {"search_docs"}
    assert series(text, "agency_agent_tool_calls_total", "agent", "tool") == {
        (agent, tool) for agent, counts in calls.items() for tool in counts
    }
    for agent, counts in calls.items():
        for tool, count in counts.items():
            labels = {"agent": agent, "agent_type": TYPES[agent], "tool": tool}
            assert value(text, "agency_agent_tool_calls_total", **labels) == count, (agent, tool)
            expected = failed.get((agent, tool), 0)
            assert (value(text, "agency_agent_tool_call_failures_total", **labels) or 0) == expected, (agent, tool)
