"""Which agent an LLM request, tool call or span event belongs to: the nearest ``invoke_agent``
span above it in its trace.

Children end before their parent and are usually exported first, often in an earlier request.
An event whose ancestor has not arrived is held, with its trace's parent links, until the
ancestor comes (then it counts for that agent) or ``otlp.attribution_hold`` passes (then it
counts for its fallback agent: the span's own ``gen_ai.agent.name``, else its ``service.name``).
An event whose ancestry ends at a root with no agent span counts for its fallback at once.
Held events and links are bounded (``otlp.max_held_spans``); past it the oldest trace's events
count under their fallback at once. Everything is counted in :attr:`Attribution.counts`.

Work on a request is planned (:meth:`Attribution.plan`) without changing anything, and the plan
committed only once the store has applied its events, so a refused request changes nothing here.
Events released after their own request (attributed by a later one, or past the hold) come with
the sender of their own request (:attr:`spans.Pending.sender`), whose token scope they must pass.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from .events import Event
from .spans import MappedSpans, Pending

MAX_DEPTH = 256  # ancestors walked at most (a cycle of parent ids is a client bug)
ROOT = b""  # the parent id of a root span

ATTRIBUTION_WAYS = ("ancestor", "agent_name", "service")
RELEASE_REASONS = ("hold_expired", "memory_full", "shutdown")

Agent = tuple[str, str | None]
Released = tuple[Any, Event]  # (sender, event) of an event released after its own request


@dataclass
class _Trace:
    """What is remembered of a trace while some of its events wait for their agent."""

    links: dict[bytes, bytes] = field(default_factory=dict)  # span → parent
    agents: dict[bytes, Agent] = field(default_factory=dict)  # invoke_agent span → its agent
    held: list[tuple[float, Pending]] = field(default_factory=list)  # (since, event)

    @property
    def size(self) -> int:
        return len(self.links) + len(self.held)


@dataclass
class Plan:
    """The events a request makes countable now, and how memory changes once they are applied."""

    ready: list[Event]  # of the request's own spans
    released: list[Released]  # of earlier requests' spans, attributed now
    inference_services: set[str]  # services whose inference spans these are (their metrics are not counted)
    traces: dict[bytes, _Trace]  # the new state of each trace the request touched (empty: forget it)
    attributed: collections.Counter[str]


class Attribution:
    def __init__(self, hold: float, max_held: int, clock: Callable[[], float]) -> None:
        self.hold = hold
        self.max_held = max_held
        self.clock = clock
        self.traces: dict[bytes, _Trace] = {}  # insertion order: oldest first
        self.size = 0  # links and held events remembered
        # how events were attributed: ancestor, agent_name, service; and held past the hold, or
        # released early because memory was full
        self.counts: collections.Counter[str] = collections.Counter()

    @property
    def held(self) -> int:
        return sum(len(trace.held) for trace in self.traces.values())

    def plan(self, mapped: MappedSpans) -> Plan:
        now = self.clock()
        ready = list(mapped.ready)
        released: list[Released] = []
        attributed: collections.Counter[str] = collections.Counter()
        waiting: dict[bytes, list[tuple[float, Pending, bool]]] = {}  # (since, event, of this request)
        for trace in {*mapped.links, *(p.trace for p in mapped.pending)}:
            known = self.traces.get(trace)
            if known is not None:
                waiting[trace] = [(since, pending, False) for since, pending in known.held]
        for pending in mapped.pending:
            waiting.setdefault(pending.trace, []).append((now, pending, True))
        traces: dict[bytes, _Trace] = {}
        for trace, held in waiting.items():
            state = self._merged(trace, mapped)
            for since, pending, own in held:
                agent = _resolve(state, pending.start)
                if agent is None:
                    state.held.append((since, pending))
                    continue
                event = pending.event if agent is ROOT else _for(pending.event, agent)  # type: ignore[arg-type]
                attributed[pending.fallback if agent is ROOT else "ancestor"] += 1
                if own:
                    ready.append(event)
                else:
                    released.append((pending.sender, event))
            traces[trace] = state if state.held else _Trace()
        return Plan(ready, released, mapped.inference_services, traces, attributed)

    def commit(self, plan: Plan) -> list[Released]:
        """Remember what ``plan`` holds; the events released early because memory is full."""
        for trace, state in plan.traces.items():
            old = self.traces.pop(trace, None)
            self.size -= old.size if old is not None else 0
            if state.held:
                self.traces[trace] = state
                self.size += state.size
        self.counts.update(plan.attributed)
        released: list[Released] = []
        while self.size > self.max_held and self.traces:
            released.extend(self._release(next(iter(self.traces)), "memory_full"))
        return released

    def expire(self) -> list[Released]:
        """Events held past the hold, under their fallback agent."""
        deadline = self.clock() - self.hold
        released: list[Released] = []
        for key in [k for k, trace in self.traces.items() if trace.held[0][0] <= deadline]:
            trace = self.traces[key]
            due = [p for since, p in trace.held if since <= deadline]
            trace.held = [(since, p) for since, p in trace.held if since > deadline]
            self.size -= len(due)
            released.extend(self._fallback(due, "hold_expired"))
            if not trace.held:
                self.size -= trace.size
                del self.traces[key]
        return released

    def release_all(self) -> list[Released]:
        """Every held event, under its fallback agent: the exporter is stopping, and they were
        acknowledged, so they must be counted before the final scrape and snapshot."""
        released: list[Released] = []
        while self.traces:
            released.extend(self._release(next(iter(self.traces)), "shutdown"))
        return released

    def _release(self, key: bytes, why: str) -> list[Released]:
        trace = self.traces.pop(key)
        self.size -= trace.size
        return self._fallback([pending for _, pending in trace.held], why)

    def _fallback(self, due: list[Pending], why: str) -> list[Released]:
        self.counts[why] += len(due)
        for pending in due:
            self.counts[pending.fallback] += 1
        return [(pending.sender, pending.event) for pending in due]

    def _merged(self, trace: bytes, mapped: MappedSpans) -> _Trace:
        """The trace as remembered and as ``mapped`` adds to it, a new state: what is remembered is
        not changed (the request's own dicts are taken over, as the request needs them no more)."""
        links, agents = mapped.links.get(trace, {}), mapped.agents.get(trace, {})
        known = self.traces.get(trace)
        if known is None:
            return _Trace(links, agents)
        return _Trace(known.links | links, known.agents | agents)


def _resolve(trace: _Trace, start: bytes) -> Agent | bytes | None:
    """The agent of the nearest invoke_agent span at or above ``start``; ROOT when there is none;
    None while an ancestor has not arrived."""
    span = start
    for _ in range(MAX_DEPTH):
        if span == ROOT:
            return ROOT
        agent = trace.agents.get(span)
        if agent is not None:
            return agent
        parent = trace.links.get(span)
        if parent is None:
            return None
        span = parent
    return ROOT


def _for(event: Event, agent: Agent) -> Event:
    name, agent_type = agent
    if agent_type is None:
        return msgspec.structs.replace(event, agent=name)
    return msgspec.structs.replace(event, agent=name, agent_type=agent_type)
