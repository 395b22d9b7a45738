"""``POST /v1/traces`` over real HTTP: spans from the real OpenTelemetry SDK and its OTLP/HTTP
exporter (gzip protobuf, one request per span, so children arrive before their parents), OTLP
JSON bodies as the specification spells them, and bad input of every kind."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export import SpanExportResult

from agency_telemetry.config import Config, ConfigError, parse_config
from agency_telemetry.decoder import EventDecoder
from agency_telemetry.otlp import decode_traces
from agency_telemetry.routes import INGEST
from agency_telemetry.simulator import FleetSimulator
from agency_telemetry.spans import SpanMapper

from support import otel
from support.exporter import Exporter
from support.metrics import agent_samples, value

PROTOBUF = "application/x-protobuf"
TRACE = "5b8efff798038103d269b633813fc60c"


def endpoint(exporter: Exporter) -> str:
    return str(exporter.client.make_url("")).rstrip("/")


async def run_agents(exporter: Exporter, *runs: dict[str, Any], **resource: Any) -> otel.Recording:
    tracer_provider, recording = otel.provider(endpoint(exporter), **resource)

    def run() -> None:
        tracer = tracer_provider.get_tracer("test")
        for fields in runs:
            otel.agent_run(tracer, **fields)
        tracer_provider.shutdown()

    await asyncio.to_thread(run)
    return recording


async def post(exporter: Exporter, body: bytes, content_type: str = PROTOBUF, **headers: str) -> Any:
    return await exporter.client.post("/v1/traces", data=body, headers={"Content-Type": content_type, **headers})


def json_span(name: str, span_id: str, parent: str = "", **attributes: Any) -> dict[str, Any]:
    """A span in the OTLP JSON mapping: hex ids, int64 as strings, lowerCamelCase."""
    return {
        "traceId": TRACE,
        "spanId": span_id,
        "parentSpanId": parent,
        "name": name,
        "kind": 1,
        "startTimeUnixNano": "1700000000000000000",
        "endTimeUnixNano": "1700000001500000000",
        "attributes": [{"key": key, "value": _json_value(value)} for key, value in attributes.items()],
    }


def _json_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    return {"stringValue": value}


def json_request(*spans: dict[str, Any], service: str = "svc") -> bytes:
    resource = {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]}
    return json.dumps({"resourceSpans": [{"resource": resource, "scopeSpans": [{"spans": list(spans)}]}]}).encode()


def svc_llm_requests(text: str) -> float | None:
    """The LLM requests counted for the service "svc" (spans whose agent is not known)."""
    labels = {"agent": "svc", "agent_type": "unknown", "provider": "anthropic", "model": "claude-x"}
    return value(text, "agency_agent_llm_requests_total", **labels)


LLM = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "anthropic", "gen_ai.request.model": "claude-x"}


async def test_sdk_spans_sent_children_first_become_one_agents_tasks_llm_requests_and_tool_calls(exporter):
    recording = await run_agents(
        exporter,
        {"agent": "planner"},
        {"agent": "planner", "error": "TimeoutError"},
        {"agent": "coder", "tokens": (1000, 10)},
        **{"agency.agent.type": "worker"},
    )
    assert recording.results == [SpanExportResult.SUCCESS] * 9  # nine spans, one request each
    text = await exporter.metrics()
    planner = {"agent": "planner", "agent_type": "worker"}
    llm = {**planner, "provider": "openai", "model": "gpt-4o-2024-08-06"}  # the response model wins
    assert value(text, "agency_agent_tasks_total", **planner) == 2
    assert value(text, "agency_agent_task_failures_total", **planner, error_class="timeout") == 1
    assert value(text, "agency_agent_active_tasks", **planner) == 0  # a span is a whole task
    assert value(text, "agency_agent_task_duration_seconds_count", **planner) == 2
    assert value(text, "agency_agent_llm_requests_total", **llm) == 2
    assert value(text, "agency_agent_llm_tokens_total", **llm, token_type="input") == 240
    assert value(text, "agency_agent_llm_tokens_total", **llm, token_type="output") == 60
    assert value(text, "agency_agent_tool_calls_total", **planner, tool="search") == 2
    coder = {"agent": "coder", "agent_type": "worker", "provider": "openai", "model": "gpt-4o-2024-08-06"}
    assert value(text, "agency_agent_llm_tokens_total", **coder, token_type="input") == 1000
    assert value(text, "agency_llm_request_duration_seconds_count", provider="openai", model="gpt-4o-2024-08-06") == 3
    # Every child waited for its agent span, none was counted for the service.
    assert value(text, "agency_exporter_otlp_attributions_total", via="ancestor") == 6
    assert value(text, "agency_exporter_otlp_attributions_total", via="service") == 0
    assert not any(dict(labels).get("agent") == "agents-app" for _, labels in agent_samples(text))
    assert value(text, "agency_exporter_otlp_held", what="events") == 0
    assert value(text, "agency_exporter_otlp_held", what="links") == 0


async def test_otlp_json_with_hex_ids_is_read_and_answered_in_json(exporter):
    body = json_request(
        json_span("chat", "00f067aa0ba902b7", "00f067aa0ba902b8", **LLM, **{"gen_ai.usage.input_tokens": 7}),
        json_span(
            "invoke_agent",
            "00f067aa0ba902b8",
            **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "judge-1"},
        ),
    )
    resp = await post(exporter, body, "application/json")
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert await resp.json() == {}  # full success: no partial_success
    text = await exporter.metrics()
    assert value(text, "agency_agent_tasks_total", agent="judge-1", agent_type="unknown") == 1
    assert value(text, "agency_agent_task_duration_seconds_sum", agent="judge-1", agent_type="unknown") == 1.5
    labels = {"agent": "judge-1", "agent_type": "unknown", "provider": "anthropic", "model": "claude-x"}
    assert value(text, "agency_agent_llm_tokens_total", **labels, token_type="input") == 7
    # Each span's trace is an exemplar of its duration bucket (OpenMetrics only).
    openmetrics = await exporter.metrics("application/openmetrics-text; version=1.0.0")
    task_bucket = 'agency_agent_task_duration_seconds_bucket{agent="judge-1",agent_type="unknown",le="2.5"} 1 # '
    assert f'{task_bucket}{{trace_id="{TRACE}",span_id="00f067aa0ba902b8"}} 1.5' in openmetrics
    assert f'trace_id="{TRACE}",span_id="00f067aa0ba902b7"' in openmetrics  # the chat span's
    assert "trace_id" not in text


async def test_reasoning_tokens_pydantic_ai_reports_as_usage_details_count_within_the_output(exporter):
    """Pydantic AI reports reasoning tokens (a part of output_tokens) not as
    gen_ai.usage.reasoning.output_tokens but as gen_ai.usage.details.<its provider's name>."""
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "thinker"}
    spans = [json_span("invoke_agent thinker", "00000000000000a0", **agent)]
    details = {"openai": "reasoning_tokens", "anthropic": "thinking_tokens", "google": "thoughts_tokens"}
    for n, (provider, detail) in enumerate(details.items(), 1):
        usage = {
            "gen_ai.usage.input_tokens": 50,
            "gen_ai.usage.output_tokens": 300,
            f"gen_ai.usage.details.{detail}": 120,
        }
        attributes = {**LLM, "gen_ai.provider.name": provider, **usage}
        spans.append(json_span("chat claude-x", f"{n:016x}", "00000000000000a0", **attributes))
    resp = await post(exporter, json_request(*spans), "application/json")
    assert await resp.json() == {}
    text = await exporter.metrics()
    for provider in details:
        labels = {"agent": "thinker", "agent_type": "unknown", "provider": provider, "model": "claude-x"}
        assert value(text, "agency_agent_llm_tokens_total", **labels, token_type="reasoning") == 120, provider
        assert value(text, "agency_agent_llm_tokens_total", **labels, token_type="output") == 300, provider


