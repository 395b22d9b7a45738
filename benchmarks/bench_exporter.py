"""Agency Telemetry exporter against the baseline a user would build with aiohttp + prometheus_client.

What is measured, in one run, side by side:

1. Ingest over HTTP: NDJSON batches of 1,000 events (mostly task_started / task_completed /
   task_failed / agent_heartbeat, some consensus / coordination / business / decision / queue
   events and a few alerts, as simulator.py sends; quantities as bare numbers: ms, bytes, 0..1).
   Each server runs in its own process on 127.0.0.1 (a free port from binding port 0); the client
   in this process posts pre-built bodies over keep-alive connections of one aiohttp
   ClientSession, with 1 sender and with several concurrent senders. Ours is
   ``agency_telemetry.routes.create_app`` with limits raised; the baseline is an aiohttp app defined
   here that ``json.loads`` each line and updates prometheus_client Counter / Gauge / Histogram /
   Summary children of the same families as our catalogue, cached per agent / council / queue so
   ``.labels()`` is not called per event. The baseline validates nothing beyond JSON parsing and
   applies events one by one (not all-or-nothing, no idempotency ids, no limits).
2. The same ingest in-process (decode + apply, no HTTP), to show what HTTP costs.
3. /metrics render at each fleet size (default 1k and 10k agents), in-process: our Store is filled
   through EventDecoder + Store.apply with every series of the catalogue for every agent (plus
   councils, queues, alerts, workflow); the baseline registry gets the same events, so it holds
   the same label sets and values (checked on a small fleet by parsing both expositions). Timed:
   ``Exposition.render(False)``, ``render(True)`` (OpenMetrics), text + ``gzip.compress(level=1)``
   against ``generate_latest`` / the OpenMetrics ``generate_latest`` of prometheus_client
   (``_created`` series disabled so both expose the same series).
   Ingest over HTTP also reports events per CPU second of the server process (/proc): what one
   core of it takes, whatever the client costs.
4. Ingest latency while /metrics is scraped: each server in its own process holds the largest
   fleet of 3.; one client posts 100-event batches back to back, first alone, then while another
   process scrapes /metrics (gzip accepted, as Prometheus does) back to back; p50, p99 and max.
5. Memory per live series, memory under agent churn, and a scaling table at 100 to 50k agents:
   see scale.py, which this script runs last.

Method: every figure is the median of several runs (after one untimed warm-up, except for the
slow renders of big fleets); rates are events per second of wall-clock time. Runs alternate
between ours and the baseline, and the ratio is the median over rounds of baseline time / our
time for the two runs next to each other, because a shared VM's speed drifts by up to 2x within
minutes; > 1 means ours is faster. The in-process ingest keeps both sides' state out of the
garbage collector (``gc.freeze``), as each would be alone in its own process.

    .venv/bin/python benchmarks/bench_exporter.py [--quick] [--agents 1000,10000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import gzip
import itertools
import json
import math
import multiprocessing
import os
import platform
import pstats
import random
import re
import socket
import statistics
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache, partial
from importlib.metadata import version
from typing import Any

import aiohttp
import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry import __version__
from agency_telemetry.catalogue import FAMILIES, Family
from agency_telemetry.cli import new_event_loop
from agency_telemetry.config import Config, parse_config
from agency_telemetry.decoder import EventDecoder
from agency_telemetry.exposition import Exposition
from agency_telemetry.routes import create_app
from agency_telemetry.selfmetrics import SelfMetrics
from agency_telemetry.simulator import AGENT_PROFILES, COUNCILS, FAILURE_REASONS, PRINCIPLES, QUEUES
from agency_telemetry.store import Store

import scale

BATCH = 1000  # events per request
NDJSON = {"Content-Type": "application/x-ndjson"}
RESERVED_PORTS = (9090, 9093, 9094)
DECISION_OUTCOMES = {(True, True): "tp", (True, False): "fp", (False, False): "tn", (False, True): "fn"}
# Share of each kind of event in the ingest mix (per cent).
MIX = {"heartbeat": 20, "task": 70, "consensus": 2, "coordination": 2, "decision": 2, "business": 2, "queue": 2}
ALERT_RATE = 0.002
WARMUP_UP_TO = 2000  # agents; above, renders take seconds and the line count render is the warm-up
HEARTBEAT_GAUGES = {
    "cpu": "agency_agent_cpu_usage_ratio",
    "memory": "agency_agent_memory_bytes",
    "queue_depth": "agency_agent_queue_depth",
}


@dataclass(frozen=True)
class Settings:
    ingest_agents: int  # fleet size of the ingest mix
    requests: int  # requests per timed run
    distinct_bodies: int  # pre-built bodies, cycled
    ingest_runs: int
    senders: tuple[int, ...]
    agents: tuple[int, ...]  # fleet sizes for /metrics
    latency_seconds: float  # how long ingest latency is measured, without and with scrapes
    quick: bool  # small sizes everywhere, for the smoke test

    def render_runs(self, agents: int) -> int:
        return 5 if agents <= WARMUP_UP_TO else 3


# --- machine -----------------------------------------------------------------------------


def machine_lines() -> list[str]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ", ".join(f"{name} {version(name)}" for name in ("aiohttp", "prometheus-client", "msgspec"))
    loop = type(new_event_loop()).__module__.split(".")[0]  # what the servers run on: uvloop or asyncio
    return [
        f"machine: {model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}",
        f"python:  {platform.python_implementation()} {platform.python_version()}, servers on the {loop} loop; "
        f"agency-telemetry {__version__}, {packages}",
    ]


# --- the event mix -----------------------------------------------------------------------


@dataclass
class MixAgent:
    name: str
    kind: str
    running: int = 0

    @property
    def capacity(self) -> int:
        return AGENT_PROFILES[self.kind][2]


@dataclass
class EventMix:
    """An endless, seeded stream of events in the proportions of :data:`MIX`."""

    agents: int
    seed: int = 7
    rng: random.Random = field(init=False)
    fleet: list[MixAgent] = field(init=False)
    sessions: dict[str, int] = field(init=False, default_factory=dict)
    alerts: list[str] = field(init=False, default_factory=list)
    alert_ids: Iterator[int] = field(init=False, default_factory=lambda: iter(range(10**9)))

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.fleet = [agent_named(i) for i in range(self.agents)]

    def registrations(self) -> list[dict[str, Any]]:
        return [registered(agent) for agent in self.fleet]

    def events(self, count: int) -> list[dict[str, Any]]:
        makers = {
            "heartbeat": lambda: heartbeat(self.rng, self.rng.choice(self.fleet)),
            "task": self.task,
            "consensus": lambda: consensus(self.rng, self.rng.choice(COUNCILS)),
            "coordination": self.coordination,
            "decision": self.decision,
            "business": lambda: business(self.rng),
            "queue": lambda: queue_sample(self.rng, self.rng.choice(QUEUES)),
        }
        kinds = self.rng.choices(list(MIX), weights=list(MIX.values()), k=count)
        events = [makers[kind]() for kind in kinds]
        for index in range(count):
            if self.rng.random() < ALERT_RATE:
                events[index] = self.alert()
        return events

    def task(self) -> dict[str, Any]:
        agent = self.rng.choice(self.fleet)
        if agent.running < agent.capacity and (agent.running == 0 or self.rng.random() < 0.5):
            agent.running += 1
            return {"type": "task_started", "agent": agent.name, "agent_type": agent.kind}
        agent.running -= 1
        return finished(self.rng, agent)

    def coordination(self) -> dict[str, Any]:
        council = self.rng.choice(COUNCILS)
        open_sessions = self.sessions.get(council, 0)
        starting = open_sessions == 0 or (open_sessions < 4 and self.rng.random() < 0.5)
        self.sessions[council] = open_sessions + (1 if starting else -1)
        session = "started" if starting else "ended"
        return {"type": "coordination", "council": council, "session": session, "overhead": self.overhead()}

    def overhead(self) -> float:
        return round(self.rng.uniform(50, 800))

    def decision(self) -> dict[str, Any]:
        if self.rng.random() < 0.5:
            agent = self.rng.choice(self.fleet)
            return decision(self.rng, agent=agent.name, agent_type=agent.kind)
        return decision(self.rng, council=self.rng.choice(COUNCILS))

    def alert(self) -> dict[str, Any]:
        if self.alerts and self.rng.random() < 0.5:
            return {**alert(self.alerts.pop(), self.fleet[0]), "status": "resolved"}
        alert_id = f"alert-{next(self.alert_ids)}"
        self.alerts.append(alert_id)
        return alert(alert_id, self.rng.choice(self.fleet))


def agent_named(index: int) -> MixAgent:
    kinds = list(AGENT_PROFILES)
    kind = kinds[index % len(kinds)]
    return MixAgent(f"{kind}-{index // len(kinds) + 1}", kind)


def registered(agent: MixAgent) -> dict[str, Any]:
    return {"type": "agent_registered", "agent": agent.name, "agent_type": agent.kind, "capacity": agent.capacity}


def heartbeat(rng: random.Random, agent: MixAgent) -> dict[str, Any]:
    return {
        "type": "agent_heartbeat",
        "agent": agent.name,
        "agent_type": agent.kind,
        "cpu": round(rng.uniform(0.05, 0.95), 3),
        "memory": rng.randint(200, 900) * 2**20,
        "queue_depth": rng.randint(0, 3 * agent.capacity),
    }


def finished(rng: random.Random, agent: MixAgent, fail: bool | None = None) -> dict[str, Any]:
    median, failure_rate, _ = AGENT_PROFILES[agent.kind]
    duration = round(rng.lognormvariate(0, 0.6) * median * 1000, 1)  # ms
    base = {"agent": agent.name, "agent_type": agent.kind, "duration": duration}
    if fail if fail is not None else rng.random() < failure_rate:
        return {"type": "task_failed", **base, "reason": rng.choice(FAILURE_REASONS)}
    quality = round(rng.betavariate(8, 1.5), 3)
    return {"type": "task_completed", **base, "quality_score": quality, "cost": round(duration / 1000 * 0.004, 5)}


def consensus(rng: random.Random, council: str, violation: bool = False) -> dict[str, Any]:
    debate = rng.random() < 0.3
    event: dict[str, Any] = {
        "type": "consensus",
        "council": council,
        "formation_time": round(rng.lognormvariate(0, 0.5) * (6000 if debate else 1500)),
        "achieved": rng.random() < 0.9,
        "debate_required": debate,
        "debate_rounds": rng.randint(1, 6) if debate else 0,
    }
    if violation or rng.random() < 0.03:
        event["constitutional_compliance"] = False
        event["violated_principle"] = rng.choice(PRINCIPLES)
    return event


def decision(rng: random.Random, **owner: str) -> dict[str, Any]:
    predicted = rng.random() < 0.5
    actual = predicted if rng.random() < 0.9 else not predicted
    return {"type": "decision", **owner, "predicted": predicted, "actual": actual}


def business(rng: random.Random) -> dict[str, Any]:
    quality, cost = round(rng.betavariate(9, 1.2), 3), round(rng.uniform(0.01, 0.2), 4)
    return {"type": "business", "completed": rng.random() < 0.96, "quality_score": quality, "cost": cost}


def queue_sample(rng: random.Random, queue: str) -> dict[str, Any]:
    return {"type": "queue", "queue": queue, "depth": rng.randint(0, 40), "wait": round(rng.expovariate(0.5) * 1000, 1)}


def alert(alert_id: str, agent: MixAgent) -> dict[str, Any]:
    return {
        "type": "alert",
        "alert_id": alert_id,
        "alert_type": "agent_performance",
        "severity": "warning",
        "message": f"{agent.name} reports degraded performance",
        "affected_agents": [agent.name],
    }


def fleet_events(agents: int, seed: int = 11) -> list[dict[str, Any]]:
    """Events that give every agent every series of the catalogue, plus councils, queues, alerts."""
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for index in range(agents):
        agent = agent_named(index)
        events += [registered(agent), heartbeat(rng, agent)]
        events += [{"type": "task_started", "agent": agent.name, "agent_type": agent.kind}] * 3
        events += [finished(rng, agent, fail=False), finished(rng, agent, fail=False), finished(rng, agent, fail=True)]
        events.append(decision(rng, agent=agent.name, agent_type=agent.kind))
    owners = max(3, agents // 100)
    for index in range(owners):
        council = f"council-{index}"
        events += [consensus(rng, council, violation=True), consensus(rng, council)]
        events += [{"type": "coordination", "council": council, "session": "started", "overhead": 120}]
        events += [decision(rng, council=council), queue_sample(rng, f"queue-{index}")]
        events.append(alert(f"alert-{index}", agent_named(index % agents)))
    return events + [business(rng) for _ in range(10)]


def ndjson(events: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(event, separators=(",", ":")) for event in events).encode()


def chunks(events: list[dict[str, Any]], size: int = BATCH) -> list[bytes]:
    return [ndjson(events[start : start + size]) for start in range(0, len(events), size)]


# --- the baseline: aiohttp + prometheus_client -------------------------------------------


def make_metric(family: Family, registry: CollectorRegistry, config: Config) -> Any:
    labels = [*family.owner.labels, *([family.label] if family.label else [])]
    if family.type == "histogram":
        assert family.buckets is not None
        buckets = getattr(config.buckets, family.buckets)
        return Histogram(family.name, family.help, labels, registry=registry, buckets=buckets)
    kind = {"counter": Counter, "gauge": Gauge, "summary": Summary}[family.type]
    return kind(family.name, family.help, labels, registry=registry)


class Children:
    """The labelled children of one owner, created once and remembered for removal."""

    def __init__(self, metrics: dict[str, Any], labels: tuple[str, ...]) -> None:
        self.metrics = metrics
        self.labels = labels
        self.created: list[tuple[Any, tuple[str, ...]]] = []

    def child(self, name: str, *extra: str) -> Any:
        values = (*self.labels, *extra)
        self.created.append((self.metrics[name], values))
        return self.metrics[name].labels(*values)

    def remove(self) -> None:
        for metric, values in self.created:
            metric.remove(*values)


class AgentChildren(Children):
    def __init__(self, metrics: dict[str, Any], labels: tuple[str, ...], error_classes: list[str]) -> None:
        super().__init__(metrics, labels)
        self.child("agency_agent_info").set(1)
        self.capacity = self.child("agency_agent_capacity_tasks")
        self.capacity.set(1)
        self.active = self.child("agency_agent_active_tasks")
        self.last_seen = self.child("agency_agent_last_seen_timestamp_seconds")
        self.tasks = self.child("agency_agent_tasks_total")
        self.failures = {name: self.child("agency_agent_task_failures_total", name) for name in error_classes}
        self.duration = self.child("agency_agent_task_duration_seconds")
        self.quality = self.child("agency_agent_task_quality_score")
        self.cost = self.child("agency_agent_task_cost_usd_total")
        self.gauges: dict[str, Any] = {}  # heartbeat gauges, created when first reported
        self.decisions: dict[str, Any] | None = None


class CouncilChildren(Children):
    def __init__(self, metrics: dict[str, Any], labels: tuple[str, ...]) -> None:
        super().__init__(metrics, labels)
        self.attempts = self.child("agency_council_consensus_attempts_total")
        self.failures = self.child("agency_council_consensus_failures_total")
        self.formation = self.child("agency_council_consensus_formation_seconds")
        self.debates = self.child("agency_council_debates_total")
        self.rounds = self.child("agency_council_debate_rounds")
        self.checks = self.child("agency_council_compliance_checks_total")
        self.violations: dict[str, Any] = {}
        self.sessions = self.child("agency_council_sessions_active")
        self.coordination = self.child("agency_council_coordination_seconds_total")
        self.decisions: dict[str, Any] | None = None


class QueueChildren(Children):
    def __init__(self, metrics: dict[str, Any], labels: tuple[str, ...]) -> None:
        super().__init__(metrics, labels)
        self.wait = self.child("agency_queue_wait_seconds")
        self.depth: Any = None


def decision_children(owner: Children, family: str) -> dict[str, Any]:
    return {outcome: owner.child(family, outcome) for outcome in DECISION_OUTCOMES.values()}


class BaselineMetrics:
    """What a user would write: one prometheus_client metric per family, children cached per owner."""

    def __init__(self, registry: CollectorRegistry, config: Config) -> None:
        self.m = {family.name: make_metric(family, registry, config) for family in FAMILIES}
        self.error_classes = config.error_class_names
        self.patterns = [(c.name, re.compile(c.pattern, re.IGNORECASE)) for c in config.error_classes]
        self.classify = lru_cache(maxsize=4096)(self._classify)
        self.agents: dict[str, AgentChildren] = {}
        self.councils: dict[str, CouncilChildren] = {}
        self.queues: dict[str, QueueChildren] = {}
        self.alerts: dict[str, tuple[str, ...]] = {}
        self.handlers: dict[str, Callable[[dict[str, Any], float], None]] = {
            "agent_registered": self.on_registered,
            "agent_deregistered": self.on_deregistered,
            "agent_heartbeat": self.on_heartbeat,
            "task_started": self.on_task_started,
            "task_completed": self.on_task_completed,
            "task_failed": self.on_task_failed,
            "consensus": self.on_consensus,
            "coordination": self.on_coordination,
            "business": self.on_business,
            "decision": self.on_decision,
            "queue": self.on_queue,
            "alert": self.on_alert,
        }

    def apply_ndjson(self, body: bytes) -> int:
        """Applies each line as it is read; only JSON parsing and a known ``type`` are checked."""
        wall, handlers, count = time.time(), self.handlers, 0
        for line in body.split(b"\n"):
            if line.strip():
                event = json.loads(line)
                handlers[event["type"]](event, wall)
                count += 1
        return count

    def apply(self, events: list[dict[str, Any]]) -> None:
        wall = time.time()
        for event in events:
            self.handlers[event["type"]](event, wall)

    def _classify(self, reason: str) -> str:
        return next((name for name, pattern in self.patterns if pattern.search(reason)), self.error_classes[-1])

    # owners

    def agent(self, event: dict[str, Any], wall: float) -> AgentChildren:
        name = event["agent"]
        children = self.agents.get(name)
        if children is None:
            labels = (name, event.get("agent_type") or "unknown")
            children = self.agents[name] = AgentChildren(self.m, labels, self.error_classes)
        children.last_seen.set(wall)
        return children

    def council(self, name: str) -> CouncilChildren:
        children = self.councils.get(name)
        if children is None:
            children = self.councils[name] = CouncilChildren(self.m, (name,))
        return children

    # handlers

    def on_registered(self, event: dict[str, Any], wall: float) -> None:
        self.agent(event, wall).capacity.set(event.get("capacity", 1))

    def on_deregistered(self, event: dict[str, Any], wall: float) -> None:
        children = self.agents.pop(event["agent"], None)
        if children is not None:
            children.remove()

    def on_heartbeat(self, event: dict[str, Any], wall: float) -> None:
        agent = self.agent(event, wall)
        for key, family in HEARTBEAT_GAUGES.items():
            value = event.get(key)
            if value is not None:
                gauge = agent.gauges.get(key)
                if gauge is None:
                    gauge = agent.gauges[key] = agent.child(family)
                gauge.set(value)

    def on_task_started(self, event: dict[str, Any], wall: float) -> None:
        self.agent(event, wall).active.inc()

    def on_task_completed(self, event: dict[str, Any], wall: float) -> None:
        agent = self.agent(event, wall)
        agent.tasks.inc()
        agent.active.dec()
        agent.duration.observe(event["duration"] / 1000)
        if event.get("quality_score") is not None:
            agent.quality.observe(event["quality_score"])
        if event.get("cost") is not None:
            agent.cost.inc(event["cost"])

    def on_task_failed(self, event: dict[str, Any], wall: float) -> None:
        agent = self.agent(event, wall)
        agent.tasks.inc()
        agent.active.dec()
        agent.failures[self.classify(event.get("reason", ""))].inc()
        if event.get("duration") is not None:
            agent.duration.observe(event["duration"] / 1000)

    def on_consensus(self, event: dict[str, Any], wall: float) -> None:
        council = self.council(event["council"])
        council.attempts.inc()
        if not event["achieved"]:
            council.failures.inc()
        council.formation.observe(event["formation_time"] / 1000)
        if event.get("debate_required"):
            council.debates.inc()
            council.rounds.observe(event.get("debate_rounds", 0))
        council.checks.inc()
        if not event.get("constitutional_compliance", True):
            principle = event.get("violated_principle") or "unspecified"
            if principle not in council.violations:
                council.violations[principle] = council.child("agency_council_compliance_violations_total", principle)
            council.violations[principle].inc()

    def on_coordination(self, event: dict[str, Any], wall: float) -> None:
        council = self.council(event["council"])
        if event.get("session") == "started":
            council.sessions.inc()
        elif event.get("session") == "ended":
            council.sessions.dec()
        if event.get("overhead") is not None:
            council.coordination.inc(event["overhead"] / 1000)

    def on_business(self, event: dict[str, Any], wall: float) -> None:
        self.m["agency_workflow_tasks_total"].inc()
        if not event["completed"]:
            self.m["agency_workflow_task_failures_total"].inc()
        if event.get("quality_score") is not None:
            self.m["agency_workflow_task_quality_score"].observe(event["quality_score"])
        if event.get("cost") is not None:
            self.m["agency_workflow_task_cost_usd_total"].inc(event["cost"])

    def on_decision(self, event: dict[str, Any], wall: float) -> None:
        owner: AgentChildren | CouncilChildren
        if event.get("council") is not None:
            owner, family = self.council(event["council"]), "agency_council_decisions_total"
        else:
            owner, family = self.agent(event, wall), "agency_agent_decisions_total"
        if owner.decisions is None:
            owner.decisions = decision_children(owner, family)
        owner.decisions[DECISION_OUTCOMES[event["predicted"], event["actual"]]].inc()

    def on_queue(self, event: dict[str, Any], wall: float) -> None:
        queue = self.queues.get(event["queue"])
        if queue is None:
            queue = self.queues[event["queue"]] = QueueChildren(self.m, (event["queue"],))
        if event.get("depth") is not None:
            if queue.depth is None:
                queue.depth = queue.child("agency_queue_depth")
            queue.depth.set(event["depth"])
        if event.get("wait") is not None:
            queue.wait.observe(event["wait"] / 1000)

    def on_alert(self, event: dict[str, Any], wall: float) -> None:
        gauge = self.m["agency_reported_alert"]
        old = self.alerts.pop(event["alert_id"], None)
        if old is not None:
            gauge.remove(*old)
        if event.get("status", "active") == "active":
            labels = (
                event["alert_id"],
                event["alert_type"],
                event["severity"],
                ",".join(event.get("affected_agents", [])),
                event.get("message", ""),
            )
            gauge.labels(*labels).set(1)
            self.alerts[event["alert_id"]] = labels


def baseline_registry(config: Config) -> tuple[CollectorRegistry, BaselineMetrics]:
    prometheus_client.disable_created_metrics()  # our exposition has no _created series either
    registry = CollectorRegistry()
    return registry, BaselineMetrics(registry, config)


def baseline_app(config: Config) -> web.Application:
    registry, metrics = baseline_registry(config)

    async def ingest(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            count = metrics.apply_ndjson(body)
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"accepted": count}, status=202)

    async def scrape(request: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), headers={"Content-Type": "text/plain; version=0.0.4"})

    async def healthz(request: web.Request) -> web.Response:
        return web.Response(text="ok\n")

    app = web.Application(client_max_size=config.limits.max_body_size)
    app.router.add_post("/v1/events", ingest)
    app.router.add_get("/metrics", scrape)
    app.router.add_get("/healthz", healthz)
    return app


# --- our exporter, in-process ------------------------------------------------------------


def config_for(agents: int) -> Config:
    owners = max(1000, agents)
    return parse_config(
        f"limits: {{max_agents: {max(60_000, agents)}, max_councils: {owners}, max_queues: {owners}, "
        f"max_active_alerts: {owners}, max_events_per_batch: 10000}}"
    )


@dataclass
class Ours:
    config: Config
    store: Store = field(init=False)
    decoder: EventDecoder = field(init=False)
    exposition: Exposition = field(init=False)

    def __post_init__(self) -> None:
        limits = self.config.limits
        self.store = Store(self.config)
        self.decoder = EventDecoder(self.config.agent_types, limits.max_label_length, limits.max_events_per_batch)
        self.exposition = Exposition(self.store, SelfMetrics(self.store))

    def apply_ndjson(self, body: bytes) -> int:
        return self.store.apply(self.decoder.decode(body, "application/x-ndjson")).accepted


# --- servers in their own processes ------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def serve(side: str, port: int, agents: int) -> None:
    """Entry point of a server process (spawned, so nothing is inherited from the benchmark)."""
    config = config_for(agents)
    app = create_app(config) if side == "ours" else baseline_app(config)
    # Both on the event loop the exporter runs on (uvloop where installed), so the loop's own
    # cost is the same on both sides.
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=new_event_loop())


class Server:
    """A server process for the duration of a ``with`` block."""

    def __init__(self, side: str, agents: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=serve, args=(side, self.port, agents), daemon=True)

    def __enter__(self) -> Server:
        self.process.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.is_alive():
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"server on {self.url} did not start")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- timing ------------------------------------------------------------------------------

Times = dict[str, list[float]]  # side -> seconds of each timed run


@dataclass(frozen=True)
class Result:
    label: str
    times: Times
    amount: dict[str, int]  # side -> events per run, or sample lines per render
    cpu: Times | None = None  # side -> CPU seconds the server process used in each run

    def cpu_rate(self, side: str) -> float:
        """Events per CPU second of the server: what one core of it can take."""
        assert self.cpu is not None
        return self.amount[side] / statistics.median(self.cpu[side])

    def median(self, side: str) -> float:
        return statistics.median(self.times[side])

    def rate(self, side: str) -> float:
        return self.amount[side] / self.median(side)

    def ratio(self) -> float:
        """Median over rounds of baseline seconds / our seconds: runs next to each other in time are compared."""
        return statistics.median(b / o for o, b in zip(self.times["ours"], self.times["baseline"], strict=True))


def interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: bool = True) -> Times:
    """Seconds of each run; runs alternate between the sides so that drift hits both alike."""
    for fn in fns.values() if warmup else ():
        fn()  # untimed
    return scale.in_rounds(fns, dict.fromkeys(fns, runs))


# --- ingest ------------------------------------------------------------------------------


@dataclass
class Workload:
    warmup: list[bytes]  # registrations and a few batches, untimed
    bodies: list[bytes]  # cycled by the timed runs
    finished: dict[int, int]  # id(body) -> task_completed + task_failed events in it

    def run_bodies(self, requests: int) -> list[bytes]:
        return [self.bodies[i % len(self.bodies)] for i in range(requests)]

    def tasks_in(self, bodies: list[bytes]) -> int:
        return sum(self.finished.get(id(body), 0) for body in bodies)


def build_workload(settings: Settings) -> Workload:
    mix = EventMix(settings.ingest_agents)
    warmup = chunks(mix.registrations())
    batches = [mix.events(BATCH) for _ in range(settings.distinct_bodies + 3)]
    bodies = [ndjson(batch) for batch in batches]
    finished = {
        id(body): sum(e["type"] in ("task_completed", "task_failed") for e in batch)
        for body, batch in zip(bodies, batches, strict=True)
    }
    return Workload(warmup + bodies[:3], bodies[3:], finished)


def warmup_bodies(bodies: list[bytes], senders: int) -> list[bytes]:
    return bodies[: max(senders * 2, 4)]


async def post_all(session: aiohttp.ClientSession, url: str, bodies: list[bytes], senders: int) -> float:
    """Seconds to post every body, ``senders`` requests in flight at a time."""
    pending = iter(bodies)

    async def sender() -> None:
        for body in pending:
            async with session.post(url, data=body, headers=NDJSON) as response:
                if response.status != 202:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return time.perf_counter() - started


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def ingest_over_http(
    servers: dict[str, Server], workload: Workload, settings: Settings
) -> tuple[list[Result], dict[str, float]]:
    """One result per sender count, and the tasks_total sum each server exposes afterwards."""
    urls = {side: server.url for side, server in servers.items()}
    results = []
    bodies = workload.run_bodies(settings.requests)
    connector = aiohttp.TCPConnector(limit=2 * max(settings.senders))
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in urls.values():
            await post_all(session, f"{url}/v1/events", workload.warmup, 1)
        for senders in settings.senders:
            times: Times = {side: [] for side in urls}
            cpu: Times = {side: [] for side in urls}
            for url in urls.values():
                await post_all(session, f"{url}/v1/events", warmup_bodies(bodies, senders), senders)
            for _ in range(settings.ingest_runs):
                for side, url in urls.items():
                    cpu_before = cpu_seconds(servers[side].pid)
                    times[side].append(await post_all(session, f"{url}/v1/events", bodies, senders))
                    cpu[side].append(cpu_seconds(servers[side].pid) - cpu_before)
            label = f"ingest HTTP (NDJSON, {BATCH} events/request, {senders} sender{'s' * (senders > 1)})"
            results.append(Result(label, times, dict.fromkeys(urls, len(bodies) * BATCH), cpu))
        tasks = {}
        for side, url in urls.items():
            async with session.get(f"{url}/metrics") as response:
                tasks[side] = sum_samples(await response.text(), "agency_agent_tasks_total")
    return results, tasks


# --- ingest latency while /metrics is scraped ---------------------------------------------

LATENCY_BATCH = 100  # events per request: what an SDK flushes every second or so


def scrape_forever(url: str, stop: Any) -> None:
    """A scraper process: GET /metrics back to back, gzip accepted as Prometheus does."""
    while not stop.is_set():
        request = urllib.request.Request(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()


async def post_latencies(session: aiohttp.ClientSession, url: str, bodies: list[bytes], seconds: float) -> list[float]:
    """Seconds each small ingest request took, posted one after another for ``seconds``."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    for body in itertools.cycle(bodies):
        if time.perf_counter() > deadline:
            return latencies
        started = time.perf_counter()
        async with session.post(f"{url}/v1/events", data=body, headers=NDJSON) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
    raise AssertionError("unreachable")


