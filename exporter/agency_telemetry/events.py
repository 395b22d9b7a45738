"""The event schema of the ingest API: one msgspec Struct per event type, in one tagged union.

Each class says what its fields are (with the post-check markers the decoder reads), which
owners it names and may create (:attr:`Event.owners`), and its rules across fields. Decoding
and validation are :mod:`decoder`'s job; applying events is :mod:`store`'s.
"""

from __future__ import annotations

import typing
from collections.abc import Iterable
from typing import Annotated, ClassVar, Literal, NamedTuple

from msgspec import Meta, Struct

from .owners import AGENT, ALERT, COUNCIL, MODEL, PRINCIPLE, QUEUE, TOOL, WORKFLOW, OwnerKind
from .units import DURATION, RATIO, SIZE, Dimension

MAX_TEXT_LENGTH = 1024  # free text (failure reasons, alert messages); never more than this

ALERT_TYPES = (
    "agent_performance",
    "system_health",
    "coordination_failure",
    "quality_degradation",
    "security_violation",
)
SEVERITIES = ("info", "warning", "critical", "emergency")
UNKNOWN_AGENT_TYPE = "unknown"
UNSPECIFIED_PRINCIPLE = "unspecified"  # a violation that names no principle


# --- field kinds -------------------------------------------------------------------------
# Annotated markers tell the decoder which post-check a field gets; msgspec ignores them.


class LabelField:
    """A value that becomes a label: length-limited by configuration."""


class AgentTypeField:
    """An agent type: must be one of the configured set."""


class QuantityField:
    """A number in the dimension's default unit, or a string with a unit."""

    def __init__(self, dimension: Dimension, upper: float) -> None:
        self.dimension = dimension
        self.upper = upper


class TraceContextField:
    """A W3C trace-context id: ``digits`` lowercase hex digits, not all zero. msgspec checks the
    pattern while decoding; the marker only lets the decoder explain a refusal."""

    def __init__(self, name: str, digits: int) -> None:
        self.name = name
        self.digits = digits

    @property
    def pattern(self) -> str:
        return rf"^(?!0{{{self.digits}}})[0-9a-f]{{{self.digits}}}\Z"


LABEL = LabelField()
# Label characters are checked after decoding, once per distinct value (see decoder.EventDecoder):
# a msgspec pattern runs a regex on every value, which was 3/4 of the decoding time.
Label = Annotated[str, Meta(min_length=1), LABEL]
AgentTypeName = Annotated[str, Meta(min_length=1), AgentTypeField()]
IdempotencyKey = Annotated[str, Meta(min_length=1, max_length=128)]
Text = Annotated[str, Meta(max_length=MAX_TEXT_LENGTH)]
Count = Annotated[int, Meta(ge=0, le=2**53)]
Tokens = Annotated[int, Meta(ge=0, le=10**9)]  # per request; more is a client bug, not usage
Score = Annotated[float, Meta(ge=0.0, le=1.0)]
CostUsd = Annotated[float, Meta(ge=0.0, le=1e9)]
Duration = Annotated[float | str, QuantityField(DURATION, upper=1e7)]  # ~115 days
Bytes = Annotated[float | str, QuantityField(SIZE, upper=2.0**60)]
Ratio = Annotated[float | str, QuantityField(RATIO, upper=1.0)]
TRACE_ID = TraceContextField("trace id", 32)
SPAN_ID = TraceContextField("span id", 16)
# Unlike labels, the pattern is left to msgspec: trace ids are rare, and an absent one costs nothing.
TraceId = Annotated[str, Meta(pattern=TRACE_ID.pattern), TRACE_ID]
SpanId = Annotated[str, Meta(pattern=SPAN_ID.pattern), SPAN_ID]


# --- events ------------------------------------------------------------------------------


class Names(NamedTuple):
    """An owner an event names: its kind, the field holding its id, whether the event may add it."""

    kind: OwnerKind
    field: str | None  # None for the workflow, the one owner of its kind
    creates: bool = True


class Event(Struct, kw_only=True, tag_field="type", forbid_unknown_fields=True, gc=False):
    """Fields every event may carry. ``id`` makes a retried event count once."""

    # Every owner an event of the class names. The store's limits, the token scopes and the
    # tests that keep the store's handlers honest all read this, and nothing else.
    owners: ClassVar[tuple[Names, ...]] = ()

    id: IdempotencyKey | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        """(field, message) pairs for rules that span several fields."""
        return ()

    def new_owner(self, names: Names) -> str | None:
        """The id of the owner of ``names`` this event adds when it is not tracked yet (None: none)."""
        return None if names.field is None else getattr(self, names.field)


