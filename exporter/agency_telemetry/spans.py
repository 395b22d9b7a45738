"""OTLP spans as events, following the OpenTelemetry GenAI conventions.

A span whose ``gen_ai.operation.name`` is ``invoke_agent`` is one task of its agent; ``chat``,
``text_completion``, ``generate_content`` and ``embeddings`` spans are LLM requests and
``execute_tool`` spans tool calls, both belonging to the agent of their nearest ``invoke_agent``
ancestor (found by :mod:`attribution`). A span event named ``agency.<type>`` with ``agency.<field>``
attributes is that event of the JSON API. Every event is built as the JSON API's object and
validated by the same decoder, so both inputs obey the same rules; other spans are ignored.

Token usage is read from inference spans only: usage an agent span repeats (an aggregate of its
inference children) is never added again.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from .config import Config
from .decoder import EventDecoder, Problem
from .events import EVENT_TYPES, MAX_TEXT_LENGTH, AgentEvent, Event, TaskCompleted, TaskFailed, TaskStarted

AGENT_OPERATION = "invoke_agent"
TOOL_OPERATION = "execute_tool"
INFERENCE_OPERATIONS = frozenset(("chat", "text_completion", "generate_content", "embeddings"))
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
PREFIX = "agency."
TRACE_ID_BYTES, SPAN_ID_BYTES = 16, 8
AGENT_TYPE_KEY = "agency.agent.type"
UNKNOWN = "unknown"  # provider or model of an inference span that names neither
MILLISECONDS_PER_NANOSECOND = 1e-6  # a bare duration in the JSON API is in milliseconds

_SCALARS = frozenset(("string_value", "bool_value", "int_value", "double_value"))
_AGENT_EVENT_TYPES = frozenset(t for t, cls in EVENT_TYPES.items() if issubclass(cls, AgentEvent))
# (event field, attribute names in order of preference); deprecated names come last, then those
# of Pydantic AI, which reports reasoning tokens (a part of the output) as its provider names them.
_TOKEN_ATTRIBUTES = (
    ("input_tokens", ("gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens")),
    ("output_tokens", ("gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens")),
    ("cache_read_tokens", ("gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens")),
    (
        "cache_write_tokens",
        (
            "gen_ai.usage.cache_creation.input_tokens",
            "gen_ai.usage.cache_write.input_tokens",
            "gen_ai.usage.cache_creation_input_tokens",
        ),
    ),
    (
        "reasoning_tokens",
        (
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.details.reasoning_tokens",  # OpenAI, xAI
            "gen_ai.usage.details.thinking_tokens",  # Anthropic
            "gen_ai.usage.details.thoughts_tokens",  # Google
        ),
    ),
)


class Pending(NamedTuple):
    """An event that belongs to the agent of the nearest ``invoke_agent`` span at or above ``start``."""

    event: AgentEvent  # carries its fallback agent until attributed
    trace: bytes
    start: bytes  # span id where the search begins: the parent of an LLM or tool span, a span event's own span
    fallback: str  # how the fallback agent was found: "agent_name" or "service"
    sender: Any = None  # the ingest token of the request that brought it, checked when it is released later


@dataclass
class MappedSpans:
    """What one request's spans give: events whose agent is known, events waiting for their
    agent, each trace's parent links and agent spans, and what could not be used."""

    ready: list[Event] = field(default_factory=list)
    pending: list[Pending] = field(default_factory=list)
    links: dict[bytes, dict[bytes, bytes]] = field(default_factory=dict)  # trace → span → parent (b"": a root)
    agents: dict[bytes, dict[bytes, tuple[str, str | None]]] = field(default_factory=dict)  # trace → span → agent
    inference_services: set[str] = field(default_factory=set)  # services that sent inference spans
    spans: int = 0
    ignored: int = 0  # spans that are none of the above and carry no agency.* event
    rejected: int = 0  # spans of which something could not be used
    problems: list[str] = field(default_factory=list)