async def latencies_with_and_without_scrapes(url: str, agents: int, seconds: float) -> dict[str, list[float]]:
    mix = EventMix(agents)
    bodies = [ndjson(mix.events(LATENCY_BATCH)) for _ in range(20)]
    async with aiohttp.ClientSession() as session:
        for body in chunks(fleet_events(agents), 10_000):
            async with session.post(f"{url}/v1/events", data=body, headers=NDJSON) as response:
                assert response.status == 202, await response.text()
        quiet = await post_latencies(session, url, bodies, seconds)
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        scraper = context.Process(target=scrape_forever, args=(url, stop), daemon=True)
        scraper.start()
        await asyncio.sleep(1)  # the first scrape is under way
        scraped = await post_latencies(session, url, bodies, seconds)
        stop.set()
        scraper.join(120)
    return {"quiet": quiet, "scraped": scraped}


def latency_rows(agents: int, seconds: float) -> list[str]:
    """p50 / p99 / max of ingest requests with no scrape, and with scrapes running back to back."""
    measured = {}
    for side in ("ours", "baseline"):
        with Server(side, agents) as server:
            measured[side] = asyncio.run(latencies_with_and_without_scrapes(server.url, agents, seconds))

    def cell(side: str, when: str) -> str:
        values = sorted(measured[side][when])
        p50, p99 = values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))]
        return f"{side} p50 {p50 * 1000:7.1f} p99 {p99 * 1000:7.1f} max {values[-1] * 1000:7.1f} ms"

    size = f"{agents // 1000}k" if agents % 1000 == 0 else str(agents)
    label = f"ingest latency, {LATENCY_BATCH} events/request, {size} agents"
    return [
        f"{label + ', no scrape':<54} {cell('ours', 'quiet')}   {cell('baseline', 'quiet')}",
        f"{label + ', scraped':<54} {cell('ours', 'scraped')}   {cell('baseline', 'scraped')}",
    ]


