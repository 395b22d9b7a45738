"""The metric catalogue: every series family the exporter exposes for agents, councils, queues,
the workflow and reported alerts.

Each family lives in one *slot* of its owner's value list; slots are numbered here, in the
order of :data:`FAMILIES`. Handlers in :mod:`store` write slots by the constants below;
:mod:`exposition` walks this catalogue to render them. The slot's value shape follows the
family: a number (``None`` = not reported yet, so not exposed), a list indexed by a fixed
label's values, a dict for a bounded dynamic label, a :class:`Histogram`, or a ``[sum, count]``
pair for a summary.
"""

from __future__ import annotations

import collections
import dataclasses
from bisect import bisect_left
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, NamedTuple

from .owners import AGENT, ALERT, COUNCIL, MODEL, OWNERS, QUEUE, TOOL, WORKFLOW, OwnerKind

MetricType = Literal["counter", "gauge", "histogram", "summary"]
Shape = Literal["constant", "scalar", "labelled", "keyed", "histogram", "summary"]

DECISION_OUTCOMES = ("tp", "fp", "tn", "fn")
TOKEN_TYPES = ("input", "output", "cache_read", "cache_write", "reasoning")
LLM_KEYS = ("provider", "model")
ERROR_CLASS = "error_class"  # the label whose values are the configured error classes
# The label of the *_reported_timestamp_seconds families: the event field whose value was set.
# Values that are set rather than added cannot be summed across exporter replicas, and the
# largest is not the latest; with these times the rules take each value from the replica that
# heard it last (see rules/lib.libsonnet, latest()).
REPORTED_FIELD = "field"


@dataclass(frozen=True)
class Family:
    name: str  # sample name; counters end in _total
    type: MetricType
    help: str
    owner: OwnerKind
    # Labels beyond the owner's own whose values events bring (a dict keyed by their values'
    # tuple), bounded by an overflowing owner kind; then `label` below within each. The dict
    # is made by the owner's first such event (initial None): most agents call no tool.
    keys: tuple[str, ...] = ()
    label: str | None = None  # one extra label beyond the owner's own
    label_values: tuple[str, ...] | None = None  # fixed values, in slot-list order
    buckets: str | None = None  # histogram: the config key holding its bucket bounds
    # What a new owner starts with: a number, exposed from the start (counters at zero, so that
    # rate() sees their first increase), or None, not exposed until an event sets it. A
    # histogram or summary starts empty, and each count of a labelled family at this number.
    initial: float | None = 0
    constant: bool = False  # always 1 while the owner exists (info-style): no slot
    slot: int | None = None  # position in the owner's value list; numbered by _numbered

    @property
    def shape(self) -> Shape:
        """What its slot holds, and so how it starts and renders."""
        if self.constant:
            return "constant"
        if self.keys:
            return "keyed"
        if self.type == "histogram":
            return "histogram"
        if self.type == "summary":
            return "summary"
        return "scalar" if self.label is None else "labelled"

    @property
    def family_name(self) -> str:
        """The name in HELP/TYPE lines of OpenMetrics, which drops a counter's ``_total``."""
        return self.name[: -len("_total")] if self.type == "counter" else self.name


class Exemplar(NamedTuple):
    """An observation that named its trace: shown beside its bucket in OpenMetrics."""

    trace_id: str
    span_id: str | None
    value: float
    timestamp: float  # Unix time, seconds


class Histogram:
    """Per-bucket (not cumulative) counts; the last bucket is +Inf. Cumulated on render.

    ``exemplars`` is None until an observation brings one, then holds the latest exemplar of
    each bucket (None for a bucket without one): at most one per bucket, whatever the traffic.
    """

    __slots__ = ("counts", "sum", "exemplars")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0
        self.exemplars: list[Exemplar | None] | None = None

    def observe(self, bounds: tuple[float, ...], value: float) -> None:
        self.counts[bisect_left(bounds, value)] += 1
        self.sum += value

    def observe_with_exemplar(
        self, bounds: tuple[float, ...], value: float, trace_id: str, span_id: str | None, timestamp: float
    ) -> None:
        """:meth:`observe`, keeping the observation as its bucket's exemplar (the latest wins)."""
        index = bisect_left(bounds, value)
        self.counts[index] += 1
        self.sum += value
        if self.exemplars is None:
            self.exemplars = [None] * len(self.counts)
        self.exemplars[index] = Exemplar(trace_id, span_id, value, timestamp)