class _Item(NamedTuple):
    """A JSON event built from a span, before validation, with where it came from."""

    body: dict[str, Any]
    span: int  # index of its span in the request
    where: str  # the span, for messages
    trace: bytes
    start: bytes | None  # None: the agent is known; else where the agent search begins
    fallback: str


class _Origin(NamedTuple):
    trace: bytes
    span_id: bytes
    span_index: int
    where: str
    fallback_agent: str | None
    fallback: str
    agent_type: str | None


class SpanMapper:
    """Maps spans for one configuration (agent types, type rules, label limits)."""

    def __init__(self, config: Config, decoder: EventDecoder) -> None:
        self.decoder = decoder
        rules = [(re.compile(fnmatch.translate(rule.agent)).match, rule.type) for rule in config.otlp.agent_types]
        self._type_rules = rules

    def map(self, request: ExportTraceServiceRequest) -> MappedSpans:
        mapped = MappedSpans()
        items: list[_Item] = []
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    index = mapped.spans
                    mapped.spans += 1
                    found = self._span(span, resource, index, mapped)
                    if found:
                        items.extend(found)
                    else:
                        mapped.ignored += 1
        self._validate(items, mapped)
        return mapped

    def _span(self, span: Any, resource: dict[str, Any], index: int, mapped: MappedSpans) -> list[_Item]:
        trace, span_id = bytes(span.trace_id), bytes(span.span_id)
        mapped.links.setdefault(trace, {})[span_id] = bytes(span.parent_span_id)
        attrs = attributes(span.attributes)
        operation = attrs.get("gen_ai.operation.name")
        where = f"span {span.name!r} ({span_id.hex()})"
        own_agent = _text(attrs.get("gen_ai.agent.name"))
        service = _text(resource.get("service.name"))
        fallback_agent = own_agent or service
        fallback = "agent_name" if own_agent else "service"
        agent_type = _text(attrs.get(AGENT_TYPE_KEY)) or _text(resource.get(AGENT_TYPE_KEY))
        items: list[_Item] = []
        failed = span.status.code == STATUS_ERROR
        duration = (span.end_time_unix_nano - span.start_time_unix_nano) * MILLISECONDS_PER_NANOSECOND
        if operation == AGENT_OPERATION:
            agent = fallback_agent
            body: dict[str, Any] = {"type": "task_failed" if failed else "task_completed", "duration": duration}
            if failed:
                body["reason"] = _reason(span, attrs)
            if agent is not None:
                body["agent"] = agent
                agent_type = agent_type or self._typed(agent)
                mapped.agents.setdefault(trace, {})[span_id] = (agent, agent_type)
            _set(body, "agent_type", agent_type)
            items.append(_Item(body, index, where, trace, None, fallback))
        elif operation in INFERENCE_OPERATIONS or operation == TOOL_OPERATION:
            if service is not None and operation != TOOL_OPERATION:
                mapped.inference_services.add(service)
            body = _inference(attrs) if operation != TOOL_OPERATION else _tool(attrs)
            body["duration"] = duration
            if failed:
                body["reason"] = _reason(span, attrs)
            _set(body, "agent", fallback_agent)
            _set(body, "agent_type", agent_type or (fallback_agent and self._typed(fallback_agent)))
            items.append(_Item(body, index, where, trace, bytes(span.parent_span_id), fallback))
        if len(trace) == TRACE_ID_BYTES and len(span_id) == SPAN_ID_BYTES and any(trace) and any(span_id):
            for item in items:  # the span's own task, request or call: an exemplar of its duration
                item.body["trace_id"], item.body["span_id"] = trace.hex(), span_id.hex()
        origin = _Origin(trace, span_id, index, where, fallback_agent, fallback, agent_type)
        items.extend(self._span_event(event, origin) for event in span.events if event.name.startswith(PREFIX))
        return items

    def _span_event(self, event: Any, origin: _Origin) -> _Item:
        kind = event.name.removeprefix(PREFIX)
        body: dict[str, Any] = {"type": kind}
        for key, value in attributes(event.attributes).items():
            if key.startswith(PREFIX):
                body[key.removeprefix(PREFIX)] = value
        start = None
        if kind in _AGENT_EVENT_TYPES and "agent" not in body:
            start = origin.span_id  # the agent of this span, or of its nearest agent ancestor
            agent = origin.fallback_agent
            _set(body, "agent", agent)
            if "agent_type" not in body:
                _set(body, "agent_type", origin.agent_type or (agent and self._typed(agent)))
        where = f"event {event.name!r} of {origin.where}"
        return _Item(body, origin.span_index, where, origin.trace, start, origin.fallback)

    def _typed(self, agent: str) -> str | None:
        for matches, agent_type in self._type_rules:
            if matches(agent):
                return agent_type
        return None

    def _validate(self, items: list[_Item], mapped: MappedSpans) -> None:
        events, problems = self.decoder.validate([item.body for item in items])
        rejected_spans = set()
        for problem in problems:
            item = items[problem.index or 0]
            rejected_spans.add(item.span)
            mapped.problems.append(f"{item.where}: {_describe(problem)}")
        for item, event in zip(items, events, strict=True):
            if event is None:
                continue
            if item.start is None:
                if isinstance(event, TaskCompleted | TaskFailed):  # the span is the whole task: start and end
                    mapped.ready.append(TaskStarted(agent=event.agent, agent_type=event.agent_type))
                mapped.ready.append(event)
            else:
                mapped.pending.append(Pending(event, item.trace, item.start, item.fallback))  # type: ignore[arg-type]
        mapped.rejected = len(rejected_spans)


def attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    """OTLP key-value pairs as a dict of their scalar values (arrays and maps are left out)."""
    found = {}
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind in _SCALARS:
            found[pair.key] = getattr(value, kind)
    return found


def _inference(attrs: dict[str, Any]) -> dict[str, Any]:
    provider = _text(attrs.get("gen_ai.provider.name")) or _text(attrs.get("gen_ai.system")) or UNKNOWN
    model = _text(attrs.get("gen_ai.response.model")) or _text(attrs.get("gen_ai.request.model")) or UNKNOWN
    body: dict[str, Any] = {"type": "llm_request", "provider": provider, "model": model}
    for name, keys in _TOKEN_ATTRIBUTES:
        value = next((attrs[key] for key in keys if key in attrs), None)
        if value is not None:
            body[name] = _whole(value)
    _complete_totals(body)
    cost = attrs.get("gen_ai.usage.cost")
    if cost is not None:
        body["cost"] = cost
    return body


def _complete_totals(body: dict[str, Any]) -> None:
    """The conventions count cached tokens in input_tokens and reasoning tokens in output_tokens;
    some instrumentations report them apart (as their provider's API does). When the parts exceed
    the total, the total left them out: add them, rather than refuse the span."""
    cached = _number(body.get("cache_read_tokens")) + _number(body.get("cache_write_tokens"))
    if cached > _number(body.get("input_tokens")):
        body["input_tokens"] = _number(body.get("input_tokens")) + cached
    reasoning = _number(body.get("reasoning_tokens"))
    if reasoning > _number(body.get("output_tokens")):
        body["output_tokens"] = _number(body.get("output_tokens")) + reasoning


def _tool(attrs: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_call", "tool": _text(attrs.get("gen_ai.tool.name")) or UNKNOWN}


def _reason(span: Any, attrs: dict[str, Any]) -> str:
    """``error.type`` and the status message; an exception event's type when error.type is missing."""
    error_type = _text(attrs.get("error.type")) or _exception_type(span.events)
    parts = [part for part in (error_type, span.status.message) if part]
    return ": ".join(parts)[:MAX_TEXT_LENGTH] or "error"


def _exception_type(events: Iterable[Any]) -> str | None:
    for event in events:
        if event.name == "exception":
            return _text(attributes(event.attributes).get("exception.type"))
    return None


def _describe(problem: Problem) -> str:
    return f"{problem.field}: {problem.message}" if problem.field else problem.message


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value:
        body[key] = value


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _whole(value: Any) -> Any:
    """A token count sent as a double (some SDKs do) as an int when it is whole."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _number(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