async def test_invalid_spans_are_rejected_in_partial_success_and_the_rest_applied(exporter):
    body = json_request(
        json_span("chat", "0000000000000001", **LLM, **{"gen_ai.usage.input_tokens": -5}),
        json_span("chat", "0000000000000002", **LLM, **{"gen_ai.usage.output_tokens": 2_000_000_000}),
        json_span(
            "invoke_agent",
            "0000000000000003",
            **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "bad agent"},
        ),
        json_span(
            "invoke_agent", "0000000000000004", **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "good"}
        ),
        json_span("GET /health", "0000000000000005"),
    )
    resp = await post(exporter, body, "application/json")
    assert resp.status == 200
    partial = (await resp.json())["partialSuccess"]
    assert partial["rejectedSpans"] == "3"
    message = partial["errorMessage"]
    assert "input_tokens" in message and "output_tokens" in message and "'bad agent' is not a valid label" in message
    text = await exporter.metrics()
    assert value(text, "agency_agent_tasks_total", agent="good", agent_type="unknown") == 1
    assert svc_llm_requests(text) is None
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="rejected") == 3
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="ignored") == 1


async def test_undecodable_bodies_get_400_with_a_status_and_change_nothing(exporter):
    before = agent_samples(await exporter.metrics())
    resp = await post(exporter, b"\xff\x00garbage not protobuf")
    assert resp.status == 400
    assert resp.content_type == PROTOBUF
    problem = status_pb2.Status.FromString(await resp.read())
    assert "not a protobuf ExportTraceServiceRequest" in problem.message
    resp = await post(
        exporter, b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}', "application/json"
    )
    assert resp.status == 400
    assert "not a hex id" in (await resp.json())["message"]
    resp = await post(exporter, b"{}", "text/plain")
    assert resp.status == 415
    assert "application/x-protobuf" in (await resp.json())["message"]
    assert agent_samples(await exporter.metrics()) == before


