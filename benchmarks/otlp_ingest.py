"""OTLP/HTTP traces in-process: ``POST /v1/traces`` minus HTTP, against the obvious implementation.

Workload: protobuf ``ExportTraceServiceRequest`` bodies of 1,000 spans, as a collector forwards
them (one ResourceSpans per service, with service.*, telemetry.sdk.* and agency.agent.type).
Each agent task is a tree: an ``invoke_agent`` span (one of 200 agents) over 2-4 ``chat`` spans
(5 models, token usage, cache reads on some), 1-3 ``execute_tool`` spans (20 tools), some of
them over an HTTP client span (not GenAI: ignored), and in one tree of six a sub-agent's
``invoke_agent`` with its own chats and tools; 8-15 attributes per span, ~5 % of spans failed
(status ERROR, ``error.type``, an exception event). Spans are in end-time order, as an SDK's
batch has them: children before their parents. Two layouts:

- whole trees: every request holds whole trees, so every child finds its agent in its request;
- split trees: ~170 tasks of ~17 s run at once and the stream is cut into requests in end-time
  order, so 40 % of the spans' parents come in a later request than they do.

Ours is what the handler does minus HTTP: ``OtlpTraces.read`` (``decode_traces``, then
``SpanMapper.map``, validation and ``Attribution.plan``) and ``OtlpTraces.apply``
(``Store.apply_fitting``, ``Attribution.commit``), wired as ``routes.create_app`` wires them,
with the default configuration. The baseline is what one would write first with
prometheus_client: ``ParseFromString``, one loop over the spans reading their attributes into
dicts, children attributed to the nearest ``invoke_agent`` span within the request (else the
span's ``gen_ai.agent.name``, else ``service.name``: it holds nothing across requests, so in the
split layout it counts half the children for the service), and Counter / Histogram children of the
same families and label sets as ours, cached per label set. It validates nothing and has no
limits, partial success or self-metrics.

Requests alternate between the sides one by one, after one untimed pass over every distinct
body; spans/s is spans over the total time of the timed requests (wall clock, and CPU time of
this thread, which other load on a shared machine sways less), latency the median request.
After the whole-tree runs both expositions are checked to count the same tasks, failures, LLM
requests, tokens and tool calls.

    .venv/bin/python -m benchmarks.otlp_ingest [--requests 300] [--bodies 20] [--quick]
"""

from __future__ import annotations

import argparse
import gc
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import prometheus_client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from agency_telemetry.config import Config
from agency_telemetry.exposition import Exposition
from agency_telemetry.otlp import PROTOBUF, TraceRequest
from agency_telemetry.otlp_ingest import otlp_readers
from agency_telemetry.selfmetrics import SelfMetrics
from agency_telemetry.spans import INFERENCE_OPERATIONS
from agency_telemetry.store import Store

from benchmarks.ours import config_for
from benchmarks.timing import machine_lines, sample_lines

SPANS_PER_REQUEST = 1000
AGENT_COUNT = 200
SERVICES = (  # service.name, agency.agent.type: each service runs agents of one type
    ("planner-svc", "orchestrator"),
    ("research-svc", "researcher"),
    ("research-svc-eu", "researcher"),
    ("coder-svc", "worker"),
    ("support-svc", "worker"),
    ("billing-svc", "worker"),
    ("ethics-svc", "constitutional_judge"),
    ("review-svc", "constitutional_judge"),
)
MODELS = (  # provider, request model, response model
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-sonnet-4", "claude-sonnet-4-20250514"),
    ("anthropic", "claude-3-5-haiku", "claude-3-5-haiku-20241022"),
    ("gcp.gemini", "gemini-2.0-flash", "gemini-2.0-flash-001"),
)
TOOLS = (
    "web_search", "fetch_url", "read_file", "write_file", "run_python", "sql_query", "vector_search",
    "send_email", "calendar_lookup", "create_ticket", "get_weather", "translate", "summarize_doc",
    "git_diff", "run_tests", "lookup_customer", "price_quote", "geocode", "currency_convert", "kb_search",
)  # fmt: skip
ERRORS = {  # error.type and status message by span kind
    "invoke_agent": (("TimeoutError", "agent run timed out"), ("MaxIterationsExceeded", "too many steps")),
    "chat": (("RateLimitError", "429 Too Many Requests"), ("APITimeoutError", "request timed out")),
    "execute_tool": (("ToolExecutionError", "tool raised"), ("ValidationError", "invalid arguments")),
    "http": (("500", "Internal Server Error"), ("ConnectionError", "connection reset by peer")),
}
ERROR_RATE = 0.05
SUB_AGENT_RATE = 1 / 6
MAX_TASK_SPANS = 32  # more than any generated task has (22 at most)
TASKS_EVERY = 100_000_000  # ns between task starts in the split layout: ~170 tasks of ~17 s at once
MS = 1_000_000  # nanoseconds


