"""The metric catalogue: every series family the exporter exposes for agents and councils.

Each family lives in one *slot* of its owner's value list (an agent, a council, a queue,
the workflow singleton or a reported alert). Handlers in :mod:`store` write slots by these
constants; :mod:`exposition` walks this catalogue to render them. The slot's value shape
follows the family: a number (``None`` = not reported yet, so not exposed), a list indexed
by a fixed label's values, a dict for a bounded dynamic label, a :class:`Histogram`, or a
``[sum, count]`` pair for a summary.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass
from typing import Literal

Owner = Literal["agent", "council", "queue", "workflow", "alert"]
MetricType = Literal["counter", "gauge", "histogram", "summary"]

DECISION_OUTCOMES = ("tp", "fp", "tn", "fn")


@dataclass(frozen=True)
class Family:
    name: str  # sample name; counters end in _total
    type: MetricType
    help: str
    owner: Owner
    slot: int | None  # None: the value is always 1 while the owner exists (info-style)
    label: str | None = None  # one extra label beyond the owner's own
    label_values: tuple[str, ...] | None = None  # fixed values, in slot-list order
    buckets: str | None = None  # histogram: the config key holding its bucket bounds

    @property
    def family_name(self) -> str:
        """The name in HELP/TYPE lines of OpenMetrics, which drops a counter's ``_total``."""
        return self.name[: -len("_total")] if self.type == "counter" else self.name


class Histogram:
    """Per-bucket (not cumulative) counts; the last bucket is +Inf. Cumulated on render."""

    __slots__ = ("counts", "sum")

    def __init__(self, size: int) -> None:
        self.counts = [0] * size
        self.sum = 0.0

    def observe(self, bounds: tuple[float, ...], value: float) -> None:
        self.counts[bisect_left(bounds, value)] += 1
        self.sum += value


# Agent slots
A_CAPACITY, A_ACTIVE, A_LAST_SEEN, A_TASKS, A_FAILURES, A_DURATION = range(6)
A_QUALITY, A_COST, A_CPU, A_MEMORY, A_QUEUE_DEPTH, A_DECISIONS = range(6, 12)
AGENT_SLOTS = 12
# Council slots
C_ATTEMPTS, C_FAILURES, C_FORMATION, C_DEBATES, C_ROUNDS, C_CHECKS = range(6)
C_VIOLATIONS, C_SESSIONS, C_COORDINATION, C_DECISIONS = range(6, 10)
COUNCIL_SLOTS = 10
# Workflow slots (one owner, no labels)
W_TASKS, W_FAILURES, W_QUALITY, W_COST = range(4)
WORKFLOW_SLOTS = 4
# Queue slots
Q_DEPTH, Q_WAIT = range(2)
QUEUE_SLOTS = 2

