"""A simulated council-of-agents fleet for the demo. It speaks only the public event API.

Each tick it sends one NDJSON batch covering every event type: agents registering and
heart-beating, tasks starting and finishing (durations drawn per agent type, failures of
every error class), councils debating and reaching (or missing) consensus, occasional
constitutional violations, coordination sessions, business outcomes, decisions scored
against the truth, queues filling and draining, and agents raising and resolving alerts.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any

import aiohttp

log = logging.getLogger(__name__)

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


@dataclass
class _Agent:
    name: str
    kind: str
    running: int = 0


@dataclass
class FleetSimulator:
    url: str  # the exporter's base URL
    agents: int = 24
    tick: float = 0.5
    seed: int = 7
    rng: random.Random = field(init=False)
    fleet: list[_Agent] = field(init=False)
    _ids: itertools.count[int] = field(init=False, default_factory=itertools.count)
    _queue_depth: dict[str, int] = field(init=False, default_factory=dict)
    _open_alerts: set[str] = field(init=False, default_factory=set)
    _sessions: dict[str, int] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        kinds = list(AGENT_PROFILES)
        self.fleet = [
            _Agent(f"{kinds[i % len(kinds)]}-{i // len(kinds) + 1}", kinds[i % len(kinds)]) for i in range(self.agents)
        ]

    def first_batch(self) -> list[dict[str, Any]]:
        """Registrations, and one event of every type so every family has series at once."""
        batch = [
            {"type": "agent_registered", "agent": a.name, "agent_type": a.kind, "capacity": AGENT_PROFILES[a.kind][2]}
            for a in self.fleet
        ]
        return batch + self.tick_batch(everything=True)

    def tick_batch(self, everything: bool = False) -> list[dict[str, Any]]:
        rng, batch = self.rng, []
        for agent in self.fleet:
            if everything or rng.random() < 0.2:
                batch.append(self._heartbeat(agent))
            if agent.running and (everything or rng.random() < 0.5):
                batch.append(self._finish(agent))
            if agent.running < AGENT_PROFILES[agent.kind][2] and (everything or rng.random() < 0.5):
                agent.running += 1
                batch.append({"type": "task_started", "agent": agent.name, "agent_type": agent.kind})
        for council in COUNCILS:
            if everything or rng.random() < 0.6:
                batch.append(self._consensus(council, violation=everything))
            if everything or rng.random() < 0.3:
                batch.append(self._coordination(council))
            if everything or rng.random() < 0.5:
                predicted = rng.random() < 0.5
                actual = predicted if rng.random() < 0.97 else not predicted
                batch.append({"type": "decision", "council": council, "predicted": predicted, "actual": actual})
        for _ in range(rng.randint(1, 4)):
            batch.append(
                {
                    "type": "business",
                    "completed": rng.random() < 0.998,
                    "quality_score": round(rng.betavariate(9, 1.2), 3),
                    "cost": round(rng.uniform(0.01, 0.2), 4),
                }
            )
        for queue in QUEUES:
            depth = self._queue_depth.get(queue, QUEUE_MEAN)
            depth = max(0, depth + round((QUEUE_MEAN - depth) * 0.2) + rng.randint(-3, 3))  # mean-reverting
            self._queue_depth[queue] = depth
            batch.append({"type": "queue", "queue": queue, "depth": depth, "wait": f"{rng.expovariate(1 / 2):.3f} s"})
        batch.extend(self._alerts(everything))
        for event in batch:
            event["id"] = f"sim-{self.seed}-{next(self._ids)}"
        return batch

    def _heartbeat(self, agent: _Agent) -> dict[str, Any]:
        capacity = AGENT_PROFILES[agent.kind][2]
        return {
            "type": "agent_heartbeat",
            "agent": agent.name,
            "agent_type": agent.kind,
            "cpu": f"{min(100.0, 10 + 80 * agent.running / capacity + self.rng.uniform(-5, 5)):.1f} %",
            "memory": f"{self.rng.randint(200, 900)} MiB",
            "queue_depth": self.rng.randint(0, 3 * capacity),
        }

    def _finish(self, agent: _Agent) -> dict[str, Any]:
        median, failure_rate, _ = AGENT_PROFILES[agent.kind]
        agent.running -= 1
        duration_ms = round(self.rng.lognormvariate(0, 0.6) * median * 1000, 1)
        if self.rng.random() < failure_rate:
            reason = self.rng.choice(FAILURE_REASONS)
            return {
                "type": "task_failed",
                "agent": agent.name,
                "agent_type": agent.kind,
                "reason": reason,
                "duration": duration_ms,
            }
        return {
            "type": "task_completed",
            "agent": agent.name,
            "agent_type": agent.kind,
            "duration": duration_ms,
            "quality_score": round(self.rng.betavariate(8, 1.5), 3),
            "cost": round(duration_ms / 1000 * 0.004, 5),
        }

    def _consensus(self, council: str, violation: bool) -> dict[str, Any]:
        rng = self.rng
        debate = rng.random() < 0.3
        event: dict[str, Any] = {
            "type": "consensus",
            "council": council,
            "formation_time": round(rng.lognormvariate(0, 0.5) * (6000 if debate else 1500)),
            "achieved": rng.random() < 0.9,
            "debate_required": debate,
            "debate_rounds": rng.randint(1, 6) if debate else 0,
        }
        if violation or rng.random() < 0.002:
            event["constitutional_compliance"] = False
            event["violated_principle"] = rng.choice(PRINCIPLES)
        return event

    def _coordination(self, council: str) -> dict[str, Any]:
        open_sessions = self._sessions.get(council, 0)
        starting = open_sessions == 0 or (open_sessions < 4 and self.rng.random() < 0.5)
        self._sessions[council] = open_sessions + (1 if starting else -1)
        return {
            "type": "coordination",
            "council": council,
            "session": "started" if starting else "ended",
            "overhead": f"{self.rng.uniform(50, 800):.0f} ms",
        }

    def _alerts(self, everything: bool) -> list[dict[str, Any]]:
        if self._open_alerts and (everything or self.rng.random() < 0.05):
            alert_id = self._open_alerts.pop()
            return [{**self._alert(alert_id), "status": "resolved"}]
        if everything or self.rng.random() < 0.02:
            alert_id = f"alert-{next(self._ids)}"
            self._open_alerts.add(alert_id)
            return [self._alert(alert_id)]
        return []

    def _alert(self, alert_id: str) -> dict[str, Any]:
        agent = self.rng.choice(self.fleet)
        return {
            "type": "alert",
            "alert_id": alert_id,
            "alert_type": "agent_performance",
            "severity": "warning",
            "message": f"{agent.name} reports degraded performance",
            "affected_agents": [agent.name],
        }

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Send a batch every tick until ``stop`` is set (or forever)."""
        stop = stop or asyncio.Event()
        async with aiohttp.ClientSession(base_url=self.url) as session:
            batch = self.first_batch()
            while not stop.is_set():
                if await self._send(session, batch):
                    batch = self.tick_batch()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(stop.wait(), self.tick)

    async def _send(self, session: aiohttp.ClientSession, batch: list[dict[str, Any]]) -> bool:
        """True when the batch is done with: accepted, or rejected for good (so not resent)."""
        body = "\n".join(json.dumps(event) for event in batch)
        try:
            async with session.post("/v1/events", data=body, headers={"Content-Type": "application/x-ndjson"}) as resp:
                if resp.status != 202:
                    log.warning("simulator batch rejected: %s %s", resp.status, await resp.text())
                return resp.status < 500
        except aiohttp.ClientError as exc:
            log.debug("exporter not reachable yet, resending: %s", exc)
            return False