class AgentEvent(Event, kw_only=True):
    owners: ClassVar[tuple[Names, ...]] = (Names(AGENT, "agent"),)

    agent: Label
    agent_type: AgentTypeName | None = None


Capacity = Annotated[int, Meta(ge=1, le=1_000_000)]


class AgentRegistered(AgentEvent, tag="agent_registered"):
    capacity: Capacity = 1


class AgentDeregistered(AgentEvent, tag="agent_deregistered"):
    owners = (Names(AGENT, "agent", creates=False),)


class AgentHeartbeat(AgentEvent, tag="agent_heartbeat"):
    """The agent's own figures, absolute. ``active_tasks`` is the agent's count of its running
    tasks: from the first one on, it is the count, instead of the exporter's (kept from task
    starts and ends), which a restart, a lost event or starts and ends reaching different
    replicas would leave wrong. ``capacity`` repeats the
    registration's, so that an exporter replica that never saw the registration (the agent moved
    to it) learns it."""

    capacity: Capacity | None = None
    cpu: Ratio | None = None
    memory: Bytes | None = None
    queue_depth: Count | None = None
    active_tasks: Count | None = None


class TaskStarted(AgentEvent, tag="task_started"):
    pass


class TracedEvent(AgentEvent, kw_only=True):
    """An agent event with a duration that may name the trace (and span) it was part of: an
    exemplar of its duration histogram. The decoder's fast pass checks the rule below inline."""

    trace_id: TraceId | None = None
    span_id: SpanId | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        return trace_context_problems(self)


def trace_context_problems(event: TracedEvent | LlmRequest) -> Iterable[tuple[str, str]]:
    if event.span_id is not None and event.trace_id is None:
        yield "span_id", "only allowed with trace_id: a span id names a span of that trace"


class TaskCompleted(TracedEvent, tag="task_completed"):
    duration: Duration
    quality_score: Score | None = None
    cost: CostUsd | None = None


class TaskFailed(TracedEvent, tag="task_failed"):
    reason: Text = ""
    duration: Duration | None = None


class LlmEvent(AgentEvent, kw_only=True):
    """What LLM requests and totals of them share: the model, the tokens and their rules. As in
    the OpenTelemetry GenAI conventions, ``input_tokens`` includes the cached ones (read and
    written) and ``output_tokens`` the reasoning ones. ``cost`` (USD) wins over the pricing."""

    owners = (Names(AGENT, "agent"), Names(MODEL, "model"))

    provider: Label
    model: Label
    input_tokens: Tokens = 0
    output_tokens: Tokens = 0
    cache_read_tokens: Tokens = 0
    cache_write_tokens: Tokens = 0
    reasoning_tokens: Tokens = 0
    cost: CostUsd | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        if self.cache_read_tokens + self.cache_write_tokens > self.input_tokens:
            yield "cache_read_tokens", "cached tokens are part of input_tokens: give input_tokens >= their sum"
        if self.reasoning_tokens > self.output_tokens:
            yield "reasoning_tokens", "reasoning tokens are part of output_tokens: give output_tokens >= them"

    def new_owner(self, names: Names) -> str | None:
        return owner_key(self.provider, self.model) if names.kind is MODEL else super().new_owner(names)


class LlmRequest(LlmEvent, tag="llm_request"):
    """One request of an agent to a language model; a ``reason`` makes it failed. It may name
    its trace and span as a :class:`TracedEvent` does (msgspec allows one base with fields)."""

    duration: Duration
    reason: Text | None = None
    trace_id: TraceId | None = None
    span_id: SpanId | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        yield from super().cross_field_problems()
        yield from trace_context_problems(self)


Total = Annotated[int, Meta(ge=0, le=2**53)]  # a count summed over many requests
Bound = Annotated[float, Meta(ge=0.0, le=1e7)] | None  # a bucket's upper bound in seconds; None: +Inf


class LlmUsage(LlmEvent, tag="llm_usage"):
    """Totals of LLM requests measured elsewhere — an OTLP metrics stream, an LLM gateway's
    counters: ``requests`` requests (``failures`` of them failed, for ``reason``) and their tokens.
    ``durations`` are ``[upper bound in seconds (null: +Inf), count]`` buckets, each count placed
    in the configured bucket holding its bound, and ``duration_sum`` their total."""

    requests: Total = 0
    failures: Total = 0
    reason: Text | None = None
    input_tokens: Total = 0
    output_tokens: Total = 0
    cache_read_tokens: Total = 0
    cache_write_tokens: Total = 0
    reasoning_tokens: Total = 0
    durations: Annotated[list[tuple[Bound, Total]], Meta(max_length=128)] = []
    duration_sum: Duration | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        yield from super().cross_field_problems()
        if self.failures > self.requests:
            yield "failures", "failures are part of requests: give requests >= failures"
        if self.failures and self.reason is None:
            yield "reason", "give the reason the failures failed for"


