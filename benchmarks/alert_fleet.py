"""The simulated fleet of the alert-quality benchmark (benchmarks/alert_quality.py), and the
exporter series a run of it produces.

The fleet feeds a real exporter store in-process (decoder, store and exposition, as
benchmarks.ours builds them) on simulated time, scraped every ``STEP`` seconds as Prometheus
does in production (deploy/prometheus/prometheus.yml). What the scrapes return becomes
promtool input series in Prometheus' own terms: the scrape's job and instance labels, ``up``,
a staleness marker where a series left /metrics, and ``up`` 0 with every series stale while
the exporter cannot be scraped.

Healthy noise: Poisson task counts around each agent's rate with a daily swing of the load,
lognormal durations, rare failures, two low-traffic agents whose occasional lone failure is a
large share of their few tasks, one-minute failure bursts (of an agent, of every LLM request,
or of the workflow) at random times, three councils, two queues, the workflow, LLM requests,
tokens and spend reported as totals per step (as an LLM gateway does), and tool calls. Every
draw comes from a generator seeded by the run's seed and the owner's name, so a run repeats
exactly and a fault of one owner leaves every other owner's draws as they were.

A :class:`Fault` sets one field of the conditions of some owners for a while; the healthy
values are the defaults of the condition classes below. The workflow's outcomes are drawn
apart from the agents': agents failing do not fail workflow tasks unless a fault says so.
"""

from __future__ import annotations

import dataclasses
import math
import random
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import msgspec

from agency_telemetry.config import Config, parse_config
from agency_telemetry.decoder import EventDecoder
from agency_telemetry.exposition import Exposition
from agency_telemetry.selfmetrics import SelfMetrics
from agency_telemetry.store import Store

MINUTE, HOUR = 60, 3600
# Scrape and evaluation interval, as in production (deploy/prometheus/prometheus.yml).
STEP = 30
JOB, INSTANCE = "agency-telemetry", "agency-telemetry:9477"


# --- the fleet -------------------------------------------------------------------------------


@dataclass(frozen=True)
class AgentType:
    tasks_per_second: float  # of an agent of ordinary traffic, before the daily swing
    median_seconds: float  # task duration; lognormal with sigma DURATION_SIGMA
    failure_ratio: float
    capacity: int
    model: tuple[str, str]  # (provider, model) of its LLM requests
    input_tokens: int  # per request, median
    output_tokens: int
    tool_calls_per_task: float


# Medians keep under 1 % of tasks slower than each type's latency objective in config.libsonnet
# (judge 5 s, worker 10 s, researcher 60 s, orchestrator 1 s), well inside the 95 % SLO.
AGENT_TYPES = {
    "orchestrator": AgentType(0.3, 0.25, 0.01, 8, ("openai", "gpt-4o-mini"), 800, 120, 0.0),
    "worker": AgentType(0.1, 3.0, 0.02, 4, ("openai", "gpt-4o-mini"), 1500, 300, 0.6),
    "constitutional_judge": AgentType(0.15, 1.2, 0.01, 2, ("anthropic", "claude-haiku"), 1000, 150, 0.0),
    "researcher": AgentType(0.02, 15.0, 0.02, 2, ("openai", "gpt-4o"), 1500, 300, 1.5),
}
DURATION_SIGMA = 0.5
LLM_REQUESTS_PER_TASK = 1.5  # on average: one, plus a Poisson number of follow-ups
LLM_FAILURE_RATIO = 0.01
LLM_MEDIAN_SECONDS = 1.2
# USD per million tokens (input, output): the fleet spends about 3.9 USD an hour on LLM calls
# (the daily swing included), under the 5 USD/h of the mixin's 120 USD daily budget.
PRICES = {
    ("openai", "gpt-4o-mini"): (0.15, 0.6),
    ("anthropic", "claude-haiku"): (0.25, 1.25),
    ("openai", "gpt-4o"): (2.5, 10.0),
}
TOOLS = ("web_search", "code_interpreter", "retrieval")
TOOL_FAILURE_RATIO = 0.02
FAILURE_REASONS = ("request timed out", "upstream rate limit exceeded", "invalid tool arguments", "internal error")


@dataclass(frozen=True)
class AgentSpec:
    name: str
    kind: str  # a key of AGENT_TYPES
    traffic: float = 1.0  # multiple of its type's task rate
    failure_ratio: float | None = None  # None: its type's