# --- the workload ----------------------------------------------------------------------------


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, list | tuple):
        return AnyValue(array_value=ArrayValue(values=[any_value(item) for item in value]))
    return AnyValue(string_value=value)


def key_values(attributes: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=key, value=any_value(value)) for key, value in attributes.items()]


@dataclass(frozen=True)
class FleetAgent:
    index: int

    @property
    def name(self) -> str:
        return f"agent-{self.index:03d}"

    @property
    def service(self) -> int:
        """Its index in SERVICES."""
        return self.index % len(SERVICES)


AGENTS = tuple(FleetAgent(index) for index in range(AGENT_COUNT))
SERVICE_AGENTS = [AGENTS[service :: len(SERVICES)] for service in range(len(SERVICES))]


@dataclass
class TaskSpans:
    """The spans of one task (its tree) as they are made: children before parents."""

    rng: random.Random
    trace: bytes
    conversation: str
    spans: list[Span] = field(default_factory=list)

    def add(
        self, name: str, kind: int, attributes: dict[str, Any], *, ids: tuple[bytes, bytes], start: int, end: int
    ) -> None:
        """A span of ``ids`` (its own and its parent's); failed at the error rate."""
        span_id, parent = ids
        span = Span(
            trace_id=self.trace,
            span_id=span_id,
            parent_span_id=parent,
            name=name,
            kind=kind,
            start_time_unix_nano=start,
            end_time_unix_nano=end,
            attributes=key_values(attributes),
            flags=0x100,
        )
        operation = attributes.get("gen_ai.operation.name", "http")
        if self.rng.random() < ERROR_RATE:
            error_type, message = self.rng.choice(ERRORS[operation])
            span.attributes.append(KeyValue(key="error.type", value=AnyValue(string_value=error_type)))
            span.status.CopyFrom(Status(code=Status.STATUS_CODE_ERROR, message=message))
            exception = {"exception.type": error_type, "exception.message": message}
            span.events.add(time_unix_nano=end, name="exception", attributes=key_values(exception))
        self.spans.append(span)


def agent_task(rng: random.Random, agent: FleetAgent, start: int, size: int | None = None) -> list[Span]:
    """The spans of one task of ``agent`` starting at ``start``; of exactly ``size`` spans if given."""
    tree = TaskSpans(rng, rng.randbytes(16), f"conv_{rng.getrandbits(48):012x}")
    invoke_agent(tree, agent, b"", start, size=size, nested=size is None)
    return tree.spans