def expected_tasks(workload: Workload, settings: Settings) -> int:
    bodies = workload.run_bodies(settings.requests)
    warmups = sum(workload.tasks_in(warmup_bodies(bodies, senders)) for senders in settings.senders)
    runs = settings.ingest_runs * len(settings.senders)
    return workload.tasks_in(workload.warmup) + warmups + runs * workload.tasks_in(bodies)


def sum_samples(text: str, name: str) -> float:
    pattern = re.compile(rf"^{name}{{[^}}]*}} (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


def in_process(workload: Workload, settings: Settings) -> Result:
    """Decode + apply without HTTP. Both sides' state is frozen out of the GC, as each would live alone."""
    config = config_for(settings.ingest_agents)
    appliers = {"ours": Ours(config).apply_ndjson, "baseline": baseline_registry(config)[1].apply_ndjson}
    bodies = workload.run_bodies(settings.requests)
    for apply in appliers.values():
        for body in workload.warmup:
            apply(body)
    gc.collect()
    gc.freeze()
    try:
        times = interleaved(
            {side: partial(apply_all, apply, bodies) for side, apply in appliers.items()}, settings.ingest_runs
        )
    finally:
        gc.unfreeze()
    return Result("ingest in-process (decode + apply, no HTTP)", times, dict.fromkeys(appliers, len(bodies) * BATCH))


def apply_all(apply: Callable[[bytes], int], bodies: list[bytes]) -> None:
    for body in bodies:
        apply(body)


# --- /metrics ----------------------------------------------------------------------------


def populate(agents: int) -> tuple[Ours, CollectorRegistry, BaselineMetrics]:
    """Both sides fed the same events: ours through EventDecoder + Store.apply, the baseline directly."""
    config = config_for(agents)
    events = fleet_events(agents)
    ours = Ours(config)
    for body in chunks(events, 10_000):
        ours.apply_ndjson(body)
    registry, baseline = baseline_registry(config)
    baseline.apply(events)
    return ours, registry, baseline


def sample_lines(text: bytes) -> int:
    return sum(1 for line in text.split(b"\n") if line and not line.startswith(b"#"))


def render_results(agents: int, runs: int) -> list[Result]:
    ours, registry, _ = populate(agents)
    render = ours.exposition.render
    candidates = {
        "text": (lambda: render(False), lambda: generate_latest(registry)),
        "OpenMetrics": (lambda: render(True), lambda: generate_latest_openmetrics(registry)),
        "text+gzip(1)": (
            lambda: gzip.compress(render(False), compresslevel=1),
            lambda: gzip.compress(generate_latest(registry), compresslevel=1),
        ),
    }
    lines = {"ours": sample_lines(render(False)), "baseline": sample_lines(generate_latest(registry))}
    size = f"{agents // 1000}k" if agents % 1000 == 0 else str(agents)
    return [
        Result(
            f"/metrics {kind:<12} {size:>4} agents ({lines['ours']:,} lines)",
            interleaved({"ours": mine, "baseline": theirs}, runs, warmup=agents <= WARMUP_UP_TO),
            lines,
        )
        for kind, (mine, theirs) in candidates.items()
    ]


# --- checks ------------------------------------------------------------------------------


def exposed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the catalogue's families, without the exporter's own and without wall-clock times."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.startswith("agency_exporter_") and "last_seen" not in sample.name
    }


