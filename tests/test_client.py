"""The Python SDK against a real exporter process: facades, outages, rejections, buffer limits."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agency_telemetry.client import AgentPerformanceTracker, AsyncClient, Client, HealthMonitor

from scripts.local_stack import free_port
from support.metrics import samples, value
from support.processes import start_alertmanager

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
FAST = {"flush_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.5}
J1 = {"agent": "judge-1", "agent_type": "constitutional_judge"}


class ExporterProcess:
    """``agency-telemetry serve`` on a fixed loopback port, which can be killed and restarted."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "exporter.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ExporterProcess:
        config = self.log.with_name("exporter.yml")
        config.write_text("expiry: {new_series_hold: 0}\n")  # tests read values right after sending
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "agency_telemetry",
                    "serve",
                    "--config",
                    str(config),
                    "--listen",
                    f"127.0.0.1:{self.port}",
                ],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1):
                    return self
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "exporter did not become ready"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return response.read().decode()

    def total(self, name: str, **labels: str) -> float:
        """Sum of a metric over every series matching ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in samples(self.metrics()).items() if n == name and wanted <= ls)


@pytest.fixture
def exporter(tmp_path: Path) -> Iterator[ExporterProcess]:
    process = ExporterProcess(tmp_path)
    yield process.start()
    if process.proc is not None and process.proc.poll() is None:
        process.proc.terminate()
        process.proc.wait(timeout=10)


# --- facades ------------------------------------------------------------------------------


def test_the_tracker_records_llm_requests_and_tool_calls(exporter: ExporterProcess) -> None:
    with Client(exporter.url, **FAST) as client:
        tracker = AgentPerformanceTracker("judge-1", "constitutional_judge", client)
        tracker.record_llm_request(
            "openai", "gpt-4o", 1200, input_tokens=900, output_tokens=120, cache_read_tokens=800, cost=0.004
        )
        tracker.record_llm_request("openai", "gpt-4o", 300, input_tokens=10, failure_reason="context length exceeded")
        tracker.record_tool_call("web_search", 250)
        tracker.record_tool_call("web_search", 40, failure_reason="tool crashed")
        assert client.flush(10)
    text = exporter.metrics()
    model = {**J1, "provider": "openai", "model": "gpt-4o"}
    assert value(text, "agency_agent_llm_requests_total", **model) == 2
    assert value(text, "agency_agent_llm_request_failures_total", error_class="model", **model) == 1
    assert value(text, "agency_agent_llm_tokens_total", token_type="input", **model) == 910
    assert value(text, "agency_agent_llm_tokens_total", token_type="cache_read", **model) == 800
    assert value(text, "agency_agent_llm_cost_usd_total", **model) == 0.004
    assert value(text, "agency_llm_request_duration_seconds_sum", provider="openai", model="gpt-4o") == 1.5
    assert value(text, "agency_agent_tool_calls_total", tool="web_search", **J1) == 2
    assert value(text, "agency_agent_tool_call_failures_total", tool="web_search", **J1) == 1


def test_tracker_and_monitor_move_the_right_metrics(exporter: ExporterProcess) -> None:
    with Client(exporter.url, **FAST) as client:
        monitor = HealthMonitor(client)
        monitor.register_agent("judge-1", "constitutional_judge", capacity=2)
        tracker = monitor.tracker("judge-1")
        tracker.record_task_completion(1500, quality_score=0.9, cost=0.08)
        monitor.record_agent_task_completion("judge-1", 500)
        monitor.record_agent_task_failure("judge-1", "Network timeout error")
        tracker.heartbeat(cpu=0.5, memory="256 MiB", queue_depth=3)
        monitor.update_coordination_metrics("ethics", 2000, True, False, True)
        monitor.update_coordination_metrics(
            "ethics", 6000, False, True, False, debate_rounds=3, violated_principle="fairness"
        )
        monitor.update_business_metrics(True, 0.95, 0.08)
        alert_id = monitor.add_alert("agent_performance", "warning", "Agent performance degraded", ["judge-1"])
        assert client.flush(10)
    text = exporter.metrics()
    assert value(text, "agency_agent_capacity_tasks", **J1) == 2
    assert value(text, "agency_agent_tasks_total", **J1) == 3
    assert value(text, "agency_agent_task_failures_total", error_class="timeout", **J1) == 1
    assert value(text, "agency_agent_task_duration_seconds_sum", **J1) == 2.0
    assert value(text, "agency_agent_task_quality_score_sum", **J1) == 0.9
    assert value(text, "agency_agent_task_cost_usd_total", **J1) == 0.08
    assert value(text, "agency_agent_memory_bytes", **J1) == 256 * 2**20
    assert value(text, "agency_council_consensus_attempts_total", council="ethics") == 2
    assert value(text, "agency_council_consensus_failures_total", council="ethics") == 1
    assert value(text, "agency_council_debate_rounds_sum", council="ethics") == 3
    assert value(text, "agency_council_compliance_violations_total", council="ethics", principle="fairness") == 1
    assert value(text, "agency_workflow_tasks_total") == 1
    assert value(text, "agency_workflow_task_cost_usd_total") == 0.08
    alert = {
        "alert_id": alert_id,
        "alert_type": "agent_performance",
        "severity": "warning",
        "affected_agents": "judge-1",
        "message": "Agent performance degraded",
    }
    assert value(text, "agency_reported_alert", **alert) == 1
    with Client(exporter.url, **FAST) as client:
        monitor = HealthMonitor(client)
        monitor.resolve_alert(alert_id, "agent_performance", "warning")
        monitor.deregister_agent("judge-1")
    text = exporter.metrics()
    assert value(text, "agency_reported_alert", **alert) is None
    assert value(text, "agency_agent_info", **J1) is None


def test_task_timer_and_decorator_record_success_and_failure(exporter: ExporterProcess) -> None:
    with Client(exporter.url, **FAST) as client:
        tracker = AgentPerformanceTracker("worker-1", "worker", client)
        with tracker.task() as task:
            task.quality_score = 0.75
        with pytest.raises(TimeoutError), tracker.task():
            raise TimeoutError("model did not answer")

        @tracker.timed
        def fails() -> None:
            raise KeyError("x")

        @tracker.timed
        def works(x: int) -> int:
            return x + 1

        assert works(1) == 2
        with pytest.raises(KeyError):
            fails()
    worker = {"agent": "worker-1", "agent_type": "worker"}
    text = exporter.metrics()
    assert value(text, "agency_agent_tasks_total", **worker) == 4
    assert value(text, "agency_agent_active_tasks", **worker) == 0  # every start was finished
    assert value(text, "agency_agent_task_failures_total", error_class="timeout", **worker) == 1  # "TimeoutError"
    assert value(text, "agency_agent_task_failures_total", error_class="other", **worker) == 1  # "KeyError"
    assert value(text, "agency_agent_task_quality_score_sum", **worker) == 0.75
    assert value(text, "agency_agent_task_duration_seconds_count", **worker) == 4


async def test_async_client_with_async_task_and_decorator(exporter: ExporterProcess) -> None:
    async with AsyncClient(exporter.url, **FAST) as client:
        tracker = AgentPerformanceTracker("researcher-1", "researcher", client)
        async with tracker.task():
            await asyncio.sleep(0.01)

        @tracker.timed
        async def search() -> None:
            raise ConnectionError("index unreachable")

        with pytest.raises(ConnectionError):
            await search()
    researcher = {"agent": "researcher-1", "agent_type": "researcher"}
    text = await asyncio.to_thread(exporter.metrics)
    assert value(text, "agency_agent_tasks_total", **researcher) == 2
    assert value(text, "agency_agent_task_failures_total", error_class="network", **researcher) == 1


# --- delivery guarantees ------------------------------------------------------------------


def started(agent: str) -> dict[str, Any]:
    return {"type": "task_started", "agent": agent, "agent_type": "worker"}


def test_events_handed_over_during_an_outage_are_applied_exactly_once(exporter: ExporterProcess) -> None:
    with Client(exporter.url, batch_size=50, **FAST) as client:
        for _ in range(100):
            client.send(started("w"))
        assert client.flush(10)
        assert exporter.total("agency_agent_active_tasks", agent="w") == 100
        exporter.kill()
        for _ in range(300):  # handed over while the exporter is down
            client.send(started("w"))
        time.sleep(0.5)  # the client is retrying meanwhile
        assert client.stats.retries > 0
        exporter.start()  # a new process: its counters start at zero
        assert client.flush(30)
    assert exporter.total("agency_agent_active_tasks", agent="w") == 300
    assert client.stats.sent == 400 and client.stats.dropped == 0


def test_the_trackers_heartbeat_heals_active_tasks_after_an_exporter_restart(exporter: ExporterProcess) -> None:
    with Client(exporter.url, **FAST) as client:
        tracker = AgentPerformanceTracker("judge-1", "constitutional_judge", client)
        for _ in range(3):
            tracker.task_started()
        assert client.flush(10)
        assert value(exporter.metrics(), "agency_agent_active_tasks", **J1) == 3
        exporter.kill()
        exporter.start()  # forgets the three running tasks
        tracker.record_task_completion(100)
        assert client.flush(10)
        assert value(exporter.metrics(), "agency_agent_active_tasks", **J1) == 0  # not -1
        tracker.heartbeat(cpu=0.2)
        assert client.flush(10)
    assert tracker.active_tasks == 2
    assert value(exporter.metrics(), "agency_agent_active_tasks", **J1) == 2


def test_a_rejected_batch_is_reported_and_not_retried(exporter: ExporterProcess) -> None:
    rejected: list[tuple[list[dict[str, Any]], dict[str, Any]]] = []
    with Client(exporter.url, on_rejected=lambda batch, answer: rejected.append((batch, answer)), **FAST) as client:
        client.send({"type": "task_completed", "agent": "w", "duration": "5 kg"})
        assert client.flush(10)
        time.sleep(0.3)
    [(batch, answer)] = rejected
    assert answer["status"] == 400 and answer["problems"][0]["field"] == "duration"
    assert batch[0]["duration"] == "5 kg"
    assert (client.stats.rejected, client.stats.retries) == (1, 0)
    assert exporter.total("agency_exporter_requests_rejected_total", reason="invalid") == 1


def test_a_full_buffer_drops_the_oldest_events(tmp_path: Path) -> None:
    exporter = ExporterProcess(tmp_path)  # not started yet: nothing can be delivered
    client = Client(exporter.url, max_buffer=10, batch_size=100, flush_interval=60, backoff_initial=0.05)
    try:
        for i in range(25):
            client.send(started(f"w{i:02d}"))
        time.sleep(0.2)
        assert client.stats.dropped == 15
        exporter.start()
        assert client.flush(30)
        agents = {dict(labels)["agent"] for name, labels in samples(exporter.metrics()) if name == "agency_agent_info"}
        assert agents == {f"w{i:02d}" for i in range(15, 25)}
    finally:
        client.close(5)
        if exporter.proc is not None:
            exporter.proc.terminate()
            exporter.proc.wait(timeout=10)


async def test_retries_never_double_count(exporter: ExporterProcess) -> None:
    """A proxy forwards every batch to the exporter but answers the first three with 502, as if
    the answer were lost: the client sends them again and the exporter applies each once."""
    failures = {"left": 3}

    async def proxy(request: web.Request) -> web.Response:
        body = await request.read()
        async with aiohttp.ClientSession() as session:
            headers = {"Content-Type": request.content_type}
            async with session.post(f"{exporter.url}/v1/events", data=body, headers=headers) as resp:
                answer = await resp.read()
        if failures["left"]:
            failures["left"] -= 1
            return web.Response(status=502, text="bad gateway")
        return web.Response(status=resp.status, body=answer, content_type="application/json")

    app = web.Application()
    app.router.add_post("/v1/events", proxy)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with AsyncClient(f"http://127.0.0.1:{port}", batch_size=20, **FAST) as client:
            for _ in range(60):
                client.send(started("w"))
            assert await client.flush(20)
    finally:
        await runner.cleanup()
    assert client.stats.retries == 3
    assert await asyncio.to_thread(exporter.total, "agency_agent_active_tasks", agent="w") == 60
    assert await asyncio.to_thread(exporter.total, "agency_exporter_events_duplicate_total") == 60  # 3 batches of 20


def test_events_are_flushed_at_interpreter_exit(exporter: ExporterProcess) -> None:
    script = textwrap.dedent(
        f"""
        from agency_telemetry.client import Client
        client = Client({exporter.url!r}, flush_interval=60)
        for _ in range(7):
            client.send({{"type": "task_started", "agent": "leaver", "agent_type": "worker"}})
        # no close(): the atexit hook flushes
        """
    )
    subprocess.run([sys.executable, "-c", script], cwd=ROOT, check=True, timeout=30)
    assert exporter.total("agency_agent_active_tasks", agent="leaver") == 7


# --- alerts from Alertmanager ---------------------------------------------------------------


def test_get_active_alerts_reads_alertmanager(tmp_path: Path) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text("route: {receiver: none}\nreceivers: [{name: none}]\n")
    proc, url = start_alertmanager(config, tmp_path)
    try:
        alerts = b"""[
          {"labels": {"alertname": "AgencyAgentDown", "severity": "warning", "agent": "judge-1"},
           "annotations": {"summary": "An agent has stopped reporting."}, "startsAt": "%s"},
          {"labels": {"alertname": "SomethingElse", "severity": "critical"}, "startsAt": "%s"}
        ]""" % ((datetime.now(UTC).isoformat().encode(),) * 2)
        request = urllib.request.Request(
            f"{url}/api/v2/alerts", data=alerts, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=5).close()
        monitor = HealthMonitor(client=None, alertmanager_url=url)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while not (active := monitor.get_active_alerts()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [a["labels"]["alertname"] for a in active] == ["AgencyAgentDown"]
        assert active[0]["labels"]["agent"] == "judge-1"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_get_active_alerts_without_an_alertmanager_says_what_to_set() -> None:
    with pytest.raises(ValueError, match="alertmanager_url"):
        HealthMonitor(client=None).get_active_alerts()  # type: ignore[arg-type]


# --- the examples -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("example", "check"),
    [
        ("basic_setup.py", ("agency_agent_capacity_tasks", {"agent": "worker-1", "agent_type": "worker"}, 4)),
        (
            "performance_tracking.py",
            ("agency_agent_tasks_total", {"agent": "constitutional-judge-1", "agent_type": "constitutional_judge"}, 4),
        ),
        ("coordination_and_business.py", ("agency_council_consensus_attempts_total", {"council": "ethics"}, 3)),
        ("alerts.py", ("agency_reported_alert", {"alert_type": "agent_performance", "severity": "warning"}, 1)),
        ("llm_usage.py", ("agency_agent_llm_requests_total", {"agent": "researcher-1", "model": "gpt-4o"}, 2)),
        ("pydantic_ai_agents.py", ("agency_agent_tool_calls_total", {"agent": "triage", "tool": "lookup_ticket"}, 3)),
    ],
)
def test_examples_run_against_a_real_exporter(exporter: ExporterProcess, example: str, check: tuple[Any, ...]) -> None:
    result = subprocess.run(
        [sys.executable, f"examples/{example}", "--url", exporter.url],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    name, labels, expected = check
    assert exporter.total(name, **labels) == expected
