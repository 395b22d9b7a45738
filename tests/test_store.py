"""Exact metric values for every event type, plus dedup, limits, expiry and deregistration."""

from __future__ import annotations

from functools import partial

import pytest

from agency_telemetry.catalogue import A_DURATION, C_FORMATION, M_DURATION, T_DURATION, Exemplar, Histogram
from agency_telemetry.events import owner_key
from agency_telemetry.limits import LimitExceeded
from agency_telemetry.store import Entity

from support.events import ONE_OF_EACH
from support.harness import Harness

J1 = {"agent": "judge-1", "agent_type": "constitutional_judge"}


def bucket(h: Harness, name: str, le: str, **labels: str) -> float | None:
    return h.value(f"{name}_bucket", le=le, **labels)


def test_registration_sets_info_capacity_and_zeroed_counters():
    h = Harness()
    h.send({"type": "agent_registered", "capacity": 4, **J1})
    assert h.value("agency_agent_info", **J1) == 1
    assert h.value("agency_agent_capacity_tasks", **J1) == 4
    assert h.value("agency_agent_active_tasks", **J1) == 0
    assert h.value("agency_agent_tasks_total", **J1) == 0
    assert h.value("agency_agent_last_seen_timestamp_seconds", **J1) == 1_700_000_000.0
    classes = {dict(k[1])["error_class"] for k in h.series("agency_agent_task_failures_total")}
    assert classes == {"timeout", "rate_limited", "network", "validation", "model", "tool", "internal", "other"}
    # gauges an agent has not reported yet are absent, not zero
    assert h.value("agency_agent_cpu_usage_ratio", **J1) is None
    assert h.value("agency_agent_decisions_total", outcome="tp", **J1) is None


def test_task_lifecycle_moves_load_counts_histogram_quality_and_cost():
    h = Harness()
    h.send(
        {"type": "task_started", **J1},
        {"type": "task_started", **J1},
        {"type": "task_completed", "duration": 1500, "quality_score": 0.9, "cost": 0.08, **J1},
    )
    assert h.value("agency_agent_active_tasks", **J1) == 1
    assert h.value("agency_agent_tasks_total", **J1) == 1
    name = "agency_agent_task_duration_seconds"
    assert bucket(h, name, "1.0", **J1) == 0
    assert bucket(h, name, "2.5", **J1) == 1
    assert bucket(h, name, "+Inf", **J1) == 1
    assert h.value(f"{name}_sum", **J1) == 1.5
    assert h.value(f"{name}_count", **J1) == 1
    assert h.value("agency_agent_task_quality_score_sum", **J1) == 0.9
    assert h.value("agency_agent_task_quality_score_count", **J1) == 1
    assert h.value("agency_agent_task_cost_usd_total", **J1) == 0.08


def test_durations_accept_units_and_bucket_edges_are_inclusive():
    h = Harness()
    h.send(
        {"type": "task_completed", "duration": "2.5 s", **J1},  # exactly on the le="2.5" edge
        {"type": "task_completed", "duration": "50 ms", **J1},
        {"type": "task_completed", "duration": "11 min", **J1},  # beyond the last bucket
        {"type": "task_completed", "duration": 100, **J1},  # bare number: milliseconds
    )
    name = "agency_agent_task_duration_seconds"
    assert bucket(h, name, "0.05", **J1) == 1
    assert bucket(h, name, "0.1", **J1) == 2
    assert bucket(h, name, "2.5", **J1) == 3
    assert bucket(h, name, "600.0", **J1) == 3
    assert bucket(h, name, "+Inf", **J1) == 4
    assert h.value(f"{name}_sum", **J1) == pytest.approx(2.5 + 0.05 + 660 + 0.1)