def same_series_check(workload: Workload) -> tuple[int, list[str]]:
    """Feeds a small fleet and a few ingest batches to both; returns the sample count and differences."""
    ours, registry, baseline = populate(40)
    for body in workload.warmup[-3:] + workload.bodies[:2]:
        ours.apply_ndjson(body)
        baseline.apply_ndjson(body)
    mine, theirs = exposed(ours.exposition.render().decode()), exposed(generate_latest(registry).decode())
    problems = [f"only in ours: {key}" for key in mine.keys() - theirs.keys()]
    problems += [f"only in baseline: {key}" for key in theirs.keys() - mine.keys()]
    problems += [
        f"{key}: ours {mine[key]} baseline {theirs[key]}"
        for key in mine.keys() & theirs.keys()
        if not math.isclose(mine[key], theirs[key], rel_tol=1e-9, abs_tol=1e-12)
    ]
    return len(mine), problems


# --- report ------------------------------------------------------------------------------


def rate_row(result: Result) -> str:
    def cell(side: str) -> str:
        amount, times = result.amount[side], result.times[side]
        spread = f"{amount / max(times) / 1000:,.0f}-{amount / min(times) / 1000:,.0f}k"
        return f"{side} {result.rate(side):>10,.0f} events/s ({spread:>11})"

    row = f"{result.label:<54} {cell('ours')}   {cell('baseline')}   ratio {result.ratio():6.2f}x"
    if result.cpu is None:
        return row
    ours, baseline = result.cpu_rate("ours"), result.cpu_rate("baseline")
    per_core = f"{'  per server CPU second (one core)':<54} ours {ours:>10,.0f} events/s"
    return f"{row}\n{per_core}{'':<14}   baseline {baseline:>10,.0f} events/s{'':<14}   ratio {ours / baseline:6.2f}x"