async def test_a_span_whose_agent_never_arrives_counts_for_its_service_after_the_hold(make_exporter):
    exporter = await make_exporter("otlp:\n  attribution_hold: 0.2s\n")
    body = json_request(json_span("chat", "0000000000000001", "00000000000000aa", **LLM), service="billing")
    assert (await post(exporter, body, "application/json")).status == 200
    labels = {"agent": "billing", "agent_type": "unknown", "provider": "anthropic", "model": "claude-x"}
    assert value(await exporter.metrics(), "agency_agent_llm_requests_total", **labels) is None  # held
    assert value(await exporter.metrics(), "agency_exporter_otlp_held", what="events") == 1
    for _ in range(50):  # the sweep runs every second
        await asyncio.sleep(0.1)
        text = await exporter.metrics()
        if value(text, "agency_agent_llm_requests_total", **labels) == 1:
            break
    assert value(text, "agency_agent_llm_requests_total", **labels) == 1
    assert value(text, "agency_exporter_otlp_held_released_total", why="hold_expired") == 1
    assert value(text, "agency_exporter_otlp_attributions_total", via="service") == 1
    assert value(text, "agency_exporter_otlp_held", what="events") == 0
    assert value(text, "agency_exporter_otlp_held", what="links") == 0


async def test_spans_still_held_when_ingest_stops_are_in_the_final_scrape(make_exporter):
    """They were acknowledged: on shutdown they count for their fallback agent before the last
    scrape (and the final snapshot), instead of vanishing with the process."""
    exporter = await make_exporter("otlp:\n  attribution_hold: 1h\n")
    body = json_request(json_span("chat", "0000000000000001", "00000000000000aa", **LLM), service="billing")
    assert (await post(exporter, body, "application/json")).status == 200
    labels = {"agent": "billing", "agent_type": "unknown", "provider": "anthropic", "model": "claude-x"}
    assert value(await exporter.metrics(), "agency_agent_llm_requests_total", **labels) is None  # held
    await exporter.app[INGEST].stop(1.0)
    text = await exporter.metrics()
    assert value(text, "agency_agent_llm_requests_total", **labels) == 1
    assert value(text, "agency_exporter_otlp_held_released_total", why="shutdown") == 1
    assert value(text, "agency_exporter_otlp_held", what="events") == 0