def _numbered(families: Iterable[Family]) -> tuple[Family, ...]:
    """The families with slots numbered per owner, in order."""
    taken: collections.Counter[OwnerKind] = collections.Counter()
    numbered = []
    for family in families:
        if family.constant:
            numbered.append(family)
            continue
        numbered.append(dataclasses.replace(family, slot=taken[family.owner]))
        taken[family.owner] += 1
    return tuple(numbered)


FAMILIES: tuple[Family, ...] = _numbered(
    (
        # agents
        Family(
            "agency_agent_info", "gauge", "Registered agents (value 1) with their agent_type.", AGENT, constant=True
        ),
        Family("agency_agent_capacity_tasks", "gauge", "Tasks the agent can run at once.", AGENT, initial=1),
        Family(
            "agency_agent_active_tasks",
            "gauge",
            "Tasks running: the agent's last active_tasks report; for an agent that never reports it, "
            "the tasks started and not yet finished on this exporter.",
            AGENT,
        ),
        Family(
            "agency_agent_last_seen_timestamp_seconds",
            "gauge",
            "Unix time of the last event from the agent.",
            AGENT,
            initial=None,
        ),
        Family(
            "agency_agent_reported_timestamp_seconds",
            "gauge",
            "Unix time at which this exporter last heard the agent report each field it sets outright "
            "(capacity, cpu, memory, queue_depth, active_tasks): across replicas, the freshest report wins.",
            AGENT,
            label=REPORTED_FIELD,
            initial=None,
        ),
        Family("agency_agent_tasks_total", "counter", "Tasks finished, successful or not.", AGENT),
        Family(
            "agency_agent_task_failures_total",
            "counter",
            "Tasks failed, by error_class of the failure reason.",
            AGENT,
            label=ERROR_CLASS,
        ),
        Family(
            "agency_agent_task_duration_seconds",
            "histogram",
            "Task duration, successful and failed tasks.",
            AGENT,
            buckets="task_duration_seconds",
        ),
        Family("agency_agent_task_quality_score", "summary", "Quality score (0..1) of completed tasks.", AGENT),
        Family(
            "agency_agent_task_cost_usd_total", "counter", "Cost of completed tasks in US dollars.", AGENT, initial=0.0
        ),
        Family(
            "agency_agent_cpu_usage_ratio",
            "gauge",
            "CPU use of the agent (0..1) at its last heartbeat.",
            AGENT,
            initial=None,
        ),
        Family(
            "agency_agent_memory_bytes", "gauge", "Memory use of the agent at its last heartbeat.", AGENT, initial=None
        ),
        Family("agency_agent_queue_depth", "gauge", "Tasks waiting in the agent's own queue.", AGENT, initial=None),
        Family(
            "agency_agent_decisions_total",
            "counter",
            "Decisions checked against the truth, by outcome (tp, fp, tn, fn).",
            AGENT,
            label="outcome",
            label_values=DECISION_OUTCOMES,
            initial=None,  # only agents that decide have these series
        ),
        Family(
            "agency_agent_llm_requests_total",
            "counter",
            "Requests to language models, failed or not, by provider and model.",
            AGENT,
            keys=LLM_KEYS,
            initial=None,
        ),
        Family(
            "agency_agent_llm_request_failures_total",
            "counter",
            "Requests to language models that failed, by provider, model and error_class of the reason.",
            AGENT,
            keys=LLM_KEYS,
            label=ERROR_CLASS,
            initial=None,
        ),
        Family(
            "agency_agent_llm_tokens_total",
            "counter",
            "Tokens of requests to language models, by provider, model and token_type (input includes "
            "cache_read and cache_write, output includes reasoning).",
            AGENT,
            keys=LLM_KEYS,
            label="token_type",
            label_values=TOKEN_TYPES,
            initial=None,
        ),
        Family(
            "agency_agent_llm_cost_usd_total",
            "counter",
            "Spend on language models in US dollars, as reported or from the pricing table, by provider and model.",
            AGENT,
            keys=LLM_KEYS,
            initial=None,
        ),
        Family(
            "agency_agent_tool_calls_total",
            "counter",
            "Tool calls, failed or not, by tool.",
            AGENT,
            keys=("tool",),
            initial=None,
        ),
        Family(
            "agency_agent_tool_call_failures_total",
            "counter",
            "Tool calls that failed, by tool.",
            AGENT,
            keys=("tool",),
            initial=None,
        ),
        # councils
        Family("agency_council_consensus_attempts_total", "counter", "Consensus formations attempted.", COUNCIL),
        Family(
            "agency_council_consensus_failures_total",
            "counter",
            "Consensus formations that did not reach consensus.",
            COUNCIL,
        ),
        Family(
            "agency_council_consensus_formation_seconds",
            "histogram",
            "Time to reach (or give up on) consensus.",
            COUNCIL,
            buckets="consensus_formation_seconds",
        ),
        Family("agency_council_debates_total", "counter", "Consensus formations that needed a debate.", COUNCIL),
        Family("agency_council_debate_rounds", "histogram", "Rounds per debate.", COUNCIL, buckets="debate_rounds"),
        Family(
            "agency_council_compliance_checks_total", "counter", "Decisions checked against the constitution.", COUNCIL
        ),
        Family(
            "agency_council_compliance_violations_total",
            "counter",
            "Decisions that violated the constitution, by principle.",
            COUNCIL,
            label="principle",
        ),
        Family(
            "agency_council_sessions_active",
            "gauge",
            "Coordination sessions open: the council's last active_sessions report; for a council that "
            "never reports it, the sessions started and not yet ended on this exporter.",
            COUNCIL,
        ),
        Family(
            "agency_council_reported_timestamp_seconds",
            "gauge",
            "Unix time at which this exporter last heard the council report active_sessions.",
            COUNCIL,
            label=REPORTED_FIELD,
            initial=None,
        ),
        Family(
            "agency_council_coordination_seconds_total", "counter", "Time spent on coordination.", COUNCIL, initial=0.0
        ),
        Family(
            "agency_council_decisions_total",
            "counter",
            "Council decisions checked against the truth, by outcome (tp, fp, tn, fn).",
            COUNCIL,
            label="outcome",
            label_values=DECISION_OUTCOMES,
            initial=None,  # only councils that decide have these series
        ),
        # workflow (business)
        Family("agency_workflow_tasks_total", "counter", "Workflow tasks finished.", WORKFLOW),
        Family("agency_workflow_task_failures_total", "counter", "Workflow tasks not completed.", WORKFLOW),
        Family(
            "agency_workflow_task_quality_score",
            "histogram",
            "Quality score (0..1) of workflow tasks.",
            WORKFLOW,
            buckets="workflow_task_quality_score",
        ),
        Family(
            "agency_workflow_task_cost_usd_total",
            "counter",
            "Cost of workflow tasks in US dollars.",
            WORKFLOW,
            initial=0.0,
        ),
        # queues
        Family("agency_queue_depth", "gauge", "Items waiting in the queue.", QUEUE, initial=None),
        Family(
            "agency_queue_reported_timestamp_seconds",
            "gauge",
            "Unix time at which this exporter last heard the queue's depth.",
            QUEUE,
            label=REPORTED_FIELD,
            initial=None,
        ),
        Family(
            "agency_queue_wait_seconds",
            "histogram",
            "Time items waited in the queue.",
            QUEUE,
            buckets="queue_wait_seconds",
        ),
        # models and tools
        Family(
            "agency_llm_request_duration_seconds",
            "histogram",
            "Duration of requests to language models, by provider and model.",
            MODEL,
            buckets="llm_request_duration_seconds",
        ),
        Family(
            "agency_tool_call_duration_seconds",
            "histogram",
            "Duration of tool calls, by tool.",
            TOOL,
            buckets="tool_call_duration_seconds",
        ),
        # alerts reported by agents
        Family(
            "agency_reported_alert",
            "gauge",
            "Alerts raised by agents themselves (value 1 while active).",
            ALERT,
            constant=True,
        ),
    )
)
FAMILIES_OF: dict[OwnerKind, tuple[Family, ...]] = {
    kind: tuple(family for family in FAMILIES if family.owner is kind) for kind in OWNERS
}


