"""The baseline a user would build with aiohttp + prometheus_client, for the benchmarks to compare with.

An aiohttp app that ``json.loads`` each NDJSON line and updates prometheus_client Counter /
Gauge / Histogram / Summary children of the same families as our catalogue, cached per agent /
council / queue so ``.labels()`` is not called per event. It validates nothing beyond JSON
parsing and applies events one by one (not all-or-nothing, no idempotency ids, no limits).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import prometheus_client
from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Summary, generate_latest

from agency_telemetry.catalogue import FAMILIES, Family
from agency_telemetry.config import Config

DECISION_OUTCOMES = {(True, True): "tp", (True, False): "fp", (False, False): "tn", (False, True): "fn"}
HEARTBEAT_GAUGES = {
    "cpu": "agency_agent_cpu_usage_ratio",
    "memory": "agency_agent_memory_bytes",
    "queue_depth": "agency_agent_queue_depth",
}
REPORTED = "agency_agent_reported_timestamp_seconds"


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
        self.running = 0  # what `active` shows: never below zero, set by a heartbeat's active_tasks
        self.last_seen = self.child("agency_agent_last_seen_timestamp_seconds")
        self.tasks = self.child("agency_agent_tasks_total")
        self.failures = {name: self.child("agency_agent_task_failures_total", name) for name in error_classes}
        self.duration = self.child("agency_agent_task_duration_seconds")
        self.quality = self.child("agency_agent_task_quality_score")
        self.cost = self.child("agency_agent_task_cost_usd_total")
        self.gauges: dict[str, Any] = {}  # heartbeat gauges, created when first reported
        self.reported: dict[str, Any] = {}  # when each field was last reported, created with it
        self.decisions: dict[str, Any] | None = None

    def report(self, field: str, wall: float) -> None:
        stamp = self.reported.get(field)
        if stamp is None:
            stamp = self.reported[field] = self.child(REPORTED, field)
        stamp.set(wall)


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
        self.open = 0  # sessions open, never below zero; the council's own count once it reports one
        self.reported: Any = None
        self.coordination = self.child("agency_council_coordination_seconds_total")
        self.decisions: dict[str, Any] | None = None


class QueueChildren(Children):
    def __init__(self, metrics: dict[str, Any], labels: tuple[str, ...]) -> None:
        super().__init__(metrics, labels)
        self.wait = self.child("agency_queue_wait_seconds")
        self.depth: Any = None
        self.reported: Any = None


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
        agent = self.agent(event, wall)
        agent.capacity.set(event.get("capacity", 1))
        agent.report("capacity", wall)

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
                agent.report(key, wall)
        if event.get("capacity") is not None:
            agent.capacity.set(event["capacity"])
            agent.report("capacity", wall)
        if event.get("active_tasks") is not None:
            agent.running = event["active_tasks"]
            agent.active.set(agent.running)
            agent.report("active_tasks", wall)

    def on_task_started(self, event: dict[str, Any], wall: float) -> None:
        agent = self.agent(event, wall)
        if "active_tasks" not in agent.reported:
            agent.running += 1
            agent.active.set(agent.running)

    @staticmethod
    def task_ended(agent: AgentChildren) -> None:
        if "active_tasks" not in agent.reported:
            agent.running = max(0, agent.running - 1)
            agent.active.set(agent.running)

    def on_task_completed(self, event: dict[str, Any], wall: float) -> None:
        agent = self.agent(event, wall)
        agent.tasks.inc()
        self.task_ended(agent)
        agent.duration.observe(event["duration"] / 1000)
        if event.get("quality_score") is not None:
            agent.quality.observe(event["quality_score"])
        if event.get("cost") is not None:
            agent.cost.inc(event["cost"])

    def on_task_failed(self, event: dict[str, Any], wall: float) -> None:
        agent = self.agent(event, wall)
        agent.tasks.inc()
        self.task_ended(agent)
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
        if event.get("active_sessions") is not None:
            council.open = event["active_sessions"]
            if council.reported is None:
                council.reported = council.child("agency_council_reported_timestamp_seconds", "active_sessions")
            council.reported.set(wall)
        elif council.reported is None and event.get("session") == "started":
            council.open += 1
        elif council.reported is None and event.get("session") == "ended":
            council.open = max(0, council.open - 1)
        council.sessions.set(council.open)
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
                queue.reported = queue.child("agency_queue_reported_timestamp_seconds", "depth")
            queue.depth.set(event["depth"])
            queue.reported.set(wall)
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