def render_row(result: Result) -> str:
    def cell(side: str) -> str:
        median = result.median(side)
        return f"{side} {median * 1000:>10,.2f} ms ({median * 1e6 / result.amount[side]:5.2f} µs/line)"

    return f"{result.label:<54} {cell('ours')}      {cell('baseline')}      ratio {result.ratio():6.2f}x"


def header(settings: Settings) -> list[str]:
    return [
        *machine_lines(),
        f"method:  ingest: {settings.requests} requests x {BATCH} events per run ({settings.distinct_bodies} "
        f"distinct pre-built NDJSON bodies, {settings.ingest_agents} agents), median (min-max) of "
        f"{settings.ingest_runs} runs after a warm-up, runs alternating between ours and baseline;",
        "         servers in their own processes on 127.0.0.1 (both on the same event loop), "
        "client: one keep-alive aiohttp session in this process",
        f"         /metrics: in-process, both sides fed the same events, runs alternating, median of 5 runs after a "
        f"warm-up (<= {WARMUP_UP_TO:,} agents) or of 3 runs (more)",
        "         baseline: aiohttp + prometheus_client, json.loads per line, children cached per owner; no validation "
        "beyond JSON parsing, not all-or-nothing, no idempotency, no limits; _created series disabled",
        "         ratio = median over rounds of baseline time / our time for runs next to each other (this VM's speed "
        "drifts), so > 1 means ours is faster",
    ]


