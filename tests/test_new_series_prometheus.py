"""Ephemeral agents' first tasks count in a real Prometheus, through the JSON and OTLP paths.

Twenty agents each send one completed task as their first (and only) event to /v1/events, and
ten more report one task each as OpenTelemetry spans, sent by the real SDK exporter. The same
events go to two exporters at once, each scraped every second by a Prometheus of its own: one
with ``expiry.new_series_hold: 2s``, one with the hold off. With the hold, every task is in
``increase()``; without it, none is: a series that first appears at 1 has no increase to show.
"""

from __future__ import annotations

import json
import time
import urllib.request
from pathlib import Path

import pytest

from support import otel
from support.stack import Stack

pytestmark = pytest.mark.integration

JSON_AGENTS = 20
OTLP_AGENTS = 10
AGENTS = JSON_AGENTS + OTLP_AGENTS
HOLD = 2.0
INTERVAL = 1.0


def post_task(url: str, agent: str) -> None:
    event = {"type": "task_completed", "agent": agent, "agent_type": "worker", "duration": 1.5}
    request = urllib.request.Request(
        f"{url}/v1/events", data=json.dumps(event).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 202


def otlp_tasks(url: str, agents: list[str]) -> None:
    tracer_provider, recording = otel.provider(url)
    tracer = tracer_provider.get_tracer("test")
    for agent in agents:
        otel.agent_run(tracer, agent)
    tracer_provider.shutdown()
    assert recording.results and all(r.name == "SUCCESS" for r in recording.results)


def first_nonzero(stack: Stack, agent: str, since: float) -> float | None:
    """When Prometheus first saw the agent's task count above zero."""
    for series in stack.query_range(f'agency_agent_tasks_total{{agent="{agent}"}}', start=since, step=0.2):
        for at, number in series["values"]:
            if float(number) > 0:
                return float(at)
    return None


def test_ephemeral_agents_first_tasks_are_all_in_increase_with_the_hold_and_none_without(tmp_path: Path) -> None:
    held_config = f"expiry: {{new_series_hold: {HOLD}s}}\n"
    with (
        Stack.start(tmp_path / "held", fleet=False, rule_files=(), exporter_config=held_config) as held,
        Stack.start(tmp_path / "immediate", fleet=False, rule_files=()) as immediate,
    ):
        stacks = {"held": held, "immediate": immediate}
        sent: dict[str, float] = {}
        for index in range(JSON_AGENTS):
            agent = f"ephemeral-{index}"
            sent[agent] = time.time()
            for stack in stacks.values():
                post_task(stack.exporter_url, agent)
            time.sleep(0.05)
        otlp_agents = [f"otel-{index}" for index in range(OTLP_AGENTS)]
        for agent in otlp_agents:
            sent[agent] = time.time()
        for stack in stacks.values():
            otlp_tasks(stack.exporter_url, otlp_agents)
        started = min(sent.values()) - 1
        for stack in stacks.values():
            stack.wait_for(
                "sum(agency_agent_tasks_total)",
                timeout=20,
                until=lambda r: bool(r) and float(r[0]["value"][1]) == AGENTS,
            )
        time.sleep(3 * INTERVAL)  # a few more samples of the final values
        window = f"[{int(time.time() - started) + 5}s]"

        def figure(stack: Stack, expr: str) -> float:
            result = stack.query(expr)
            return float(result[0]["value"][1]) if result else 0.0

        increase = {n: figure(s, f"sum(increase(agency_agent_tasks_total{window}))") for n, s in stacks.items()}
        tasks = f"agency_agent_tasks_total{window}"
        exact = {n: figure(s, f"sum(max_over_time({tasks}) - min_over_time({tasks}))") for n, s in stacks.items()}
        assert exact["held"] == AGENTS  # every series was scraped at 0 before it was at 1
        assert 0.95 * AGENTS <= increase["held"] <= 1.2 * AGENTS, increase
        json_only = f'sum(increase(agency_agent_tasks_total{{agent=~"ephemeral-.*"}}{window}))'
        otlp_only = f'sum(increase(agency_agent_tasks_total{{agent=~"otel-.*"}}{window}))'
        assert figure(held, json_only) >= 0.95 * JSON_AGENTS
        assert figure(held, otlp_only) >= 0.95 * OTLP_AGENTS
        # Without the hold the same tasks are lost: each series' first sample is already 1.
        assert exact["immediate"] == 0 and increase["immediate"] < 0.1 * AGENTS, (exact, increase)

        # What the hold costs: a new agent's first figures show one hold later (here 2 s, at a
        # 1 s scrape interval); at least one scrape of the zero, and the hold, must pass first.
        seen = {name: {agent: first_nonzero(s, agent, started) for agent in sent} for name, s in stacks.items()}
        held_delays, immediate_delays = (
            [at - sent[agent] for agent, at in seen[name].items() if at is not None] for name in stacks
        )
        assert len(held_delays) == len(immediate_delays) == AGENTS
        assert min(held_delays) >= HOLD - 0.3  # query_range steps are 0.2 s apart
        assert max(held_delays) <= HOLD + 2 * INTERVAL + 1
        print(f"increase: {increase}, max - min: {exact}")
        for name, found in (("hold", held_delays), ("no hold", immediate_delays)):
            print(f"{name}: first figures after {min(found):.2f}-{max(found):.2f} s, mean {sum(found) / AGENTS:.2f} s")