async def test_span_events_are_our_events(exporter):
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = bytes.fromhex(TRACE), bytes(range(1, 9)), "deliberate"
    event = span.events.add(name="agency.consensus")
    for key, kind, val in (
        ("agency.council", "string_value", "ethics"),
        ("agency.achieved", "bool_value", False),
        ("agency.formation_time", "string_value", "2.5s"),
        ("agency.constitutional_compliance", "bool_value", False),
        ("agency.violated_principle", "string_value", "honesty"),
        ("other.key", "string_value", "ignored"),
    ):
        attribute = event.attributes.add(key=key)
        setattr(attribute.value, kind, val)
    span.events.add(name="agency.no_such_event")
    resp = await post(exporter, request.SerializeToString())
    answer = ExportTraceServiceResponse.FromString(await resp.read())
    assert answer.partial_success.rejected_spans == 1
    assert "'no_such_event' is not an event type" in answer.partial_success.error_message
    text = await exporter.metrics()
    assert value(text, "agency_council_consensus_attempts_total", council="ethics") == 1
    assert value(text, "agency_council_consensus_failures_total", council="ethics") == 1
    assert value(text, "agency_council_compliance_violations_total", council="ethics", principle="honesty") == 1
    assert value(text, "agency_council_consensus_formation_seconds_sum", council="ethics") == 2.5


async def test_agents_past_the_limit_are_rejected_while_known_agents_count(make_exporter):
    exporter = await make_exporter("limits:\n  max_agents: 1\n")
    await exporter.send({"type": "agent_registered", "agent": "known"})
    agent = {"gen_ai.operation.name": "invoke_agent"}
    body = json_request(
        json_span("a", "0000000000000001", **agent, **{"gen_ai.agent.name": "known"}),
        json_span("b", "0000000000000002", **agent, **{"gen_ai.agent.name": "newcomer"}),
    )
    resp = await post(exporter, body, "application/json")
    assert resp.status == 200  # 429 would make the client retry a request that can never fit
    partial = (await resp.json())["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "limits.max_agents" in partial["errorMessage"]
    text = await exporter.metrics()
    assert value(text, "agency_agent_tasks_total", agent="known", agent_type="unknown") == 1
    assert value(text, "agency_agent_tasks_total", agent="newcomer", agent_type="unknown") is None
    assert value(text, "agency_exporter_events_rejected_total", reason="agents_limit") == 2  # its start and end


async def test_tokens_and_shutdown_guard_traces_too(make_exporter, tmp_path):
    tokens = tmp_path / "tokens.yml"
    tokens.write_text("tokens:\n  - name: app\n    token: a-long-enough-secret\n    agents: ['judge-*']\n")
    exporter = await make_exporter(f"ingest_tokens_file: {tokens}\n")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "worker-1"}
    body = json_request(json_span("a", "0000000000000001", **agent))
    resp = await post(exporter, body, "application/json")
    assert resp.status == 401
    resp = await post(exporter, body, "application/json", Authorization="Bearer a-long-enough-secret")
    assert resp.status == 403
    assert "worker-1" in (await resp.json())["message"]
    exporter.app[INGEST].accepting = False
    resp = await post(exporter, body, PROTOBUF, Authorization="Bearer a-long-enough-secret")
    assert resp.status == 503
    assert int(resp.headers["Retry-After"]) >= 1
    status_pb2.Status.FromString(await resp.read())


async def test_a_held_span_released_later_stays_within_its_own_tokens_scope(make_exporter, tmp_path):
    tokens = tmp_path / "tokens.yml"
    tokens.write_text("tokens:\n  - name: app\n    token: a-long-enough-secret\n    agents: ['judge-*']\n")
    exporter = await make_exporter(f"ingest_tokens_file: {tokens}\notlp:\n  attribution_hold: 0.2s\n")
    orphan = json_request(json_span("chat", "0000000000000001", "00000000000000aa", **LLM), service="billing")
    resp = await post(exporter, orphan, "application/json", Authorization="Bearer a-long-enough-secret")
    assert resp.status == 200  # nothing is counted yet: its agent is not known
    for _ in range(50):
        await asyncio.sleep(0.1)
        text = await exporter.metrics()
        if value(text, "agency_exporter_otlp_held", what="events") == 0:
            break
    assert value(text, "agency_exporter_events_rejected_total", reason="forbidden") == 1
    assert not [key for key in agent_samples(text) if dict(key[1]).get("agent") == "billing"]