def invoke_agent(
    tree: TaskSpans, agent: FleetAgent, parent: bytes, start: int, *, size: int | None, nested: bool
) -> int:
    """An invoke_agent span over its steps (added first, as they end first); its end time."""
    span_id = tree.rng.randbytes(8)  # the children need it before the span itself is made
    steps = ["chat"] * tree.rng.randint(2, 4) + ["execute_tool"] * tree.rng.randint(1, 3)
    if size is not None:
        steps = ["chat", "execute_tool"] * (size // 2)
        steps = steps[: size - 1]
    tree.rng.shuffle(steps)
    clock = start + tree.rng.randint(1, 20) * MS
    if nested and tree.rng.random() < SUB_AGENT_RATE:
        steps.insert(tree.rng.randint(0, len(steps)), "sub_agent")
    for step in steps:
        if step == "chat":
            clock = chat(tree, span_id, clock)
        elif step == "execute_tool":
            clock = execute_tool(tree, span_id, clock, http=size is None and tree.rng.random() < 0.4)
        else:
            helper = tree.rng.choice(SERVICE_AGENTS[agent.service])  # in the same service: of the same type
            clock = invoke_agent(tree, helper, span_id, clock, size=None, nested=False)
        clock += tree.rng.randint(1, 50) * MS
    model = MODELS[agent.index % len(MODELS)]
    attributes = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent.name,
        "gen_ai.agent.id": f"asst_{agent.index:012d}",
        "gen_ai.agent.description": f"{SERVICES[agent.service][1]} agent {agent.name}",
        "gen_ai.conversation.id": tree.conversation,
        "gen_ai.provider.name": model[0],
        "gen_ai.request.model": model[1],
        "gen_ai.usage.input_tokens": tree.rng.randint(2000, 40000),  # an aggregate of the chats: not counted again
        "gen_ai.usage.output_tokens": tree.rng.randint(200, 4000),
        "server.address": "api.internal",
    }
    name = f"invoke_agent {agent.name}"
    tree.add(name, Span.SPAN_KIND_INTERNAL, attributes, ids=(span_id, parent), start=start, end=clock)
    return clock


def chat(tree: TaskSpans, parent: bytes, start: int) -> int:
    provider, request_model, response_model = tree.rng.choice(MODELS)
    end = start + tree.rng.randint(300, 8000) * MS
    input_tokens = tree.rng.randint(200, 20000)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.request.model": request_model,
        "gen_ai.response.model": response_model,
        "gen_ai.response.id": f"chatcmpl-{tree.rng.getrandbits(64):016x}",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.request.temperature": 0.2,
        "gen_ai.request.max_tokens": 4096,
        "gen_ai.conversation.id": tree.conversation,
        "gen_ai.usage.input_tokens": input_tokens,
        "gen_ai.usage.output_tokens": tree.rng.randint(20, 2000),
        "server.address": f"api.{provider.removeprefix('gcp.')}.com",
        "server.port": 443,
    }
    if tree.rng.random() < 0.4:
        attributes["gen_ai.usage.cache_read.input_tokens"] = tree.rng.randint(0, input_tokens)
    ids = (tree.rng.randbytes(8), parent)
    tree.add(f"chat {request_model}", Span.SPAN_KIND_CLIENT, attributes, ids=ids, start=start, end=end)
    return end


def execute_tool(tree: TaskSpans, parent: bytes, start: int, http: bool) -> int:
    tool = tree.rng.choice(TOOLS)
    span_id = tree.rng.randbytes(8)
    end = start + tree.rng.randint(20, 2000) * MS
    if http:
        http_get(tree, span_id, start + MS, end - MS)
    attributes = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.call.id": f"call_{tree.rng.getrandbits(64):016x}",
        "gen_ai.tool.type": "function",
        "gen_ai.tool.description": f"the {tool} tool",
        "gen_ai.conversation.id": tree.conversation,
        "code.function.name": f"tools.{tool}",
        "thread.name": "MainThread",
    }
    tree.add(f"execute_tool {tool}", Span.SPAN_KIND_INTERNAL, attributes, ids=(span_id, parent), start=start, end=end)
    return end


def http_get(tree: TaskSpans, parent: bytes, start: int, end: int) -> None:
    host = tree.rng.choice(("api.search.example", "kb.internal", "crm.internal"))
    attributes = {
        "http.request.method": "GET",
        "url.full": f"https://{host}/v1/query?q={tree.rng.getrandbits(32):08x}",
        "url.scheme": "https",
        "server.address": host,
        "server.port": 443,
        "http.response.status_code": 200,
        "network.protocol.version": "1.1",
        "user_agent.original": "python-httpx/0.27.0",
    }
    tree.add("GET", Span.SPAN_KIND_CLIENT, attributes, ids=(tree.rng.randbytes(8), parent), start=start, end=end)