FAMILIES: tuple[Family, ...] = (
    # agents
    Family("agency_agent_info", "gauge", "Registered agents (value 1) with their agent_type.", "agent", None),
    Family("agency_agent_capacity_tasks", "gauge", "Tasks the agent can run at once.", "agent", A_CAPACITY),
    Family(
        "agency_agent_active_tasks",
        "gauge",
        "Tasks started and not yet finished on this exporter (sum over replicas).",
        "agent",
        A_ACTIVE,
    ),
    Family(
        "agency_agent_last_seen_timestamp_seconds",
        "gauge",
        "Unix time of the last event from the agent.",
        "agent",
        A_LAST_SEEN,
    ),
    Family("agency_agent_tasks_total", "counter", "Tasks finished, successful or not.", "agent", A_TASKS),
    Family(
        "agency_agent_task_failures_total",
        "counter",
        "Tasks failed, by error_class of the failure reason.",
        "agent",
        A_FAILURES,
        label="error_class",
    ),
    Family(
        "agency_agent_task_duration_seconds",
        "histogram",
        "Task duration, successful and failed tasks.",
        "agent",
        A_DURATION,
        buckets="task_duration_seconds",
    ),
    Family(
        "agency_agent_task_quality_score",
        "summary",
        "Quality score (0..1) of completed tasks.",
        "agent",
        A_QUALITY,
    ),
    Family("agency_agent_task_cost_usd_total", "counter", "Cost of completed tasks in US dollars.", "agent", A_COST),
    Family(
        "agency_agent_cpu_usage_ratio", "gauge", "CPU use of the agent (0..1) at its last heartbeat.", "agent", A_CPU
    ),
    Family("agency_agent_memory_bytes", "gauge", "Memory use of the agent at its last heartbeat.", "agent", A_MEMORY),
    Family("agency_agent_queue_depth", "gauge", "Tasks waiting in the agent's own queue.", "agent", A_QUEUE_DEPTH),
    Family(
        "agency_agent_decisions_total",
        "counter",
        "Decisions checked against the truth, by outcome (tp, fp, tn, fn).",
        "agent",
        A_DECISIONS,
        label="outcome",
        label_values=DECISION_OUTCOMES,
    ),
    # councils
    Family(
        "agency_council_consensus_attempts_total",
        "counter",
        "Consensus formations attempted.",
        "council",
        C_ATTEMPTS,
    ),
    Family(
        "agency_council_consensus_failures_total",
        "counter",
        "Consensus formations that did not reach consensus.",
        "council",
        C_FAILURES,
    ),
    Family(
        "agency_council_consensus_formation_seconds",
        "histogram",
        "Time to reach (or give up on) consensus.",
        "council",
        C_FORMATION,
        buckets="consensus_formation_seconds",
    ),
    Family(
        "agency_council_debates_total", "counter", "Consensus formations that needed a debate.", "council", C_DEBATES
    ),
    Family(
        "agency_council_debate_rounds",
        "histogram",
        "Rounds per debate.",
        "council",
        C_ROUNDS,
        buckets="debate_rounds",
    ),
    Family(
        "agency_council_compliance_checks_total",
        "counter",
        "Decisions checked against the constitution.",
        "council",
        C_CHECKS,
    ),
    Family(
        "agency_council_compliance_violations_total",
        "counter",
        "Decisions that violated the constitution, by principle.",
        "council",
        C_VIOLATIONS,
        label="principle",
    ),
    Family(
        "agency_council_sessions_active", "gauge", "Coordination sessions open on this exporter.", "council", C_SESSIONS
    ),
    Family(
        "agency_council_coordination_seconds_total",
        "counter",
        "Time spent on coordination.",
        "council",
        C_COORDINATION,
    ),
    Family(
        "agency_council_decisions_total",
        "counter",
        "Council decisions checked against the truth, by outcome (tp, fp, tn, fn).",
        "council",
        C_DECISIONS,
        label="outcome",
        label_values=DECISION_OUTCOMES,
    ),
    # workflow (business)
    Family("agency_workflow_tasks_total", "counter", "Workflow tasks finished.", "workflow", W_TASKS),
    Family(
        "agency_workflow_task_failures_total",
        "counter",
        "Workflow tasks not completed.",
        "workflow",
        W_FAILURES,
    ),
    Family(
        "agency_workflow_task_quality_score",
        "histogram",
        "Quality score (0..1) of workflow tasks.",
        "workflow",
        W_QUALITY,
        buckets="workflow_task_quality_score",
    ),
    Family(
        "agency_workflow_task_cost_usd_total",
        "counter",
        "Cost of workflow tasks in US dollars.",
        "workflow",
        W_COST,
    ),
    # queues
    Family("agency_queue_depth", "gauge", "Items waiting in the queue.", "queue", Q_DEPTH),
    Family(
        "agency_queue_wait_seconds",
        "histogram",
        "Time items waited in the queue.",
        "queue",
        Q_WAIT,
        buckets="queue_wait_seconds",
    ),
    # alerts reported by agents
    Family(
        "agency_reported_alert",
        "gauge",
        "Alerts raised by agents themselves (value 1 while active).",
        "alert",
        None,
    ),
)

OWNER_LABELS: dict[Owner, tuple[str, ...]] = {
    "agent": ("agent", "agent_type"),
    "council": ("council",),
    "queue": ("queue",),
    "workflow": (),
    "alert": ("alert_id", "alert_type", "severity", "affected_agents", "message"),
}


def family(name: str) -> Family:
    for candidate in FAMILIES:
        if candidate.name == name:
            return candidate
    raise KeyError(name)
