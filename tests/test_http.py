"""The ingest API and the scrape endpoints over real HTTP on a loopback port.

Every rejection is checked three ways: the status, the JSON error body (reason, message and,
for validation errors, every problem with its index and field), and that ``/metrics`` is
unchanged apart from the exporter's own ``agency_exporter_*`` series.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, NamedTuple

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry.events import EVENT_TYPES
from agency_telemetry.routes import EXPOSITION

from support.events import ONE_OF_EACH, ndjson
from support.exporter import Exporter
from support.metrics import agent_samples, samples, value
from support.processes import promtool_check_metrics

JSON = "application/json"
NDJSON = "application/x-ndjson"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"

# A store with agents, a council, a queue, the workflow and an alert, so that a rejected
# request that changed anything would show in /metrics.
SEED = (
    {"type": "agent_registered", "agent": "seed-1", "agent_type": "worker", "capacity": 2},
    {"type": "task_started", "agent": "seed-1"},
    {"type": "task_completed", "agent": "seed-1", "duration": 1200},
    {"type": "agent_heartbeat", "agent": "seed-2", "agent_type": "researcher", "cpu": 0.5},
    {"type": "consensus", "council": "ethics", "formation_time": 800, "achieved": True},
    {"type": "queue", "queue": "intake", "depth": 3},
    {"type": "business", "completed": True, "cost": 0.5},
    {"type": "alert", "alert_id": "al-1", "alert_type": "system_health", "severity": "info"},
)


def event(**fields: Any) -> dict[str, Any]:
    return {"type": "task_started", "agent": "a1", **fields}


def one(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def exporter_lines(text: str) -> set[str]:
    return {line for line in text.splitlines() if "agency_exporter_" not in line}


async def seeded(make_exporter: Callable[..., Any], config: str | None = None) -> Exporter:
    exp: Exporter = await make_exporter(config)
    for start in range(0, len(SEED), 2):  # small batches, so that tight batch limits still let the seed in
        await exp.send(*SEED[start : start + 2])
    return exp


@pytest.fixture
async def populated(make_exporter: Callable[..., Any]) -> AsyncIterator[Exporter]:
    yield await seeded(make_exporter)


async def assert_rejected(
    exp: Exporter,
    body: bytes,
    content_type: str,
    status: int,
    reason: str,
    *,
    problems: list[tuple[int | None, str | None]] | None = None,
    rejected_events: int | None = None,
) -> dict[str, Any]:
    """Post ``body``; check the answer, the self-metrics, and that nothing else in /metrics moved."""
    before = await exp.metrics()
    resp = await exp.client.post("/v1/events", data=body, headers={"Content-Type": content_type})
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    payload: dict[str, Any] = await resp.json()
    assert payload["error"] == reason, payload
    assert isinstance(payload["message"], str)
    assert payload["message"].strip(), payload
    if problems is None:
        assert not payload.get("problems"), payload
    else:
        listed = payload["problems"]
        assert isinstance(listed, list)
        assert [(p["index"], p["field"]) for p in listed] == problems, listed
        for problem in listed:
            assert set(problem) == {"index", "field", "message"}
            assert isinstance(problem["message"], str)
            assert problem["message"].strip()
    after = await exp.metrics()
    assert agent_samples(after) == agent_samples(before)
    assert exporter_lines(after) == exporter_lines(before)
    counted = value(after, "agency_exporter_requests_rejected_total", reason=reason)
    assert counted == (value(before, "agency_exporter_requests_rejected_total", reason=reason) or 0) + 1
    if rejected_events is not None:
        moved = value(after, "agency_exporter_events_rejected_total", reason=reason)
        assert moved == (value(before, "agency_exporter_events_rejected_total", reason=reason) or 0) + rejected_events
    return payload


# --- bad input ---------------------------------------------------------------------------

LONG_ID = "a" * 129


class Bad(NamedTuple):
    body: bytes
    content_type: str
    status: int
    reason: str
    problems: list[tuple[int | None, str | None]] | None  # (index, field) of each problem, in order


def bad(
    body: bytes,
    content_type: str,
    status: int,
    reason: str,
    problems: list[tuple[int | None, str | None]] | None = None,
    *,
    id: str,
) -> Any:
    return pytest.param(Bad(body, content_type, status, reason, problems), id=id)


BAD_INPUT = [
    bad(b'{"type": "task_started", "agent": ', JSON, 400, "malformed", None, id="malformed-json"),
    bad(b'[{"type": "task_started", "agent": "a1"},]', JSON, 400, "malformed", None, id="trailing-comma"),
    bad(b"", JSON, 400, "malformed", None, id="empty-body"),
    bad(b"[]", JSON, 400, "malformed", None, id="empty-array"),
    bad(b'{"type": "task_started", "agent": "a\xff1"}', JSON, 400, "malformed", None, id="invalid-utf8"),
    bad(b'{"type": "task_started", "agent": "a\xff1"}', NDJSON, 400, "invalid", [(0, None)], id="invalid-utf8-ndjson"),
    bad(b'{"type": "task_started", "agent": ', NDJSON, 400, "invalid", [(0, None)], id="malformed-ndjson"),
    bad(one(type="task_started", agent="a1"), "text/plain", 415, "unsupported_media_type", None, id="text"),
    bad(
        one(type="task_started", agent="a1"), "application/octet-stream", 415, "unsupported_media_type", None, id="bin"
    ),
    bad(one(type="task_begun", agent="a1"), JSON, 400, "invalid", [(0, "type")], id="unknown-type"),
    bad(one(agent="a1"), JSON, 400, "invalid", [(0, "type")], id="missing-type"),
    bad(one(type="task_started"), JSON, 400, "invalid", [(0, "agent")], id="missing-agent"),
    bad(one(type="task_completed", agent="a1"), JSON, 400, "invalid", [(0, "duration")], id="missing-dur"),
    bad(one(type="task_started", agent="a1", colour="red"), JSON, 400, "invalid", [(0, "colour")], id="unknown-field"),
    bad(one(type="task_completed", agent="a1", duration="abc"), JSON, 400, "invalid", [(0, "duration")], id="dur-abc"),
    bad(
        one(type="consensus", council="ethics", formation_time=10, achieved=1),
        JSON,
        400,
        "invalid",
        [(0, "achieved")],
        id="number-for-bool",
    ),
    bad(
        one(type="agent_registered", agent="a1", capacity="4"),
        JSON,
        400,
        "invalid",
        [(0, "capacity")],
        id="string-for-int",
    ),
    bad(one(type="task_started", agent=7), JSON, 400, "invalid", [(0, "agent")], id="number-for-id"),
    bad(b'{"type": "task_completed", "agent": "a1", "duration": NaN}', JSON, 400, "malformed", None, id="nan-literal"),
    bad(b'{"type": "task_completed", "agent": "a1", "duration": Infinity}', JSON, 400, "malformed", None, id="inf"),
    bad(b'{"type": "task_completed", "agent": "a1", "duration": 1e999}', JSON, 400, "malformed", None, id="1e999"),
    bad(
        one(type="task_completed", agent="a1", duration="1e999 ms"),
        JSON,
        400,
        "invalid",
        [(0, "duration")],
        id="1e999-string",
    ),
    bad(one(type="task_completed", agent="a1", duration=-5), JSON, 400, "invalid", [(0, "duration")], id="negative"),
    bad(
        one(type="task_completed", agent="a1", duration="-5 s"),
        JSON,
        400,
        "invalid",
        [(0, "duration")],
        id="negative-with-unit",
    ),
    bad(one(type="agent_heartbeat", agent="a1", cpu=1.5), JSON, 400, "invalid", [(0, "cpu")], id="cpu-1.5"),
    bad(one(type="agent_heartbeat", agent="a1", cpu="150 %"), JSON, 400, "invalid", [(0, "cpu")], id="cpu-150%"),
    bad(one(type="task_completed", agent="a1", duration="5 kg"), JSON, 400, "invalid", [(0, "duration")], id="5kg"),
    bad(one(type="agent_heartbeat", agent="a1", memory="5 s"), JSON, 400, "invalid", [(0, "memory")], id="mem-in-s"),
    bad(
        one(type="task_completed", agent="a1", duration=1, quality_score=1.5),
        JSON,
        400,
        "invalid",
        [(0, "quality_score")],
        id="score>1",
    ),
    bad(
        one(type="task_started", agent="a1", agent_type="wizard"),
        JSON,
        400,
        "invalid",
        [(0, "agent_type")],
        id="unknown-agent-type",
    ),
    bad(one(type="task_started", agent=LONG_ID), JSON, 400, "invalid", [(0, "agent")], id="long-agent"),
    bad(one(type="queue", queue=LONG_ID, depth=1), JSON, 400, "invalid", [(0, "queue")], id="long-queue-name"),
    bad(one(type="task_started", agent="a1", id=LONG_ID), JSON, 400, "invalid", [(0, "id")], id="long-event-id"),
    bad(one(type="task_started", agent="a\nb"), JSON, 400, "invalid", [(0, "agent")], id="newline"),
    bad(one(type="task_started", agent="a1\n"), JSON, 400, "invalid", [(0, "agent")], id="trailing-newline"),
    bad(
        one(type="coordination", council="ethics\n", session="started"),
        JSON,
        400,
        "invalid",
        [(0, "council")],
        id="council-trailing-newline",
    ),
    bad(one(type="task_started", agent='a"1'), JSON, 400, "invalid", [(0, "agent")], id="quote"),
    bad(one(type="task_started", agent="a 1"), JSON, 400, "invalid", [(0, "agent")], id="space"),
    bad(one(type="task_started", agent=""), JSON, 400, "invalid", [(0, "agent")], id="empty-id"),
    bad(one(type="decision", predicted=True, actual=True), JSON, 400, "invalid", [(0, "council")], id="cross-field"),
    bad(b"[1]", JSON, 400, "invalid", [(0, None)], id="not-an-object"),
    bad(ndjson([event(), [event(), event()]]), NDJSON, 400, "invalid", [(1, None)], id="ndjson-line-with-an-array"),
]


@pytest.mark.parametrize("case", BAD_INPUT)
async def test_bad_input_is_rejected_and_changes_nothing(populated: Exporter, case: Bad) -> None:
    rejected_events = None
    if case.reason == "invalid":  # a batch that was read counts all its events as rejected
        if case.content_type == NDJSON:
            rejected_events = len([line for line in case.body.split(b"\n") if line.strip()])
        else:
            parsed = json.loads(case.body)
            rejected_events = len(parsed) if isinstance(parsed, list) else 1
    await assert_rejected(
        populated,
        case.body,
        case.content_type,
        case.status,
        case.reason,
        problems=case.problems,
        rejected_events=rejected_events,
    )


@pytest.mark.parametrize("content_type", [JSON, NDJSON])
async def test_one_invalid_event_rejects_the_whole_batch(populated: Exporter, content_type: str) -> None:
    batch = [
        event(agent="seed-1"),
        {"type": "consensus", "council": "ethics", "formation_time": 10, "achieved": True},
        event(agent="new-agent"),
        {"type": "task_completed", "agent": "seed-1", "duration": "ten seconds"},
        {"type": "business", "completed": True},
    ]
    body = json.dumps(batch).encode() if content_type == JSON else ndjson(batch)
    payload = await assert_rejected(
        populated, body, content_type, 400, "invalid", problems=[(3, "duration")], rejected_events=5
    )
    assert "1 of 5" in payload["message"]


@pytest.mark.parametrize("content_type", [JSON, NDJSON])
async def test_every_invalid_event_of_a_batch_is_listed(populated: Exporter, content_type: str) -> None:
    batch = [
        event(agent="seed-1"),
        {"type": "agent_heartbeat", "agent": "seed-1", "cpu": 2},
        event(agent="seed-2"),
        {"type": "queue", "queue": "intake"},
        event(agent="seed-1", agent_type="wizard"),
    ]
    body = json.dumps(batch).encode() if content_type == JSON else ndjson(batch)
    payload = await assert_rejected(
        populated,
        body,
        content_type,
        400,
        "invalid",
        problems=[(1, "cpu"), (3, "depth"), (4, "agent_type")],
        rejected_events=5,
    )
    assert "3 of 5" in payload["message"]


async def test_two_problems_in_one_event_are_both_listed(populated: Exporter) -> None:
    body = one(type="task_completed", agent="bad agent", duration="5 kg")
    await assert_rejected(
        populated, body, JSON, 400, "invalid", problems=[(0, "agent"), (0, "duration")], rejected_events=1
    )


async def test_body_over_the_limit_is_413(make_exporter: Callable[..., Any]) -> None:
    exp = await seeded(make_exporter, "limits: {max_body_size: 1 KiB}")
    batch = [event(agent=f"agent-{i}") for i in range(60)]
    body = ndjson(batch)
    assert len(body) > 1024
    payload = await assert_rejected(exp, body, NDJSON, 413, "body_too_large")
    assert "1024" in payload["message"]
    # Just under the limit is fine: it is the size that was refused, not the content.
    small = ndjson(batch[:20])
    assert len(small) <= 1024
    status, answer = await exp.post(small)
    assert (status, answer) == (202, {"accepted": 20, "duplicates": 0})


async def test_chunked_body_over_the_limit_is_413(make_exporter: Callable[..., Any]) -> None:
    exp = await seeded(make_exporter, "limits: {max_body_size: 1 KiB}")
    before = await exp.metrics()

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the limit applies while reading
        for i in range(60):
            yield json.dumps(event(agent=f"agent-{i}")).encode() + b"\n"

    resp = await exp.client.post("/v1/events", data=chunks(), headers={"Content-Type": NDJSON})
    assert resp.status == 413
    assert (await resp.json())["error"] == "body_too_large"
    after = await exp.metrics()
    assert agent_samples(after) == agent_samples(before)
    assert value(after, "agency_exporter_requests_rejected_total", reason="body_too_large") == 1


@pytest.mark.parametrize("content_type", [JSON, NDJSON])
async def test_too_many_events_is_413(make_exporter: Callable[..., Any], content_type: str) -> None:
    exp = await seeded(make_exporter, "limits: {max_events_per_batch: 3}")
    batch = [event(agent="seed-1")] * 4
    body = json.dumps(batch).encode() if content_type == JSON else ndjson(batch)
    payload = await assert_rejected(exp, body, content_type, 413, "batch_too_large", rejected_events=4)
    assert "3" in payload["message"]
    body = json.dumps(batch[:3]).encode() if content_type == JSON else ndjson(batch[:3])
    resp = await exp.client.post("/v1/events", data=body, headers={"Content-Type": content_type})
    assert resp.status == 202
    assert await resp.json() == {"accepted": 3, "duplicates": 0}


async def test_new_agent_past_the_agent_limit_is_429(make_exporter: Callable[..., Any]) -> None:
    exp: Exporter = await make_exporter("limits: {max_agents: 2}")
    await exp.send(event(agent="a1"), event(agent="a2"))
    batch = [event(agent="a1"), event(agent="a3"), {"type": "agent_heartbeat", "agent": "a2", "cpu": 0.3}]
    payload = await assert_rejected(exp, ndjson(batch), NDJSON, 429, "agents_limit", rejected_events=3)
    assert "max_agents" in payload["message"]
    text = await exp.metrics()
    assert value(text, "agency_exporter_tracked", kind="agent") == 2
    assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 1
    assert value(text, "agency_agent_info", agent="a3", agent_type="unknown") is None
    # Known agents still get through, and a second rejection counts again.
    await exp.send(event(agent="a1"))
    await assert_rejected(exp, ndjson([event(agent="a4")]), NDJSON, 429, "agents_limit", rejected_events=1)
    text = await exp.metrics()
    assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 2
    assert value(text, "agency_exporter_requests_rejected_total", reason="agents_limit") == 2
    assert value(text, "agency_exporter_events_rejected_total", reason="agents_limit") == 4


# --- good input --------------------------------------------------------------------------


async def test_single_json_object_is_accepted(exporter: Exporter) -> None:
    status, payload = await exporter.post(one(type="task_started", agent="a1"), JSON)
    assert (status, payload) == (202, {"accepted": 1, "duplicates": 0})
    text = await exporter.metrics()
    assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 1


async def test_json_array_is_accepted(exporter: Exporter) -> None:
    batch = [
        {"type": "agent_registered", "agent": "a1", "agent_type": "worker", "capacity": 3},
        event(),
        {"type": "task_completed", "agent": "a1", "duration": 2500},
    ]
    status, payload = await exporter.post(json.dumps(batch), JSON)
    assert (status, payload) == (202, {"accepted": 3, "duplicates": 0})
    text = await exporter.metrics()
    labels = {"agent": "a1", "agent_type": "worker"}
    assert value(text, "agency_agent_capacity_tasks", **labels) == 3
    assert value(text, "agency_agent_tasks_total", **labels) == 1
    assert value(text, "agency_agent_active_tasks", **labels) == 0
    assert value(text, "agency_agent_task_duration_seconds_sum", **labels) == 2.5


async def test_ndjson_with_blank_lines_is_accepted(exporter: Exporter) -> None:
    lines = [json.dumps(event(agent="a1")), json.dumps(event(agent="a2")), json.dumps(event(agent="a1"))]
    body = "\n\n" + lines[0] + "\n   \n" + lines[1] + "\r\n\n" + lines[2] + "\n\n"
    status, payload = await exporter.post(body, NDJSON)
    assert (status, payload) == (202, {"accepted": 3, "duplicates": 0})
    text = await exporter.metrics()
    assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 2
    assert value(text, "agency_agent_active_tasks", agent="a2", agent_type="unknown") == 1


async def test_content_type_parameters_are_ignored(exporter: Exporter) -> None:
    status, payload = await exporter.post(one(type="task_started", agent="a1"), "application/json; charset=utf-8")
    assert (status, payload) == (202, {"accepted": 1, "duplicates": 0})


# --- dedup -------------------------------------------------------------------------------


async def test_repeated_id_in_one_batch_counts_once(exporter: Exporter) -> None:
    status, payload = await exporter.post(ndjson([event(id="e-1"), event(id="e-1"), event(id="e-2")]))
    assert (status, payload) == (202, {"accepted": 2, "duplicates": 1})
    text = await exporter.metrics()
    assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 2
    assert value(text, "agency_exporter_events_duplicate_total") == 1


async def test_repeated_id_across_batches_counts_once(exporter: Exporter) -> None:
    first = {"type": "task_completed", "agent": "a1", "duration": 1000, "id": "retry-me"}
    assert await exporter.send(first) == {"accepted": 1, "duplicates": 0}
    text = await exporter.metrics()
    assert value(text, "agency_exporter_events_duplicate_total") == 0
    # A retry of the same event in a new batch, next to a fresh one.
    assert await exporter.send(first, {**first, "id": "fresh"}) == {"accepted": 1, "duplicates": 1}
    assert await exporter.send(first) == {"accepted": 0, "duplicates": 1}
    text = await exporter.metrics()
    assert value(text, "agency_agent_tasks_total", agent="a1", agent_type="unknown") == 2
    assert value(text, "agency_agent_task_duration_seconds_count", agent="a1", agent_type="unknown") == 2
    assert value(text, "agency_exporter_events_duplicate_total") == 2


async def test_events_without_id_are_never_duplicates(exporter: Exporter) -> None:
    assert await exporter.send(event(), event()) == {"accepted": 2, "duplicates": 0}
    assert await exporter.send(event()) == {"accepted": 1, "duplicates": 0}
    text = await exporter.metrics()
    assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 3
    assert value(text, "agency_exporter_events_duplicate_total") == 0


# --- self-metrics ------------------------------------------------------------------------


async def test_events_received_are_counted_by_type(exporter: Exporter) -> None:
    await exporter.send(
        {"type": "agent_registered", "agent": "a1"},
        event(),
        event(),
        {"type": "business", "completed": True},
    )
    await exporter.send(event())
    status, _ = await exporter.post(ndjson([event(), {"type": "business", "completed": "yes"}]))
    assert status == 400  # rejected batches are not received
    text = await exporter.metrics()
    received = {
        dict(labels)["type"]: count
        for (name, labels), count in samples(text).items()
        if name == "agency_exporter_events_received_total"
    }
    assert set(received) == set(EVENT_TYPES)
    assert received["task_started"] == 3
    assert received["agent_registered"] == 1
    assert received["business"] == 1
    assert sum(received.values()) == 5


# --- /metrics ----------------------------------------------------------------------------


@pytest.fixture
async def everything(exporter: Exporter) -> Exporter:
    assert {e["type"] for e in ONE_OF_EACH} == set(EVENT_TYPES), "ONE_OF_EACH must hold one event of every type"
    assert await exporter.send(*ONE_OF_EACH) == {"accepted": len(ONE_OF_EACH), "duplicates": 0}
    return exporter


async def test_metrics_is_prometheus_text_by_default(everything: Exporter) -> None:
    resp = await everything.client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "Content-Encoding" not in resp.headers
    text = await resp.text()
    assert "# EOF" not in text
    assert value(text, "agency_agent_tasks_total", agent="a1", agent_type="worker") == 2


async def test_every_family_has_help_and_type(everything: Exporter) -> None:
    text = await everything.metrics()
    helps = {line.split()[2] for line in text.splitlines() if line.startswith("# HELP ")}
    types = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    assert helps == types
    assert len(types) > 30
    for family in text_string_to_metric_families(text):
        assert family.documentation.strip(), family.name
        assert family.type != "unknown", family.name
    # Every sample belongs to a family announced by a TYPE line.
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name = line.split("{")[0].split(" ")[0]
            assert any(name == t or name.startswith(t + "_") for t in types), line


async def test_metrics_negotiates_openmetrics(everything: Exporter) -> None:
    resp = await everything.client.get("/metrics", headers={"Accept": OPENMETRICS})
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("application/openmetrics-text")
    text = await resp.text()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in openmetrics_families(text)}
    assert families["agency_agent_tasks"].type == "counter"
    tasks = {s.name: s.value for s in families["agency_agent_tasks"].samples if s.labels.get("agent") == "a1"}
    assert tasks == {"agency_agent_tasks_total": 2}
    assert families["agency_agent_task_duration_seconds"].type == "histogram"
    assert families["agency_reported_alert"].samples[0].labels["message"] == 'a "quoted" \\ message\non two lines'
    assert "agency_exporter_requests_rejected" in families
    # The same series as the Prometheus text, under either format's names.
    prometheus = {s.name for f in text_string_to_metric_families(await everything.metrics()) for s in f.samples}
    assert {s.name for f in families.values() for s in f.samples} >= prometheus
    assert not [n for n in prometheus if n.endswith("_created")]  # no series nobody queries


async def test_metrics_gzip_when_asked(everything: Exporter) -> None:
    plain_resp = await everything.client.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "Content-Encoding" not in plain_resp.headers
    plain = await plain_resp.text()
    resp = await everything.client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    assert resp.status == 200
    assert resp.headers["Content-Encoding"] == "gzip"
    assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    raw = await resp.read()
    assert raw[:2] == b"\x1f\x8b"
    unzipped = gzip.decompress(raw).decode()
    assert exporter_lines(unzipped) == exporter_lines(plain)
    assert agent_samples(unzipped) == agent_samples(plain)


async def test_openmetrics_gzip(everything: Exporter) -> None:
    headers = {"Accept": OPENMETRICS, "Accept-Encoding": "gzip, deflate"}
    resp = await everything.client.get("/metrics", headers=headers, auto_decompress=False)
    assert resp.headers["Content-Encoding"] == "gzip"
    text = gzip.decompress(await resp.read()).decode()
    assert text.endswith("# EOF\n")
    assert list(openmetrics_families(text))


@pytest.mark.integration
async def test_promtool_accepts_a_store_with_every_event_type(everything: Exporter) -> None:
    text = await everything.metrics()
    # Every event type really produced series, so promtool sees all of them.
    names = {name for name, _ in samples(text)}
    for name in (
        "agency_agent_info",
        "agency_agent_capacity_tasks",
        "agency_agent_cpu_usage_ratio",
        "agency_agent_memory_bytes",
        "agency_agent_active_tasks",
        "agency_agent_task_duration_seconds_bucket",
        "agency_agent_task_quality_score_sum",
        "agency_agent_task_failures_total",
        "agency_agent_decisions_total",
        "agency_council_compliance_violations_total",
        "agency_council_debate_rounds_bucket",
        "agency_council_sessions_active",
        "agency_council_decisions_total",
        "agency_workflow_task_quality_score_bucket",
        "agency_queue_wait_seconds_bucket",
        "agency_reported_alert",
    ):
        assert name in names, name
    assert value(text, "agency_agent_info", agent="leaving", agent_type="orchestrator") is None
    assert await asyncio.to_thread(promtool_check_metrics, text) == (0, "", "")


# --- other endpoints ---------------------------------------------------------------------


async def test_healthz_and_readyz(exporter: Exporter) -> None:
    for path in ("/healthz", "/readyz"):
        resp = await exporter.client.get(path)
        assert resp.status == 200, path
        assert (await resp.text()).strip()


async def test_landing_page_links_and_limits(make_exporter: Callable[..., Any]) -> None:
    exp: Exporter = await make_exporter("limits: {max_agents: 4321, max_events_per_batch: 777}")
    resp = await exp.client.get("/")
    assert resp.status == 200
    assert resp.content_type == "text/html"
    page = await resp.text()
    assert 'href="/metrics"' in page
    assert 'href="/healthz"' in page
    assert 'href="/readyz"' in page
    assert "/v1/events" in page
    assert "max_agents" in page
    assert "4321" in page
    assert "777" in page


@pytest.mark.parametrize(
    ("header", "gzipped"),
    [("gzip", True), ("deflate, gzip;q=0.5", True), ("gzip;q=0", False), ("identity", False), ("*", True), ("", False)],
)
async def test_gzip_follows_accept_encoding_quality(exporter: Exporter, header: str, gzipped: bool) -> None:
    resp = await exporter.client.get("/metrics", headers={"Accept-Encoding": header}, auto_decompress=False)
    assert (resp.headers.get("Content-Encoding") == "gzip") is gzipped


def big_fleet(agents: int) -> list[dict[str, Any]]:
    """Every agent with a histogram, failures and gauges: about 40 sample lines each."""
    events: list[dict[str, Any]] = []
    for n in range(agents):
        agent = {"agent": f"agent-{n}", "agent_type": "worker"}
        events += [
            {"type": "agent_heartbeat", "cpu": 0.5, "memory": 1000, "queue_depth": 2, **agent},
            {"type": "task_completed", "duration": 100 + n, "quality_score": 0.9, "cost": 0.01, **agent},
            {"type": "task_failed", "reason": "timeout", "duration": 50, **agent},
        ]
    return events


async def send_big_fleet(exp: Exporter, agents: int) -> None:
    events = big_fleet(agents)
    for start in range(0, len(events), 1000):
        status, body = await exp.post(ndjson(events[start : start + 1000]))
        assert status == 202, body


async def test_a_big_scrape_comes_in_pieces_and_gzips_to_the_same_text(exporter: Exporter) -> None:
    await send_big_fleet(exporter, 2000)
    pieces = list(exporter.app[EXPOSITION].pieces())
    assert len(pieces) > 5  # ~80,000 lines in pieces of PIECE_LINES
    assert all(piece.endswith(b"\n") for piece in pieces)
    plain = await (await exporter.client.get("/metrics", headers={"Accept-Encoding": "identity"})).text()
    assert exporter_lines(plain) == exporter_lines(b"".join(pieces).decode())
    resp = await exporter.client.get("/metrics", headers={"Accept-Encoding": "gzip"}, auto_decompress=False)
    unzipped = gzip.decompress(await resp.read()).decode()
    assert exporter_lines(unzipped) == exporter_lines(plain)
    assert value(plain, "agency_exporter_series") == sum(
        1 for line in plain.splitlines() if line and not line.startswith(("#", "agency_exporter_"))
    )


async def test_ingest_is_served_while_a_big_scrape_renders(exporter: Exporter) -> None:
    await send_big_fleet(exporter, 5000)  # ~200,000 lines: a scrape takes a good fraction of a second

    async def scrape_whole() -> bytes:
        response = await exporter.client.get("/metrics")  # returns once the headers are in
        return await response.read()

    scrape = asyncio.ensure_future(scrape_whole())
    await asyncio.sleep(0.02)  # the scrape is being rendered
    ingest = asyncio.ensure_future(exporter.send({"type": "task_started", "agent": "late", "agent_type": "worker"}))
    done, _ = await asyncio.wait({scrape, ingest}, return_when=asyncio.FIRST_COMPLETED)
    assert done == {ingest}, "the ingest request waited for the whole scrape"
    assert b"agency_agent_info" in await scrape