def resource_attributes(service: int) -> list[KeyValue]:
    name, agent_type = SERVICES[service]
    return key_values(
        {
            "service.name": name,
            "service.version": "1.14.2",
            "service.instance.id": f"{name}-7d9f-{service}",
            "deployment.environment.name": "production",
            "host.name": f"node-{service}",
            "telemetry.sdk.name": "opentelemetry",
            "telemetry.sdk.language": "python",
            "telemetry.sdk.version": "1.27.0",
            "agency.agent.type": agent_type,
        }
    )


def request_body(spans: Iterable[tuple[int, int, Span]]) -> bytes:
    """One request of (end, service, span), a ResourceSpans per service as a collector batches them."""
    by_service: dict[int, list[Span]] = {}
    for _, service, span in spans:
        by_service.setdefault(service, []).append(span)
    scope = InstrumentationScope(name="opentelemetry.instrumentation.genai", version="0.2b0")
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=resource_attributes(service)),
                scope_spans=[ScopeSpans(scope=scope, spans=found)],
            )
            for service, found in sorted(by_service.items())
        ]
    )
    return request.SerializeToString()


def task_stream(rng: random.Random, total: int, every: int) -> tuple[list[tuple[int, int, Span]], int]:
    """(end, service, span) of ``total`` spans of tasks starting ``every`` ns apart (the last
    task sized to fill), and when the next task would start."""
    stream: list[tuple[int, int, Span]] = []
    start = 0
    while len(stream) < total:
        agent = rng.choice(AGENTS)
        left = total - len(stream)
        spans = agent_task(rng, agent, start, size=left if left <= MAX_TASK_SPANS else None)
        stream.extend((span.end_time_unix_nano, agent.service, span) for span in spans)
        start += every
    return stream, start


def whole_tree_bodies(count: int, seed: int = 3) -> list[bytes]:
    """Requests that each hold whole tasks."""
    rng = random.Random(seed)
    return [request_body(task_stream(rng, SPANS_PER_REQUEST, 0)[0]) for _ in range(count)]


def split_tree_bodies(count: int, seed: int = 5) -> list[bytes]:
    """Requests cut from one stream of concurrent tasks in end-time order, on a cycle: the
    tasks still running at the end of the last request end in the first one, so the bodies can
    be sent round and round and every child's agent span comes in the same or a later request."""
    stream, period = task_stream(random.Random(seed), count * SPANS_PER_REQUEST, TASKS_EVERY)
    stream.sort(key=lambda item: item[0] % period)
    starts = range(0, len(stream), SPANS_PER_REQUEST)
    return [request_body(stream[start : start + SPANS_PER_REQUEST]) for start in starts]


# --- the baseline ----------------------------------------------------------------------------


class Labelled:
    """A prometheus_client metric whose children are remembered per label values."""

    def __init__(self, metric: Any) -> None:
        self.metric = metric
        self.children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *labels: str) -> Any:
        child = self.children.get(labels)
        if child is None:
            child = self.children[labels] = self.metric.labels(*labels)
        return child


def span_attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: getattr(pair.value, pair.value.WhichOneof("value")) for pair in pairs}


