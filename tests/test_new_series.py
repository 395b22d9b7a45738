"""New series start at zero: a new owner's counters, histograms and summaries (and a new key of
one) are exposed at zero until a scrape has shown them so and they are ``new_series_hold`` old.

Prometheus assumes nothing about where a new series starts, so a counter first scraped above
zero loses that first increase to rate() and increase(): an agent that reports one task as its
first event would count none. The store's values stay exact; only the scrapes hold them back.
"""

from __future__ import annotations

import asyncio
from typing import Any

from agency_telemetry.catalogue import FAMILIES
from agency_telemetry.routes import INGEST, STORE

from support.events import ONE_OF_EACH
from support.exporter import Exporter
from support.harness import Harness
from support.metrics import agent_samples, samples

HOLD = "expiry: {new_series_hold: 30s}"
A1 = {"agent": "a1", "agent_type": "worker"}
TASKS = ("agency_agent_tasks_total", frozenset(A1.items()))
GAUGES = {f.name for f in FAMILIES if f.type == "gauge"}


def scrape(h: Harness) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """What a scrape through /metrics shows: the store is told first, as the handler does."""
    h.store.scraped()
    return agent_samples(h.text())


def is_gauge(name: str) -> bool:
    return name in GAUGES


def done(agent: str = "a1", **fields: Any) -> dict[str, Any]:
    return {"type": "task_completed", "agent": agent, "agent_type": "worker", "duration": 1, **fields}


def test_a_new_agents_counters_show_zero_at_the_first_scrapes_and_their_values_once_old_enough():
    h = Harness(HOLD)
    h.send(done(), done())
    assert scrape(h)[TASKS] == 0
    h.clock.now += 29
    assert scrape(h)[TASKS] == 0  # scraped before, but not hold old: an HA peer may not have seen it
    h.clock.now += 1
    assert scrape(h)[TASKS] == 2
    h.send(done())
    assert scrape(h)[TASKS] == 3  # visible from then on: each increment at once
    assert not h.store.holding


def test_every_new_series_shows_at_zero_with_gauges_real_and_then_exactly_the_values_without_a_hold():
    immediate, held = Harness(), Harness(HOLD)
    for h in (immediate, held):
        h.send(*ONE_OF_EACH)
    expected = agent_samples(immediate.text())
    first = scrape(held)
    assert first.keys() == expected.keys()  # the same series, from the first scrape
    for (name, labels), number in first.items():
        if is_gauge(name):
            assert number == expected[name, labels], name
        else:
            assert number == 0, (name, dict(labels))
    assert any(number for (name, _), number in expected.items() if not is_gauge(name))
    held.clock.now += 30
    assert scrape(held) == expected
    assert held.text() == immediate.text()


def test_nobody_scraping_during_the_hold_leaves_the_zero_for_the_first_scrape_after_it():
    h = Harness(HOLD)
    h.send(done())
    h.clock.now += 3600
    assert scrape(h)[TASKS] == 0  # no scraper has seen the series yet: this one sees its start
    assert scrape(h)[TASKS] == 1


def test_a_new_model_of_a_visible_agent_shows_at_zero_while_its_other_series_keep_their_values():
    h = Harness(HOLD)
    request = {"type": "llm_request", **A1, "provider": "openai", "duration": 1, "input_tokens": 10, "cost": 0.5}
    h.send(done(), {**request, "model": "gpt-4o"})
    scrape(h)
    h.clock.now += 30
    scrape(h)
    model = {**A1, "provider": "openai", "model": "gpt-4o-mini"}
    h.send({**request, "model": "gpt-4o-mini", "reason": "timeout"}, done())
    first = scrape(h)
    assert first[TASKS] == 2
    old = frozenset({**model, "model": "gpt-4o"}.items())
    assert first["agency_agent_llm_requests_total", old] == 1
    assert first["agency_agent_llm_cost_usd_total", old] == 0.5
    new = frozenset(model.items())
    assert first["agency_agent_llm_requests_total", new] == 0
    assert first["agency_agent_llm_cost_usd_total", new] == 0
    assert first["agency_agent_llm_tokens_total", new | {("token_type", "input")}] == 0
    assert first["agency_agent_llm_request_failures_total", new | {("error_class", "timeout")}] == 0
    mini = frozenset({"provider": "openai", "model": "gpt-4o-mini"}.items())
    assert first["agency_llm_request_duration_seconds_count", mini] == 0  # a new model: a new owner
    h.clock.now += 30
    second = scrape(h)
    assert second["agency_agent_llm_requests_total", new] == 1
    assert second["agency_agent_llm_cost_usd_total", new] == 0.5
    assert second["agency_agent_llm_tokens_total", new | {("token_type", "input")}] == 10
    assert second["agency_agent_llm_request_failures_total", new | {("error_class", "timeout")}] == 1
    assert second["agency_llm_request_duration_seconds_count", mini] == 1
    assert not h.store.holding