def profile_ours(workload: Workload, settings: Settings) -> None:
    ours = Ours(config_for(settings.ingest_agents))
    for body in workload.warmup:
        ours.apply_ndjson(body)
    profiler = cProfile.Profile()
    profiler.enable()
    for body in workload.run_bodies(settings.requests):
        ours.apply_ndjson(body)
    profiler.disable()
    print("\nprofile of our in-process ingest (decode + apply), top 15 by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[Settings, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (< 20 s)")
    parser.add_argument("--agents", help="fleet sizes for /metrics, comma-separated (default 1000,10000)")
    parser.add_argument("--senders", default="1,4", help="concurrent ingest senders to try (default 1,4)")
    parser.add_argument("--profile", action="store_true", help="also cProfile our in-process ingest")
    args = parser.parse_args(argv)
    agents = args.agents or ("200" if args.quick else "1000,10000")
    settings = Settings(
        ingest_agents=200 if args.quick else 1000,
        requests=10 if args.quick else 50,
        distinct_bodies=10 if args.quick else 50,
        ingest_runs=2 if args.quick else 7,
        senders=tuple(int(n) for n in args.senders.split(",")),
        agents=tuple(int(n) for n in agents.split(",")),
        latency_seconds=2 if args.quick else 15,
        quick=args.quick,
    )
    return settings, args.profile