class BaselineTraces:
    """``ParseFromString``, one loop over the spans, prometheus_client metrics."""

    TOKEN_TYPES = (  # token_type label, attribute
        ("input", "gen_ai.usage.input_tokens"),
        ("output", "gen_ai.usage.output_tokens"),
        ("cache_read", "gen_ai.usage.cache_read.input_tokens"),
        ("cache_write", "gen_ai.usage.cache_creation.input_tokens"),
        ("reasoning", "gen_ai.usage.reasoning.output_tokens"),
    )

    def __init__(self, config: Config) -> None:
        prometheus_client.disable_created_metrics()
        self.registry = registry = CollectorRegistry()
        buckets = config.buckets
        agent = ("agent", "agent_type")
        llm = (*agent, "provider", "model")

        def counter(name: str, labels: tuple[str, ...]) -> Labelled:
            return Labelled(Counter(name, name, labels, registry=registry))

        def histogram(name: str, labels: tuple[str, ...], bounds: tuple[float, ...]) -> Labelled:
            return Labelled(Histogram(name, name, labels, registry=registry, buckets=bounds))

        self.tasks = counter("agency_agent_tasks_total", agent)
        self.task_failures = counter("agency_agent_task_failures_total", (*agent, "error_class"))
        self.task_duration = histogram("agency_agent_task_duration_seconds", agent, buckets.task_duration_seconds)
        self.llm_requests = counter("agency_agent_llm_requests_total", llm)
        self.llm_failures = counter("agency_agent_llm_request_failures_total", (*llm, "error_class"))
        self.llm_tokens = counter("agency_agent_llm_tokens_total", (*llm, "token_type"))
        self.llm_cost = counter("agency_agent_llm_cost_usd_total", llm)
        self.llm_duration = histogram(
            "agency_llm_request_duration_seconds", ("provider", "model"), buckets.llm_request_duration_seconds
        )
        self.tool_calls = counter("agency_agent_tool_calls_total", (*agent, "tool"))
        self.tool_failures = counter("agency_agent_tool_call_failures_total", (*agent, "tool"))
        self.tool_duration = histogram(
            "agency_tool_call_duration_seconds", ("tool",), buckets.tool_call_duration_seconds
        )
        patterns = [(c.name, re.compile(c.pattern, re.IGNORECASE)) for c in config.error_classes]
        fallback = config.error_class_names[-1]

        @lru_cache(maxsize=4096)
        def classify(reason: str) -> str:
            return next((name for name, pattern in patterns if pattern.search(reason)), fallback)

        self.classify = classify

    def apply(self, body: bytes) -> None:
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        spans = []
        for resource_spans in request.resource_spans:
            resource = span_attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                spans.extend((span, span_attributes(span.attributes), resource) for span in scope_spans.spans)
        parents = {span.span_id: span.parent_span_id for span, _, _ in spans}
        agents = {
            span.span_id: self.agent_of(attributes, resource)
            for span, attributes, resource in spans
            if attributes.get("gen_ai.operation.name") == "invoke_agent"
        }
        for span, attributes, resource in spans:
            operation = attributes.get("gen_ai.operation.name")
            if operation == "invoke_agent":
                self.on_task(span, attributes, agents[span.span_id])
            elif operation in INFERENCE_OPERATIONS or operation == "execute_tool":
                agent = self.ancestor(span.parent_span_id, parents, agents) or self.agent_of(attributes, resource)
                if operation == "execute_tool":
                    self.on_tool_call(span, attributes, agent)
                else:
                    self.on_llm_request(span, attributes, agent)

    @staticmethod
    def agent_of(attributes: dict[str, Any], resource: dict[str, Any]) -> tuple[str, str]:
        name = attributes.get("gen_ai.agent.name") or resource.get("service.name", "unknown_service")
        return name, attributes.get("agency.agent.type") or resource.get("agency.agent.type", "unknown")

    @staticmethod
    def ancestor(span_id: bytes, parents: dict[bytes, bytes], agents: dict[bytes, tuple[str, str]]) -> Any:
        for _ in range(256):  # a cycle of parent ids is a client bug
            if not span_id:
                return None
            if span_id in agents:
                return agents[span_id]
            span_id = parents.get(span_id, b"")
        return None

    def failure_class(self, span: Span, attributes: dict[str, Any]) -> str | None:
        if span.status.code != Status.STATUS_CODE_ERROR:
            return None
        return self.classify(f"{attributes.get('error.type', '')}: {span.status.message}")

    def on_task(self, span: Span, attributes: dict[str, Any], agent: tuple[str, str]) -> None:
        self.tasks(*agent).inc()
        self.task_duration(*agent).observe((span.end_time_unix_nano - span.start_time_unix_nano) / 1e9)
        error_class = self.failure_class(span, attributes)
        if error_class is not None:
            self.task_failures(*agent, error_class).inc()

    def on_llm_request(self, span: Span, attributes: dict[str, Any], agent: tuple[str, str]) -> None:
        provider = attributes.get("gen_ai.provider.name", "unknown")
        model = attributes.get("gen_ai.response.model") or attributes.get("gen_ai.request.model", "unknown")
        labels = (*agent, provider, model)
        self.llm_requests(*labels).inc()
        for token_type, key in self.TOKEN_TYPES:
            self.llm_tokens(*labels, token_type).inc(attributes.get(key, 0))
        if "gen_ai.usage.cost" in attributes:
            self.llm_cost(*labels).inc(attributes["gen_ai.usage.cost"])
        self.llm_duration(provider, model).observe((span.end_time_unix_nano - span.start_time_unix_nano) / 1e9)
        error_class = self.failure_class(span, attributes)
        if error_class is not None:
            self.llm_failures(*labels, error_class).inc()

    def on_tool_call(self, span: Span, attributes: dict[str, Any], agent: tuple[str, str]) -> None:
        tool = attributes.get("gen_ai.tool.name", "unknown")
        self.tool_calls(*agent, tool).inc()
        self.tool_duration(tool).observe((span.end_time_unix_nano - span.start_time_unix_nano) / 1e9)
        if span.status.code == Status.STATUS_CODE_ERROR:
            self.tool_failures(*agent, tool).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)


