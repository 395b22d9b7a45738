"""State of every agent, council, queue and reported alert: batches applied whole, and expiry.

No I/O and no clock of its own (both clocks are injected), so every rule here is tested
directly. A batch is applied in three steps — drop duplicates (:mod:`dedup`), check every
limit (:mod:`limits`), then mutate — so a batch that would break a limit changes nothing.
Handlers write the slots named in :mod:`catalogue` and cannot fail once the limits have been
checked. A new owner's values start as its families say (:attr:`catalogue.Family.initial`).

Counters and histograms add up across exporter replicas. Values that are set (capacity, CPU,
memory, queue depth, an owner's own count of its running tasks or open sessions) do not: each
is stamped with the time this exporter heard it (``*_reported_timestamp_seconds``), so that the
rules take it from the replica that heard it last. No gauge goes below zero: an end whose start
this exporter never saw (it restarted, the start was lost or went to another replica) leaves
the count at zero. Once an owner reports its own count (a heartbeat's ``active_tasks``, a
coordination event's ``active_sessions``), its reports alone set it: every replica then shows
a count as of some report, and the rules take the latest — the same figure one exporter shows.
"""

from __future__ import annotations

import collections
import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, NamedTuple, Protocol

from .catalogue import (
    A_ACTIVE,
    A_CAPACITY,
    A_COST,
    A_CPU,
    A_DECISIONS,
    A_DURATION,
    A_FAILURES,
    A_LAST_SEEN,
    A_LLM_COST,
    A_LLM_FAILURES,
    A_LLM_REQUESTS,
    A_LLM_TOKENS,
    A_MEMORY,
    A_QUALITY,
    A_QUEUE_DEPTH,
    A_REPORTED,
    A_TASKS,
    A_TOOL_CALLS,
    A_TOOL_FAILURES,
    C_ATTEMPTS,
    C_CHECKS,
    C_COORDINATION,
    C_DEBATES,
    C_DECISIONS,
    C_FAILURES,
    C_FORMATION,
    C_REPORTED,
    C_ROUNDS,
    C_SESSIONS,
    C_VIOLATIONS,
    DECISION_OUTCOMES,
    ERROR_CLASS,
    FAMILIES_OF,
    M_DURATION,
    Q_DEPTH,
    Q_REPORTED,
    Q_WAIT,
    T_DURATION,
    TOKEN_TYPES,
    W_COST,
    W_FAILURES,
    W_QUALITY,
    W_TASKS,
    Family,
    Histogram,
)
from .classifier import ErrorClassifier
from .config import FALLBACK_ERROR_CLASS, Config
from .dedup import RecentIds
from .events import (
    UNKNOWN_AGENT_TYPE,
    UNSPECIFIED_PRINCIPLE,
    AgentDeregistered,
    AgentHeartbeat,
    AgentRegistered,
    Alert,
    Business,
    Consensus,
    Coordination,
    Decision,
    Event,
    LlmEvent,
    LlmRequest,
    LlmUsage,
    QueueSample,
    TaskCompleted,
    TaskFailed,
    TaskStarted,
    ToolCall,
    TracedEvent,
    owner_key,
)
from .limits import LimitExceeded, OwnerLimit
from .owners import (
    AGENT,
    ALERT,
    CAPPED,
    COUNCIL,
    EXPIRING,
    LIMITED,
    MODEL,
    OTHER,
    PRINCIPLE,
    QUEUE,
    TOOL,
    WORKFLOW,
    OwnerKind,
)
from .pricing import Pricing, cost

Clock = Callable[[], float]


Held = tuple[float, bool]  # (monotonic time it appeared, a scrape has shown it at zero)
HeldKey = tuple[int, Any]  # (slot, key of its dict), or (slot, None) for a slot made whole


