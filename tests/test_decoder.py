"""The decoder: shapes of a batch, units, bounds, and a problem list naming every fault."""

from __future__ import annotations

import json

import pytest

from agency_telemetry.decoder import EventDecoder, InvalidBatch
from agency_telemetry.events import EVENT_TYPES, TaskCompleted
from agency_telemetry.refusals import REFUSALS
from agency_telemetry.units import DURATION, RATIO, SIZE, UnitError, parse_quantity, unit_factor

from support.events import ONE_OF_EACH, ndjson

JSON, NDJSON = "application/json", "application/x-ndjson"


@pytest.fixture
def decoder() -> EventDecoder:
    return EventDecoder(["worker", "constitutional_judge"], max_label_length=16, max_events=5)


def problems(decoder: EventDecoder, body: bytes | str, media: str = JSON) -> list[tuple[int | None, str | None]]:
    data = body.encode() if isinstance(body, str) else body
    with pytest.raises(InvalidBatch) as info:
        decoder.decode(data, media)
    return [(p.index, p.field) for p in info.value.problems]


def test_one_object_an_array_and_ndjson_decode_alike(decoder):
    event = {"type": "task_completed", "agent": "a", "duration": "1.5 s"}
    one = decoder.decode(json.dumps(event).encode(), JSON)
    many = decoder.decode(json.dumps([event, event]).encode(), JSON)
    lines = decoder.decode(f"{json.dumps(event)}\n\n{json.dumps(event)}\n".encode(), NDJSON)
    assert one == [TaskCompleted(agent="a", duration=1.5)]
    assert many == lines == one * 2


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [
        ("duration", 1500, 1.5),
        ("duration", "1500 ms", 1.5),
        ("duration", "1.5s", 1.5),
        ("duration", "2 min", 120.0),
        ("duration", "1m", 60.0),  # Prometheus' m, not pint's metre
        ("duration", 0, 0.0),
    ],
)
def test_duration_units(decoder, field, raw, expected):
    [event] = decoder.decode(json.dumps({"type": "task_completed", "agent": "a", field: raw}).encode(), JSON)
    assert getattr(event, field) == pytest.approx(expected)


def test_size_and_ratio_units(decoder):
    body = json.dumps({"type": "agent_heartbeat", "agent": "a", "cpu": "85 %", "memory": "1.5 KiB"}).encode()
    [event] = decoder.decode(body, JSON)
    assert event.cpu == pytest.approx(0.85)
    assert event.memory == 1536


def test_unit_factors_are_cached_per_unit_string():
    unit_factor.cache_clear()
    parse_quantity.cache_clear()
    for text in ("3 ms", "4 ms", "5 ms", "3 ms"):
        parse_quantity(DURATION, text)
    assert unit_factor.cache_info().misses == 1  # pint consulted once for "ms"
    assert parse_quantity.cache_info().hits == 1  # "3 ms" the second time never reached the parser


@pytest.mark.parametrize(
    ("dimension", "text"),
    [(DURATION, "5 kg"), (DURATION, "5 MiB"), (SIZE, "5 s"), (SIZE, "85 %"), (RATIO, "5 MiB"), (DURATION, "fast")],
)
def test_wrong_kind_of_unit_is_refused(dimension, text):
    with pytest.raises(UnitError):
        parse_quantity(dimension, text)


