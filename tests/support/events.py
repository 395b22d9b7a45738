"""One valid event (at least) of every type, with every optional field set somewhere: the table
the decoder, store, HTTP, limit, owner, fuzz and golden tests share."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

ONE_OF_EACH = (
    {"type": "agent_registered", "agent": "a1", "agent_type": "worker", "capacity": 4},
    {"type": "agent_registered", "agent": "leaving", "agent_type": "orchestrator"},
    {"type": "agent_deregistered", "agent": "leaving"},
    {"type": "agent_heartbeat", "agent": "a1", "cpu": "85 %", "memory": "512 MiB", "queue_depth": 3, "active_tasks": 1},
    {"type": "task_started", "agent": "a1"},
    {"type": "task_started", "agent": "a1"},
    {
        "type": "task_completed",
        "agent": "a1",
        "duration": "1.5 s",
        "quality_score": 0.9,
        "cost": 0.02,
        "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736",
        "span_id": "00f067aa0ba902b7",
    },
    {"type": "task_failed", "agent": "a1", "reason": "Network timeout", "duration": 300, "trace_id": "1a" * 16},
    {
        "type": "llm_request",
        "agent": "a1",
        "provider": "openai",
        "model": "gpt-4o",
        "duration": "1.2 s",
        "input_tokens": 1200,
        "output_tokens": 300,
        "cache_read_tokens": 1000,
        "cache_write_tokens": 100,
        "reasoning_tokens": 50,
        "trace_id": "2b" * 16,
        "span_id": "3c" * 8,
    },
    {
        "type": "llm_request",
        "agent": "a1",
        "provider": "anthropic",
        "model": "claude-sonnet",
        "duration": 800,
        "input_tokens": 10,
        "cost": 0.003,
        "reason": "rate limit exceeded",
    },
    {
        "type": "llm_usage",
        "agent": "a1",
        "provider": "openai",
        "model": "gpt-4o",
        "requests": 4,
        "failures": 1,
        "reason": "timeout",
        "input_tokens": 4000,
        "output_tokens": 900,
        "durations": [[0.64, 1], [1.28, 2], [None, 1]],
        "duration_sum": "103 s",
    },
    {"type": "tool_call", "agent": "a1", "tool": "web_search", "duration": "350 ms", "trace_id": "4d" * 16},
    {"type": "tool_call", "agent": "a1", "tool": "web_search", "duration": 20, "reason": "tool timed out"},
    {
        "type": "consensus",
        "council": "ethics",
        "formation_time": 1200,
        "achieved": False,
        "debate_required": True,
        "debate_rounds": 3,
        "constitutional_compliance": False,
        "violated_principle": "fairness",
    },
    {"type": "coordination", "council": "ethics", "session": "started", "overhead": "250 ms"},
    {"type": "business", "completed": False, "quality_score": 0.8, "cost": 0.1},
    {"type": "decision", "council": "ethics", "predicted": True, "actual": False},
    {"type": "decision", "agent": "a1", "agent_type": "worker", "predicted": False, "actual": False},
    {"type": "queue", "queue": "intake", "depth": 5, "wait": "2 s"},
    {
        "type": "alert",
        "alert_id": "al-1",
        "alert_type": "agent_performance",
        "severity": "warning",
        "message": 'a "quoted" \\ message\non two lines',
        "affected_agents": ["a1"],
    },
)


def ndjson(events: Iterable[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(event) for event in events).encode()
