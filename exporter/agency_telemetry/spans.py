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

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import msgspec

from .config import Config
from .decoder import EventDecoder
from .events import EVENT_TYPES, MAX_TEXT_LENGTH, AgentEvent, Event, TaskCompleted, TaskFailed, TaskStarted
from .genai import AGENT_TYPE_KEY, MODEL_KEYS, PROVIDER_KEYS, UNKNOWN, AgentTypes, attributes, describe, text, whole

AGENT_OPERATION = "invoke_agent"
TOOL_OPERATION = "execute_tool"
INFERENCE_OPERATIONS = frozenset(("chat", "text_completion", "generate_content", "embeddings"))
_CHILD_OPERATIONS = INFERENCE_OPERATIONS | {TOOL_OPERATION}  # spans of an agent's LLM requests and tool calls
STATUS_ERROR = 2  # opentelemetry.proto.trace.v1.Status.STATUS_CODE_ERROR
PREFIX = "agency."
TRACE_ID_BYTES, SPAN_ID_BYTES = 16, 8
MILLISECONDS_PER_NANOSECOND = 1e-6  # a bare duration in the JSON API is in milliseconds

_SCALARS = frozenset(("string_value", "bool_value", "int_value", "double_value"))  # of a span attribute map
_AGENT_EVENT_TYPES = frozenset(t for t, cls in EVENT_TYPES.items() if issubclass(cls, AgentEvent))
_TASK_ENDS = (TaskCompleted, TaskFailed)
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


# Pending, _Origin and _Item are made for nearly every span: msgspec Structs are made in C,
# several times faster than NamedTuples. None is ever part of a reference cycle (gc=False).
class Pending(msgspec.Struct, frozen=True, gc=False):
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


class _Origin(msgspec.Struct, frozen=True, gc=False):
    """A span that gives events, and the agent they count for unless an ancestor says otherwise."""

    span: Any
    index: int  # of the span in the request
    trace: bytes
    agent: str | None
    fallback: str  # how the agent was found: "agent_name" or "service"
    agent_type: str | None  # as the span or its resource says


class _Item(msgspec.Struct, frozen=True, gc=False):
    """A JSON event built from a span, before validation, with where it came from."""

    body: dict[str, Any]
    origin: _Origin
    event: str | None  # the name of the span event it comes from; None: the span itself
    start: bytes | None  # None: the agent is known; else where the agent search begins

    @property
    def where(self) -> str:
        """The span (or span event), for messages: only made for an item with a problem."""
        span = self.origin.span
        where = f"span {span.name!r} ({span.span_id.hex()})"
        return where if self.event is None else f"event {self.event!r} of {where}"


class _Resource(NamedTuple):
    service: str | None
    agent_type: str | None