class Entity:
    """One agent, council, queue, alert or the workflow: its label values and its metric slots.

    ``held`` and ``new_keys`` are what is still exposed at zero (see :meth:`Store.scraped`): the
    whole owner while ``held`` is set, else each (slot, key) of ``new_keys``. Plain data, so an
    entity can be saved and restored with them."""

    __slots__ = ("labels", "values", "touched", "held", "new_keys")

    def __init__(self, labels: tuple[str, ...], values: list[Any], touched: float) -> None:
        # In the order of its OwnerKind.labels. An agent's agent_type is interned: every event
        # compares its agent_type with it, and a few shared strings stay in the CPU cache.
        self.labels = labels
        self.values = values
        self.touched = touched  # monotonic time of the last event, for expiry
        self.held: Held | None = None
        self.new_keys: dict[HeldKey, Held] | None = None


@dataclass
class StoreStats:
    """Counts the exporter reports about itself (agency_exporter_*)."""

    received: collections.Counter[type[Event]] = field(default_factory=collections.Counter)  # duplicates included
    duplicates: int = 0
    dedup_evicted: int = 0
    expired: collections.Counter[str] = field(default_factory=collections.Counter)  # by OwnerKind.name
    overflow: collections.Counter[str] = field(default_factory=collections.Counter)  # events under OTHER, by kind
    unpriced: collections.Counter[tuple[str, ...]] = field(default_factory=collections.Counter)  # (provider, model)


SCRAPED, EXPIRED, REVEALED = "scraped", "expired", "revealed"  # what changes the state besides events


class Journal(Protocol):
    """What the store tells the persistence journal, in order: each applied batch, and each
    scrape, expiry or reveal that changed the state (replayed, they change it again the same way)."""

    def applied(self, events: list[Event], wall: float) -> None: ...

    def marked(self, mark: str, wall: float) -> None: ...


class LeftOut(NamedTuple):
    """Events :meth:`Store.apply_fitting` left out, for the refusal ``reason``."""

    reason: str
    message: str
    events: list[Event]


