"""/metrics for a fixed, rich event corpus, byte for byte, against a committed golden copy.

The corpus goes through the real HTTP app onto a store with fake clocks: every event type with
every optional field, agent types changing, duplicates and evicted dedup ids, every refusal an
ingest request can meet (malformed, invalid, media type, body and batch size, each owner limit),
and owners expiring. Any change to what the exporter renders shows here as a diff; a deliberate
one is committed by running this file with ``UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agency_telemetry.config import parse_config
from agency_telemetry.routes import EXPOSITION, create_app
from agency_telemetry.store import Store

from scripts.local_stack import free_port
from support.events import ONE_OF_EACH, ndjson
from support.harness import FakeClock

GOLDEN = Path(__file__).resolve().parent / "golden"
CONFIG = """
limits: {max_agents: 6, max_councils: 3, max_queues: 2, max_principles: 3, max_active_alerts: 2,
         max_events_per_batch: 20, max_body_size: 4096}
expiry: {agent_ttl: 100, alert_ttl: 200, dedup_window: 50, dedup_max_ids: 3, new_series_hold: 0}
"""
W = {"agent": "w-1", "agent_type": "worker"}
R = {"agent": "r-1", "agent_type": "researcher"}

# (seconds to advance both clocks, content type, body, expected status)
CORPUS: tuple[tuple[float, str, Any, int], ...] = (
    (0, "ndjson", ONE_OF_EACH, 202),
    (1, "json", [{"type": "agent_registered", **W, "capacity": 3}, {"type": "task_started", **W}], 202),
    (1, "json", {"type": "task_completed", **W, "duration": "2.5 s", "quality_score": 1, "cost": 0.25}, 202),
    (2, "ndjson", [{"type": "task_failed", **W, "reason": "HTTP 429 too many requests"}], 202),
    (0, "ndjson", [{"type": "task_failed", **W, "reason": "segfault", "duration": "1 min"}], 202),
    (0, "ndjson", [{"type": "agent_heartbeat", **R, "cpu": "12.5 %", "memory": "1.5 GiB"}], 202),
    (0, "ndjson", [{"type": "agent_heartbeat", "agent": "r-1", "agent_type": "orchestrator", "queue_depth": 0}], 202),
    (0, "ndjson", [{"type": "decision", **R, "predicted": False, "actual": False}], 202),
    (0, "ndjson", [{"type": "decision", "council": "ethics", "predicted": True, "actual": False}], 202),
    (0, "ndjson", [{"type": "consensus", "council": "planning", "formation_time": 50, "achieved": True}], 202),
    (
        0,
        "ndjson",
        [
            {
                "type": "consensus",
                "council": "ethics",
                "formation_time": "3 s",
                "achieved": True,
                "constitutional_compliance": False,
            }
        ],
        202,
    ),
    (0, "ndjson", [{"type": "coordination", "council": "planning", "session": "ended"}], 202),
    (0, "ndjson", [{"type": "coordination", "council": "planning", "overhead": "250 ms"}], 202),
    (0, "ndjson", [{"type": "business", "completed": False}, {"type": "business", "completed": True}], 202),
    (0, "ndjson", [{"type": "queue", "queue": "escalations", "wait": 700000}], 202),
    (
        0,
        "ndjson",
        [
            {
                "type": "alert",
                "alert_id": "a2",
                "alert_type": "system_health",
                "severity": "info",
                "affected_agents": ["w-1", "r-1"],
                "message": "multi\nline \\ text",
            }
        ],
        202,
    ),
    (
        0,
        "ndjson",
        [
            {
                "type": "alert",
                "alert_id": "a1",
                "alert_type": "quality_degradation",
                "severity": "critical",
                "status": "resolved",
            }
        ],
        202,
    ),
    # duplicates, and ids evicted early (dedup_max_ids: 3)
    (1, "ndjson", [{"type": "task_started", **W, "id": f"t-{n}"} for n in range(4)], 202),
    (0, "ndjson", [{"type": "task_started", **W, "id": "t-3"}, {"type": "task_started", **W, "id": "t-0"}], 202),
    # refusals: nothing applied, each counted by reason
    (0, "ndjson", b'{"type": "task_started"', 400),
    (0, "json", b'{"type": "task_started"', 400),
    (0, "ndjson", [{"type": "task_started", "agent": "bad agent"}, {"type": "nope"}], 400),
    (0, "text/plain", b"x", 415),
    (0, "ndjson", b"x" * 5000, 413),
    (0, "ndjson", [{"type": "task_started", **W}] * 21, 413),
    (0, "ndjson", [{"type": "task_started", "agent": f"new-{n}"} for n in range(5)], 429),
    (0, "ndjson", [{"type": "coordination", "council": f"c-{n}", "session": "started"} for n in range(2)], 429),
    (0, "ndjson", [{"type": "queue", "queue": f"q-{n}", "depth": 1} for n in range(2)], 429),
    (
        0,
        "ndjson",
        [{"type": "alert", "alert_id": f"x-{n}", "alert_type": "system_health", "severity": "info"} for n in range(2)],
        429,
    ),
    (
        0,
        "ndjson",
        [
            {
                "type": "consensus",
                "council": "ethics",
                "formation_time": 1,
                "achieved": True,
                "constitutional_compliance": False,
                "violated_principle": f"p-{n}",
            }
            for n in range(2)
        ],
        429,
    ),
    # expiry: everything but w-1 and the alerts falls silent past agent_ttl
    (90, "ndjson", [{"type": "agent_heartbeat", **W, "cpu": 0.5}], 202),
    (20, "ndjson", [{"type": "queue", "queue": "intake", "depth": 0}], 202),
    # and the fleet comes back, one agent only to leave again
    (1, "ndjson", ONE_OF_EACH, 202),
    (0, "ndjson", [{"type": "agent_registered", **R}, {"type": "agent_deregistered", "agent": "r-1"}], 202),
)
MEDIA = {"ndjson": "application/x-ndjson", "json": "application/json"}


def body_of(kind: str, events: Any) -> bytes:
    if isinstance(events, bytes):
        return events
    if kind == "json":
        return json.dumps(events).encode()
    return ndjson(events if isinstance(events, list | tuple) else [events])


def stable(text: str) -> str:
    """The exposition without what depends on the machine: versions in the build info."""
    return re.sub(r"^agency_exporter_build_info\{.*$", "agency_exporter_build_info{...} 1.0", text, flags=re.M)


async def render_corpus() -> dict[str, str]:
    config = parse_config(CONFIG)
    clock, wall = FakeClock(), FakeClock(1_700_000_000.0)
    store = Store(config, clock=clock, wall_clock=wall)
    app = create_app(config, store)
    client = TestClient(TestServer(app, host="127.0.0.1", port=free_port()))
    await client.start_server()
    try:
        for step, (advance, kind, events, status) in enumerate(CORPUS):
            clock.now += advance
            wall.now += advance
            store.expire()
            content_type = MEDIA.get(kind, kind)
            resp = await client.post("/v1/events", data=body_of(kind, events), headers={"Content-Type": content_type})
            assert resp.status == status, (step, await resp.text())
        exposition = app[EXPOSITION]
        exposition.render(False)  # agency_exporter_series counts the previous render
        return {
            "metrics.txt": stable(exposition.render(False).decode()),
            "metrics.openmetrics.txt": stable(exposition.render(True).decode()),
        }
    finally:
        await client.close()


@pytest.mark.parametrize("name", ["metrics.txt", "metrics.openmetrics.txt"])
async def test_metrics_of_the_corpus_match_the_golden_copy(name: str) -> None:
    rendered = (await render_corpus())[name]
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(rendered)
    assert rendered == path.read_text(), (
        f"/metrics changed; if on purpose, rerun with UPDATE_GOLDEN=1 and commit {path}"
    )
