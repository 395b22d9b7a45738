"""The fast profile of the mixin and a scripted fleet, for tests that run the real stack.

The profile renders the mixin's rules from the same Jsonnet with every window and `for`
scaled down through config overrides, so alerts fire within seconds of 1 s scrapes; the
fleet posts the same healthy batch of events every half second, so a healthy run raises no
alert at all and each test turns on just the fault it is about.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import subprocess
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.generate import render_mixin
from scripts.local_stack import stop_process
from support.alerting import Sinks, fast_copy
from support.processes import start_alertmanager
from support.stack import Stack

FOR = "2s"
# An agent's own critical alert: the reported-alert rule fires at once (`for: 0m`) and pages.
CRITICAL_REPORTED_ALERT: dict[str, Any] = {
    "type": "alert",
    "alert_id": "gpu-7",
    "alert_type": "system_health",
    "severity": "critical",
    "message": "GPU node 7 is overheating",
    "affected_agents": ["worker-2"],
}
FAST_PROFILE: dict[str, Any] = {
    "agentWindow": "10s",
    "councilWindow": "20s",
    "businessWindow": "20s",
    "gaugeWindow": "10s",
    "anomalyBaseline": "2m",
    "queueForecastHistory": "1m",
    "costForecastHistory": "2m",
    "staleAfterSeconds": 6,
    "sloPeriod": "5m",
    "for": dict.fromkeys(
        [
            "agentErrors",
            "agentLatency",
            "healthScore",
            "agentDown",
            "fleetDown",
            "exporterDown",
            "resources",
            "queueBacklog",
            "consensus",
            "cost",
            "anomaly",
            "workflowEmergency",
            "exporterRejecting",
            "reportedAlert",
        ],
        FOR,
    ),
    "burnRateTiers": [
        dict(
            zip(("name", "longWindow", "shortWindow", "factor", "severity"), tier, strict=True),
            **{"for": FOR, "enabled": True},
        )
        for tier in (
            ("fast", "20s", "10s", 14.4, "critical"),
            ("medium", "40s", "20s", 6, "critical"),
            ("slow", "1m", "30s", 3, "warning"),
            ("slowest", "2m", "40s", 1, "warning"),
        )
    ],
    # The council, decision and quality tiers over the council window, and baselines that are
    # ready after 10 s of history, so a run of half a minute exercises them.
    "multiWindowTiers": {
        "severe": {"longWindow": "20s", "shortWindow": "10s", "for": FOR, "severity": "critical", "minEvents": 2},
        "mild": {"longWindow": "20s", "shortWindow": "10s", "for": FOR, "severity": "warning", "minEvents": 1},
    },
    "keepFiringFor": FOR,
    "relativeBaseline": "2m",
    "relativeBaselineMinHistory": "10s",
}


def fast_mixin(keep_firing: bool = True) -> dict[str, Any]:
    """The mixin rendered with the fast profile, once per session (rendering takes seconds, and
    a test rendering it again while its fleet runs starves the fleet's event loop). Without
    keep_firing the alerts carry no keep_firing_for, which vmalert 1.79 rejects."""
    return _render_fast(keep_firing)


@functools.cache
def _render_fast(keep_firing: bool) -> dict[str, Any]:
    return render_mixin(FAST_PROFILE if keep_firing else {**FAST_PROFILE, "keepFiringFor": ""})


def fast_rule_files(directory: Path, keep_firing: bool = True) -> list[Path]:
    mixin = fast_mixin(keep_firing)
    paths = []
    for name, key in (("rules.yml", "rules"), ("alerts.yml", "alerts")):
        path = directory / name
        path.write_text(yaml.safe_dump(mixin[key], sort_keys=False))
        paths.append(path)
    return paths


class Fleet:
    """Drives a small council fleet through the exporter's HTTP API, healthy unless told otherwise."""

    def __init__(self, url: str, agents: int = 6) -> None:
        self.url = url
        self.agents = [f"worker-{i}" for i in range(agents)]
        self.silent: set[str] = set()
        self.failing: set[str] = set()
        self.consensus_fails = False
        self.violations = False
        self.extra: list[dict[str, Any]] = []

    def batch(self) -> list[dict[str, Any]]:
        events: list[dict[str, Any]] = []
        for agent in self.agents:
            if agent in self.silent:
                continue
            base = {"agent": agent, "agent_type": "worker"}
            events += [
                {"type": "agent_registered", "capacity": 4, **base},
                {"type": "agent_heartbeat", "cpu": 0.3, "memory": "200 MiB", "queue_depth": 1, **base},
            ]
            for n in range(4):
                events.append({"type": "task_started", **base})
                if agent in self.failing and n:
                    events.append({"type": "task_failed", "reason": "model overloaded", "duration": 400, **base})
                else:
                    events.append(
                        {"type": "task_completed", "duration": 400, "quality_score": 0.9, "cost": 0.01, **base}
                    )
            events += [
                {"type": "llm_request", "provider": "openai", "model": "gpt-4o", "duration": 300, **base}
                | {"input_tokens": 900, "output_tokens": 100, "cache_read_tokens": 500, "cost": 0.002},
                {"type": "tool_call", "tool": "web_search", "duration": 150, **base},
            ]
        for council in ("ethics", "review"):
            consensus = {"type": "consensus", "council": council, "formation_time": 800}
            for _ in range(3):
                events.append({**consensus, "achieved": not self.consensus_fails})
            if self.violations and council == "ethics":
                events.append(
                    {**consensus, "achieved": True, "constitutional_compliance": False, "violated_principle": "privacy"}
                )
            events.append({"type": "decision", "council": council, "predicted": True, "actual": True})
            events.append({"type": "decision", "council": council, "predicted": False, "actual": False})
        events += [{"type": "business", "completed": True, "quality_score": 0.9, "cost": 0.02} for _ in range(4)]
        events.append({"type": "queue", "queue": "intake", "depth": 3, "wait": "200 ms"})
        events += self.extra
        self.extra = []
        return events

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            body = "\n".join(json.dumps(e) for e in self.batch()).encode()
            with contextlib.suppress(OSError):  # the exporter may be stopped on purpose
                await asyncio.to_thread(self._post, body)
            await asyncio.sleep(0.5)

    def _post(self, body: bytes) -> None:
        headers = {"Content-Type": "application/x-ndjson"}
        request = urllib.request.Request(f"{self.url}/v1/events", data=body, headers=headers)
        urllib.request.urlopen(request, timeout=5).close()


@dataclass
class AlertingStack:
    """An exporter (no fleet) and Prometheus with ``rule_files``, sending to a real Alertmanager
    whose bundle (copied to ``bundle``) delivers to the sinks."""

    stack: Stack
    alertmanager: subprocess.Popen[bytes]
    alertmanager_url: str
    bundle: Path

    @classmethod
    async def start(
        cls, tmp_path: Path, sinks: Sinks, timings: Mapping[str, str], rule_files: Sequence[Path]
    ) -> AlertingStack:
        bundle = fast_copy(tmp_path, sinks, timings)
        alertmanager, url = await asyncio.to_thread(start_alertmanager, bundle, tmp_path)
        try:
            stack = await asyncio.to_thread(
                Stack.start,
                tmp_path / "stack",
                fleet=False,
                rule_files=rule_files,
                alertmanagers=[url.removeprefix("http://")],
            )
        except BaseException:
            stop_process(alertmanager)
            raise
        return cls(stack, alertmanager, url, bundle)