class SpanMapper:
    """Maps spans for one configuration (agent types, type rules, label limits)."""

    def __init__(self, config: Config, decoder: EventDecoder) -> None:
        self.decoder = decoder
        self.agent_types = AgentTypes(config)

    def map(self, request: Any, sender: Any = None) -> MappedSpans:
        """The spans of an :data:`otlp.TraceRequest` (span attributes as maps) as events; the
        pending ones remember ``sender``, the token of the request."""
        mapped = MappedSpans()
        items: list[_Item] = []
        links = mapped.links
        index = 0
        for resource_spans in request.resource_spans:
            resource = attributes(resource_spans.resource.attributes)
            context = _Resource(text(resource.get("service.name")), text(resource.get(AGENT_TYPE_KEY)))
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    trace = span.trace_id
                    parents = links.get(trace)
                    if parents is None:
                        parents = links[trace] = {}
                    parents[span.span_id] = span.parent_span_id
                    found = self._span(span, trace, context, index, mapped)
                    if found:
                        items.extend(found)
                    else:
                        mapped.ignored += 1
                    index += 1
        mapped.spans = index
        self._validate(items, mapped, sender)
        return mapped

    def _span(self, span: Any, trace: bytes, resource: _Resource, index: int, mapped: MappedSpans) -> list[_Item]:
        """The span's items: none when it is ignored."""
        attrs = span.attributes
        operation = _string(attrs, "gen_ai.operation.name")
        task, child = operation == AGENT_OPERATION, operation in _CHILD_OPERATIONS
        events = [event for event in span.events if event.name.startswith(PREFIX)] if span.events else ()
        if not (task or child or events):
            return []
        own_agent = _string(attrs, "gen_ai.agent.name")
        agent_type = _string(attrs, AGENT_TYPE_KEY) or resource.agent_type
        fallback = "agent_name" if own_agent else "service"
        origin = _Origin(span, index, trace, own_agent or resource.service, fallback, agent_type)
        items: list[_Item] = []
        failed = _failed(span)
        if task or child:
            if task:
                body = {"type": "task_failed" if failed else "task_completed"}
            elif operation == TOOL_OPERATION:
                body = _tool(attrs)
            else:
                body = _inference(attrs)
                if resource.service is not None:
                    mapped.inference_services.add(resource.service)
            _timed(body, span, attrs, failed)
            _trace_context(body, trace, span.span_id)
            self._agent(body, origin)
            items.append(_Item(body, origin, None, None if task else span.parent_span_id))
        items += [self._span_event(event, origin) for event in events]
        return items

    def _agent(self, body: dict[str, Any], origin: _Origin) -> None:
        """Sets the origin's agent and its type, as the span or resource says or else by the type rules."""
        agent, agent_type = origin.agent, origin.agent_type
        if agent is not None:
            body["agent"] = agent
            agent_type = agent_type or self.agent_types.of_name(agent)
        _set(body, "agent_type", agent_type)

    def _span_event(self, event: Any, origin: _Origin) -> _Item:
        kind = event.name.removeprefix(PREFIX)
        body: dict[str, Any] = {"type": kind}
        for key, value in attributes(event.attributes).items():
            if key.startswith(PREFIX):
                body[key.removeprefix(PREFIX)] = value
        start = None
        if kind in _AGENT_EVENT_TYPES and "agent" not in body:
            start = origin.span.span_id  # the agent of this span, or of its nearest agent ancestor
            if "agent_type" in body:
                _set(body, "agent", origin.agent)
            else:
                self._agent(body, origin)
        return _Item(body, origin, event.name, start)

    def _validate(self, items: list[_Item], mapped: MappedSpans, sender: Any) -> None:
        events, problems = self.decoder.validate([item.body for item in items])
        rejected_spans = set()
        for problem in problems:
            item = items[problem.index or 0]
            rejected_spans.add(item.origin.index)
            mapped.problems.append(f"{item.where}: {describe(problem)}")
        ready, pending = mapped.ready, mapped.pending
        for item, event in zip(items, events, strict=True):
            if event is None:
                continue
            if item.start is None:
                if isinstance(event, _TASK_ENDS) and item.event is None:  # the span is the whole task
                    ready.append(TaskStarted(agent=event.agent, agent_type=event.agent_type))
                    # Only a valid agent span names the agent of its children: they take its values.
                    span_id = item.origin.span.span_id
                    mapped.agents.setdefault(item.origin.trace, {})[span_id] = (event.agent, event.agent_type)
                ready.append(event)
            else:
                origin = item.origin
                pending.append(Pending(event, origin.trace, item.start, origin.fallback, sender))  # type: ignore[arg-type]
        mapped.rejected = len(rejected_spans)


# A span's attributes are a protobuf map: ``key in attrs`` is a lookup in C, where ``get`` of a
# missing key raises and catches a KeyError (three times slower), and most keys looked up are
# missing; ``attrs[key]`` of a missing key would add it.
def _scalar(attrs: Any, *keys: str) -> Any:
    """The value of the first of ``keys`` the span has as a scalar attribute, else None."""
    for key in keys:
        if key in attrs:
            value = attrs[key]
            kind = value.WhichOneof("value")
            if kind in _SCALARS:
                return getattr(value, kind)
    return None