@dataclass(frozen=True)
class Applied:
    accepted: int
    duplicates: int


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
        self._llm_bounds = self.bounds["llm_request_duration_seconds"]
        self._tool_bounds = self.bounds["tool_call_duration_seconds"]
        self.pricing = Pricing(config.pricing)
        self._starts = {kind: self._start_values(families) for kind, families in FAMILIES_OF.items()}
        self._zeros = {kind: _zeros(families, self.bounds) for kind, families in FAMILIES_OF.items()}
        self.agents: dict[str, Entity] = {}
        self.councils: dict[str, Entity] = {}
        self.queues: dict[str, Entity] = {}
        self.alerts: dict[str, Entity] = {}
        self.models: dict[str, Entity] = {}
        self.tools: dict[str, Entity] = {}
        self.principles: set[str] = set()
        self.hold = float(self.expiry.new_series_hold)
        # Entities with something exposed at zero (held, or with new keys): what scraped() walks.
        self.holding: set[Entity] = set()
        self.workflow = Entity((), self.new_values(WORKFLOW), 0.0)
        self._hold(self.workflow, clock())
        self.entities: dict[OwnerKind, dict[str, Entity]] = {
            AGENT: self.agents,
            COUNCIL: self.councils,
            QUEUE: self.queues,
            ALERT: self.alerts,
            WORKFLOW: {"": self.workflow},
            MODEL: self.models,
            TOOL: self.tools,
        }
        self._caps: dict[OwnerKind, int] = {kind: getattr(self.limits, str(kind.limit)) for kind in CAPPED}
        self.tracked: dict[OwnerKind, Collection[str]] = {**self.entities, PRINCIPLE: self.principles}
        self._limits = [(kind, OwnerLimit(kind, self.limits)) for kind in LIMITED]
        self._limit_of = dict(self._limits)
        self.stats = StoreStats()
        self.recent_ids = RecentIds(self.expiry.dedup_window, self.expiry.dedup_max_ids)
        # While a snapshot is being taken (:class:`snapshot.Capture`): called with an owner
        # before an event changes it or it is dropped, so that the snapshot keeps its state.
        self.capture: Callable[[OwnerKind, str, Entity], None] | None = None
        # The persistence journal, written before a batch is acknowledged: what changes the state
        # (each applied batch; each scrape, expiry or reveal that changed something).
        self.journal: Journal | None = None
        self._handlers: dict[type[Event], Callable[[Any, float, float], None]] = {
            AgentRegistered: self._on_registered,
            AgentDeregistered: self._on_deregistered,
            AgentHeartbeat: self._on_heartbeat,
            TaskStarted: self._on_task_started,
            TaskCompleted: self._on_task_completed,
            TaskFailed: self._on_task_failed,
            LlmRequest: self._on_llm_request,
            LlmUsage: self._on_llm_usage,
            ToolCall: self._on_tool_call,
            Consensus: self._on_consensus,
            Coordination: self._on_coordination,
            Business: self._on_business,
            Decision: self._on_decision,
            QueueSample: self._on_queue,
            Alert: self._on_alert,
        }

    # batches --------------------------------------------------------------------------

    def apply(self, events: list[Event], at: tuple[float, float] | None = None) -> Applied:
        """Apply a validated batch entirely, or raise :class:`LimitExceeded` and change nothing.

        ``at``: the (monotonic, wall) clocks to apply it at instead of now, for a replayed journal."""
        now, wall = at or (self.clock(), self.wall_clock())
        per_type = collections.Counter(map(type, events))
        fresh, new_ids = self.recent_ids.fresh(events, now)
        self._check_limits(fresh, per_type)
        handlers = self._handlers
        for event in fresh:
            handlers[type(event)](event, now, wall)
        self.stats.dedup_evicted += self.recent_ids.remember(new_ids, now)
        if self.journal is not None and fresh:
            self.journal.applied(fresh, wall)
        duplicates = len(events) - len(fresh)
        self.stats.duplicates += duplicates
        self.stats.received.update(per_type)
        return Applied(len(fresh), duplicates)

    def apply_fitting(
        self, events: list[Event], at: tuple[float, float] | None = None
    ) -> tuple[Applied, list[LeftOut]]:
        """Apply the events that fit the limits, for inputs that may keep part of a request (OTLP):
        past a kind's limit, the events naming an owner of that kind not tracked yet are left out."""
        left: list[LeftOut] = []
        while True:
            try:
                return self.apply(events, at), left
            except LimitExceeded as exc:
                limit, tracked = self._limit_of[exc.kind], self.tracked[exc.kind]
                adding = [bool(limit.new_owners([event], tracked)) for event in events]
                out = [event for event, adds in zip(events, adding, strict=True) if adds]
                events = [event for event, adds in zip(events, adding, strict=True) if not adds]
                left.append(LeftOut(exc.reason, exc.kept_part, out))

    def _check_limits(self, events: list[Event], per_type: collections.Counter[type[Event]]) -> None:
        for kind, owner_limit in self._limits:
            owner_limit.check(events, per_type, self.tracked[kind])

    # expiry ---------------------------------------------------------------------------

    def expire(self, at: tuple[float, float] | None = None) -> None:
        """Remove agents, councils and queues silent past ``agent_ttl``, alerts past ``alert_ttl``.
        ``at``: the (monotonic, wall) clocks of a replayed expiry."""
        now, wall = at or (self.clock(), self.wall_clock())
        dropped = 0
        for kind in EXPIRING:
            ttl: float = getattr(self.expiry, kind.ttl)  # type: ignore[arg-type]
            count = _drop_idle(kind, self.entities[kind], now - ttl, self)
            self.stats.expired[kind.name] += count
            dropped += count
        self.recent_ids.forget(now)
        if dropped and self.journal is not None:
            self.journal.marked(EXPIRED, wall)

    # new series ------------------------------------------------------------------------

    def scraped(self, at: tuple[float, float] | None = None) -> None:
        """Called by each scrape before it renders: what an earlier scrape showed at zero and is
        ``new_series_hold`` old shows its values from this scrape on; the rest is marked shown
        at zero by this one. The values themselves are always exact; only their exposition waits.

        Prometheus assumes nothing about where a new series starts: a counter first scraped
        above zero loses that first increase to ``rate()`` and ``increase()``. The zero one
        scrape saw covers a single scraper whatever its interval; the age covers every scraper
        scraping at least every ``new_series_hold`` (both servers of an HA pair). Work is in
        proportion to what is held, not to the owners. ``at``: the (monotonic, wall) clocks of a
        replayed scrape."""
        if not self.holding:
            return
        now, wall = at or (self.clock(), self.wall_clock())
        if self.journal is not None:
            self.journal.marked(SCRAPED, wall)
        ripe = now - self.hold
        done = []
        for entity in self.holding:
            if entity.held is not None:
                entity.held = _after_scrape(entity.held, ripe)
            if entity.new_keys is not None:
                keys = entity.new_keys
                for key, held in list(keys.items()):
                    after = _after_scrape(held, ripe)
                    if after is None:
                        del keys[key]
                    else:
                        keys[key] = after
                if not keys:
                    entity.new_keys = None
            if entity.held is None and entity.new_keys is None:
                done.append(entity)
        self.holding.difference_update(done)

    def reveal(self) -> None:
        """Shows every value at once: for the final scrape once ingest has stopped."""
        if self.holding and self.journal is not None:
            self.journal.marked(REVEALED, self.wall_clock())
        for entity in self.holding:
            entity.held = entity.new_keys = None
        self.holding.clear()

    def hold_again(self) -> None:
        """Holds what is still held from now, as not shown yet (after a restart: whether a scraper
        saw its zero before is unknown); with no hold configured, shows everything."""
        if not self.hold:
            self.reveal()
            return
        now = self.clock()
        for entity in self.holding:
            if entity.held is not None:
                entity.held = (now, False)
            if entity.new_keys:
                entity.new_keys = dict.fromkeys(entity.new_keys, (now, False))

    def clear(self) -> None:
        """Forgets every owner, principle and dedup id: an empty store, as at start."""
        for kind, entities in self.entities.items():
            if kind is not WORKFLOW:
                entities.clear()
        self.principles.clear()
        self.recent_ids = RecentIds(self.expiry.dedup_window, self.expiry.dedup_max_ids)
        self.holding.clear()
        self.workflow.values[:] = self.new_values(WORKFLOW)
        self._hold(self.workflow, self.clock())

    def exposed(self, kind: OwnerKind, entity: Entity) -> list[Any]:
        """The values a scrape shows of a held entity (see :meth:`scraped`): a copy of its values
        with the counters, histograms and summaries held (all of them, or its new keys) at zero."""
        values = entity.values.copy()
        if entity.held is not None:
            for slot, zero in self._zeros[kind]:
                values[slot] = zero(values[slot])
            return values
        copied: set[int] = set()
        for slot, key in entity.new_keys or ():
            if key is None:
                values[slot] = _zero(values[slot])
                continue
            if slot not in copied:
                values[slot] = values[slot].copy()
                copied.add(slot)
            values[slot][key] = _zero(values[slot][key])
        return values

    def _hold(self, entity: Entity, now: float) -> None:
        if self.hold:
            entity.held = (now, False)
            self.holding.add(entity)

    def _new_key(self, entity: Entity, slot: int, key: Any, now: float) -> None:
        """Holds the series a visible owner gets for ``key`` of ``slot`` (``None``: the whole slot,
        made now). Not needed while no scrape has shown the owner yet: the first shows them too."""
        if not self.hold or (entity.held is not None and not entity.held[1]):
            return
        if entity.new_keys is None:
            entity.new_keys = {}
        entity.new_keys[slot, key] = (now, False)
        self.holding.add(entity)

    @property
    def dedup_ids(self) -> int:
        return len(self.recent_ids)

    def label_values(self, family: Family) -> tuple[str, ...] | None:
        """The values of a labelled family's extra label, in slot-list order; None for a dynamic label."""
        return self.classifier.names if family.label == ERROR_CLASS else family.label_values

    # owners ---------------------------------------------------------------------------

    def _start_values(self, families: Iterable[Family]) -> tuple[list[Any], list[tuple[int, Callable[[], Any]]]]:
        """A new owner's values as a template of numbers, and a maker for each slot holding a
        histogram, summary or labelled counts (each owner needs its own)."""
        template: list[Any] = []
        makers: list[tuple[int, Callable[[], Any]]] = []
        for family in families:
            shape, slot = family.shape, family.slot
            if slot is None:
                continue
            template.append(family.initial if shape == "scalar" else None)
            if family.initial is None or shape == "scalar":
                continue
            if shape == "keyed":
                makers.append((slot, dict))
            elif shape == "histogram":
                assert family.buckets is not None
                makers.append((slot, partial(Histogram, len(self.bounds[family.buckets]) + 1)))
            elif shape == "summary":
                makers.append((slot, partial(list, (0.0, 0))))
            else:
                values = self.label_values(family)
                makers.append((slot, dict if values is None else partial(list, (family.initial,) * len(values))))
        return template, makers

    def new_values(self, kind: OwnerKind) -> list[Any]:
        """A new owner's values, as its families start."""
        template, makers = self._starts[kind]
        values = template.copy()
        for slot, make in makers:
            values[slot] = make()
        return values

    def _agent(self, agent_id: str, agent_type: str | None, now: float, wall: float) -> Entity:
        entity = self.agents.get(agent_id)
        if entity is None:
            entity = Entity((agent_id, sys.intern(agent_type or UNKNOWN_AGENT_TYPE)), self.new_values(AGENT), now)
            self.agents[agent_id] = entity
            self._hold(entity, now)
        elif self.capture is not None:
            self.capture(AGENT, agent_id, entity)
        if agent_type is not None and agent_type != entity.labels[1]:
            entity.labels = (agent_id, sys.intern(agent_type))
        entity.touched = now
        entity.values[A_LAST_SEEN] = wall
        return entity

    def _capped(self, kind: OwnerKind, labels: tuple[str, ...], now: float) -> tuple[Entity, tuple[str, ...]]:
        """The model or tool with these label values, added if new and there is room; past the
        kind's limit, the one owner labelled OTHER (each event folded into it is counted)."""
        entities = self.entities[kind]
        entity = entities.get(owner_key(*labels))
        if entity is None:
            if len(entities) >= self._caps[kind]:
                self.stats.overflow[kind.name] += 1
                labels = (OTHER,) * len(labels)
                entity = entities.get(owner_key(*labels))
            if entity is None:
                entity = entities[owner_key(*labels)] = Entity(labels, self.new_values(kind), now)
                self._hold(entity, now)
        if self.capture is not None:
            self.capture(kind, owner_key(*entity.labels), entity)
        entity.touched = now
        return entity, entity.labels

    def _keyed(self, kind: OwnerKind, key: str, now: float) -> Entity:
        """The council or queue ``key`` (an owner labelled by its id alone), added if new."""
        entities = self.entities[kind]
        entity = entities.get(key)
        if entity is None:
            entity = entities[key] = Entity((key,), self.new_values(kind), now)
            self._hold(entity, now)
        elif self.capture is not None:
            self.capture(kind, key, entity)
        entity.touched = now
        return entity

    # handlers: one per event type ------------------------------------------------------

    def _on_registered(self, event: AgentRegistered, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        values[A_CAPACITY] = event.capacity
        _reported(values, A_REPORTED, wall, "capacity")

    def _on_deregistered(self, event: AgentDeregistered, now: float, wall: float) -> None:
        entity = self.agents.pop(event.agent, None)
        if entity is not None:
            self.holding.discard(entity)
            if self.capture is not None:
                self.capture(AGENT, event.agent, entity)

    def _on_heartbeat(self, event: AgentHeartbeat, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        stamps, wall = values[A_REPORTED], _stamp(wall)  # one time for every field of the report
        if stamps is None:
            values[A_REPORTED] = stamps = {}
        if event.capacity is not None:
            values[A_CAPACITY] = event.capacity
            stamps["capacity"] = wall
        if event.cpu is not None:
            values[A_CPU] = event.cpu
            stamps["cpu"] = wall
        if event.memory is not None:
            values[A_MEMORY] = event.memory
            stamps["memory"] = wall
        if event.queue_depth is not None:
            values[A_QUEUE_DEPTH] = event.queue_depth
            stamps["queue_depth"] = wall
        if event.active_tasks is not None:
            values[A_ACTIVE] = event.active_tasks
            stamps["active_tasks"] = wall

    def _on_task_started(self, event: TaskStarted, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        if not _reports(values[A_REPORTED], "active_tasks"):
            values[A_ACTIVE] += 1

    def _on_task_completed(self, event: TaskCompleted, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        values[A_TASKS] += 1
        # Not below 0: a task started before a restart, whose start was lost or went to another replica.
        if values[A_ACTIVE] and not _reports(values[A_REPORTED], "active_tasks"):
            values[A_ACTIVE] -= 1
        _observe(values[A_DURATION], self._duration_bounds, event.duration, event, wall)
        if event.quality_score is not None:
            quality = values[A_QUALITY]
            quality[0] += event.quality_score
            quality[1] += 1
        if event.cost is not None:
            values[A_COST] += event.cost

    def _on_task_failed(self, event: TaskFailed, now: float, wall: float) -> None:
        values = self._agent(event.agent, event.agent_type, now, wall).values
        values[A_TASKS] += 1
        if values[A_ACTIVE] and not _reports(values[A_REPORTED], "active_tasks"):
            values[A_ACTIVE] -= 1
        values[A_FAILURES][self.classifier.index(event.reason)] += 1
        if event.duration is None:
            return
        _observe(values[A_DURATION], self._duration_bounds, event.duration, event, wall)

    def _on_llm_request(self, event: LlmRequest, now: float, wall: float) -> None:
        agent, model, key = self._llm(event, 1, now, wall)
        _observe(model.values[M_DURATION], self._llm_bounds, event.duration, event, wall)
        if event.reason is not None:
            self._llm_failed(agent, key, event.reason, 1, now)

    def _on_llm_usage(self, event: LlmUsage, now: float, wall: float) -> None:
        agent, model, key = self._llm(event, event.requests, now, wall)
        histogram = model.values[M_DURATION]
        bounds, counts = self._llm_bounds, histogram.counts
        for bound, count in event.durations:
            counts[len(bounds) if bound is None else bisect_left(bounds, bound)] += count
        histogram.sum += event.duration_sum or 0.0
        if event.failures:
            self._llm_failed(agent, key, event.reason or "", event.failures, now)

    def _llm(self, event: LlmEvent, requests: int, now: float, wall: float) -> tuple[Entity, Entity, tuple[str, ...]]:
        """Counts ``requests`` requests with the event's tokens and spend; the agent, the model, its key."""
        agent = self._agent(event.agent, event.agent_type, now, wall)
        values = agent.values
        model, key = self._capped(MODEL, (event.provider, event.model), now)
        counted = _made(values, A_LLM_REQUESTS)
        if key in counted:
            counted[key] += requests
            tokens = values[A_LLM_TOKENS][key]
        else:
            counted[key] = requests
            tokens = _made(values, A_LLM_TOKENS)[key] = [0] * len(TOKEN_TYPES)
            self._new_key(agent, A_LLM_REQUESTS, key, now)
            self._new_key(agent, A_LLM_TOKENS, key, now)
        tokens[0] += event.input_tokens
        tokens[1] += event.output_tokens
        tokens[2] += event.cache_read_tokens
        tokens[3] += event.cache_write_tokens
        tokens[4] += event.reasoning_tokens
        spent = event.cost if event.cost is not None else self._priced(event, key, requests)
        if spent is not None:
            costs = _made(values, A_LLM_COST)
            if key in costs:
                costs[key] += spent
            else:
                costs[key] = spent
                self._new_key(agent, A_LLM_COST, key, now)
        return agent, model, key

    def _llm_failed(self, agent: Entity, key: tuple[str, ...], reason: str, failures: int, now: float) -> None:
        by_model = _made(agent.values, A_LLM_FAILURES)
        by_class = by_model.get(key)
        if by_class is None:
            by_class = by_model[key] = [0] * len(self.classifier.names)
            self._new_key(agent, A_LLM_FAILURES, key, now)
        by_class[self.classifier.index(reason)] += failures

    def _priced(self, event: LlmEvent, key: tuple[str, ...], requests: int) -> float | None:
        """The tokens' cost from the pricing table; None (and the requests counted) for an unpriced model."""
        price = self.pricing.price(event.provider, event.model)
        if price is None:
            self.stats.unpriced[key] += requests
            return None
        return cost(
            price,
            input=event.input_tokens,
            output=event.output_tokens,
            cache_read=event.cache_read_tokens,
            cache_write=event.cache_write_tokens,
            reasoning=event.reasoning_tokens,
        )

    def _on_tool_call(self, event: ToolCall, now: float, wall: float) -> None:
        agent = self._agent(event.agent, event.agent_type, now, wall)
        values = agent.values
        tool, key = self._capped(TOOL, (event.tool,), now)
        _observe(tool.values[T_DURATION], self._tool_bounds, event.duration, event, wall)
        calls = _made(values, A_TOOL_CALLS)
        if key in calls:
            calls[key] += 1
        else:
            calls[key] = 1
            self._new_key(agent, A_TOOL_CALLS, key, now)
        if event.reason is not None:
            failures = _made(values, A_TOOL_FAILURES)
            if key in failures:
                failures[key] += 1
            else:
                failures[key] = 1
                self._new_key(agent, A_TOOL_FAILURES, key, now)

    def _on_consensus(self, event: Consensus, now: float, wall: float) -> None:
        council = self._keyed(COUNCIL, event.council, now)
        values = council.values
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
            if principle in violations:
                violations[principle] += 1
            else:
                violations[principle] = 1
                self._new_key(council, C_VIOLATIONS, principle, now)

    def _on_coordination(self, event: Coordination, now: float, wall: float) -> None:
        values = self._keyed(COUNCIL, event.council, now).values
        if event.active_sessions is not None:
            values[C_SESSIONS] = event.active_sessions
            _reported(values, C_REPORTED, wall, "active_sessions")
        elif not _reports(values[C_REPORTED], "active_sessions"):
            if event.session == "started":
                values[C_SESSIONS] += 1
            elif event.session == "ended" and values[C_SESSIONS]:  # one opened before a restart: not below 0
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
            owner, slot = self._keyed(COUNCIL, event.council, now), C_DECISIONS
        else:
            assert event.agent is not None  # the decoder guarantees one of the two
            owner, slot = self._agent(event.agent, event.agent_type, now, wall), A_DECISIONS
        values = owner.values
        if values[slot] is None:
            values[slot] = [0] * len(DECISION_OUTCOMES)
            self._new_key(owner, slot, None, now)
        values[slot][_OUTCOME_INDEX[event.predicted, event.actual]] += 1

    def _on_queue(self, event: QueueSample, now: float, wall: float) -> None:
        values = self._keyed(QUEUE, event.queue, now).values
        if event.depth is not None:
            values[Q_DEPTH] = event.depth
            _reported(values, Q_REPORTED, wall, "depth")
        if event.wait is not None:
            values[Q_WAIT].observe(self._wait_bounds, event.wait)

    def _on_alert(self, event: Alert, now: float, wall: float) -> None:
        if self.capture is not None and (old := self.alerts.get(event.alert_id)) is not None:
            self.capture(ALERT, event.alert_id, old)
        if event.status == "resolved":
            self.alerts.pop(event.alert_id, None)
            return
        labels = (event.alert_id, event.alert_type, event.severity, ",".join(event.affected_agents), event.message)
        self.alerts[event.alert_id] = Entity(labels, self.new_values(ALERT), now)


_OUTCOME_INDEX = {
    (True, True): DECISION_OUTCOMES.index("tp"),
    (True, False): DECISION_OUTCOMES.index("fp"),
    (False, False): DECISION_OUTCOMES.index("tn"),
    (False, True): DECISION_OUTCOMES.index("fn"),
}


def _observe(
    histogram: Histogram, bounds: tuple[float, ...], value: Any, event: TracedEvent | LlmRequest, wall: float
) -> None:
    """Observes ``value`` (a decoded duration, in seconds), with the event's trace as the bucket's
    exemplar when it names one."""
    if event.trace_id is None:
        histogram.observe(bounds, value)
    else:
        histogram.observe_with_exemplar(bounds, value, event.trace_id, event.span_id, wall)


def _made(values: list[Any], slot: int) -> dict[tuple[str, ...], Any]:
    """The dict of a keyed family's slot, made on the owner's first event that writes it."""
    found: dict[tuple[str, ...], Any] | None = values[slot]
    if found is None:
        found = values[slot] = {}
    return found


def _drop_idle(kind: OwnerKind, entities: dict[str, Entity], idle_before: float, store: Store) -> int:
    idle = [key for key, entity in entities.items() if entity.touched < idle_before]
    for key in idle:
        if store.capture is not None:
            store.capture(kind, key, entities[key])
        store.holding.discard(entities.pop(key))
    return len(idle)


def _after_scrape(held: Held, ripe: float) -> Held | None:
    """What a scrape makes of something held: shown (None) once an earlier scrape showed it at
    zero and it appeared at ``ripe`` or before, else marked shown at zero."""
    appeared, shown = held
    if shown and appeared <= ripe:
        return None
    return held if shown else (appeared, True)


def _zero(value: Any) -> Any:
    """A count, a list of counts, or a dict of either at zero, as a new series starts."""
    if isinstance(value, dict):
        return {key: _zero(count) for key, count in value.items()}
    if isinstance(value, list):
        return [0] * len(value)
    return None if value is None else type(value)()


def _reports(stamps: dict[str, float] | None, field: str) -> bool:
    """Whether the owner reports ``field`` (its own count of running tasks, open sessions) itself.
    Once it does, its reports alone set the count: starts and ends seen by this exporter would
    make it depend on which replica saw which, and the owner knows better."""
    return stamps is not None and field in stamps


def _reported(values: list[Any], slot: int, wall: float, field: str) -> None:
    """Notes that ``field`` was set at ``wall`` (its owner's ``*_reported_timestamp_seconds``)."""
    stamps = values[slot]
    if stamps is None:
        values[slot] = {field: _stamp(wall)}
    else:
        stamps[field] = _stamp(wall)


def _stamp(wall: float) -> float:
    """A report's time to the millisecond: enough to order reports seconds apart, and shorter
    to render than the clock's full float."""
    return round(wall, 3)


def _zeros(families: Iterable[Family], bounds: dict[str, tuple[float, ...]]) -> list[tuple[int, Callable[[Any], Any]]]:
    """How a held owner shows each slot that is not a gauge: as a new owner starts, keeping the
    keys of its dicts. Zeros that do not depend on the values are made once and shared (a
    scrape only reads them)."""
    zeros: list[tuple[int, Callable[[Any], Any]]] = []
    for family in families:
        if family.slot is None or family.type == "gauge":
            continue
        if family.shape == "histogram":
            assert family.buckets is not None
            zeros.append((family.slot, partial(_shared, Histogram(len(bounds[family.buckets]) + 1))))
        elif family.shape == "summary":
            zeros.append((family.slot, partial(_shared, (0.0, 0))))
        elif family.shape == "scalar":
            zeros.append((family.slot, partial(_unless_none, family.initial)))
        else:
            zeros.append((family.slot, _zero))
    return zeros


def _shared(zero: Any, value: Any) -> Any:
    return zero


def _unless_none(zero: Any, value: Any) -> Any:
    return None if value is None else zero