@pytest.mark.parametrize(
    ("event", "field"),
    [
        ({"type": "task_completed", "agent": "a", "duration": -1}, "duration"),
        ({"type": "task_completed", "agent": "a", "duration": "5 kg"}, "duration"),
        ({"type": "task_completed", "agent": "a", "duration": True}, "duration"),
        ({"type": "task_completed", "agent": "a", "duration": "1e400 s"}, "duration"),
        ({"type": "task_completed", "agent": "a", "duration": 1, "quality_score": 1.01}, "quality_score"),
        ({"type": "task_completed", "agent": "a", "duration": 1, "cost": -0.01}, "cost"),
        ({"type": "agent_heartbeat", "agent": "a", "cpu": 1.5}, "cpu"),
        ({"type": "agent_heartbeat", "agent": "a", "cpu": "150 %"}, "cpu"),
        ({"type": "agent_heartbeat", "agent": "a", "queue_depth": 2.5}, "queue_depth"),
        ({"type": "consensus", "council": "c", "formation_time": 1, "achieved": 1}, "achieved"),
        ({"type": "consensus", "council": "c", "formation_time": 1, "achieved": "true"}, "achieved"),
        ({"type": "task_started", "agent": "a b"}, "agent"),
        ({"type": "task_started", "agent": 'a"b'}, "agent"),
        ({"type": "task_started", "agent": "a\nb"}, "agent"),
        ({"type": "task_started", "agent": ""}, "agent"),
        ({"type": "task_started", "agent": "x" * 17}, "agent"),
        ({"type": "task_started", "agent": "a", "agent_type": "poet"}, "agent_type"),
        ({"type": "task_started"}, "agent"),
        ({"type": "task_started", "agent": "a", "colour": "red"}, "colour"),
        ({"type": "teleport", "agent": "a"}, "type"),
        ({"agent": "a"}, "type"),
        ({"type": "coordination", "council": "c"}, "session"),
        ({"type": "queue", "queue": "q"}, "depth"),
        ({"type": "decision", "predicted": True, "actual": True}, "council"),
        ({"type": "decision", "council": "c", "agent": "a", "predicted": True, "actual": True}, "council"),
        ({"type": "alert", "alert_id": "x", "alert_type": "bad_vibes", "severity": "info"}, "alert_type"),
        ({"type": "alert", "alert_id": "x", "alert_type": "system_health", "severity": "panic"}, "severity"),
        (
            {
                "type": "consensus",
                "council": "c",
                "formation_time": 1,
                "achieved": True,
                "violated_principle": "fairness",
            },
            "violated_principle",
        ),
    ],
)
def test_each_bad_field_is_named(decoder, event, field):
    assert problems(decoder, json.dumps([{"type": "task_started", "agent": "ok"}, event])) == [(1, field)]


def test_every_problem_of_every_event_is_listed(decoder):
    batch = [
        {"type": "task_completed", "agent": "a b", "duration": -5, "extra": 1},
        {"type": "task_started", "agent": "fine"},
        {"type": "business", "completed": 1},
        7,
    ]
    found = problems(decoder, json.dumps(batch))
    assert sorted(found, key=str) == sorted(
        [(0, "extra"), (0, "agent"), (0, "duration"), (2, "completed"), (3, None)], key=str
    )


def test_problems_after_a_clean_type_pass_are_listed_too(decoder):
    # Both events pass msgspec's typed pass; the unit and agent-type checks catch them.
    batch = [
        {"type": "task_completed", "agent": "a", "duration": "5 kg"},
        {"type": "task_started", "agent": "b", "agent_type": "x"},
    ]
    assert problems(decoder, json.dumps(batch)) == [(0, "duration"), (1, "agent_type")]


def test_problem_messages_say_what_to_change(decoder):
    with pytest.raises(InvalidBatch) as info:
        decoder.decode(b'{"type": "task_completed", "agent": "a", "duration": "5 kg"}', JSON)
    assert REFUSALS[info.value.reason].status == 400
    assert "nothing was applied" in info.value.message
    [problem] = info.value.problems
    assert "not a unit of duration" in problem.message and "1.5 s" in problem.message


@pytest.mark.parametrize(
    ("body", "media"),
    [
        (b"{nope", JSON),
        (b"", JSON),
        (b"[]", JSON),
        (b'{"type": "task_started", "agent": "\xff"}', JSON),
        (b'{"type": "task_completed", "agent": "a", "duration": NaN}', JSON),
        (b'{"type": "task_completed", "agent": "a", "duration": Infinity}', JSON),
        (b'[{"type": "task_completed", "agent": "a", "duration": 1e999}]', JSON),
    ],
)
def test_unreadable_bodies_are_malformed(decoder, body, media):
    with pytest.raises(InvalidBatch) as info:
        decoder.decode(body, media)
    assert (REFUSALS[info.value.reason].status, info.value.reason) == (400, "malformed")


def test_ndjson_reports_bad_lines_by_index(decoder):
    body = (
        b'{"type": "task_started", "agent": "a"}\n{oops\n'
        b'{"type": "task_started", "agent": "a"}, {"type": "task_started", "agent": "b"}\n\xff'
    )
    assert problems(decoder, body, NDJSON) == [(1, None), (2, None), (3, None)]