def test_failures_are_classified_in_configured_order():
    h = Harness()
    h.send(
        {"type": "task_failed", "reason": "Network timeout", "duration": 200, **J1},  # timeout wins: listed first
        {"type": "task_failed", "reason": "connection reset by peer", **J1},
        {"type": "task_failed", "reason": "HTTP 429 Too Many Requests", **J1},
        {"type": "task_failed", "reason": "the cat sat on the keyboard", **J1},
    )
    fails = {dict(k[1])["error_class"]: v for k, v in h.series("agency_agent_task_failures_total").items()}
    assert fails == {
        "timeout": 1,
        "network": 1,
        "rate_limited": 1,
        "other": 1,
        "validation": 0,
        "model": 0,
        "tool": 0,
        "internal": 0,
    }
    assert h.value("agency_agent_tasks_total", **J1) == 4
    assert h.value("agency_agent_task_duration_seconds_count", **J1) == 1  # only the failure with a duration


def test_custom_error_classes_replace_the_defaults():
    h = Harness("error_classes: [{name: gpu, pattern: 'cuda|gpu'}]")
    h.send({"type": "task_failed", "reason": "CUDA out of memory", **J1}, {"type": "task_failed", "reason": "x", **J1})
    fails = {dict(k[1])["error_class"]: v for k, v in h.series("agency_agent_task_failures_total").items()}
    assert fails == {"gpu": 1, "other": 1}


def test_heartbeat_sets_resource_gauges_with_units():
    h = Harness()
    h.send({"type": "agent_heartbeat", "cpu": "85 %", "memory": "512 MiB", "queue_depth": 3, **J1})
    assert h.value("agency_agent_cpu_usage_ratio", **J1) == pytest.approx(0.85)
    assert h.value("agency_agent_memory_bytes", **J1) == 512 * 2**20
    assert h.value("agency_agent_queue_depth", **J1) == 3
    h.wall.now += 30
    h.send({"type": "agent_heartbeat", "cpu": 0.25, **J1})
    assert h.value("agency_agent_cpu_usage_ratio", **J1) == 0.25
    assert h.value("agency_agent_memory_bytes", **J1) == 512 * 2**20  # not reported again: kept
    assert h.value("agency_agent_last_seen_timestamp_seconds", **J1) == 1_700_000_030.0


def test_consensus_counts_debates_rounds_and_violations_by_principle():
    h = Harness()
    h.send(
        {"type": "consensus", "council": "ethics", "formation_time": 2000, "achieved": True},
        {
            "type": "consensus",
            "council": "ethics",
            "formation_time": "7 s",
            "achieved": False,
            "debate_required": True,
            "debate_rounds": 3,
            "constitutional_compliance": False,
            "violated_principle": "fairness",
        },
        {
            "type": "consensus",
            "council": "ethics",
            "formation_time": 1,
            "achieved": True,
            "constitutional_compliance": False,
        },
    )
    c = {"council": "ethics"}
    assert h.value("agency_council_consensus_attempts_total", **c) == 3
    assert h.value("agency_council_consensus_failures_total", **c) == 1
    assert h.value("agency_council_debates_total", **c) == 1
    assert h.value("agency_council_compliance_checks_total", **c) == 3
    assert h.value("agency_council_compliance_violations_total", principle="fairness", **c) == 1
    assert h.value("agency_council_compliance_violations_total", principle="unspecified", **c) == 1
    formation = "agency_council_consensus_formation_seconds"
    assert bucket(h, formation, "0.05", **c) == 1  # 1 ms
    assert bucket(h, formation, "2.0", **c) == 2
    assert bucket(h, formation, "10.0", **c) == 3
    assert h.value(f"{formation}_sum", **c) == pytest.approx(9.001)
    assert bucket(h, "agency_council_debate_rounds", "2.0", **c) == 0
    assert bucket(h, "agency_council_debate_rounds", "3.0", **c) == 1
    assert h.value("agency_council_debate_rounds_sum", **c) == 3


def test_coordination_sessions_and_overhead():
    h = Harness()
    h.send(
        {"type": "coordination", "council": "review", "session": "started"},
        {"type": "coordination", "council": "review", "session": "started", "overhead": "250 ms"},
        {"type": "coordination", "council": "review", "session": "ended", "overhead": 750},
    )
    assert h.value("agency_council_sessions_active", council="review") == 1
    assert h.value("agency_council_coordination_seconds_total", council="review") == 1.0