def test_a_new_tool_a_first_tool_failure_and_first_decisions_of_a_visible_agent_are_held():
    h = Harness(HOLD)
    h.send(done())
    scrape(h)
    h.clock.now += 30
    scrape(h)
    h.send(
        {"type": "tool_call", **A1, "tool": "search", "duration": 1, "reason": "boom"},
        {"type": "decision", **A1, "predicted": True, "actual": True},
    )
    tool = frozenset({**A1, "tool": "search"}.items())
    tp = frozenset({**A1, "outcome": "tp"}.items())
    for expected in (0, 0, 1):
        shown = scrape(h)
        assert shown["agency_agent_tool_calls_total", tool] == expected
        assert shown["agency_agent_tool_call_failures_total", tool] == expected
        assert shown["agency_agent_decisions_total", tp] == expected
        h.clock.now += 15


def test_a_new_principle_of_a_visible_council_is_held():
    h = Harness(HOLD)
    consensus = {"type": "consensus", "council": "ethics", "formation_time": 1, "achieved": True}
    h.send(consensus)
    scrape(h)
    h.clock.now += 30
    scrape(h)
    h.send({**consensus, "constitutional_compliance": False, "violated_principle": "fairness"})
    principle = frozenset({"council": "ethics", "principle": "fairness"}.items())
    fairness = ("agency_council_compliance_violations_total", principle)
    attempts = ("agency_council_consensus_attempts_total", frozenset({"council": "ethics"}.items()))
    first = scrape(h)
    assert first[fairness] == 0 and first[attempts] == 2
    h.clock.now += 30
    assert scrape(h)[fairness] == 1


def test_the_workflow_is_held_from_the_store_start():
    h = Harness(HOLD)
    h.send({"type": "business", "completed": True, "cost": 1.5})
    workflow = ("agency_workflow_tasks_total", frozenset())
    assert scrape(h)[workflow] == 0
    assert scrape(h)[workflow] == 0
    h.clock.now += 30
    assert scrape(h)[workflow] == 1
    assert scrape(h)["agency_workflow_task_cost_usd_total", frozenset()] == 1.5


def test_no_hold_shows_values_at_once_and_holds_nothing():
    h = Harness("expiry: {new_series_hold: 0}")
    h.send(done(), {"type": "business", "completed": True})
    assert not h.store.holding
    assert scrape(h)[TASKS] == 1


def test_deregistration_and_expiry_drop_what_is_held_and_a_returning_agent_is_new_again():
    h = Harness("expiry: {new_series_hold: 30s, agent_ttl: 60}")
    h.send(done("a1"), done("a2"), {"type": "queue", "queue": "q", "wait": 1})
    scrape(h)
    h.send({"type": "agent_deregistered", "agent": "a1"})
    h.clock.now += 61
    h.store.expire()
    assert h.store.holding == {h.store.workflow}
    h.send(done("a2"))
    assert scrape(h)[TASKS[0], frozenset({"agent": "a2", "agent_type": "worker"}.items())] == 0


async def test_the_final_scrape_after_ingest_stopped_shows_every_value(make_exporter: Any) -> None:
    exporter: Exporter = await make_exporter(HOLD)
    await exporter.send(done())
    assert samples(await exporter.metrics())[TASKS] == 0
    exporter.app[INGEST].accepting = False
    assert samples(await exporter.metrics())[TASKS] == 1


async def test_a_scrape_through_the_handler_counts_as_one_that_showed_the_zero(make_exporter: Any) -> None:
    exporter: Exporter = await make_exporter("expiry: {new_series_hold: 0.2s}")
    await exporter.send(done())
    assert samples(await exporter.metrics())[TASKS] == 0
    entity = exporter.app[STORE].agents["a1"]
    assert entity.held is not None and entity.held[1]
    await asyncio.sleep(0.25)
    assert samples(await exporter.metrics())[TASKS] == 1