# Two low-traffic agents: a task every five or six minutes, under the alerts' minimum task rate
# (0.01/s), one in ten of them failing, so that a lone failure is a large share of their tasks.
LOW_TRAFFIC_FAILURE_RATIO = 0.1
FLEET = (
    AgentSpec("orchestrator-1", "orchestrator"),
    AgentSpec("orchestrator-2", "orchestrator"),
    AgentSpec("worker-1", "worker"),
    AgentSpec("worker-2", "worker"),
    AgentSpec("worker-3", "worker"),
    AgentSpec("worker-4", "worker", traffic=0.03, failure_ratio=LOW_TRAFFIC_FAILURE_RATIO),
    AgentSpec("judge-1", "constitutional_judge"),
    AgentSpec("judge-2", "constitutional_judge"),
    AgentSpec("judge-3", "constitutional_judge"),
    AgentSpec("researcher-1", "researcher"),
    AgentSpec("researcher-2", "researcher", traffic=0.15, failure_ratio=LOW_TRAFFIC_FAILURE_RATIO),
)
COUNCILS = ("ethics", "planning", "review")
QUEUES = {"intake": 0.16, "escalations": 0.05}  # arrivals per second
QUEUE_SERVICE_RATIO = 1.25  # service capacity over arrivals: the depth wanders from none to a few dozen

CONSENSUS_PER_SECOND = 1 / 30  # per council: 120 decisions an hour
CONSENSUS_SUCCESS = 0.92
DEBATE_RATIO = 0.3
FORMATION_MEDIAN_SECONDS = (1.5, 5.0)  # without and with a debate
VIOLATION_RATIO = 0.001
DECISION_ERROR_RATIO = 0.03  # false positives among negatives, false negatives among positives
PRINCIPLES = ("harm_avoidance", "fairness", "transparency", "privacy")

WORKFLOW_TASKS_PER_SECOND = 0.3
WORKFLOW_ERROR_RATIO = 0.002  # a fifth of the 1 % budget of the 99 % availability objective
WORKFLOW_QUALITY = 0.88  # mean; beta-distributed
WORKFLOW_COST_USD = 0.15  # mean per task; gamma-distributed

DAILY_SWING = 0.15  # the load moves by this fraction over a day
BURSTS_PER_HOUR = 1.0  # one-minute failure bursts
BURST_SECONDS = MINUTE


# --- faults -------------------------------------------------------------------------------

Owner = Literal["agent", "council", "queue", "workflow", "fleet"]


@dataclass(frozen=True)
class Fault:
    """Sets ``field`` of the conditions of ``owner`` to ``value``: of the owners named in
    ``targets`` (an agent may be named by its type), or of all of them."""

    owner: Owner
    field: str
    value: float
    targets: tuple[str, ...] = ()
    start: int = 0  # seconds into the run; a scenario's fault starts after its history
    duration: int | None = None  # None: to the end of the run
    flap: tuple[int, int] | None = None  # (on, off) seconds, repeated: active only while on

    def __post_init__(self) -> None:
        known = {f.name for f in dataclasses.fields(CONDITIONS[self.owner])}
        if self.field not in known:
            raise ValueError(f"{self.owner} conditions have no field {self.field!r}: {', '.join(sorted(known))}")

    def active(self, at: float) -> bool:
        elapsed = at - self.start
        if elapsed < 0 or (self.duration is not None and elapsed >= self.duration):
            return False
        return self.flap is None or elapsed % sum(self.flap) < self.flap[0]

    def hits(self, owner: Owner, names: Iterable[str]) -> bool:
        return owner == self.owner and (not self.targets or any(name in self.targets for name in names))


# --- conditions: the healthy values, and what the faults active at a time make of them ---------


@dataclass(frozen=True)
class AgentConditions:
    error_ratio: float
    latency_factor: float = 1.0
    token_factor: float = 1.0
    llm_error_ratio: float = LLM_FAILURE_RATIO
    silent: float = 0  # 1: sends nothing


@dataclass(frozen=True)
class CouncilConditions:
    consensus_success: float = CONSENSUS_SUCCESS
    violation_ratio: float = VIOLATION_RATIO
    false_positive_ratio: float = DECISION_ERROR_RATIO
    false_negative_ratio: float = DECISION_ERROR_RATIO
    formation_factor: float = 1.0


