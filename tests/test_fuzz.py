"""Property-based tests: no input makes the decoder, the store or the HTTP API misbehave.

Whatever arrives — arbitrary bytes, arbitrary JSON, or event-shaped objects with odd values —
a batch is either applied whole or rejected with a 4xx listing problems; nothing is half
applied, nothing raises past the API, and /metrics stays parseable.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry.decoder import MEDIA_TYPES, InvalidBatch
from agency_telemetry.events import EVENT_CLASSES, EVENT_TYPES
from agency_telemetry.limits import LimitExceeded
from agency_telemetry.refusals import REFUSALS

from support.events import ONE_OF_EACH
from support.exporter import Exporter
from support.harness import Harness
from support.metrics import agent_samples

FIELDS = sorted({name for cls in EVENT_CLASSES for name in cls.__struct_fields__})
# Few limits, so that limit rejections are exercised too.
TIGHT = "limits: {max_agents: 5, max_councils: 3, max_queues: 2, max_active_alerts: 2, max_label_length: 12}"

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["5 ms", "1.5 s", "2 m", "512 MiB", "85 %", "1e400 s", "-1 s", "nan", "5 parsecs", "worker"]),
    st.sampled_from(["a", "judge-1", "a b", "ä", "x" * 20, "", "started", "ended", "critical", "resolved"]),
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
)
event_like = st.fixed_dictionaries(
    {"type": st.sampled_from([*EVENT_TYPES, "nonsense"])},
    optional=dict.fromkeys(FIELDS, json_values),
)
# One valid event of each type; the fuzzer renames owners and breaks one field at a time.
TEMPLATES = ONE_OF_EACH
OWNERS = {"agent": "a", "council": "c", "queue": "q", "alert_id": "al", "violated_principle": "p"}


@st.composite
def renamed_events(draw: st.DrawFn) -> dict[str, Any]:
    """A valid event whose owners are one of a few names, so that limits are reached."""
    event = dict(draw(st.sampled_from(TEMPLATES)))
    for key, prefix in OWNERS.items():
        if key in event:
            event[key] = f"{prefix}{draw(st.integers(0, 6))}"
    return event


@st.composite
def mutated_events(draw: st.DrawFn) -> dict[str, Any]:
    event = draw(renamed_events())
    if draw(st.booleans()):
        event[draw(st.sampled_from(sorted(event)))] = draw(json_values)
    if draw(st.booleans()):
        event["id"] = draw(st.sampled_from(["e1", "e2", "e3"]))  # repeats, within and across batches
    return event


batches = st.lists(st.one_of(mutated_events(), event_like), min_size=0, max_size=6)


def encode(batch: list[Any], media_type: str) -> bytes:
    if media_type == "application/json":
        return json.dumps(batch).encode()
    return "\n".join(json.dumps(item) for item in batch).encode()


def seeded_harness() -> Harness:
    harness = Harness(TIGHT)
    harness.send(
        {"type": "agent_registered", "agent": "seed", "agent_type": "worker", "capacity": 2},
        {"type": "consensus", "council": "ethics", "formation_time": 100, "achieved": True},
    )
    return harness


def status_of(error: InvalidBatch) -> int:
    status = REFUSALS[error.reason].status
    assert status is not None
    return status


def check_parseable(text: str) -> None:
    list(text_string_to_metric_families(text))


@settings(max_examples=300, deadline=None)
@given(body=st.binary(max_size=300), media_type=st.sampled_from([*MEDIA_TYPES, "text/plain"]))
def test_arbitrary_bytes_are_decoded_or_rejected_with_a_4xx(body: bytes, media_type: str) -> None:
    decoder = Harness().decoder
    try:
        decoder.decode(body, media_type)
    except InvalidBatch as exc:
        assert 400 <= status_of(exc) < 500


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches, media_type=st.sampled_from(MEDIA_TYPES))
def test_a_batch_is_applied_whole_or_not_at_all(batch: list[Any], media_type: str) -> None:
    harness = seeded_harness()
    before = agent_samples(harness.text())
    body = encode(batch, media_type)
    try:
        events = harness.decoder.decode(body, media_type)
    except InvalidBatch as exc:
        event(f"rejected {status_of(exc)}")
        assert 400 <= status_of(exc) < 500
        assert status_of(exc) != 400 or exc.reason == "malformed" or exc.problems, "a 400 lists what is wrong"
        assert agent_samples(harness.text()) == before
        return
    # The fast check and the explaining slow check agree: an accepted batch has no problems.
    fresh = harness.decoder._decode(body, media_type)
    assert [p for i, e in enumerate(fresh) for p in harness.decoder._post_check(i, e)] == []
    try:
        harness.store.apply(events)
    except LimitExceeded:
        event("over a limit")
        assert agent_samples(harness.text()) == before
        return
    event("applied")
    check_parseable(harness.text())


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(items=st.lists(json_values, max_size=4), media_type=st.sampled_from(MEDIA_TYPES))
def test_arbitrary_json_never_breaks_the_exposition(items: list[Any], media_type: str) -> None:
    harness = seeded_harness()
    with contextlib.suppress(InvalidBatch, LimitExceeded):
        harness.store.apply(harness.decoder.decode(encode(items, media_type), media_type))
    check_parseable(harness.text())
    check_parseable(harness.text(openmetrics=True).replace("# EOF\n", ""))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=st.one_of(st.binary(max_size=200), batches.map(lambda b: encode(b, "application/x-ndjson"))),
    media_type=st.sampled_from([*MEDIA_TYPES, "text/plain", ""]),
)
async def test_the_http_api_answers_every_body_without_a_5xx(exporter: Exporter, body: bytes, media_type: str) -> None:
    resp = await exporter.client.post("/v1/events", data=body, headers={"Content-Type": media_type})
    assert resp.status in (202, 400, 413, 415, 429), await resp.text()
    payload = await resp.json()
    assert ("accepted" in payload) == (resp.status == 202)
    metrics = await exporter.client.get("/metrics")
    assert metrics.status == 200
    check_parseable(await metrics.text())


SCOPED_TOKEN = "scoped-token-0123456789"
ADMIN_TOKEN = "admin-token-0123456789"


@pytest.fixture
async def secured(make_exporter: Callable[..., Any], tmp_path: Path) -> Exporter:
    """An exporter with an ingest tokens file: one token scoped to agents a0-a2, one unscoped."""
    tokens = tmp_path / "tokens.yml"
    tokens.write_text(
        f"tokens:\n  - {{name: scoped, token: {SCOPED_TOKEN}, agents: ['a[0-2]'], rate_limit: 1000000}}\n"
        f"  - {{name: admin, token: {ADMIN_TOKEN}}}\n"
    )
    exporter: Exporter = await make_exporter(f"ingest_tokens_file: {tokens}\n")
    return exporter


header_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)  # what HTTP can carry


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(
    body=st.one_of(st.binary(max_size=200), batches, st.lists(renamed_events(), min_size=1, max_size=5)).map(
        lambda b: b if isinstance(b, bytes) else encode(b, "application/x-ndjson")
    ),
    authorization=st.one_of(
        st.none(),
        header_text,
        header_text.map("Bearer {}".format),
        st.sampled_from([f"Bearer {SCOPED_TOKEN}", f"bearer  {SCOPED_TOKEN} "]),
        st.just(f"Bearer {ADMIN_TOKEN}"),
    ),
)
@pytest.mark.slow
async def test_authenticated_ingest_answers_every_request_without_a_5xx(
    secured: Exporter, body: bytes, authorization: str | None
) -> None:
    """Any header and body: a 2xx/4xx, and a refused request (401, 403, 4xx) changes nothing."""
    before = agent_samples(await secured.metrics())
    headers = {"Content-Type": "application/x-ndjson"}
    if authorization is not None:
        headers["Authorization"] = authorization
    resp = await secured.client.post("/v1/events", data=body, headers=headers)
    assert resp.status in (202, 400, 401, 403, 413, 415, 429), await resp.text()
    event(f"status {resp.status}")
    text = await secured.metrics()
    check_parseable(text)
    if resp.status != 202:
        assert agent_samples(text) == before