def test_business_events_feed_the_unlabelled_workflow_series():
    h = Harness()
    h.send(
        {"type": "business", "completed": True, "quality_score": 0.95, "cost": 0.08},
        {"type": "business", "completed": False, "quality_score": 0.35, "cost": 0.02},
        {"type": "business", "completed": True},
    )
    assert h.value("agency_workflow_tasks_total") == 3
    assert h.value("agency_workflow_task_failures_total") == 1
    assert h.value("agency_workflow_task_cost_usd_total") == pytest.approx(0.1)
    assert h.value("agency_workflow_task_quality_score_bucket", le="0.3") == 0
    assert h.value("agency_workflow_task_quality_score_bucket", le="0.4") == 1
    assert h.value("agency_workflow_task_quality_score_bucket", le="0.95") == 2
    assert h.value("agency_workflow_task_quality_score_count") == 2
    assert h.value("agency_workflow_task_quality_score_sum") == pytest.approx(1.3)


def test_decisions_by_outcome_for_councils_and_agents():
    h = Harness()
    truth = [(True, True), (True, False), (True, False), (False, False), (False, True)]
    h.send(*({"type": "decision", "council": "ethics", "predicted": p, "actual": a} for p, a in truth))
    h.send({"type": "decision", "predicted": False, "actual": True, **J1})
    outcomes = {dict(k[1])["outcome"]: v for k, v in h.series("agency_council_decisions_total").items()}
    assert outcomes == {"tp": 1, "fp": 2, "tn": 1, "fn": 1}
    assert h.value("agency_agent_decisions_total", outcome="fn", **J1) == 1
    assert h.value("agency_agent_decisions_total", outcome="tp", **J1) == 0


def test_queue_depth_and_wait():
    h = Harness()
    h.send(
        {"type": "queue", "queue": "intake", "depth": 7, "wait": "2 s"},
        {"type": "queue", "queue": "intake", "depth": 4},
    )
    assert h.value("agency_queue_depth", queue="intake") == 4
    assert h.value("agency_queue_wait_seconds_bucket", queue="intake", le="1.0") == 0
    assert h.value("agency_queue_wait_seconds_bucket", queue="intake", le="5.0") == 1
    assert h.value("agency_queue_wait_seconds_sum", queue="intake") == 2.0


def test_reported_alerts_are_active_until_resolved_and_escape_free_text():
    h = Harness()
    alert = {
        "type": "alert",
        "alert_id": "a-1",
        "alert_type": "agent_performance",
        "severity": "warning",
        "message": 'Agent "judge-1" degraded\nsee \\ logs',
        "affected_agents": ["judge-1", "judge-2"],
    }
    h.send(alert)
    labels = {
        "alert_id": "a-1",
        "alert_type": "agent_performance",
        "severity": "warning",
        "affected_agents": "judge-1,judge-2",
        "message": 'Agent "judge-1" degraded\nsee \\ logs',
    }
    assert h.value("agency_reported_alert", **labels) == 1
    h.send({**alert, "status": "resolved"})
    assert h.series("agency_reported_alert") == {}


def test_agent_type_change_relabels_the_agent():
    h = Harness()
    h.send({"type": "task_started", "agent": "a"})
    assert h.value("agency_agent_info", agent="a", agent_type="unknown") == 1
    h.send({"type": "agent_registered", "agent": "a", "agent_type": "worker"})
    assert h.value("agency_agent_info", agent="a", agent_type="unknown") is None
    assert h.value("agency_agent_active_tasks", agent="a", agent_type="worker") == 1


def test_deregistration_removes_every_series_of_the_agent():
    h = Harness()
    h.send(
        {"type": "agent_registered", **J1},
        {"type": "agent_heartbeat", "cpu": 0.5, **J1},
        {"type": "task_completed", "duration": 10, "quality_score": 1, **J1},
        {"type": "decision", "predicted": True, "actual": True, **J1},
        {"type": "agent_registered", "agent": "w-1", "agent_type": "worker"},
    )
    h.send({"type": "agent_deregistered", "agent": "judge-1"})
    assert not [k for k in h.series("agency_agent_") if dict(k[1]).get("agent") == "judge-1"]
    assert h.value("agency_agent_info", agent="w-1", agent_type="worker") == 1