# --- ours ------------------------------------------------------------------------------------


class OursTraces:
    """``OtlpTraces`` with a Store and SelfMetrics, wired as ``routes.create_app`` does."""

    def __init__(self, config: Config) -> None:
        self.store = Store(config)
        self_metrics = SelfMetrics(self.store)
        self.traces, _ = otlp_readers(config, self.store, self_metrics)
        self.attribution = self.traces.attribution
        self.exposition = Exposition(self.store, self_metrics)

    def apply(self, body: bytes) -> None:
        batch = self.traces.read(body, PROTOBUF, None)
        self.traces.apply(self.store, batch)
        assert not batch.problems, batch.problems[:3]

    def render(self) -> bytes:
        return self.exposition.render(False)


# --- the floor -------------------------------------------------------------------------------

FLOOR_KEYS = (  # what the mapping of an inference span reads at least
    "gen_ai.operation.name",
    "gen_ai.agent.name",
    "agency.agent.type",
    "gen_ai.provider.name",
    "gen_ai.response.model",
    "gen_ai.request.model",
    "gen_ai.usage.input_tokens",
    "gen_ai.usage.output_tokens",
    "gen_ai.usage.cache_read.input_tokens",
    "gen_ai.usage.cost",
    "error.type",
    "gen_ai.tool.name",
)


def floor(body: bytes) -> None:
    """Parse a request and read, of every span, the fields any GenAI mapping needs, into nothing:
    a bound on what any implementation on the official messages can do in Python."""
    request = TraceRequest.FromString(body)
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = span.attributes
                for key in FLOOR_KEYS:
                    if key in attributes:
                        attributes[key].WhichOneof("value")
                _ = (span.trace_id, span.span_id, span.parent_span_id, span.start_time_unix_nano)
                _ = (span.end_time_unix_nano, span.HasField("status"))


# --- runs ------------------------------------------------------------------------------------

Side = Callable[[bytes], None]


@dataclass
class Run:
    layout: str
    seconds: dict[str, list[float]]  # side -> wall-clock seconds of each request
    cpu: dict[str, list[float]]  # side -> CPU seconds of each request (this thread's)

    def rate(self, side: str, cpu: bool = False) -> float:
        times = (self.cpu if cpu else self.seconds)[side]
        return SPANS_PER_REQUEST * len(times) / sum(times)

    def latency(self, side: str) -> float:
        return statistics.median(self.seconds[side])

    def rows(self) -> list[str]:
        ours, baseline = self.rate("ours"), self.rate("baseline")
        ours_cpu, baseline_cpu = self.rate("ours", cpu=True), self.rate("baseline", cpu=True)
        return [
            f"{self.layout:<12} ours {ours:>9,.0f} spans/s   baseline {baseline:>9,.0f} spans/s   "
            f"ours/baseline {ours / baseline:4.1f}x",
            f"{'':<12} per CPU second: ours {ours_cpu:>9,.0f} spans/s   baseline {baseline_cpu:>9,.0f} spans/s   "
            f"ours/baseline {ours_cpu / baseline_cpu:4.1f}x",
            f"{'':<12} latency per request (median): ours {self.latency('ours') * 1e3:6.2f} ms   "
            f"baseline {self.latency('baseline') * 1e3:6.2f} ms",
            f"{'':<12} floor (parse, read the fields a mapping needs, nothing else) {self.rate('floor'):>9,.0f} "
            f"spans/s: no mapping on these messages can beat the baseline by more than "
            f"{self.rate('floor') / baseline:3.1f}x",
        ]