def _string(attrs: Any, *keys: str) -> str | None:
    """The value of the first of ``keys`` the span has as a non-empty string, else None."""
    for key in keys:
        if key in attrs:
            value: str = attrs[key].string_value  # "" for a value of another kind
            if value:
                return value
    return None


def _trace_context(body: dict[str, Any], trace: bytes, span_id: bytes) -> None:
    """The span's ids, for the exemplar of its duration bucket (when they are valid W3C ids)."""
    if len(trace) == TRACE_ID_BYTES and len(span_id) == SPAN_ID_BYTES and any(trace) and any(span_id):
        body["trace_id"], body["span_id"] = trace.hex(), span_id.hex()


def _failed(span: Any) -> bool:
    has_status: bool = span.HasField("status")  # most spans have none: asking makes no Status object
    return has_status and span.status.code == STATUS_ERROR


def _timed(body: dict[str, Any], span: Any, attrs: Any, failed: bool) -> None:
    body["duration"] = (span.end_time_unix_nano - span.start_time_unix_nano) * MILLISECONDS_PER_NANOSECOND
    if failed:
        body["reason"] = _reason(span, attrs)


def _inference(attrs: Any) -> dict[str, Any]:
    provider = _string(attrs, *PROVIDER_KEYS) or UNKNOWN
    model = _string(attrs, *MODEL_KEYS) or UNKNOWN
    body: dict[str, Any] = {"type": "llm_request", "provider": provider, "model": model}
    for name, keys in _TOKEN_ATTRIBUTES:
        value = _scalar(attrs, *keys)
        if value is not None:
            body[name] = whole(value)
    _complete_totals(body)
    cost = _scalar(attrs, "gen_ai.usage.cost")
    if cost is not None:
        body["cost"] = cost
    return body


def _complete_totals(body: dict[str, Any]) -> None:
    """The conventions count cached tokens in input_tokens and reasoning tokens in output_tokens;
    some instrumentations report them apart (as their provider's API does). When the parts exceed
    the total, the total left them out: add them, rather than refuse the span. (With no part
    given, nothing changes: most spans skip the sums. A value that is no count is left as sent,
    for the decoder to explain.)"""
    if "cache_read_tokens" in body or "cache_write_tokens" in body:
        _complete(body, "input_tokens", ("cache_read_tokens", "cache_write_tokens"))
    if "reasoning_tokens" in body:
        _complete(body, "output_tokens", ("reasoning_tokens",))


def _complete(body: dict[str, Any], total: str, parts: tuple[str, ...]) -> None:
    values = [body.get(name, 0) for name in (total, *parts)]
    if all(isinstance(value, int) and not isinstance(value, bool) for value in values) and sum(values[1:]) > values[0]:
        body[total] = sum(values)


def _tool(attrs: Any) -> dict[str, Any]:
    return {"type": "tool_call", "tool": _string(attrs, "gen_ai.tool.name") or UNKNOWN}


def _reason(span: Any, attrs: Any) -> str:
    """``error.type`` and the status message; an exception event's type when error.type is missing."""
    error_type = _string(attrs, "error.type") or _exception_type(span.events)
    message = span.status.message
    if error_type and message.startswith(f"{error_type.rpartition('.')[2]}: "):
        message = message.partition(": ")[2]  # "Type: text" (as Pydantic AI writes it): the type once
    parts = [part for part in (error_type, message) if part]
    return ": ".join(parts)[:MAX_TEXT_LENGTH] or "error"


def _exception_type(events: Iterable[Any]) -> str | None:
    for event in events:
        if event.name == "exception":
            return text(attributes(event.attributes).get("exception.type"))
    return None


def _set(body: dict[str, Any], key: str, value: Any) -> None:
    if value:
        body[key] = value