def total(text: str, name: str, agent: str) -> float:
    """The sum of an agent's samples of ``name`` over its other labels."""
    return sum(v for (n, labels), v in agent_samples(text).items() if n == name and dict(labels)["agent"] == agent)


async def test_the_demo_fleets_otlp_traffic_is_accepted_whole(exporter):
    simulator = FleetSimulator("http://unused", agents=0, otel_agents=4)
    resp = await post(exporter, simulator.otel_batch(everything=True))
    assert resp.status == 200
    assert not ExportTraceServiceResponse.FromString(await resp.read()).HasField("partial_success")
    text = await exporter.metrics()
    for agent in simulator.otel_fleet:
        assert value(text, "agency_agent_tasks_total", agent=agent.name, agent_type=agent.kind) == 1
        assert total(text, "agency_agent_llm_cost_usd_total", agent.name) > 0  # the spans carry their cost
        assert total(text, "agency_agent_llm_requests_total", agent.name) >= 1
    failing = simulator.otel_fleet[0].name
    assert total(text, "agency_agent_task_failures_total", failing) == 1
    assert total(text, "agency_agent_llm_request_failures_total", failing) >= 1
    assert value(text, "agency_exporter_otlp_attributions_total", via="service") == 0


async def test_a_flood_of_models_and_tools_folds_into_other_and_counts_every_call(make_exporter):
    exporter = await make_exporter("limits:\n  max_models: 2\n  max_tools: 1\n")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "busy"}
    spans = [json_span("agent", "00000000000000ff", **agent)]
    for n in range(5):
        llm = {**LLM, "gen_ai.request.model": f"model-{n}"}
        spans.append(json_span("chat", f"{n + 1:016x}", "00000000000000ff", **llm))
        tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": f"tool-{n}"}
        spans.append(json_span("tool", f"{n + 11:016x}", "00000000000000ff", **tool))
    resp = await post(exporter, json_request(*spans), "application/json")
    assert await resp.json() == {}
    text = await exporter.metrics()
    busy = {"agent": "busy", "agent_type": "unknown"}
    assert value(text, "agency_agent_llm_requests_total", **busy, provider="other", model="other") == 3
    assert value(text, "agency_agent_tool_calls_total", **busy, tool="other") == 4
    assert total(text, "agency_agent_llm_requests_total", "busy") == 5
    assert value(text, "agency_exporter_overflow_total", kind="model") == 3
    assert value(text, "agency_exporter_overflow_total", kind="tool") == 4


async def test_too_many_spans_in_one_request_is_refused_whole(make_exporter):
    exporter = await make_exporter("limits:\n  max_events_per_batch: 2\n")
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "a"}
    body = json_request(*(json_span("agent", f"{n + 1:016x}", **agent) for n in range(3)))
    resp = await post(exporter, body, "application/json")
    assert resp.status == 413
    assert "limits.max_events_per_batch" in (await resp.json())["message"]
    assert value(await exporter.metrics(), "agency_agent_tasks_total", agent="a", agent_type="unknown") is None


async def test_a_span_event_with_an_impossible_quantity_is_rejected(exporter):
    span = json_span("deliberate", "0000000000000001")
    fields = {"agency.council": "ethics", "agency.achieved": True, "agency.formation_time": "NaN s"}
    span["events"] = [
        {"name": "agency.consensus", "attributes": [{"key": k, "value": _json_value(v)} for k, v in fields.items()]}
    ]
    resp = await post(exporter, json_request(span), "application/json")
    partial = (await resp.json())["partialSuccess"]
    assert partial["rejectedSpans"] == "1"
    assert "formation_time" in partial["errorMessage"]
    assert value(await exporter.metrics(), "agency_council_consensus_attempts_total", council="ethics") is None