def family(name: str) -> Family:
    for candidate in FAMILIES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)


def slot(name: str) -> int:
    found = family(name).slot
    assert found is not None, f"{name} has no slot"
    return found


# The slots the store's handlers write, as constants: a module attribute is read faster than a lookup.
A_CAPACITY = slot("agency_agent_capacity_tasks")
A_ACTIVE = slot("agency_agent_active_tasks")
A_LAST_SEEN = slot("agency_agent_last_seen_timestamp_seconds")
A_REPORTED = slot("agency_agent_reported_timestamp_seconds")
A_TASKS = slot("agency_agent_tasks_total")
A_FAILURES = slot("agency_agent_task_failures_total")
A_DURATION = slot("agency_agent_task_duration_seconds")
A_QUALITY = slot("agency_agent_task_quality_score")
A_COST = slot("agency_agent_task_cost_usd_total")
A_CPU = slot("agency_agent_cpu_usage_ratio")
A_MEMORY = slot("agency_agent_memory_bytes")
A_QUEUE_DEPTH = slot("agency_agent_queue_depth")
A_DECISIONS = slot("agency_agent_decisions_total")
A_LLM_REQUESTS = slot("agency_agent_llm_requests_total")
A_LLM_FAILURES = slot("agency_agent_llm_request_failures_total")
A_LLM_TOKENS = slot("agency_agent_llm_tokens_total")
A_LLM_COST = slot("agency_agent_llm_cost_usd_total")
A_TOOL_CALLS = slot("agency_agent_tool_calls_total")
A_TOOL_FAILURES = slot("agency_agent_tool_call_failures_total")
C_ATTEMPTS = slot("agency_council_consensus_attempts_total")
C_FAILURES = slot("agency_council_consensus_failures_total")
C_FORMATION = slot("agency_council_consensus_formation_seconds")
C_DEBATES = slot("agency_council_debates_total")
C_ROUNDS = slot("agency_council_debate_rounds")
C_CHECKS = slot("agency_council_compliance_checks_total")
C_VIOLATIONS = slot("agency_council_compliance_violations_total")
C_SESSIONS = slot("agency_council_sessions_active")
C_REPORTED = slot("agency_council_reported_timestamp_seconds")
C_COORDINATION = slot("agency_council_coordination_seconds_total")
C_DECISIONS = slot("agency_council_decisions_total")
W_TASKS = slot("agency_workflow_tasks_total")
W_FAILURES = slot("agency_workflow_task_failures_total")
W_QUALITY = slot("agency_workflow_task_quality_score")
W_COST = slot("agency_workflow_task_cost_usd_total")
Q_DEPTH = slot("agency_queue_depth")
Q_REPORTED = slot("agency_queue_reported_timestamp_seconds")
Q_WAIT = slot("agency_queue_wait_seconds")
M_DURATION = slot("agency_llm_request_duration_seconds")
T_DURATION = slot("agency_tool_call_duration_seconds")