def test_duplicate_ids_are_acknowledged_and_not_applied_again():
    h = Harness()
    event = {"type": "task_completed", "id": "e-1", "duration": 10, **J1}
    assert h.send(event, event).duplicates == 1  # repeated inside one batch
    assert h.send(event).duplicates == 1  # and across batches
    assert h.value("agency_agent_tasks_total", **J1) == 1
    assert h.store.stats.duplicates == 2


def test_applied_events_are_counted_by_type_duplicates_included():
    h = Harness("limits: {max_agents: 1}")
    event = {"type": "task_started", "id": "e-1", **J1}
    h.send(event, event, {"type": "business", "completed": True})
    with pytest.raises(LimitExceeded):  # a rejected batch is not counted
        h.send({"type": "task_started", "agent": "other"})
    assert h.value("agency_exporter_events_received_total", type="task_started") == 2
    assert h.value("agency_exporter_events_received_total", type="business") == 1
    assert h.value("agency_exporter_events_received_total", type="consensus") == 0


def test_dedup_window_expires_ids():
    h = Harness("expiry: {dedup_window: 60s}")
    event = {"type": "task_completed", "id": "e-1", "duration": 10, **J1}
    h.send(event)
    h.clock.now += 59
    assert h.send(event).duplicates == 1
    h.clock.now += 2
    assert h.send(event).accepted == 1
    assert h.value("agency_agent_tasks_total", **J1) == 2


def test_dedup_memory_is_bounded_and_evictions_counted():
    h = Harness("expiry: {dedup_max_ids: 3}")
    h.send(*({"type": "task_started", "id": f"e-{i}", **J1} for i in range(5)))
    assert h.store.dedup_ids == 3
    assert h.store.stats.dedup_evicted == 2
    assert h.send({"type": "task_started", "id": "e-0", **J1}).accepted == 1  # oldest forgotten
    assert h.send({"type": "task_started", "id": "e-4", **J1}).duplicates == 1  # newest kept


@pytest.mark.parametrize(
    ("config", "batch", "setting"),
    [
        ("limits: {max_agents: 2}", [{"type": "task_started", "agent": f"a{i}"} for i in range(3)], "max_agents"),
        (
            "limits: {max_councils: 1}",
            [{"type": "coordination", "council": c, "session": "started"} for c in ("x", "y")],
            "max_councils",
        ),
        ("limits: {max_queues: 1}", [{"type": "queue", "queue": q, "depth": 1} for q in ("x", "y")], "max_queues"),
        (
            "limits: {max_principles: 1}",
            [
                {
                    "type": "consensus",
                    "council": "c",
                    "formation_time": 1,
                    "achieved": True,
                    "constitutional_compliance": False,
                    "violated_principle": p,
                }
                for p in ("x", "y")
            ],
            "max_principles",
        ),
        (
            "limits: {max_active_alerts: 1}",
            [{"type": "alert", "alert_id": i, "alert_type": "system_health", "severity": "info"} for i in ("x", "y")],
            "max_active_alerts",
        ),
    ],
)
def test_a_batch_past_a_limit_changes_nothing(config, batch, setting):
    h = Harness(config)
    h.send({"type": "task_started", "agent": "a0"})
    before = h.text()
    with pytest.raises(LimitExceeded, match=setting):
        h.send(*batch, {"type": "task_started", "agent": "a0"})
    assert h.text() == before


def test_known_agents_do_not_count_against_the_limit():
    h = Harness("limits: {max_agents: 2}")
    h.send({"type": "task_started", "agent": "a"}, {"type": "task_started", "agent": "b"})
    h.send({"type": "task_started", "agent": "a"}, {"type": "agent_deregistered", "agent": "zzz"})
    h.send({"type": "agent_deregistered", "agent": "a"})
    h.send({"type": "task_started", "agent": "c"})  # the freed place is usable
    assert h.value("agency_agent_active_tasks", agent="c", agent_type="unknown") == 1