def test_batch_size_limit_and_media_type(decoder):
    six = "\n".join(json.dumps({"type": "task_started", "agent": "a"}) for _ in range(6))
    with pytest.raises(InvalidBatch) as info:
        decoder.decode(six.encode(), NDJSON)
    assert (REFUSALS[info.value.reason].status, info.value.reason, info.value.events) == (413, "batch_too_large", 6)
    with pytest.raises(InvalidBatch) as info:
        decoder.decode(b"{}", "text/plain")
    assert (REFUSALS[info.value.reason].status, info.value.reason) == (415, "unsupported_media_type")


def test_every_event_type_has_a_decodable_minimal_example(decoder):
    minimal = {
        "agent_registered": {"agent": "a"},
        "agent_deregistered": {"agent": "a"},
        "agent_heartbeat": {"agent": "a"},
        "task_started": {"agent": "a"},
        "task_completed": {"agent": "a", "duration": 1},
        "task_failed": {"agent": "a"},
        "llm_request": {"agent": "a", "provider": "p", "model": "m", "duration": 1},
        "llm_usage": {"agent": "a", "provider": "p", "model": "m"},
        "tool_call": {"agent": "a", "tool": "t", "duration": 1},
        "consensus": {"council": "c", "formation_time": 1, "achieved": True},
        "coordination": {"council": "c", "session": "started"},
        "business": {"completed": True},
        "decision": {"council": "c", "predicted": True, "actual": False},
        "queue": {"queue": "q", "depth": 0},
        "alert": {"alert_id": "x", "alert_type": "system_health", "severity": "info"},
    }
    assert set(minimal) == set(EVENT_TYPES)
    body = "\n".join(json.dumps({"type": kind, **fields}) for kind, fields in minimal.items())
    decoded = EventDecoder(["worker"], 128, 100).decode(body.encode(), NDJSON)
    assert [type(e) for e in decoded] == list(EVENT_TYPES.values())


LLM = {"type": "llm_request", "agent": "a", "provider": "openai", "model": "gpt-4o", "duration": "1 s"}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"input_tokens": -1}, "input_tokens"),
        ({"output_tokens": 10**9 + 1}, "output_tokens"),
        ({"input_tokens": 1.5}, "input_tokens"),
        ({"input_tokens": 10, "cache_read_tokens": 8, "cache_write_tokens": 3}, "cache_read_tokens"),
        ({"output_tokens": 10, "reasoning_tokens": 11}, "reasoning_tokens"),
        ({"model": "has space"}, "model"),
        ({"duration": "NaN s"}, "duration"),
        ({"cost": -0.1}, "cost"),
    ],
)
def test_llm_requests_with_impossible_figures_are_refused(fields, field):
    decoder = EventDecoder(["worker"], 128, 100)
    assert problems(decoder, json.dumps({**LLM, **fields})) == [(0, field)]


def test_an_llm_request_within_bounds_decodes_in_base_units():
    decoder = EventDecoder(["worker"], 128, 100)
    fields = {"input_tokens": 10**9, "cache_read_tokens": 10**9, "output_tokens": 5, "reasoning_tokens": 5}
    [event] = decoder.decode(json.dumps({**LLM, **fields}).encode(), JSON)
    assert (event.duration, event.input_tokens, event.reason) == (1.0, 10**9, None)


USAGE = {"type": "llm_usage", "agent": "a", "provider": "openai", "model": "gpt-4o", "requests": 2}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"failures": 3, "reason": "timeout"}, "failures"),  # more than requests
        ({"failures": 1}, "reason"),  # failed for what?
        ({"input_tokens": 10, "cache_read_tokens": 11}, "cache_read_tokens"),
        ({"durations": [[-1, 2]]}, "durations"),
        ({"durations": [[1, -2]]}, "durations"),
        ({"input_tokens": -1}, "input_tokens"),
    ],
)
def test_llm_usage_with_impossible_figures_is_refused(fields, field):
    decoder = EventDecoder(["worker"], 128, 100)
    assert problems(decoder, json.dumps({**USAGE, **fields})) == [(0, field)]


def test_llm_usage_totals_may_pass_the_per_request_token_bound():
    decoder = EventDecoder(["worker"], 128, 100)
    [event] = decoder.decode(json.dumps({**USAGE, "input_tokens": 10**12}).encode(), JSON)
    assert event.input_tokens == 10**12