@dataclass(frozen=True)
class QueueConditions:
    extra_arrivals_per_minute: float = 0.0


@dataclass(frozen=True)
class WorkflowConditions:
    error_ratio: float = WORKFLOW_ERROR_RATIO
    quality: float = WORKFLOW_QUALITY


@dataclass(frozen=True)
class FleetConditions:
    exporter_down: float = 0
    cost_factor: float = 1.0


CONDITIONS: dict[Owner, type] = {
    "agent": AgentConditions,
    "council": CouncilConditions,
    "queue": QueueConditions,
    "workflow": WorkflowConditions,
    "fleet": FleetConditions,
}


def conditioned(healthy: Any, owner: Owner, names: Iterable[str], faults: Sequence[Fault], at: float) -> Any:
    """``healthy`` with the fields the faults active at ``at`` set on this owner."""
    names = tuple(names)
    changes = {f.field: f.value for f in faults if f.hits(owner, names) and f.active(at)}
    return dataclasses.replace(healthy, **changes) if changes else healthy


def bursts(seed: int, duration: int) -> list[Fault]:
    """One-minute failure bursts of the healthy fleet: an agent of ordinary traffic failing every
    task, a provider failing every LLM request, or the workflow failing every task."""
    rng = random.Random(f"{seed}:bursts")
    ordinary = [a.name for a in FLEET if a.traffic == 1.0]
    found: list[Fault] = []
    at = rng.expovariate(BURSTS_PER_HOUR / HOUR)
    while at < duration - BURST_SECONDS:
        start = int(at)
        kind = rng.choice(("agent", "agent", "llm", "workflow"))
        if kind == "agent":
            found.append(Fault("agent", "error_ratio", 1.0, (rng.choice(ordinary),), start, BURST_SECONDS))
        elif kind == "llm":
            found.append(Fault("agent", "llm_error_ratio", 1.0, (), start, BURST_SECONDS))
        else:
            found.append(Fault("workflow", "error_ratio", 1.0, (), start, BURST_SECONDS))
        at += rng.expovariate(BURSTS_PER_HOUR / HOUR)
    return found


# --- random draws ---------------------------------------------------------------------------


def poisson(rng: random.Random, mean: float) -> int:
    if mean <= 0:
        return 0
    if mean > 50:  # normal approximation; the fleet's per-step means stay far below
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, product, count = math.exp(-mean), rng.random(), 0
    while product > limit:
        product *= rng.random()
        count += 1
    return count


def binomial(rng: random.Random, trials: int, ratio: float) -> int:
    return sum(rng.random() < ratio for _ in range(trials))


def daily_load(at: float) -> float:
    return 1 + DAILY_SWING * math.sin(2 * math.pi * at / (24 * HOUR))


# --- owners: each draws its events for one step --------------------------------------------


