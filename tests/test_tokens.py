"""Ingest bearer tokens: authentication, rotation, scopes, rate limits, reloads."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agency_telemetry.client import AsyncClient
from agency_telemetry.config import ConfigError
from agency_telemetry.routes import INGEST
from agency_telemetry.tokens import TokenBucket, load_tokens

from support.events import ndjson
from support.exporter import Exporter
from support.metrics import agent_samples, value

JUDGE_TOKEN = "judge-token-0123456789abcdef"
ADMIN_TOKEN = "admin-token-0123456789abcdef"
NEW_ADMIN_TOKEN = "admin-token-2-0123456789abcdef"


def task(agent: str, agent_type: str = "worker") -> dict[str, Any]:
    return {"type": "task_completed", "agent": agent, "agent_type": agent_type, "duration": 1000}


def agents_in(text: str) -> set[str]:
    return {dict(labels)["agent"] for _, labels in agent_samples(text) if "agent" in dict(labels)}


def tokens_yaml(*entries: str) -> str:
    return "tokens:\n" + "".join(f"  - {entry}\n" for entry in entries)


@pytest.fixture
def tokens_file(tmp_path: Path) -> Path:
    (tmp_path / "judge.token").write_text(JUDGE_TOKEN + "\n")
    path = tmp_path / "tokens.yml"
    path.write_text(
        tokens_yaml(
            f"{{name: admin, token: {ADMIN_TOKEN}}}",
            "{name: judges, token_file: judge.token, agents: ['judge-*'], councils: [ethics]}",
        )
    )
    return path


@pytest.fixture
async def secured(make_exporter: Callable[..., Any], tokens_file: Path) -> Exporter:
    exporter: Exporter = await make_exporter(f"ingest_tokens_file: {tokens_file}\n")
    return exporter


async def post(exporter: Exporter, body: bytes, token: str | None) -> tuple[int, Any, Any]:
    headers = {"Content-Type": "application/x-ndjson"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    resp = await exporter.client.post("/v1/events", data=body, headers=headers)
    return resp.status, await resp.json(), resp.headers


async def test_a_batch_without_a_known_token_gets_401_and_is_not_applied(secured: Exporter) -> None:
    for token in (None, "", "not-a-configured-token-at-all"):
        status, answer, headers = await post(secured, ndjson([task("worker-1")]), token)
        assert (status, answer["error"]) == (401, "unauthorized")
        assert headers["WWW-Authenticate"] == "Bearer"
    resp = await secured.client.post(
        "/v1/events", data=ndjson([task("worker-1")]), headers={"Authorization": f"Basic {ADMIN_TOKEN}"}
    )
    assert resp.status == 401
    text = await secured.metrics()
    assert not agents_in(text)
    assert value(text, "agency_exporter_requests_rejected_total", reason="unauthorized") == 4


async def test_a_token_from_the_file_or_a_token_file_is_accepted(secured: Exporter) -> None:
    assert (await post(secured, ndjson([task("worker-1")]), ADMIN_TOKEN))[0] == 202
    assert (await post(secured, ndjson([task("judge-1", "constitutional_judge")]), JUDGE_TOKEN))[0] == 202


async def test_a_scoped_token_cannot_write_another_agents_metrics(secured: Exporter) -> None:
    body = ndjson([task("judge-1", "constitutional_judge"), task("worker-3")])
    status, answer, _ = await post(secured, body, JUDGE_TOKEN)
    assert (status, answer["error"]) == (403, "forbidden")
    assert "event 1" in answer["message"] and "'worker-3'" in answer["message"]
    assert "judge-*" in answer["message"]  # says what the token may do
    text = await secured.metrics()
    assert not agents_in(text), "the in-scope event of a refused batch must not be applied either"
    assert value(text, "agency_exporter_requests_rejected_total", reason="forbidden") == 1
    assert value(text, "agency_exporter_events_rejected_total", reason="forbidden") == 2


@pytest.mark.parametrize(
    ("event", "allowed"),
    [
        ({"type": "consensus", "council": "ethics", "formation_time": 10, "achieved": True}, True),
        ({"type": "consensus", "council": "finance", "formation_time": 10, "achieved": True}, False),
        ({"type": "decision", "council": "ethics", "predicted": True, "actual": True}, True),
        ({"type": "decision", "agent": "judge-2", "predicted": True, "actual": True}, True),
        ({"type": "decision", "agent": "worker-2", "predicted": True, "actual": True}, False),
        ({"type": "queue", "queue": "ingest", "depth": 3}, False),
        ({"type": "business", "completed": True}, False),
        (
            {"type": "alert", "alert_id": "a1", "alert_type": "system_health", "severity": "info", "message": "x"},
            False,
        ),
        ({"type": "agent_heartbeat", "agent": "judge-7", "cpu": 0.5}, True),
    ],
)
async def test_every_owner_an_event_names_is_checked_against_the_scope(
    secured: Exporter, event: dict[str, Any], allowed: bool
) -> None:
    status, answer, _ = await post(secured, ndjson([event]), JUDGE_TOKEN)
    assert status == (202 if allowed else 403), answer
    assert (await post(secured, ndjson([event]), ADMIN_TOKEN))[0] == 202, "an unscoped token may send anything"


async def test_several_tokens_are_valid_at_once_and_a_removed_one_stops_working(
    secured: Exporter, tokens_file: Path
) -> None:
    """Rotation: add the new token, move the clients, remove the old one."""
    text = tokens_file.read_text()
    tokens_file.write_text(text + f"  - {{name: admin-2, token: {NEW_ADMIN_TOKEN}}}\n")
    reloadable = secured.app[INGEST].tokens
    assert reloadable.check()
    for token in (ADMIN_TOKEN, NEW_ADMIN_TOKEN):
        assert (await post(secured, ndjson([task("worker-1")]), token))[0] == 202
    tokens_file.write_text(tokens_yaml(f"{{name: admin-2, token: {NEW_ADMIN_TOKEN}}}"))
    assert reloadable.check()
    assert (await post(secured, ndjson([task("worker-1")]), ADMIN_TOKEN))[0] == 401
    assert (await post(secured, ndjson([task("worker-1")]), NEW_ADMIN_TOKEN))[0] == 202
    text = await secured.metrics()
    assert value(text, "agency_exporter_token_events_total", token="admin") == 1, "until it was removed"
    assert value(text, "agency_exporter_token_events_total", token="admin-2") == 2


async def test_the_tokens_file_is_reloaded_in_the_background(secured: Exporter, tokens_file: Path) -> None:
    tokens_file.write_text(tokens_yaml(f"{{name: admin-2, token: {NEW_ADMIN_TOKEN}}}"))
    for _ in range(50):  # polled every second
        if (await post(secured, ndjson([task("worker-1")]), NEW_ADMIN_TOKEN))[0] == 202:
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the new tokens file did not take effect within 5 s")


async def test_a_broken_tokens_file_keeps_the_previous_tokens_and_says_so(secured: Exporter, tokens_file: Path) -> None:
    tokens_file.write_text("tokens:\n  - {name: x, token: short}\n")
    assert not secured.app[INGEST].tokens.check()
    assert (await post(secured, ndjson([task("worker-1")]), ADMIN_TOKEN))[0] == 202
    text = await secured.metrics()
    assert value(text, "agency_exporter_reload_success", file="ingest_tokens") == 0
    assert value(text, "agency_exporter_reload_failures_total", file="ingest_tokens") == 1
    tokens_file.write_text(tokens_yaml(f"{{name: admin, token: {ADMIN_TOKEN}}}"))
    assert secured.app[INGEST].tokens.check()
    assert value(await secured.metrics(), "agency_exporter_reload_success", file="ingest_tokens") == 1


async def rate_limited(make_exporter: Callable[..., Any], tmp_path: Path, rate: int, burst: int) -> Exporter:
    """An exporter whose one token, ADMIN_TOKEN, may send ``rate`` events a second, ``burst`` at once."""
    path = tmp_path / "tokens.yml"
    path.write_text(tokens_yaml(f"{{name: limited, token: {ADMIN_TOKEN}, rate_limit: {rate}, burst: {burst}}}"))
    exporter: Exporter = await make_exporter(f"ingest_tokens_file: {path}\n")
    return exporter


async def test_a_rate_limited_token_gets_429_with_retry_after(
    make_exporter: Callable[..., Any], tmp_path: Path
) -> None:
    exporter = await rate_limited(make_exporter, tmp_path, rate=10, burst=20)
    batch = ndjson([task(f"worker-{i}") for i in range(15)])
    assert (await post(exporter, batch, ADMIN_TOKEN))[0] == 202
    status, answer, headers = await post(exporter, batch, ADMIN_TOKEN)
    assert (status, answer["error"]) == (429, "rate_limited")
    assert int(headers["Retry-After"]) >= 1
    status, answer, _ = await post(exporter, ndjson([task(f"worker-{i}") for i in range(21)]), ADMIN_TOKEN)
    assert (status, answer["error"]) == (413, "batch_too_large"), "a batch over the burst can never pass"
    text = await exporter.metrics()
    assert value(text, "agency_exporter_requests_rejected_total", reason="rate_limited") == 1
    assert value(text, "agency_agent_tasks_total", agent="worker-14", agent_type="worker") == 1


async def test_the_sdk_waits_out_a_rate_limit_and_delivers_everything_once(
    make_exporter: Callable[..., Any], tmp_path: Path
) -> None:
    exporter = await rate_limited(make_exporter, tmp_path, rate=100, burst=100)
    url = str(exporter.client.make_url(""))
    async with AsyncClient(url, token=ADMIN_TOKEN, batch_size=100, flush_interval=0.01) as client:
        for i in range(250):
            client.send(task(f"worker-{i % 5}"))
        assert await client.flush(15)
    assert client.stats.sent == 250 and client.stats.retries >= 1
    text = await exporter.metrics()
    counts = [value(text, "agency_agent_tasks_total", agent=f"worker-{i}", agent_type="worker") for i in range(5)]
    assert counts == [50] * 5


def test_token_bucket_refills_at_its_rate_up_to_its_burst() -> None:
    now = [0.0]
    bucket = TokenBucket(rate=10, burst=20, clock=lambda: now[0])
    assert bucket.take(20) == 0
    assert bucket.take(5) == pytest.approx(0.5)
    now[0] = 0.5
    assert bucket.take(5) == 0
    now[0] = 100
    assert bucket.take(21) == pytest.approx(0.1), "never more than the burst, however long it waited"


def test_every_token_is_compared_by_digest_in_constant_time(tokens_file: Path, monkeypatch: Any) -> None:
    """The presented token is hashed and compared with compare_digest against every token,
    also after a match, so the time to answer does not depend on which token matched."""
    tokens, _ = load_tokens(tokens_file)
    compared: list[tuple[bytes, bytes]] = []
    compare = hmac.compare_digest

    def recording(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return compare(a, b)

    monkeypatch.setattr("agency_telemetry.tokens.hmac.compare_digest", recording)
    found = tokens.authenticate(ADMIN_TOKEN)  # the first entry
    assert found is not None and found.name == "admin"
    assert len(compared) == len(tokens.tokens) == 2
    digest = hashlib.sha256(ADMIN_TOKEN.encode()).digest()
    assert all(a == digest and len(b) == 32 for a, b in compared), "digests, never the secrets themselves"


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (["{name: a, token: short}"], "16"),
        (["{name: a}"], "exactly one of token, token_file, sha256"),
        ([f"{{name: a, token: {ADMIN_TOKEN}, sha256: '{'0' * 64}'}}"], "exactly one of"),
        ([f"{{name: a, token: {ADMIN_TOKEN}}}", f"{{name: a, token: {JUDGE_TOKEN}}}"], "names must be unique"),
        ([f"{{name: a, token: {ADMIN_TOKEN}}}", f"{{name: b, token: {ADMIN_TOKEN}}}"], "same token"),
        ([f"{{name: a, token: {ADMIN_TOKEN}, agent: ['x']}}"], "unknown field `agent`"),
        ([f"{{name: a, token: {ADMIN_TOKEN}, burst: 5}}"], "burst needs rate_limit"),
        (["{name: a, token_file: missing.token}"], "cannot read token_file"),
    ],
)
def test_a_bad_tokens_file_is_refused_with_what_to_change(tmp_path: Path, entries: list[str], message: str) -> None:
    path = tmp_path / "tokens.yml"
    path.write_text(tokens_yaml(*entries))
    with pytest.raises(ConfigError, match=message):
        load_tokens(path)


def test_a_sha256_entry_accepts_the_token_it_hashes(tmp_path: Path) -> None:
    path = tmp_path / "tokens.yml"
    path.write_text(tokens_yaml(f"{{name: hashed, sha256: {hashlib.sha256(ADMIN_TOKEN.encode()).hexdigest()}}}"))
    tokens, _ = load_tokens(path)
    assert tokens.authenticate(ADMIN_TOKEN) is not None
    assert tokens.authenticate(JUDGE_TOKEN) is None


def test_a_reload_keeps_the_bucket_of_a_token_whose_limit_did_not_change(tmp_path: Path) -> None:
    """Rewriting the tokens file grants no fresh burst; changing a token's limit starts it anew."""
    path = tmp_path / "tokens.yml"
    path.write_text(tokens_yaml(f"{{name: a, token: {ADMIN_TOKEN}, rate_limit: 1, burst: 10}}"))
    before, _ = load_tokens(path)
    assert before.tokens[0].bucket is not None and before.tokens[0].bucket.take(10) == 0
    same, _ = load_tokens(path, before)
    assert same.tokens[0].bucket is before.tokens[0].bucket and same.tokens[0].bucket.take(5) > 0
    path.write_text(tokens_yaml(f"{{name: a, token: {ADMIN_TOKEN}, rate_limit: 2, burst: 10}}"))
    changed, _ = load_tokens(path, same)
    assert changed.tokens[0].bucket is not before.tokens[0].bucket and changed.tokens[0].bucket.take(5) == 0
