"""Attribution of OTLP children to their nearest invoke_agent ancestor, directly on the class
with a hand-driven clock: order of arrival, intermediate spans, roots, the hold, the memory bound."""

from __future__ import annotations

import msgspec

from agency_telemetry.attribution import Attribution
from agency_telemetry.events import LlmRequest
from agency_telemetry.spans import MappedSpans, Pending

TRACE = b"t" * 16


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def llm(parent: bytes, trace: bytes = TRACE) -> Pending:
    event = LlmRequest(agent="svc", provider="p", model="m", duration=1.0)
    return Pending(event, trace, parent, "service")


def request(
    links: dict[bytes, bytes], agents: dict[bytes, str] | None = None, pending: list[Pending] | None = None
) -> MappedSpans:
    mapped = MappedSpans(pending=pending or [])
    mapped.links[TRACE] = links
    if agents:
        mapped.agents[TRACE] = {span: (name, "worker") for span, name in agents.items()}
    return mapped


def step(attribution: Attribution, mapped: MappedSpans) -> list[str]:
    """The agents of the events countable after ``mapped``: its own and earlier requests' alike."""
    plan = attribution.plan(mapped)
    attribution.commit(plan)
    return [event.agent for event in [*plan.ready, *(event for _, event in plan.released)]]  # type: ignore[attr-defined]


def test_a_grandchild_waits_across_requests_for_its_agent_through_an_intermediate_span():
    attribution = Attribution(30, 1000, Clock())
    assert step(attribution, request({b"llm": b"step"}, pending=[llm(b"step")])) == []
    assert attribution.held == 1
    assert step(attribution, request({b"step": b"agent"})) == []  # the intermediate span: still no agent
    assert step(attribution, request({b"agent": b""}, {b"agent": "planner"})) == ["planner"]
    assert attribution.held == 0 and attribution.size == 0  # the trace is forgotten
    assert attribution.counts["ancestor"] == 1


def test_a_child_arriving_with_its_agent_is_attributed_at_once_and_keeps_the_agent_type():
    attribution = Attribution(30, 1000, Clock())
    mapped = request({b"llm": b"agent", b"agent": b""}, {b"agent": "planner"}, [llm(b"agent")])
    plan = attribution.plan(mapped)
    assert [(e.agent, e.agent_type) for e in plan.ready] == [("planner", "worker")]  # type: ignore[attr-defined]


def test_a_child_of_a_root_without_agent_counts_for_its_fallback_at_once():
    attribution = Attribution(30, 1000, Clock())
    assert step(attribution, request({b"llm": b"http", b"http": b""}, pending=[llm(b"http")])) == ["svc"]
    assert step(attribution, request({b"root-llm": b""}, pending=[llm(b"")])) == ["svc"]
    assert attribution.counts["service"] == 2
    assert attribution.held == 0


def test_held_events_count_for_their_fallback_once_the_hold_has_passed():
    clock = Clock()
    attribution = Attribution(30, 1000, clock)
    step(attribution, request({b"a": b"gone"}, pending=[llm(b"gone")]))
    clock.now += 20
    step(attribution, request({b"b": b"gone"}, pending=[llm(b"gone")]))
    clock.now += 15
    assert [event.agent for _, event in attribution.expire()] == ["svc"]  # type: ignore[attr-defined]  # the first
    assert attribution.held == 1
    clock.now += 20
    assert len(attribution.expire()) == 1
    assert attribution.held == 0 and attribution.size == 0
    assert attribution.counts["hold_expired"] == 2


def test_past_the_memory_bound_the_oldest_traces_are_released():
    attribution = Attribution(30, 4, Clock())
    for n in range(3):
        mapped = MappedSpans(pending=[llm(b"x", bytes([n]) * 16)])
        mapped.links[bytes([n]) * 16] = {b"c": b"x"}
        plan = attribution.plan(mapped)
        released = attribution.commit(plan)
    assert len(released) == 1  # three traces of a link and an event each: the first had to go
    assert attribution.size <= 4
    assert attribution.counts["memory_full"] == 1


def test_a_plan_not_committed_changes_nothing():
    attribution = Attribution(30, 1000, Clock())
    attribution.plan(request({b"llm": b"step"}, pending=[llm(b"step")]))
    assert attribution.held == 0 and attribution.size == 0


def test_events_of_an_earlier_request_come_back_with_their_sender():
    attribution = Attribution(30, 1000, Clock())
    step(attribution, request({b"llm": b"agent"}, pending=[msgspec.structs.replace(llm(b"agent"), sender="token-a")]))
    plan = attribution.plan(request({b"agent": b""}, {b"agent": "planner"}))
    assert plan.ready == []
    assert [(sender, event.agent) for sender, event in plan.released] == [("token-a", "planner")]  # type: ignore[attr-defined]


def test_a_cycle_of_parent_ids_ends_the_search():
    attribution = Attribution(30, 1000, Clock())
    assert step(attribution, request({b"a": b"b", b"b": b"a"}, pending=[llm(b"a")])) == ["svc"]