def test_limit_rejection_does_not_remember_ids():
    h = Harness("limits: {max_agents: 1}")
    with pytest.raises(LimitExceeded):
        h.send({"type": "task_started", "agent": "a", "id": "x"}, {"type": "task_started", "agent": "b"})
    assert h.send({"type": "task_started", "agent": "a", "id": "x"}).accepted == 1


def test_silent_agents_councils_and_queues_expire_after_ttl():
    h = Harness("expiry: {agent_ttl: 10m, alert_ttl: 1h}")
    h.send(
        {"type": "task_started", "agent": "quiet"},
        {"type": "task_started", "agent": "chatty"},
        {"type": "coordination", "council": "c", "session": "started"},
        {"type": "queue", "queue": "q", "depth": 1},
        {"type": "alert", "alert_id": "al", "alert_type": "system_health", "severity": "info"},
    )
    h.clock.now += 9 * 60
    h.send({"type": "task_started", "agent": "chatty"})
    h.clock.now += 2 * 60
    h.store.expire()
    assert set(h.store.agents) == {"chatty"}
    assert not h.store.councils and not h.store.queues
    assert set(h.store.alerts) == {"al"}
    stats = h.store.stats
    assert tuple(stats.expired[kind] for kind in ("agent", "council", "queue", "alert")) == (1, 1, 1, 0)
    h.clock.now += 3600
    h.store.expire()
    assert not h.store.alerts and h.store.stats.expired["alert"] == 1
    assert h.value("agency_exporter_expired_total", kind="agent") == 2


def test_the_shared_table_applies_whole_and_is_counted_by_type():
    h = Harness()
    assert h.send(*ONE_OF_EACH).accepted == len(ONE_OF_EACH)
    for kind in {e["type"] for e in ONE_OF_EACH}:
        expected = sum(e["type"] == kind for e in ONE_OF_EACH)
        assert h.value("agency_exporter_events_received_total", type=kind) == expected


# --- LLM requests and tool calls -----------------------------------------------------------

PRICED = """
pricing:
  - {model: "gpt-4o-mini*", input: 0.15, output: 0.6}
  - {model: "gpt-4o*", provider: openai, input: 2.5, output: 10, cache_read: 1.25, reasoning: 20}
  - {model: "*", provider: openai, input: 100, output: 100}
"""
W1 = {"agent": "w-1", "agent_type": "worker"}


def llm(**fields: object) -> dict[str, object]:
    return {"type": "llm_request", "provider": "openai", "model": "gpt-4o", "duration": 500, **W1, **fields}


def test_an_llm_request_counts_tokens_by_type_and_prices_them_from_the_table():
    h = Harness(PRICED)
    tokens = {
        "input_tokens": 1_000_000,
        "cache_read_tokens": 400_000,
        "output_tokens": 100_000,
        "reasoning_tokens": 40_000,
    }
    h.send(llm(**tokens))
    key = {**W1, "provider": "openai", "model": "gpt-4o"}
    assert h.value("agency_agent_llm_requests_total", **key) == 1
    assert h.value("agency_agent_llm_tokens_total", token_type="cache_read", **key) == 400_000
    assert h.value("agency_agent_llm_tokens_total", token_type="reasoning", **key) == 40_000
    # 600k uncached input at 2.5, 400k cached at 1.25, 60k output at 10, 40k reasoning at 20 (per million)
    assert h.value("agency_agent_llm_cost_usd_total", **key) == pytest.approx(1.5 + 0.5 + 0.6 + 0.8)
    assert h.value("agency_llm_request_duration_seconds_count", provider="openai", model="gpt-4o") == 1
    assert h.value("agency_llm_request_duration_seconds_bucket", provider="openai", model="gpt-4o", le="0.64") == 1


def test_the_first_matching_price_wins_and_a_reported_cost_wins_over_the_table():
    h = Harness(PRICED)
    h.send(llm(model="gpt-4o-mini-2024", input_tokens=1_000_000), llm(model="o3", output_tokens=10_000, cost=0.25))
    mini = {**W1, "provider": "openai", "model": "gpt-4o-mini-2024"}
    assert h.value("agency_agent_llm_cost_usd_total", **mini) == pytest.approx(0.15)
    assert h.value("agency_agent_llm_cost_usd_total", **W1, provider="openai", model="o3") == pytest.approx(0.25)