class AgentSim:
    def __init__(self, spec: AgentSpec, seed: int, buckets: Sequence[float]) -> None:
        self.spec = spec
        self.kind = AGENT_TYPES[spec.kind]
        self.rng = random.Random(f"{seed}:agent:{spec.name}")
        self.llm_bounds = tuple(buckets)
        self.healthy = AgentConditions(
            error_ratio=spec.failure_ratio if spec.failure_ratio is not None else self.kind.failure_ratio
        )

    def registration(self) -> dict[str, Any]:
        return {
            "type": "agent_registered",
            "agent": self.spec.name,
            "agent_type": self.spec.kind,
            "capacity": self.kind.capacity,
        }

    def events(self, c: AgentConditions, cost_factor: float, load: float) -> list[dict[str, Any]]:
        if c.silent:
            return []
        rate = self.kind.tasks_per_second * self.spec.traffic * load
        tasks = [self.task(c) for _ in range(poisson(self.rng, rate * STEP))]
        events = [self.heartbeat(rate * self.kind.median_seconds * c.latency_factor), *tasks]
        events.extend(self.tool_call() for _ in range(poisson(self.rng, self.kind.tool_calls_per_task * len(tasks))))
        requests = len(tasks) + poisson(self.rng, (LLM_REQUESTS_PER_TASK - 1) * len(tasks))
        if requests:
            events.append(self.llm_usage(requests, c, cost_factor))
        return events

    def base(self) -> dict[str, Any]:
        return {"agent": self.spec.name, "agent_type": self.spec.kind}

    def heartbeat(self, concurrency: float) -> dict[str, Any]:
        active = poisson(self.rng, concurrency * math.exp(DURATION_SIGMA**2 / 2))  # the mean of a lognormal
        utilization = min(active / self.kind.capacity, 1.0)
        return {
            "type": "agent_heartbeat",
            **self.base(),
            "cpu": round(min(max(0.15 + 0.5 * utilization + self.rng.gauss(0, 0.05), 0.0), 1.0), 3),
            "memory": self.rng.randint(300, 900) * 2**20,
            "queue_depth": poisson(self.rng, 1.0),
            "active_tasks": active,
            "capacity": self.kind.capacity,
        }

    def task(self, c: AgentConditions) -> dict[str, Any]:
        seconds = self.kind.median_seconds * c.latency_factor * self.rng.lognormvariate(0, DURATION_SIGMA)
        base = {**self.base(), "duration": round(seconds * 1000, 1)}
        if self.rng.random() < c.error_ratio:
            return {"type": "task_failed", **base, "reason": self.rng.choice(FAILURE_REASONS)}
        quality = round(self.rng.betavariate(12, 1.5), 3)
        return {"type": "task_completed", **base, "quality_score": quality, "cost": round(seconds * 0.0002, 6)}

    def tool_call(self) -> dict[str, Any]:
        event = {
            "type": "tool_call",
            **self.base(),
            "tool": self.rng.choice(TOOLS),
            "duration": round(self.rng.lognormvariate(0, 0.7) * 400, 1),
        }
        if self.rng.random() < TOOL_FAILURE_RATIO:
            event["reason"] = "tool timed out"
        return event

    def llm_usage(self, requests: int, c: AgentConditions, cost_factor: float) -> dict[str, Any]:
        """The step's requests as one total, the way an LLM gateway reports them."""
        rng, kind = self.rng, self.kind
        input_tokens = sum(
            round(kind.input_tokens * c.token_factor * rng.lognormvariate(0, 0.4)) for _ in range(requests)
        )
        output_tokens = sum(
            round(kind.output_tokens * c.token_factor * rng.lognormvariate(0, 0.5)) for _ in range(requests)
        )
        input_price, output_price = PRICES[kind.model]
        cost = (input_tokens * input_price + output_tokens * output_price) / 1e6 * cost_factor
        durations = [LLM_MEDIAN_SECONDS * rng.lognormvariate(0, 0.5) for _ in range(requests)]
        counts: dict[int, int] = {}
        for seconds in durations:
            index = bisect_left(self.llm_bounds, seconds)
            counts[index] = counts.get(index, 0) + 1
        failures = binomial(rng, requests, c.llm_error_ratio)
        event: dict[str, Any] = {
            "type": "llm_usage",
            **self.base(),
            "provider": kind.model[0],
            "model": kind.model[1],
            "requests": requests,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
            "cost": round(cost, 8),
            "durations": [[self.bound(index), count] for index, count in sorted(counts.items())],
            "duration_sum": round(sum(durations) * 1000, 1),
        }
        if failures:
            event |= {"failures": failures, "reason": "upstream rate limit exceeded"}
        return event

    def bound(self, index: int) -> float | None:
        return self.llm_bounds[index] if index < len(self.llm_bounds) else None