def timed(sides: dict[str, Side], bodies: list[bytes], requests: int, layout: str) -> Run:
    """Each side gets every body once untimed, then ``requests`` timed ones, alternating request by request."""
    for apply in sides.values():
        for body in bodies:
            apply(body)
    gc.collect()
    gc.freeze()  # the state of both sides, out of the collector's way, as if each were alone in a process
    seconds: dict[str, list[float]] = {side: [] for side in sides}
    cpu: dict[str, list[float]] = {side: [] for side in sides}
    clock, cpu_clock = time.perf_counter, time.thread_time
    for index in range(requests):
        body = bodies[index % len(bodies)]
        for side in sides if index % 2 else reversed(sides):
            started, cpu_started = clock(), cpu_clock()
            sides[side](body)
            seconds[side].append(clock() - started)
            cpu[side].append(cpu_clock() - cpu_started)
    gc.unfreeze()
    return Run(layout, seconds, cpu)


COUNTED = (  # what both sides count, checked equal after the whole-tree runs
    "agency_agent_tasks_total",
    "agency_agent_task_failures_total",
    "agency_agent_llm_requests_total",
    "agency_agent_llm_request_failures_total",
    "agency_agent_llm_tokens_total",
    "agency_agent_tool_calls_total",
    "agency_agent_tool_call_failures_total",
)


def totals(text: bytes) -> dict[str, float]:
    """The sum of every sample of each COUNTED family in an exposition."""
    found = dict.fromkeys(COUNTED, 0.0)
    for line in text.decode().splitlines():
        name, _, rest = line.partition("{")
        if name in found:
            found[name] += float(rest.rpartition(" ")[2])
    return found


def check_counts(ours: OursTraces, baseline: BaselineTraces) -> list[str]:
    started = time.perf_counter()
    text = ours.render()
    render = time.perf_counter() - started
    counted = totals(text)
    expected = totals(baseline.render())
    figures = ", ".join(f"{name.removeprefix('agency_agent_')} {value:,.0f}" for name, value in counted.items())
    lines = [f"scrape (not compared): ours renders {sample_lines(text):,} samples in {render * 1e3:.1f} ms"]
    lines.append(f"counted: {figures}")
    differ = [name for name in COUNTED if counted[name] != expected[name]]
    if differ:
        lines.append(f"MISMATCH with the baseline: {', '.join(f'{n} {expected[n]:,.0f}' for n in differ)}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="timed requests per side and layout")
    parser.add_argument("--bodies", type=int, default=20, help="distinct request bodies per layout, cycled")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 20 requests of 4 bodies")
    args = parser.parse_args(argv)
    requests, count = (20, 4) if args.quick else (args.requests, args.bodies)
    config = config_for(1000)
    print("\n".join(machine_lines()))
    print(f"OTLP traces in-process: {requests} requests of {SPANS_PER_REQUEST:,} spans per side and layout")
    failed = False
    for layout, build in (("whole trees", whole_tree_bodies), ("split trees", split_tree_bodies)):
        ours, baseline = OursTraces(config), BaselineTraces(config)
        sides = {"ours": ours.apply, "baseline": baseline.apply, "floor": floor}
        run = timed(sides, build(count), requests, layout)
        print("\n".join(run.rows()))
        if layout == "whole trees":
            lines = check_counts(ours, baseline)
            failed = any(line.startswith("MISMATCH") for line in lines)
            print("\n".join(lines))
        else:
            print(f"{'':<12} events held for a later request at the end: {ours.attribution.held:,}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