@pytest.mark.parametrize("kind", [["task_started"], {"a": 1}, 7, None])
def test_a_type_that_is_not_a_string_is_a_problem_not_a_crash(decoder, kind):
    batch = [{"type": "task_started", "agent": "a"}, {"type": kind, "agent": "a"}]
    assert problems(decoder, json.dumps(batch)) == [(1, "type")]
    assert problems(decoder, "\n".join(map(json.dumps, batch)), NDJSON) == [(1, "type")]


def test_every_event_of_the_shared_table_decodes_alone_in_an_array_and_as_ndjson():
    decoder = EventDecoder(["worker", "orchestrator"], max_label_length=128, max_events=100)
    as_array = decoder.decode(json.dumps(list(ONE_OF_EACH)).encode(), JSON)
    assert decoder.decode(ndjson(ONE_OF_EACH), NDJSON) == as_array
    assert [decoder.decode(json.dumps(e).encode(), JSON)[0] for e in ONE_OF_EACH] == as_array
    assert {type(event) for event in as_array} == set(EVENT_TYPES.values())


TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
TRACED = {
    "task_completed": {"agent": "a", "duration": 1},
    "task_failed": {"agent": "a"},
    "llm_request": {"agent": "a", "provider": "p", "model": "m", "duration": 1},
    "tool_call": {"agent": "a", "tool": "t", "duration": 1},
}


@pytest.mark.parametrize("kind", TRACED)
def test_traced_events_carry_a_trace_id_and_span_id(decoder, kind):
    body = ndjson(
        [
            {"type": kind, **TRACED[kind], "trace_id": TRACE_ID, "span_id": SPAN_ID},
            {"type": kind, **TRACED[kind], "trace_id": TRACE_ID},
            {"type": kind, **TRACED[kind]},
        ]
    )
    events = decoder.decode(body, NDJSON)
    assert [(e.trace_id, e.span_id) for e in events] == [(TRACE_ID, SPAN_ID), (TRACE_ID, None), (None, None)]


@pytest.mark.parametrize(
    "case",  # (fields, the field named, what its message says)
    [
        ({"trace_id": "0" * 32}, "trace_id", "'00000000000000000000000000000000' is not a valid trace id"),
        ({"trace_id": TRACE_ID.upper()}, "trace_id", "32 lowercase hex digits, not all zero"),
        ({"trace_id": TRACE_ID[:-1]}, "trace_id", "32 lowercase hex digits"),
        ({"trace_id": TRACE_ID + "\n"}, "trace_id", "is not a valid trace id"),
        ({"trace_id": TRACE_ID[:-1] + "g"}, "trace_id", "is not a valid trace id"),
        ({"trace_id": 42}, "trace_id", "got `int`: give 32 lowercase hex digits"),
        ({"trace_id": TRACE_ID, "span_id": "0" * 16}, "span_id", "'0000000000000000' is not a valid span id"),
        ({"trace_id": TRACE_ID, "span_id": TRACE_ID}, "span_id", "16 lowercase hex digits, not all zero"),
        ({"span_id": SPAN_ID}, "span_id", "only allowed with trace_id"),
    ],
)
@pytest.mark.parametrize("kind", TRACED)
@pytest.mark.parametrize("media", [JSON, NDJSON])
def test_bad_trace_ids_are_named_and_explained(decoder, case, kind, media):
    fields, field, says = case
    event = {"type": kind, **TRACED[kind], **fields}
    batch = [{"type": "task_started", "agent": "ok"}, event]
    body = json.dumps(batch) if media == JSON else ndjson(batch)
    with pytest.raises(InvalidBatch) as info:
        decoder.decode(body.encode() if isinstance(body, str) else body, media)
    [problem] = info.value.problems
    assert (problem.index, problem.field) == (1, field)
    assert says in problem.message, problem.message
    assert "regex" not in problem.message


@pytest.mark.parametrize("kind", ["task_started", "agent_heartbeat", "agent_registered"])
def test_only_events_with_a_duration_take_a_trace_id(decoder, kind):
    assert problems(decoder, json.dumps({"type": kind, "agent": "a", "trace_id": TRACE_ID})) == [(0, "trace_id")]