def ingest_results(workload: Workload, settings: Settings) -> tuple[list[Result], bool]:
    with Server("ours", settings.ingest_agents) as ours, Server("baseline", settings.ingest_agents) as baseline:
        results, tasks = asyncio.run(ingest_over_http({"ours": ours, "baseline": baseline}, workload, settings))
    expected = expected_tasks(workload, settings)
    print(
        f"check:   agency_agent_tasks_total summed after HTTP ingest: ours {tasks['ours']:,.0f}, "
        f"baseline {tasks['baseline']:,.0f}, finished tasks sent {expected:,}",
        flush=True,
    )
    return results, all(value == expected for value in tasks.values())


def main(argv: list[str] | None = None) -> int:
    settings, profile = parse_args(argv)
    print("\n".join(header(settings)), flush=True)
    workload = build_workload(settings)
    samples, problems = same_series_check(workload)
    print(f"check:   40 agents + 5 ingest batches: {samples:,} samples, {len(problems)} differences ours/baseline")
    print("".join(f"         {problem}\n" for problem in problems[:10]), end="", flush=True)
    http, tasks_ok = ingest_results(workload, settings)
    print()
    for result in [*http, in_process(workload, settings)]:
        print(rate_row(result), flush=True)
    for agents in settings.agents:
        for result in render_results(agents, settings.render_runs(agents)):
            print(render_row(result), flush=True)
    for row in latency_rows(max(settings.agents), settings.latency_seconds):
        print(row, flush=True)
    print()
    print("\n".join(scale.all_rows(settings.quick)), flush=True)
    if profile:
        profile_ours(workload, settings)
    return 0 if tasks_ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
