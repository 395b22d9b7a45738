"""A simulated council-of-agents fleet for the demo. It speaks only the public event API.

Each tick it sends one NDJSON batch covering every event type: agents registering and
heart-beating, tasks starting and finishing (durations drawn per agent type, failures of
every error class), councils debating and reaching (or missing) consensus, occasional
constitutional violations, coordination sessions, business outcomes, decisions scored
against the truth, queues filling and draining, and agents raising and resolving alerts.

A few more agents are instrumented with OpenTelemetry instead: their tasks arrive as OTLP
spans (``POST /v1/traces``, protobuf) in the GenAI conventions' shape — an ``invoke_agent``
span with its ``chat`` and ``execute_tool`` children, children first.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

log = logging.getLogger(__name__)
NDJSON = "application/x-ndjson"
PROTOBUF = "application/x-protobuf"

# agent type -> (median task seconds, failure probability, capacity). A healthy fleet: durations
# are lognormal (sigma 0.6, so P95 ≈ 2.7 times the median) and stay under each type's latency objective
# in config.libsonnet, failures well under the error-ratio warning; `make demo` pages nobody.
AGENT_PROFILES = {
    "constitutional_judge": (1.5, 0.02, 2),
    "worker": (3.0, 0.03, 4),
    "researcher": (12.0, 0.03, 2),
    "orchestrator": (0.3, 0.01, 8),
}
FAILURE_REASONS = (
    "Network timeout",
    "upstream rate limit exceeded (429)",
    "connection reset by peer",
    "invalid tool arguments: schema mismatch",
    "model context length exceeded",
    "tool 'search' crashed",
    "internal assertion failed",
    "operator cancelled",
)
PRINCIPLES = ("harm_avoidance", "fairness", "transparency", "privacy")
COUNCILS = ("ethics", "planning", "review")
QUEUES = ("intake", "escalations")
QUEUE_MEAN = 5  # items; the depth wanders around it instead of drifting off


# How often the demo's councils violate a principle, predict a decision right, and complete
# a business task: rare violations and a healthy workflow, so the demo pages nobody.
VIOLATION_RATE = 0.002
DECISION_ACCURACY = 0.97
BUSINESS_SUCCESS = 0.998


# --- one event of each type ----------------------------------------------------------------
# Shared by the demo fleet below and the benchmarks' event mix. ``units=True`` writes quantities
# as strings with units ("42.0 %", "300 MiB", "120 ms", "1.500 s"), as the demo does to show
# that the exporter reads them; ``units=False`` as bare numbers in the API's base units (a
# ratio, bytes, milliseconds). Either way the same random draws are made in the same order.


@dataclass
class Agent:
    name: str
    kind: str  # a key of AGENT_PROFILES
    running: int = 0  # tasks started and not finished

    @property
    def capacity(self) -> int:
        return AGENT_PROFILES[self.kind][2]


def agent_named(index: int) -> Agent:
    """The ``index``-th agent of a fleet: agent types in turn, numbered within their type."""
    kinds = list(AGENT_PROFILES)
    kind = kinds[index % len(kinds)]
    return Agent(f"{kind}-{index // len(kinds) + 1}", kind)


def registered(agent: Agent) -> dict[str, Any]:
    return {"type": "agent_registered", "agent": agent.name, "agent_type": agent.kind, "capacity": agent.capacity}


def heartbeat(rng: random.Random, agent: Agent, cpu: float, units: bool = False) -> dict[str, Any]:
    """A heartbeat reporting ``cpu`` (a ratio), a memory size and a queue depth drawn here."""
    memory = rng.randint(200, 900)  # MiB
    return {
        "type": "agent_heartbeat",
        "agent": agent.name,
        "agent_type": agent.kind,
        "cpu": f"{cpu * 100:.1f} %" if units else round(cpu, 3),
        "memory": f"{memory} MiB" if units else memory * 2**20,
        "queue_depth": rng.randint(0, 3 * agent.capacity),
        "active_tasks": agent.running,  # the agent's own count: an exporter restart does not skew it
        "capacity": agent.capacity,  # as registered, for a replica that never saw the registration
    }


def task_started(agent: Agent) -> dict[str, Any]:
    agent.running += 1
    return {"type": "task_started", "agent": agent.name, "agent_type": agent.kind}


def task_finished(rng: random.Random, agent: Agent, fail: bool | None = None) -> dict[str, Any]:
    """A task of ``agent`` completing or failing (at its type's failure rate unless ``fail`` says which)."""
    median, failure_rate, _ = AGENT_PROFILES[agent.kind]
    agent.running -= 1
    duration = round(rng.lognormvariate(0, 0.6) * median * 1000, 1)  # ms
    base = {"agent": agent.name, "agent_type": agent.kind, "duration": duration}
    if fail if fail is not None else rng.random() < failure_rate:
        return {"type": "task_failed", **base, "reason": rng.choice(FAILURE_REASONS)}
    quality = round(rng.betavariate(8, 1.5), 3)
    return {"type": "task_completed", **base, "quality_score": quality, "cost": round(duration / 1000 * 0.004, 5)}


# The model each agent type calls, with a made-up price per thousand tokens (input, output) for
# the demo's own cost figures; the exporter's pricing table is left to the user.
AGENT_MODELS = {
    "constitutional_judge": ("anthropic", "claude-sonnet", 0.003, 0.015),
    "worker": ("openai", "gpt-4o-mini", 0.00015, 0.0006),
    "researcher": ("openai", "gpt-4o", 0.0025, 0.01),
    "orchestrator": ("openai", "gpt-4o-mini", 0.00015, 0.0006),
}
TOOLS = ("web_search", "code_interpreter", "retrieval")
LLM_FAILURES = ("rate limit exceeded", "model overloaded", "request timed out")


def llm_request(rng: random.Random, agent: Agent, failure_rate: float = 0.01) -> dict[str, Any]:
    """A request of ``agent`` to its type's model: tokens, some cached, and what they cost."""
    provider, model, input_price, output_price = AGENT_MODELS[agent.kind]
    input_tokens, output_tokens = rng.randint(200, 4000), rng.randint(20, 800)
    cached = rng.randint(0, input_tokens // 2)
    reasoning = rng.randint(0, output_tokens // 4) if agent.kind == "researcher" else 0
    event: dict[str, Any] = {
        "type": "llm_request",
        "agent": agent.name,
        "agent_type": agent.kind,
        "provider": provider,
        "model": model,
        "duration": round(rng.lognormvariate(0, 0.4) * (300 + output_tokens * 12), 1),  # ms
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_read_tokens": cached,
        "reasoning_tokens": reasoning,
        "cost": round((input_tokens * input_price + output_tokens * output_price) / 1000, 6),
    }
    if rng.random() < failure_rate:
        event["reason"] = rng.choice(LLM_FAILURES)
    return event


def tool_call(rng: random.Random, agent: Agent, failure_rate: float = 0.02) -> dict[str, Any]:
    event: dict[str, Any] = {
        "type": "tool_call",
        "agent": agent.name,
        "agent_type": agent.kind,
        "tool": rng.choice(TOOLS),
        "duration": round(rng.lognormvariate(0, 0.7) * 400, 1),  # ms
    }
    if rng.random() < failure_rate:
        event["reason"] = "tool timed out"
    return event


def consensus(
    rng: random.Random, council: str, violation: bool = False, violation_rate: float = VIOLATION_RATE
) -> dict[str, Any]:
    """A consensus attempt, with a debate 30 % of the time; a constitutional violation if asked, else at
    ``violation_rate``."""
    debate = rng.random() < 0.3
    event: dict[str, Any] = {
        "type": "consensus",
        "council": council,
        "formation_time": round(rng.lognormvariate(0, 0.5) * (6000 if debate else 1500)),
        "achieved": rng.random() < 0.9,
        "debate_required": debate,
        "debate_rounds": rng.randint(1, 6) if debate else 0,
    }
    if violation or rng.random() < violation_rate:
        event["constitutional_compliance"] = False
        event["violated_principle"] = rng.choice(PRINCIPLES)
    return event


def coordination(rng: random.Random, council: str, sessions: dict[str, int], units: bool = False) -> dict[str, Any]:
    """A coordination session of ``council`` starting or ending; ``sessions`` counts the open ones (up to 4)."""
    open_sessions = sessions.get(council, 0)
    starting = open_sessions == 0 or (open_sessions < 4 and rng.random() < 0.5)
    sessions[council] = open_sessions + (1 if starting else -1)
    overhead = round(rng.uniform(50, 800))  # ms
    return {
        "type": "coordination",
        "council": council,
        "session": "started" if starting else "ended",
        "overhead": f"{overhead} ms" if units else overhead,
        "active_sessions": sessions[council],  # the council's own count, as a heartbeat's active_tasks
    }


def decision(rng: random.Random, accuracy: float = DECISION_ACCURACY, **owner: str) -> dict[str, Any]:
    """A yes/no decision of an agent or a council (``owner``), right at ``accuracy``."""
    predicted = rng.random() < 0.5
    actual = predicted if rng.random() < accuracy else not predicted
    return {"type": "decision", **owner, "predicted": predicted, "actual": actual}


def business(rng: random.Random, success: float = BUSINESS_SUCCESS) -> dict[str, Any]:
    quality, cost = round(rng.betavariate(9, 1.2), 3), round(rng.uniform(0.01, 0.2), 4)
    return {"type": "business", "completed": rng.random() < success, "quality_score": quality, "cost": cost}


def queue_sample(rng: random.Random, queue: str, depth: int, units: bool = False) -> dict[str, Any]:
    """A queue's ``depth`` and a wait drawn here (exponential, 2 s on average)."""
    wait = rng.expovariate(0.5)  # seconds
    return {
        "type": "queue",
        "queue": queue,
        "depth": depth,
        "wait": f"{wait:.3f} s" if units else round(wait * 1000, 1),
    }


def alert(alert_id: str, agent: Agent) -> dict[str, Any]:
    """An active alert an agent raises about itself; add ``"status": "resolved"`` to resolve it."""
    return {
        "type": "alert",
        "alert_id": alert_id,
        "alert_type": "agent_performance",
        "severity": "warning",
        "message": f"{agent.name} reports degraded performance",
        "affected_agents": [agent.name],
    }


# --- the demo fleet ------------------------------------------------------------------------


# --- agents instrumented with OpenTelemetry ---------------------------------------------------

OTEL_SERVICE = "otel-assistants"
NANOSECONDS = 10**9


def otel_traces(rng: random.Random, agents: list[Agent], now_ns: int, everything: bool = False) -> bytes:
    """An OTLP request with one task trace for about half of ``agents`` (all when ``everything``)."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    _attributes(resource_spans.resource.attributes, {"service.name": OTEL_SERVICE})
    spans = resource_spans.scope_spans.add().spans
    for agent in agents:
        if everything or rng.random() < 0.5:
            spans.extend(_agent_trace(rng, agent, now_ns, fail=everything and agent is agents[0]))
    return request.SerializeToString()


def _agent_trace(rng: random.Random, agent: Agent, now_ns: int, fail: bool) -> list[Span]:
    """Children first, as an SDK exports them: one or two model calls, maybe a tool call, then the task."""
    median, failure_rate, _ = AGENT_PROFILES[agent.kind]
    length = int(rng.lognormvariate(0, 0.6) * median * NANOSECONDS)
    task = Span(trace_id=rng.randbytes(16), span_id=rng.randbytes(8), name=f"invoke_agent {agent.name}")
    _timed(task, now_ns - length, length, fail or rng.random() < failure_rate)
    attributes = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": agent.name}
    _attributes(task.attributes, {**attributes, "agency.agent.type": agent.kind})
    if task.status.code == Status.STATUS_CODE_ERROR:
        _attributes(task.attributes, {"error.type": "TimeoutError"})
    children = [_chat(rng, agent, task, fail) for _ in range(rng.randint(1, 2))]
    if fail or rng.random() < 0.5:
        event = tool_call(rng, agent, failure_rate=1.0 if fail else 0.02)
        tool = _child(rng, task, f"execute_tool {event['tool']}", event)
        _attributes(tool.attributes, {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": event["tool"]})
        children.append(tool)
    return [*children, task]


def _chat(rng: random.Random, agent: Agent, task: Span, fail: bool) -> Span:
    event = llm_request(rng, agent, failure_rate=1.0 if fail else 0.01)
    chat = _child(rng, task, f"chat {event['model']}", event)
    attributes = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": event["provider"],
        "gen_ai.request.model": event["model"],
        "gen_ai.usage.input_tokens": event["input_tokens"],
        "gen_ai.usage.output_tokens": event["output_tokens"],
        "gen_ai.usage.cache_read.input_tokens": event["cache_read_tokens"],
        "gen_ai.usage.cost": event["cost"],
    }
    _attributes(chat.attributes, {**attributes, **({"error.type": "RateLimitError"} if "reason" in event else {})})
    return chat


def _child(rng: random.Random, parent: Span, name: str, event: dict[str, Any]) -> Span:
    """A span under ``parent`` for the JSON ``event`` drawn for it (its duration and failure)."""
    span = Span(trace_id=parent.trace_id, span_id=rng.randbytes(8), parent_span_id=parent.span_id, name=name)
    length = parent.end_time_unix_nano - parent.start_time_unix_nano
    _timed(
        span, parent.start_time_unix_nano + rng.randint(0, length // 2), int(event["duration"] * 1e6), "reason" in event
    )
    return span


def _timed(span: Span, start: int, length: int, failed: bool) -> None:
    span.start_time_unix_nano, span.end_time_unix_nano = start, start + length
    if failed:
        span.status.code = Status.STATUS_CODE_ERROR


def _attributes(target: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        attribute: KeyValue = target.add(key=key)
        if isinstance(value, str):
            attribute.value.string_value = value
        elif isinstance(value, int):
            attribute.value.int_value = value
        else:
            attribute.value.double_value = value


@dataclass
class FleetSimulator:
    url: str  # the exporter's base URL
    agents: int = 24
    otel_agents: int = 4  # more agents, instrumented with OpenTelemetry: their tasks arrive as OTLP spans
    tick: float = 0.5
    seed: int = 7
    rng: random.Random = field(init=False)
    # LLM requests and tool calls draw from a stream of their own, so the rest of the fleet's
    # traffic is the same with or without them.
    llm_rng: random.Random = field(init=False)
    fleet: list[Agent] = field(init=False)
    otel_fleet: list[Agent] = field(init=False)
    otel_rng: random.Random = field(init=False)
    _ids: itertools.count[int] = field(init=False, default_factory=itertools.count)
    _queue_depth: dict[str, int] = field(init=False, default_factory=dict)
    _open_alerts: set[str] = field(init=False, default_factory=set)
    _sessions: dict[str, int] = field(init=False, default_factory=dict)
    _unreachable: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        self.llm_rng = random.Random(self.seed + 1)
        self.fleet = [agent_named(i) for i in range(self.agents)]
        self.otel_fleet = [
            Agent(f"otel-{agent.name}", agent.kind) for agent in map(agent_named, range(self.otel_agents))
        ]
        self.otel_rng = random.Random(self.seed + 2)

    def first_batch(self) -> list[dict[str, Any]]:
        """Registrations, and one event of every type so every family has series at once."""
        return [registered(agent) for agent in self.fleet] + self.tick_batch(everything=True)

    def tick_batch(self, everything: bool = False) -> list[dict[str, Any]]:
        rng, batch = self.rng, []
        for agent in self.fleet:
            if everything or rng.random() < 0.2:
                batch.append(heartbeat(rng, agent, self._cpu(agent), units=True))
            finishing = agent.running and (everything or rng.random() < 0.5)
            if finishing or everything:  # the model call a task makes, and maybe a tool call
                batch.append(llm_request(self.llm_rng, agent))
                if everything or self.llm_rng.random() < 0.5:
                    batch.append(tool_call(self.llm_rng, agent))
            if finishing:
                batch.append(task_finished(rng, agent))
            if agent.running < agent.capacity and (everything or rng.random() < 0.5):
                batch.append(task_started(agent))
        for council in COUNCILS:
            if everything or rng.random() < 0.6:
                batch.append(consensus(rng, council, violation=everything))
            if everything or rng.random() < 0.3:
                batch.append(coordination(rng, council, self._sessions, units=True))
            if everything or rng.random() < 0.5:
                batch.append(decision(rng, council=council))
        if everything:  # and one that fails, so the failure series exist from the start too
            batch.append(llm_request(self.llm_rng, self.fleet[0], failure_rate=1.0))
            batch.append(tool_call(self.llm_rng, self.fleet[0], failure_rate=1.0))
        batch.extend(business(rng) for _ in range(rng.randint(1, 4)))
        for queue in QUEUES:
            depth = self._queue_depth.get(queue, QUEUE_MEAN)
            depth = max(0, depth + round((QUEUE_MEAN - depth) * 0.2) + rng.randint(-3, 3))  # mean-reverting
            self._queue_depth[queue] = depth
            batch.append(queue_sample(rng, queue, depth, units=True))
        batch.extend(self._alerts(everything))
        for event in batch:
            event["id"] = f"sim-{self.seed}-{next(self._ids)}"
        return batch

    def _cpu(self, agent: Agent) -> float:
        """CPU follows the agent's load: 10 % idle to 90 % at capacity, give or take 5 points."""
        return min(1.0, (10 + 80 * agent.running / agent.capacity + self.rng.uniform(-5, 5)) / 100)

    def _alerts(self, everything: bool) -> list[dict[str, Any]]:
        if self._open_alerts and (everything or self.rng.random() < 0.05):
            alert_id = self._open_alerts.pop()
            return [{**alert(alert_id, self.rng.choice(self.fleet)), "status": "resolved"}]
        if everything or self.rng.random() < 0.02:
            alert_id = f"alert-{next(self._ids)}"
            self._open_alerts.add(alert_id)
            return [alert(alert_id, self.rng.choice(self.fleet))]
        return []

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Send a batch every tick until ``stop`` is set (or forever)."""
        stop = stop or asyncio.Event()
        async with aiohttp.ClientSession(base_url=self.url) as session:
            batch, traces = self.first_batch(), self.otel_batch(everything=True)
            while not stop.is_set():
                if await self._send(session, "/v1/events", "\n".join(map(json.dumps, batch)), NDJSON):
                    batch = self.tick_batch()
                if traces and await self._send(session, "/v1/traces", traces, PROTOBUF):
                    traces = self.otel_batch()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)

    def otel_batch(self, everything: bool = False) -> bytes:
        """The OTLP request of this tick's traces from the OpenTelemetry agents (empty: none)."""
        if not self.otel_fleet:
            return b""
        return otel_traces(self.otel_rng, self.otel_fleet, time.time_ns(), everything)

    async def _send(self, session: aiohttp.ClientSession, path: str, body: str | bytes, media_type: str) -> bool:
        """True when the batch is done with: accepted, or refused for good (so not resent)."""
        try:
            async with session.post(path, data=body, headers={"Content-Type": media_type}) as resp:
                if self._unreachable:
                    log.info("exporter reachable again")
                    self._unreachable = False
                if resp.status < 300:
                    self.accepted()
                    return True
                log.warning("simulator batch refused: %s %s", resp.status, await resp.text())
                return resp.status < 500  # a 4xx would be refused again: drop the batch
        except (TimeoutError, aiohttp.ClientError) as exc:
            if not self._unreachable:  # once per outage, not once per tick
                log.info("exporter not reachable, resending until it is: %s", exc)
                self._unreachable = True
            return False

    def accepted(self) -> None:
        """Called after each batch the exporter accepted."""
