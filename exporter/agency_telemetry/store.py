"""State of every agent, council, queue and reported alert; limits, dedup and expiry.

No I/O and no clock of its own (both clocks are injected), so every rule here is tested
directly. A batch is applied in three steps — drop duplicates, check every limit, then
mutate — so a batch that would break a limit changes nothing. Handlers write the slots
named in :mod:`catalogue`; they cannot fail once the limits have been checked.

Everything is additive across exporter replicas: counters only grow, load moves by +1/-1,
and values that are set (capacity, CPU, memory, last seen) are meant to be combined with
``max`` in rules.
"""

from __future__ import annotations

import collections
import operator
import sys
import time
from collections.abc import Callable, Container, Iterable
from dataclasses import dataclass, field
from typing import Any

from .catalogue import (
    A_ACTIVE,
    A_CAPACITY,
    A_COST,
    A_CPU,
    A_DECISIONS,
    A_DURATION,
    A_FAILURES,
    A_LAST_SEEN,
    A_MEMORY,
    A_QUALITY,
    A_QUEUE_DEPTH,
    A_TASKS,
    AGENT_SLOTS,
    C_ATTEMPTS,
    C_CHECKS,
    C_COORDINATION,
    C_DEBATES,
    C_DECISIONS,
    C_FAILURES,
    C_FORMATION,
    C_ROUNDS,
    C_SESSIONS,
    C_VIOLATIONS,
    COUNCIL_SLOTS,
    DECISION_OUTCOMES,
    Q_DEPTH,
    Q_WAIT,
    W_COST,
    W_FAILURES,
    W_QUALITY,
    W_TASKS,
    WORKFLOW_SLOTS,
    Histogram,
)
from .classifier import ErrorClassifier
from .config import FALLBACK_ERROR_CLASS, Config
from .events import (
    UNKNOWN_AGENT_TYPE,
    AgentDeregistered,
    AgentHeartbeat,
    AgentRegistered,
    Alert,
    Business,
    Consensus,
    Coordination,
    Decision,
    Event,
    QueueSample,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
)

UNSPECIFIED_PRINCIPLE = "unspecified"
Clock = Callable[[], float]


class LimitExceeded(Exception):
    """Applying the batch would track more of something than the configuration allows."""

    def __init__(self, what: str, limit: int, setting: str, reason: str) -> None:
        super().__init__(
            f"the batch would track more than {limit} {what} ({setting}); nothing was applied. "
            f"Wait for idle {what} to expire, deregister some, or raise the limit"
        )
        self.reason = reason


class Entity:
    """One agent, council, queue or alert: its rendered labels and its metric slots."""

    __slots__ = ("labels", "values", "touched", "agent_type")

    def __init__(self, labels: str, values: list[Any], touched: float, agent_type: str = "") -> None:
        self.labels = labels  # '{agent="a",agent_type="t"}', rendered once; "" for no labels
        self.values = values
        self.touched = touched  # monotonic time of the last event, for expiry
        # Interned: every event compares its agent_type with this, and the few shared strings
        # stay in the CPU cache where one string per agent would not.
        self.agent_type = agent_type


@dataclass
class StoreStats:
    """Counts the exporter reports about itself (agency_exporter_*)."""

    received: collections.Counter[type[Event]] = field(default_factory=collections.Counter)  # duplicates included
    duplicates: int = 0
    dedup_evicted: int = 0
    expired_agents: int = 0
    expired_councils: int = 0
    expired_queues: int = 0
    expired_alerts: int = 0