class CouncilSim:
    def __init__(self, name: str, seed: int) -> None:
        self.name = name
        self.rng = random.Random(f"{seed}:council:{name}")
        self.healthy = CouncilConditions()

    def events(self, c: CouncilConditions) -> list[dict[str, Any]]:
        attempts = poisson(self.rng, CONSENSUS_PER_SECOND * STEP)
        events: list[dict[str, Any]] = []
        for _ in range(attempts):
            events.append(self.consensus(c))
            events.append(self.decision(c))
        events.append(
            {
                "type": "coordination",
                "council": self.name,
                "overhead": round(attempts * self.rng.uniform(50, 400), 1),
                "active_sessions": poisson(self.rng, 2.0),
            }
        )
        return events

    def consensus(self, c: CouncilConditions) -> dict[str, Any]:
        rng = self.rng
        debate = rng.random() < DEBATE_RATIO
        median = FORMATION_MEDIAN_SECONDS[debate] * c.formation_factor
        event: dict[str, Any] = {
            "type": "consensus",
            "council": self.name,
            "formation_time": round(median * rng.lognormvariate(0, 0.5) * 1000, 1),
            "achieved": rng.random() < c.consensus_success,
            "debate_required": debate,
            "debate_rounds": rng.randint(1, 5) if debate else 0,
        }
        if rng.random() < c.violation_ratio:
            event |= {"constitutional_compliance": False, "violated_principle": rng.choice(PRINCIPLES)}
        return event

    def decision(self, c: CouncilConditions) -> dict[str, Any]:
        actual = self.rng.random() < 0.5
        wrong = self.rng.random() < (c.false_negative_ratio if actual else c.false_positive_ratio)
        return {"type": "decision", "council": self.name, "predicted": actual != wrong, "actual": actual}


class QueueSim:
    def __init__(self, name: str, arrivals_per_second: float, seed: int) -> None:
        self.name = name
        self.arrivals = arrivals_per_second
        self.rng = random.Random(f"{seed}:queue:{name}")
        self.depth = 0
        self.healthy = QueueConditions()

    def events(self, c: QueueConditions, load: float) -> list[dict[str, Any]]:
        rng = self.rng
        service = self.arrivals * QUEUE_SERVICE_RATIO
        arrived = poisson(rng, (self.arrivals * load + c.extra_arrivals_per_minute / MINUTE) * STEP)
        served = min(self.depth + arrived, poisson(rng, service * STEP))
        # An item leaving now waited about as long as the queue ahead of it took to serve.
        waits = [rng.expovariate(service / (self.depth + 1)) for _ in range(served)]
        self.depth += arrived - served
        events: list[dict[str, Any]] = [
            {"type": "queue", "queue": self.name, "wait": round(w * 1000, 1)} for w in waits
        ]
        events.append({"type": "queue", "queue": self.name, "depth": self.depth})
        return events


class WorkflowSim:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"{seed}:workflow")
        self.healthy = WorkflowConditions()

    def events(self, c: WorkflowConditions, cost_factor: float, load: float) -> list[dict[str, Any]]:
        rng = self.rng
        concentration = 12.0
        events = []
        for _ in range(poisson(rng, WORKFLOW_TASKS_PER_SECOND * load * STEP)):
            quality = rng.betavariate(c.quality * concentration, (1 - c.quality) * concentration)
            cost = rng.gammavariate(4.0, WORKFLOW_COST_USD / 4.0) * cost_factor
            events.append(
                {
                    "type": "business",
                    "completed": rng.random() >= c.error_ratio,
                    "quality_score": round(quality, 3),
                    "cost": round(cost, 5),
                }
            )
        return events


@dataclass
class Fleet:
    """Every simulated owner, and the faults of the run (the scenario's and the bursts)."""

    faults: tuple[Fault, ...]
    seed: int
    buckets: Sequence[float]
    agents: list[AgentSim] = field(init=False)
    councils: list[CouncilSim] = field(init=False)
    queues: list[QueueSim] = field(init=False)
    workflow: WorkflowSim = field(init=False)

    def __post_init__(self) -> None:
        self.agents = [AgentSim(spec, self.seed, self.buckets) for spec in FLEET]
        self.councils = [CouncilSim(name, self.seed) for name in COUNCILS]
        self.queues = [QueueSim(name, rate, self.seed) for name, rate in QUEUES.items()]
        self.workflow = WorkflowSim(self.seed)

    def fleet_conditions(self, at: float) -> FleetConditions:
        return conditioned(FleetConditions(), "fleet", (), self.faults, at)  # type: ignore[no-any-return]

    def events(self, at: float) -> list[dict[str, Any]]:
        """What every owner sends during the step ending at ``at`` (faults judged at its middle)."""
        middle, load = at - STEP / 2, daily_load(at)
        cost_factor = self.fleet_conditions(middle).cost_factor
        events: list[dict[str, Any]] = []
        for agent in self.agents:
            c = conditioned(agent.healthy, "agent", (agent.spec.name, agent.spec.kind), self.faults, middle)
            events.extend(agent.events(c, cost_factor, load))
        for council in self.councils:
            events.extend(council.events(conditioned(council.healthy, "council", (council.name,), self.faults, middle)))
        for queue in self.queues:
            events.extend(queue.events(conditioned(queue.healthy, "queue", (queue.name,), self.faults, middle), load))
        workflow = conditioned(self.workflow.healthy, "workflow", (), self.faults, middle)
        events.extend(self.workflow.events(workflow, cost_factor, load))
        return events