class ToolCall(TracedEvent, tag="tool_call"):
    """One call of a tool by an agent; a ``reason`` makes it failed."""

    owners = (Names(AGENT, "agent"), Names(TOOL, "tool"))

    tool: Label
    duration: Duration
    reason: Text | None = None


def owner_key(*labels: str) -> str:
    """The id of an owner labelled by several values, a model's provider and name (a label
    value holds no newline); of an owner with one label, that value."""
    return "\n".join(labels)


class Consensus(Event, tag="consensus"):
    owners = (Names(COUNCIL, "council"), Names(PRINCIPLE, "violated_principle"))

    council: Label
    formation_time: Duration
    achieved: bool
    debate_required: bool = False
    debate_rounds: Count = 0
    constitutional_compliance: bool = True
    violated_principle: Label | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        if self.violated_principle is not None and self.constitutional_compliance:
            yield "violated_principle", "only allowed with constitutional_compliance: false"
        if self.debate_rounds and not self.debate_required:
            yield "debate_rounds", "only allowed with debate_required: true"

    def new_owner(self, names: Names) -> str | None:
        if names.kind is PRINCIPLE:
            return None if self.constitutional_compliance else self.violated_principle or UNSPECIFIED_PRINCIPLE
        return super().new_owner(names)


class Coordination(Event, tag="coordination"):
    """A session started or ended, coordination time spent, or the council's own count of its
    open sessions (``active_sessions``), which from then on is the count, as a heartbeat's
    ``active_tasks`` is."""

    owners = (Names(COUNCIL, "council"),)

    council: Label
    session: Literal["started", "ended"] | None = None
    overhead: Duration | None = None
    active_sessions: Count | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        if self.session is None and self.overhead is None and self.active_sessions is None:
            yield "session", "give session (started/ended), overhead, active_sessions, or several"


class Business(Event, tag="business"):
    owners = (Names(WORKFLOW, None, creates=False),)

    completed: bool
    quality_score: Score | None = None
    cost: CostUsd | None = None


class Decision(Event, tag="decision"):
    owners = (Names(AGENT, "agent"), Names(COUNCIL, "council"))  # exactly one of the two is given

    predicted: bool
    actual: bool
    council: Label | None = None
    agent: Label | None = None
    agent_type: AgentTypeName | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        if (self.council is None) == (self.agent is None):
            yield "council", "give exactly one of council or agent"


class QueueSample(Event, tag="queue"):
    owners = (Names(QUEUE, "queue"),)

    queue: Label
    depth: Count | None = None
    wait: Duration | None = None

    def cross_field_problems(self) -> Iterable[tuple[str, str]]:
        if self.depth is None and self.wait is None:
            yield "depth", "give depth, wait, or both"


class Alert(Event, tag="alert"):
    """An alert an agent raises itself (the seed's ``add_alert``).

    ``alert_id`` names the alert; it is not ``id`` because ``id`` is the idempotency key
    and the same alert is sent again to resolve it.
    """

    owners = (Names(ALERT, "alert_id"),)

    alert_id: Label
    alert_type: Literal[ALERT_TYPES]  # type: ignore[valid-type]
    severity: Literal[SEVERITIES]  # type: ignore[valid-type]
    message: Text = ""
    affected_agents: Annotated[list[Label], Meta(max_length=64)] = []
    status: Literal["active", "resolved"] = "active"

    def new_owner(self, names: Names) -> str | None:
        return super().new_owner(names) if self.status == "active" else None  # resolving adds nothing


AnyEvent = (
    AgentRegistered
    | AgentDeregistered
    | AgentHeartbeat
    | TaskStarted
    | TaskCompleted
    | TaskFailed
    | LlmRequest
    | LlmUsage
    | ToolCall
    | Consensus
    | Coordination
    | Business
    | Decision
    | QueueSample
    | Alert
)
EVENT_CLASSES: tuple[type[Event], ...] = typing.get_args(AnyEvent)
EVENT_TYPES: dict[str, type[Event]] = {cls.__struct_config__.tag: cls for cls in EVENT_CLASSES}  # type: ignore[misc]


def event_type(cls: type[Event]) -> str:
    return str(cls.__struct_config__.tag)