@dataclass(frozen=True)
class Applied:
    accepted: int
    duplicates: int


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Store:
    def __init__(self, config: Config, clock: Clock = time.monotonic, wall_clock: Clock = time.time) -> None:
        self.config = config
        self.limits = config.limits
        self.expiry = config.expiry
        self.clock = clock
        self.wall_clock = wall_clock
        self.classifier = ErrorClassifier(((e.name, e.pattern) for e in config.error_classes), FALLBACK_ERROR_CLASS)
        self.bounds: dict[str, tuple[float, ...]] = {
            name: tuple(float(b) for b in getattr(config.buckets, name)) for name in config.buckets.__struct_fields__
        }
        self._duration_bounds = self.bounds["task_duration_seconds"]
        self._formation_bounds = self.bounds["consensus_formation_seconds"]
        self._rounds_bounds = self.bounds["debate_rounds"]
        self._quality_bounds = self.bounds["workflow_task_quality_score"]
        self._wait_bounds = self.bounds["queue_wait_seconds"]
        self.agents: dict[str, Entity] = {}
        self.councils: dict[str, Entity] = {}
        self.queues: dict[str, Entity] = {}
        self.alerts: dict[str, Entity] = {}
        self.principles: set[str] = set()
        self.workflow = Entity("", self._workflow_values(), 0.0)
        self.stats = StoreStats()
        self._seen_ids: dict[str, float] = {}  # id -> forget-at; insertion order = expiry order
        self._handlers: dict[type[Event], Callable[[Any, float, float], None]] = {
            AgentRegistered: self._on_registered,
            AgentDeregistered: self._on_deregistered,
            AgentHeartbeat: self._on_heartbeat,
            TaskStarted: self._on_task_started,
            TaskCompleted: self._on_task_completed,
            TaskFailed: self._on_task_failed,
            Consensus: self._on_consensus,
            Coordination: self._on_coordination,
            Business: self._on_business,
            Decision: self._on_decision,
            QueueSample: self._on_queue,
            Alert: self._on_alert,
        }

    # batches --------------------------------------------------------------------------

    def apply(self, events: list[Event]) -> Applied:
        """Apply a validated batch entirely, or raise :class:`LimitExceeded` and change nothing."""
        now, wall = self.clock(), self.wall_clock()
        per_type = collections.Counter(map(type, events))
        fresh, new_ids = self._drop_duplicates(events, now)
        self._check_limits(fresh, per_type)
        handlers = self._handlers
        for event in fresh:
            handlers[type(event)](event, now, wall)
        self._remember(new_ids, now)
        duplicates = len(events) - len(fresh)
        self.stats.duplicates += duplicates
        self.stats.received.update(per_type)
        return Applied(len(fresh), duplicates)

    def _drop_duplicates(self, events: list[Event], now: float) -> tuple[list[Event], list[str]]:
        self._forget_ids(now)
        if not any(map(_EVENT_ID, events)):  # most batches carry no ids (an id is never empty)
            return events, []
        seen = self._seen_ids
        fresh: list[Event] = []
        new_ids: dict[str, None] = {}
        for event in events:
            key = event.id
            if key is not None:
                if key in seen or key in new_ids:
                    continue
                new_ids[key] = None
            fresh.append(event)
        return fresh, list(new_ids)

    def _remember(self, ids: list[str], now: float) -> None:
        if not ids:
            return
        forget_at = now + self.expiry.dedup_window
        seen = self._seen_ids
        for key in ids:
            seen[key] = forget_at
        overflow = len(seen) - self.expiry.dedup_max_ids
        if overflow > 0:  # forget the oldest early; counted, because a late retry may now double count
            for key in list(_first(seen, overflow)):
                del seen[key]
            self.stats.dedup_evicted += overflow

    def _forget_ids(self, now: float) -> None:
        seen = self._seen_ids
        while seen:
            key = next(iter(seen))
            if seen[key] > now:
                break
            del seen[key]

    def _check_limits(self, events: list[Event], per_type: collections.Counter[type[Event]]) -> None:
        """``per_type`` counts the batch before its duplicates were dropped: it only bounds how
        many events could add an owner, which is all the quick look needs."""
        limits = self.limits
        for tracked, limit, setting, owned_by, new_keys in (
            (self.agents, limits.max_agents, "limits.max_agents", (*_AGENT_OWNED, Decision), _new_agents),
            (self.councils, limits.max_councils, "limits.max_councils", _COUNCIL_OWNED, _new_councils),
            (self.queues, limits.max_queues, "limits.max_queues", (QueueSample,), _new_queues),
            (self.alerts, limits.max_active_alerts, "limits.max_active_alerts", (Alert,), _new_alerts),
            (self.principles, limits.max_principles, "limits.max_principles", (Consensus,), _new_principles),
        ):
            # Fewer events that could add one than there is room left: no need to look closer.
            could_add = sum(per_type[cls] for cls in owned_by)
            if len(tracked) + could_add > limit and len(tracked) + len(new_keys(events, tracked)) > limit:
                what = setting.removeprefix("limits.max_")
                raise LimitExceeded(what.replace("_", " "), limit, setting, reason=f"{what}_limit")

    # expiry ---------------------------------------------------------------------------

    def expire(self) -> None:
        """Remove agents, councils and queues silent past ``agent_ttl``, alerts past ``alert_ttl``."""
        now = self.clock()
        self.stats.expired_agents += _drop_idle(self.agents, now - self.expiry.agent_ttl)
        self.stats.expired_councils += _drop_idle(self.councils, now - self.expiry.agent_ttl)
        self.stats.expired_queues += _drop_idle(self.queues, now - self.expiry.agent_ttl)
        self.stats.expired_alerts += _drop_idle(self.alerts, now - self.expiry.alert_ttl)
        self._forget_ids(now)

    @property
    def dedup_ids(self) -> int:
        return len(self._seen_ids)

    # owners ---------------------------------------------------------------------------

    def _agent(self, agent_id: str, agent_type: str | None, now: float, wall: float) -> Entity:
        entity = self.agents.get(agent_id)
        if entity is None:
            kind = sys.intern(agent_type or UNKNOWN_AGENT_TYPE)
            entity = Entity(_agent_labels(agent_id, kind), self._agent_values(), now, kind)
            self.agents[agent_id] = entity
        elif agent_type is not None and agent_type != entity.agent_type:
            entity.agent_type = sys.intern(agent_type)
            entity.labels = _agent_labels(agent_id, agent_type)
        entity.touched = now
        entity.values[A_LAST_SEEN] = wall
        return entity

    def _council(self, council: str, now: float) -> Entity:
        entity = self.councils.get(council)
        if entity is None:
            entity = Entity(f'{{council="{council}"}}', self._council_values(), now)
            self.councils[council] = entity
        entity.touched = now
        return entity

    def _agent_values(self) -> list[Any]:
        values: list[Any] = [None] * AGENT_SLOTS
        values[A_CAPACITY] = 1
        values[A_ACTIVE] = 0
        values[A_TASKS] = 0
        values[A_FAILURES] = [0] * len(self.classifier.names)
        values[A_DURATION] = Histogram(len(self._duration_bounds) + 1)
        values[A_QUALITY] = [0.0, 0]
        values[A_COST] = 0.0
        return values

    def _council_values(self) -> list[Any]:
        values: list[Any] = [0] * COUNCIL_SLOTS
        values[C_FORMATION] = Histogram(len(self._formation_bounds) + 1)
        values[C_ROUNDS] = Histogram(len(self._rounds_bounds) + 1)
        values[C_VIOLATIONS] = {}
        values[C_COORDINATION] = 0.0
        values[C_DECISIONS] = None
        return values

    def _workflow_values(self) -> list[Any]:
        values: list[Any] = [0] * WORKFLOW_SLOTS
        values[W_QUALITY] = Histogram(len(self.bounds["workflow_task_quality_score"]) + 1)
        values[W_COST] = 0.0
        return values

    # handlers: one per event type ------------------------------------------------------

    def _on_registered(self, event: AgentRegistered, now: float, wall: float) -> None:
        self._agent(event.agent, event.agent_type, now, wall).values[A_CAPACITY] = event.capacity

    def _on_deregistered(self, event: AgentDeregistered, now: float, wall: float) -> None:
        self.agents.pop(event.agent, None)

    def _on_heartbeat(self, event: AgentHeartbeat, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        if event.cpu is not None:
            values[A_CPU] = event.cpu
        if event.memory is not None:
            values[A_MEMORY] = event.memory
        if event.queue_depth is not None:
            values[A_QUEUE_DEPTH] = event.queue_depth

    def _on_task_started(self, event: TaskStarted, now: float, wall: float) -> None:
        self._agent(event.agent, event.agent_type, now, wall).values[A_ACTIVE] += 1

    def _on_task_completed(self, event: TaskCompleted, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        values[A_TASKS] += 1
        values[A_ACTIVE] -= 1
        values[A_DURATION].observe(self._duration_bounds, event.duration)
        if event.quality_score is not None:
            quality = values[A_QUALITY]
            quality[0] += event.quality_score
            quality[1] += 1
        if event.cost is not None:
            values[A_COST] += event.cost

    def _on_task_failed(self, event: TaskFailed, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        values[A_TASKS] += 1
        values[A_ACTIVE] -= 1
        values[A_FAILURES][self.classifier.index(event.reason)] += 1
        if event.duration is not None:
            values[A_DURATION].observe(self._duration_bounds, event.duration)

    def _on_consensus(self, event: Consensus, now: float, wall: float) -> None:
        values = self._council(event.council, now).values
        values[C_ATTEMPTS] += 1
        if not event.achieved:
            values[C_FAILURES] += 1
        values[C_FORMATION].observe(self._formation_bounds, event.formation_time)
        if event.debate_required:
            values[C_DEBATES] += 1
            values[C_ROUNDS].observe(self._rounds_bounds, event.debate_rounds)
        values[C_CHECKS] += 1
        if not event.constitutional_compliance:
            principle = event.violated_principle or UNSPECIFIED_PRINCIPLE
            self.principles.add(principle)
            violations = values[C_VIOLATIONS]
            violations[principle] = violations.get(principle, 0) + 1

    def _on_coordination(self, event: Coordination, now: float, wall: float) -> None:
        values = self._council(event.council, now).values
        if event.session == "started":
            values[C_SESSIONS] += 1
        elif event.session == "ended":
            values[C_SESSIONS] -= 1
        if event.overhead is not None:
            values[C_COORDINATION] += event.overhead

    def _on_business(self, event: Business, now: float, wall: float) -> None:
        values = self.workflow.values
        values[W_TASKS] += 1
        if not event.completed:
            values[W_FAILURES] += 1
        if event.quality_score is not None:
            values[W_QUALITY].observe(self._quality_bounds, event.quality_score)
        if event.cost is not None:
            values[W_COST] += event.cost

    def _on_decision(self, event: Decision, now: float, wall: float) -> None:
        if event.council is not None:
            values, slot = self._council(event.council, now).values, C_DECISIONS
        else:
            assert event.agent is not None  # the decoder guarantees one of the two
            values, slot = self._agent(event.agent, event.agent_type, now, wall).values, A_DECISIONS
        if values[slot] is None:
            values[slot] = [0] * len(DECISION_OUTCOMES)
        values[slot][_OUTCOME_INDEX[event.predicted, event.actual]] += 1

    def _on_queue(self, event: QueueSample, now: float, wall: float) -> None:
        entity = self.queues.get(event.queue)
        if entity is None:
            values: list[Any] = [None, Histogram(len(self._wait_bounds) + 1)]
            entity = self.queues[event.queue] = Entity(f'{{queue="{event.queue}"}}', values, now)
        entity.touched = now
        if event.depth is not None:
            entity.values[Q_DEPTH] = event.depth
        if event.wait is not None:
            entity.values[Q_WAIT].observe(self._wait_bounds, event.wait)

    def _on_alert(self, event: Alert, now: float, wall: float) -> None:
        if event.status == "resolved":
            self.alerts.pop(event.alert_id, None)
            return
        pairs = ",".join(
            f'{name}="{escape_label_value(value)}"'
            for name, value in (
                ("alert_id", event.alert_id),
                ("alert_type", event.alert_type),
                ("severity", event.severity),
                ("affected_agents", ",".join(event.affected_agents)),
                ("message", event.message),
            )
        )
        self.alerts[event.alert_id] = Entity(f"{{{pairs}}}", [], now)


_OUTCOME_INDEX = {
    (True, True): DECISION_OUTCOMES.index("tp"),
    (True, False): DECISION_OUTCOMES.index("fp"),
    (False, False): DECISION_OUTCOMES.index("tn"),
    (False, True): DECISION_OUTCOMES.index("fn"),
}


def _agent_labels(agent: str, agent_type: str) -> str:
    return f'{{agent="{agent}",agent_type="{agent_type}"}}'


_EVENT_ID = operator.attrgetter("id")
_AGENT_OWNED = (AgentRegistered, AgentHeartbeat, TaskStarted, TaskCompleted, TaskFailed)
_COUNCIL_OWNED = (Consensus, Coordination, Decision)


def _new_agents(events: list[Event], tracked: Container[str]) -> set[str]:
    found = {e.agent for e in events if type(e) in _AGENT_OWNED and e.agent not in tracked}  # type: ignore[attr-defined]
    found.update(e.agent for e in events if type(e) is Decision and e.agent is not None and e.agent not in tracked)
    return found


def _new_councils(events: list[Event], tracked: Container[str]) -> set[str]:
    return {
        e.council  # type: ignore[attr-defined]
        for e in events
        if type(e) in _COUNCIL_OWNED and e.council is not None and e.council not in tracked  # type: ignore[attr-defined]
    }


def _new_queues(events: list[Event], tracked: Container[str]) -> set[str]:
    return {e.queue for e in events if type(e) is QueueSample and e.queue not in tracked}


def _new_alerts(events: list[Event], tracked: Container[str]) -> set[str]:
    return {e.alert_id for e in events if type(e) is Alert and e.status == "active" and e.alert_id not in tracked}


def _new_principles(events: list[Event], tracked: Container[str]) -> set[str]:
    named = {
        e.violated_principle or UNSPECIFIED_PRINCIPLE
        for e in events
        if type(e) is Consensus and not e.constitutional_compliance
    }
    return {principle for principle in named if principle not in tracked}


def _drop_idle(entities: dict[str, Entity], idle_before: float) -> int:
    idle = [key for key, entity in entities.items() if entity.touched < idle_before]
    for key in idle:
        del entities[key]
    return len(idle)


def _first(mapping: dict[str, float], count: int) -> Iterable[str]:
    iterator = iter(mapping)
    return (next(iterator) for _ in range(count))