# --- the exporter, and Prometheus' view of its /metrics -------------------------------------


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class InProcessExporter:
    """The exporter's store, decoder and exposition with both clocks on simulated time (promtool's
    time starts at 0, so wall time is the run's seconds): scrapes as /metrics renders them."""

    def __init__(self, config: Config) -> None:
        self.clock = SimulatedClock()
        self.store = Store(config, clock=self.clock, wall_clock=self.clock)
        self.decoder = EventDecoder(
            config.agent_types, config.limits.max_label_length, config.limits.max_events_per_batch
        )
        self.exposition = Exposition(self.store, SelfMetrics(self.store))
        self.encoder = msgspec.json.Encoder()

    def send(self, events: list[dict[str, Any]], at: float) -> None:
        self.clock.now = at
        limit = self.store.limits.max_events_per_batch
        for start in range(0, len(events), limit):
            batch = self.encoder.encode(events[start : start + limit])
            self.store.apply(self.decoder.decode(batch, "application/json"))

    def scrape(self, at: float) -> Iterator[tuple[str, str]]:
        """(series, value) of each sample line, as a scrape at ``at`` would get them."""
        self.clock.now = at
        self.store.expire()
        self.store.scraped()
        for line in self.exposition.render().decode().splitlines():
            if line and not line.startswith("#"):
                series, _, value = line.rpartition(" ")
                yield series, value


class ScrapedSeries:
    """Samples per series in promtool's input notation: a value per step, ``stale`` where a series
    left /metrics or the scrape failed (Prometheus writes a staleness marker), ``_`` after that."""

    def __init__(self) -> None:
        self.values: dict[str, list[str]] = {}
        self.up: list[str] = []  # Prometheus' own series of the scrape's outcome
        self.steps = 0

    def record(self, samples: Iterable[tuple[str, str]] | None) -> None:
        """One scrape's samples; None: the scrape failed."""
        seen: set[str] = set()
        for series, value in samples or ():
            values = self.values.get(series)
            if values is None:
                values = self.values[series] = ["_"] * self.steps
            values.append(value)
            seen.add(series)
        for series, values in self.values.items():
            if series not in seen:
                values.append("stale" if values and values[-1] not in ("_", "stale") else "_")
        self.up.append("1" if samples is not None else "0")
        self.steps += 1

    def input_series(self) -> list[dict[str, str]]:
        series = [{"series": selector(name), "values": " ".join(values)} for name, values in self.values.items()]
        return [*series, {"series": selector("up"), "values": " ".join(self.up)}]


def selector(series: str) -> str:
    """A sample's series as Prometheus stores it: with the scrape's job and instance labels."""
    target = f'instance="{INSTANCE}",job="{JOB}"'
    name, brace, labels = series.partition("{")
    return f"{name}{{{target},{labels}" if brace else f"{name}{{{target}}}"


def simulate(faults: Sequence[Fault], duration: int, seed: int) -> ScrapedSeries:
    """Every scrape of a run of ``duration`` seconds with ``faults`` and the healthy bursts."""
    config = parse_config("{}")  # the exporter's defaults, as a deployment without a file runs it
    exporter = InProcessExporter(config)
    fleet = Fleet((*faults, *bursts(seed, duration)), seed, config.buckets.llm_request_duration_seconds)
    exporter.send([agent.registration() for agent in fleet.agents], 0.0)
    scraped = ScrapedSeries()
    for step in range(duration // STEP + 1):
        at = float(step * STEP)
        events = fleet.events(at) if step else []  # drawn even when lost, so later draws stay the same
        if fleet.fleet_conditions(at - STEP / 2).exporter_down:
            scraped.record(None)  # unreachable: no scrape, and the events sent meanwhile are lost
            continue
        exporter.send(events, at)
        scraped.record(exporter.scrape(at))
    return scraped
