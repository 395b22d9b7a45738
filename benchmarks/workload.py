"""The benchmarks' events: a seeded, endless mix of them, a fleet with every series, NDJSON bodies.

The events come from the demo simulator's generators (``agency_telemetry.simulator``), with
quantities as bare numbers (ms, bytes, 0..1) and rates of their own: more constitutional
violations, wrong decisions and failed business tasks than the demo has, so that every kind of
update happens often enough to weigh in the timings.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from agency_telemetry.simulator import (
    COUNCILS,
    QUEUES,
    Agent,
    agent_named,
    alert,
    business,
    consensus,
    coordination,
    decision,
    heartbeat,
    queue_sample,
    registered,
    task_finished,
    task_started,
)

BATCH = 1000  # events per request
INGEST_AGENTS = 1000  # fleet size of the ingest mix (bench_exporter without --quick, ab_ingest)
DISTINCT_BODIES = 50  # pre-built bodies of the ingest mix, cycled by the timed runs
# Share of each kind of event in the ingest mix (per cent).
MIX = {"heartbeat": 20, "task": 70, "consensus": 2, "coordination": 2, "decision": 2, "business": 2, "queue": 2}
ALERT_RATE = 0.002

mix_consensus = partial(consensus, violation_rate=0.03)
mix_decision = partial(decision, accuracy=0.9)
mix_business = partial(business, success=0.96)


def mix_heartbeat(rng: random.Random, agent: Agent) -> dict[str, Any]:
    """A heartbeat with a CPU usage anywhere from 5 to 95 %, whatever the agent's load."""
    return heartbeat(rng, agent, rng.uniform(0.05, 0.95))


def mix_queue(rng: random.Random, queue: str) -> dict[str, Any]:
    """A queue sample with a depth anywhere from 0 to 40."""
    return queue_sample(rng, queue, rng.randint(0, 40))


@dataclass
class EventMix:
    """An endless, seeded stream of events in the proportions of :data:`MIX`."""

    agents: int
    seed: int = 7
    rng: random.Random = field(init=False)
    fleet: list[Agent] = field(init=False)
    sessions: dict[str, int] = field(init=False, default_factory=dict)
    alerts: list[str] = field(init=False, default_factory=list)
    alert_ids: Iterator[int] = field(init=False, default_factory=lambda: iter(range(10**9)))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.fleet = [agent_named(i) for i in range(self.agents)]

    def registrations(self) -> list[dict[str, Any]]:
        return [registered(agent) for agent in self.fleet]

    def events(self, count: int) -> list[dict[str, Any]]:
        rng = self.rng
        makers: dict[str, Callable[[], dict[str, Any]]] = {
            "heartbeat": lambda: mix_heartbeat(rng, rng.choice(self.fleet)),
            "task": self.task,
            "consensus": lambda: mix_consensus(rng, rng.choice(COUNCILS)),
            "coordination": lambda: coordination(rng, rng.choice(COUNCILS), self.sessions),
            "decision": self.decision,
            "business": lambda: mix_business(rng),
            "queue": lambda: mix_queue(rng, rng.choice(QUEUES)),
        }
        kinds = rng.choices(list(MIX), weights=list(MIX.values()), k=count)
        events = [makers[kind]() for kind in kinds]
        for index in range(count):
            if rng.random() < ALERT_RATE:
                events[index] = self.alert()
        return events

    def task(self) -> dict[str, Any]:
        agent = self.rng.choice(self.fleet)
        if agent.running < agent.capacity and (agent.running == 0 or self.rng.random() < 0.5):
            return task_started(agent)
        return task_finished(self.rng, agent)

    def decision(self) -> dict[str, Any]:
        if self.rng.random() < 0.5:
            agent = self.rng.choice(self.fleet)
            return mix_decision(self.rng, agent=agent.name, agent_type=agent.kind)
        return mix_decision(self.rng, council=self.rng.choice(COUNCILS))

    def alert(self) -> dict[str, Any]:
        if self.alerts and self.rng.random() < 0.5:
            return {**alert(self.alerts.pop(), self.fleet[0]), "status": "resolved"}
        alert_id = f"alert-{next(self.alert_ids)}"
        self.alerts.append(alert_id)
        return alert(alert_id, self.rng.choice(self.fleet))


def fleet_events(agents: int, seed: int = 11) -> list[dict[str, Any]]:
    """Events that give every agent every series of the catalogue, plus councils, queues, alerts."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for index in range(agents):
        agent = agent_named(index)
        events += [registered(agent), mix_heartbeat(rng, agent)]
        events += [task_started(agent) for _ in range(3)]
        events += [task_finished(rng, agent, fail=fail) for fail in (False, False, True)]
        events.append(mix_decision(rng, agent=agent.name, agent_type=agent.kind))
    owners = max(3, agents // 100)
    for index in range(owners):
        council = f"council-{index}"
        events += [mix_consensus(rng, council, violation=True), mix_consensus(rng, council)]
        events += [{"type": "coordination", "council": council, "session": "started", "overhead": 120}]
        events += [mix_decision(rng, council=council), mix_queue(rng, f"queue-{index}")]
        events.append(alert(f"alert-{index}", agent_named(index % agents)))
    return events + [mix_business(rng) for _ in range(10)]


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(event, separators=(",", ":")) for event in events).encode()


def chunks(events: list[dict[str, Any]], size: int = BATCH) -> list[bytes]:
    return [ndjson(events[start : start + size]) for start in range(0, len(events), size)]


@dataclass
class Workload:
    warmup: list[bytes]  # registrations and a few batches, untimed
    bodies: list[bytes]  # cycled by the timed runs
    finished: dict[int, int]  # id(body) -> task_completed + task_failed events in it

    def run_bodies(self, requests: int) -> list[bytes]:
        return [self.bodies[i % len(self.bodies)] for i in range(requests)]

    def tasks_in(self, bodies: list[bytes]) -> int:
        return sum(self.finished.get(id(body), 0) for body in bodies)


def build_workload(agents: int = INGEST_AGENTS, distinct_bodies: int = DISTINCT_BODIES) -> Workload:
    """The ingest mix of a fleet: its registrations and 3 batches to warm up with, then the timed bodies."""
    mix = EventMix(agents)
    warmup = chunks(mix.registrations())
    batches = [mix.events(BATCH) for _ in range(distinct_bodies + 3)]
    bodies = [ndjson(batch) for batch in batches]
    finished = {
        id(body): sum(e["type"] in ("task_completed", "task_failed") for e in batch)
        for body, batch in zip(bodies, batches, strict=True)
    }
    return Workload(warmup + bodies[:3], bodies[3:], finished)


def apply_all(apply: Callable[[bytes], int], bodies: list[bytes]) -> None:
    for body in bodies:
        apply(body)