def test_an_unpriced_model_counts_its_tokens_and_is_counted_as_unpriced():
    h = Harness(PRICED)
    h.send(llm(provider="local", model="llama", input_tokens=5), llm(provider="local", model="llama"))
    key = {**W1, "provider": "local", "model": "llama"}
    assert h.value("agency_agent_llm_tokens_total", token_type="input", **key) == 5
    assert h.value("agency_agent_llm_cost_usd_total", **key) is None
    assert h.value("agency_exporter_llm_unpriced_requests_total", provider="local", model="llama") == 2


def test_a_failed_llm_request_or_tool_call_is_counted_by_its_reason():
    h = Harness()
    h.send(llm(reason="429 Too Many Requests"), llm(), {"type": "tool_call", "tool": "search", "duration": 5, **W1})
    h.send({"type": "tool_call", "tool": "search", "duration": 5, "reason": "boom", **W1})
    key = {**W1, "provider": "openai", "model": "gpt-4o"}
    assert h.value("agency_agent_llm_requests_total", **key) == 2
    assert h.value("agency_agent_llm_request_failures_total", error_class="rate_limited", **key) == 1
    assert h.value("agency_agent_tool_calls_total", **W1, tool="search") == 2
    assert h.value("agency_agent_tool_call_failures_total", **W1, tool="search") == 1
    assert h.value("agency_tool_call_duration_seconds_count", tool="search") == 2


def test_models_and_tools_past_their_limit_count_under_other():
    h = Harness("limits: {max_models: 2, max_tools: 1}")
    h.send(*(llm(model=f"m{i}", input_tokens=1) for i in range(5)))
    h.send(*({"type": "tool_call", "tool": f"t{i}", "duration": 1, **W1} for i in range(3)))
    other = {**W1, "provider": "other", "model": "other"}
    assert h.value("agency_agent_llm_requests_total", **other) == 3
    assert h.value("agency_agent_llm_tokens_total", token_type="input", **other) == 3
    assert h.value("agency_llm_request_duration_seconds_count", provider="other", model="other") == 3
    assert h.value("agency_agent_tool_calls_total", **W1, tool="other") == 2
    assert h.value("agency_exporter_overflow_total", kind="model") == 3
    assert h.value("agency_exporter_overflow_total", kind="tool") == 2
    assert len(h.store.models) == 3 and len(h.store.tools) == 2  # the limit, and "other"


def test_models_and_tools_expire_like_agents():
    h = Harness("expiry: {agent_ttl: 60s}")
    h.send(llm(), {"type": "tool_call", "tool": "search", "duration": 5, **W1})
    h.clock.now += 61
    h.store.expire()
    assert not h.store.models and not h.store.tools
    assert h.value("agency_exporter_expired_total", kind="model") == 1


# --- exemplars ---------------------------------------------------------------------------

TRACE_A, TRACE_B, TRACE_C = "a" * 32, "b" * 32, "c" * 32
SPAN = "0123456789abcdef"


def histogram(owners: dict[str, Entity], key: str, slot: int) -> Histogram:
    found: Histogram = owners[key].values[slot]
    return found


def test_each_bucket_keeps_the_latest_traced_observation_as_its_one_exemplar():
    h = Harness()
    task = {"type": "task_completed", **W1}
    h.send(
        {**task, "duration": 300, "trace_id": TRACE_A, "span_id": SPAN},
        {**task, "duration": 400, "trace_id": TRACE_B},
    )
    h.wall.now += 15
    h.send({**task, "duration": 450, "trace_id": TRACE_C}, {**task, "duration": 420}, {**task, "duration": "3 s"})
    h.wall.now += 15
    h.send({**task, "duration": 20, "trace_id": TRACE_A, "span_id": SPAN})
    durations = histogram(h.store.agents, "w-1", A_DURATION)
    assert durations.counts[:4] == [1, 0, 0, 4]  # le 0.05 0.1 0.25 0.5
    assert durations.exemplars is not None and len(durations.exemplars) == len(durations.counts)
    wall = 1_700_000_000.0
    by_bucket = {i: e for i, e in enumerate(durations.exemplars) if e is not None}
    assert by_bucket == {
        0: Exemplar(TRACE_A, SPAN, 0.02, wall + 30),
        3: Exemplar(TRACE_C, None, 0.45, wall + 15),  # not the untraced 0.42 that came after it
    }