async def test_deprecated_and_alternative_genai_attributes_are_read(make_exporter):
    exporter = await make_exporter(
        "agent_types: [worker, constitutional_judge]\n"
        "otlp:\n  agent_types:\n    - {agent: 'judge-*', type: constitutional_judge}\n"
        "pricing:\n  - {model: 'old-model', input: 1.0, output: 2.0}\n"
    )
    agent = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "judge-7"}
    old_style = {
        "gen_ai.operation.name": "text_completion",
        "gen_ai.system": "legacy-ai",
        "gen_ai.request.model": "old-model",
        "gen_ai.usage.prompt_tokens": 1000,
        "gen_ai.usage.completion_tokens": 500.0,  # a whole double, as some SDKs send
    }
    cached_apart = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "anthropic",
        "gen_ai.request.model": "claude-x",
        "gen_ai.usage.input_tokens": 10,  # reported without the cached tokens below
        "gen_ai.usage.cache_read.input_tokens": 300,
        "gen_ai.usage.cache_creation.input_tokens": 40,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.reasoning.output_tokens": 3,
        "gen_ai.usage.cost": 0.25,
    }
    body = json_request(
        json_span("llm", "0000000000000001", "00000000000000aa", **old_style),
        json_span("llm", "0000000000000002", "00000000000000aa", **cached_apart),
        json_span("agent", "00000000000000aa", **agent),
    )
    assert await (await post(exporter, body, "application/json")).json() == {}
    text = await exporter.metrics()
    judge = {"agent": "judge-7", "agent_type": "constitutional_judge"}
    legacy = {**judge, "provider": "legacy-ai", "model": "old-model"}
    assert value(text, "agency_agent_tasks_total", **judge) == 1
    assert value(text, "agency_agent_llm_tokens_total", **legacy, token_type="input") == 1000
    assert value(text, "agency_agent_llm_tokens_total", **legacy, token_type="output") == 500
    assert value(text, "agency_agent_llm_cost_usd_total", **legacy) == (1000 * 1.0 + 500 * 2.0) / 1e6
    claude = {**judge, "provider": "anthropic", "model": "claude-x"}
    tokens = {
        t: value(text, "agency_agent_llm_tokens_total", **claude, token_type=t)
        for t in ("input", "cache_read", "cache_write", "output", "reasoning")
    }
    assert tokens == {"input": 350, "cache_read": 300, "cache_write": 40, "output": 5, "reasoning": 3}
    assert value(text, "agency_agent_llm_cost_usd_total", **claude) == 0.25  # the span's own cost wins


def test_an_agent_type_rule_must_name_a_configured_type():
    with pytest.raises(ConfigError, match=r"otlp\.agent_types: 'judge' .* is not one of agent_types"):
        parse_config("otlp:\n  agent_types:\n    - {agent: 'judge-*', type: judge}\n")


async def test_a_rejected_agent_span_names_no_agent_for_its_children(exporter):
    forged = 'bad"} 1\nagency_injected_total{x="y'
    body = json_request(
        json_span("chat", "0000000000000001", "00000000000000aa", **LLM),
        json_span(
            "agent", "00000000000000aa", **{"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": forged}
        ),
        service="svc",
    )
    partial = (await (await post(exporter, body, "application/json")).json())["partialSuccess"]
    assert partial["rejectedSpans"] == "1"  # the agent span; its child counts for the service
    text = await exporter.metrics()
    assert "agency_injected" not in text
    assert svc_llm_requests(text) == 1


def test_a_status_message_that_repeats_the_error_type_names_it_once():
    span = json_span("chat", "0000000000000001", **LLM, **{"error.type": "pydantic_ai.exceptions.ModelHTTPError"})
    span["status"] = {"code": 2, "message": "ModelHTTPError: status_code: 503, model overloaded"}
    mapper = SpanMapper(Config(), EventDecoder(["worker"], 128, 100))
    [pending] = mapper.map(decode_traces(json_request(span), "application/json")).pending
    assert pending.event.reason == "pydantic_ai.exceptions.ModelHTTPError: status_code: 503, model overloaded"