def test_traced_llm_requests_and_tool_calls_give_their_model_and_tool_exemplars():
    h = Harness()
    h.send(
        llm(duration=1200, trace_id=TRACE_A, span_id=SPAN),
        {"type": "tool_call", "tool": "search", "duration": 30, "trace_id": TRACE_B, **W1},
        {"type": "task_failed", "reason": "boom", "duration": "2 s", "trace_id": TRACE_C, **W1},
    )
    model = histogram(h.store.models, owner_key("openai", "gpt-4o"), M_DURATION)
    tool = histogram(h.store.tools, "search", T_DURATION)
    task = histogram(h.store.agents, "w-1", A_DURATION)
    assert [e for e in model.exemplars or () if e] == [Exemplar(TRACE_A, SPAN, 1.2, 1_700_000_000.0)]
    assert [e for e in tool.exemplars or () if e] == [Exemplar(TRACE_B, None, 0.03, 1_700_000_000.0)]
    assert [e for e in task.exemplars or () if e] == [Exemplar(TRACE_C, None, 2.0, 1_700_000_000.0)]


def test_histograms_without_traced_observations_allocate_no_exemplars():
    h = Harness()
    h.send(
        llm(),
        {"type": "tool_call", "tool": "search", "duration": 30, **W1},
        {"type": "task_completed", "duration": 30, **W1},
        {"type": "task_failed", "trace_id": TRACE_A, **W1},  # no duration: nothing observed
        {"type": "consensus", "council": "ethics", "formation_time": 10, "achieved": True},
    )
    histograms = [
        histogram(h.store.models, owner_key("openai", "gpt-4o"), M_DURATION),
        histogram(h.store.tools, "search", T_DURATION),
        histogram(h.store.agents, "w-1", A_DURATION),
        histogram(h.store.councils, "ethics", C_FORMATION),
    ]
    assert [hist.exemplars for hist in histograms] == [None] * 4


def test_no_gauge_goes_below_zero_when_ends_come_without_their_starts():
    """As after an exporter restart: the tasks and sessions started before it end after it."""
    h = Harness()
    h.send(
        {"type": "task_completed", "duration": 100, **J1},
        {"type": "task_failed", "reason": "timeout", **J1},
        {"type": "coordination", "council": "review", "session": "ended"},
    )
    assert h.value("agency_agent_active_tasks", **J1) == 0
    assert h.value("agency_agent_tasks_total", **J1) == 2  # the ends still count as tasks
    assert h.value("agency_council_sessions_active", council="review") == 0
    h.send({"type": "task_started", **J1})
    assert h.value("agency_agent_active_tasks", **J1) == 1


def test_once_an_agent_reports_its_active_tasks_its_reports_alone_are_the_count():
    """Starts and ends count only until the agent's first report: after it, a replica that saw
    some of them would disagree with one that saw others; the agent's own count does not."""
    h = Harness()
    h.send({"type": "task_started", **J1}, {"type": "task_started", **J1})
    assert h.value("agency_agent_active_tasks", **J1) == 2
    h.send({"type": "agent_heartbeat", "active_tasks": 5, **J1})  # the agent knows better
    assert h.value("agency_agent_active_tasks", **J1) == 5
    h.send(
        {"type": "task_completed", "duration": 100, **J1},
        {"type": "task_failed", "reason": "timeout", **J1},
        {"type": "task_started", **J1},
        {"type": "agent_heartbeat", "cpu": 0.5, **J1},  # without the field: the count stays
    )
    assert h.value("agency_agent_active_tasks", **J1) == 5
    h.send({"type": "agent_heartbeat", "active_tasks": 0, **J1})
    assert h.value("agency_agent_active_tasks", **J1) == 0


def test_once_a_council_reports_its_sessions_its_reports_alone_are_the_count():
    h = Harness()
    h.send({"type": "coordination", "council": "review", "session": "started"})
    assert h.value("agency_council_sessions_active", council="review") == 1
    h.send({"type": "coordination", "council": "review", "session": "started", "active_sessions": 4})
    assert h.value("agency_council_sessions_active", council="review") == 4  # the report, after the start
    h.send({"type": "coordination", "council": "review", "session": "ended"})
    assert h.value("agency_council_sessions_active", council="review") == 4


def test_set_values_are_stamped_with_the_time_they_were_heard():
    """Each value an event sets outright carries the (wall) time this exporter heard it, field by
    field: a heartbeat that reports only cpu leaves the other fields' times as they were."""
    h = Harness()
    h.send({"type": "agent_registered", "capacity": 4, **J1})
    h.wall.now += 10
    h.send({"type": "agent_heartbeat", "cpu": 0.5, "memory": 100, "queue_depth": 3, "active_tasks": 2, **J1})
    h.wall.now += 10
    h.send({"type": "agent_heartbeat", "cpu": 0.7, **J1}, {"type": "task_started", **J1})
    stamp = partial(h.value, "agency_agent_reported_timestamp_seconds", **J1)
    assert stamp(field="capacity") == 1_700_000_000
    assert [stamp(field=f) for f in ("memory", "queue_depth", "active_tasks")] == [1_700_000_010] * 3
    assert stamp(field="cpu") == 1_700_000_020  # a task start is no report of the count


def test_a_heartbeat_may_repeat_the_capacity_for_a_replica_that_never_saw_the_registration():
    h = Harness()
    h.send({"type": "agent_heartbeat", "cpu": 0.5, **J1})
    assert h.value("agency_agent_capacity_tasks", **J1) == 1  # not reported: the default
    assert h.value("agency_agent_reported_timestamp_seconds", field="capacity", **J1) is None
    h.send({"type": "agent_heartbeat", "capacity": 6, **J1})
    assert h.value("agency_agent_capacity_tasks", **J1) == 6
    assert h.value("agency_agent_reported_timestamp_seconds", field="capacity", **J1) == 1_700_000_000


def test_a_councils_active_sessions_replace_the_exporters_count_and_queues_stamp_their_depth():
    h = Harness()
    h.send({"type": "coordination", "council": "review", "session": "started"})
    assert h.value("agency_council_reported_timestamp_seconds", council="review", field="active_sessions") is None
    h.wall.now += 5
    h.send({"type": "coordination", "council": "review", "active_sessions": 4})
    assert h.value("agency_council_sessions_active", council="review") == 4
    assert h.value("agency_council_reported_timestamp_seconds", council="review", field="active_sessions") == (
        1_700_000_005
    )
    h.send({"type": "queue", "queue": "intake", "wait": 1.0})
    assert h.value("agency_queue_reported_timestamp_seconds", queue="intake", field="depth") is None
    h.send({"type": "queue", "queue": "intake", "depth": 9})
    assert h.value("agency_queue_reported_timestamp_seconds", queue="intake", field="depth") == 1_700_000_005


def test_a_step_of_the_wall_clock_expires_nobody():
    """Expiry reads the monotonic clock; a host's wall clock stepping a day ahead (NTP, a VM
    resumed) moves only the last-seen timestamps, and no agent is dropped for it."""
    h = Harness("expiry: {agent_ttl: 10m}")
    h.send({"type": "agent_heartbeat", "cpu": 0.5, **J1})
    h.wall.now += 86_400
    h.clock.now += 60
    h.store.expire()
    assert h.value("agency_agent_info", **J1) == 1
    assert h.store.stats.expired["agent"] == 0
    h.send({"type": "agent_heartbeat", "cpu": 0.5, **J1})
    assert h.value("agency_agent_last_seen_timestamp_seconds", **J1) == 1_700_000_000.0 + 86_400
