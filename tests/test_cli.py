"""The ``agency-telemetry`` command line, run as a real process (``python -m agency_telemetry``)."""

from __future__ import annotations

import asyncio
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from scripts.local_stack import free_port
from support.events import ndjson
from support.metrics import samples, value
from support.processes import PROJECT, promtool_check_metrics, run_cli

pytestmark = pytest.mark.integration

DEMO_FAMILIES = (
    "agency_agent_tasks_total",
    "agency_agent_task_failures_total",
    "agency_agent_cpu_usage_ratio",
    "agency_council_consensus_attempts_total",
    "agency_council_compliance_violations_total",
    "agency_council_sessions_active",
    "agency_workflow_tasks_total",
    "agency_council_decisions_total",
    "agency_queue_depth",
    "agency_reported_alert",
    "agency_agent_active_tasks",
    "agency_agent_capacity_tasks",
)


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


class Running:
    """A CLI process started in the background; its output goes to files so pipes never fill up."""

    def __init__(self, proc: asyncio.subprocess.Process, stdout: Path, stderr: Path, base_url: str) -> None:
        self.proc = proc
        self.stdout = stdout
        self.stderr = stderr
        self.base_url = base_url

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


@pytest.fixture
async def spawn(tmp_path: Path) -> AsyncIterator[Callable[..., Any]]:
    """``await spawn("serve")`` starts the CLI on a free loopback port; killed at teardown if still running."""
    started: list[Running] = []

    async def start(*args: str) -> Running:
        port = free_port()
        index = len(started)
        stdout, stderr = tmp_path / f"stdout-{index}.txt", tmp_path / f"stderr-{index}.txt"
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "agency_telemetry",
                *args,
                "--listen",
                f"127.0.0.1:{port}",
                cwd=PROJECT,
                stdout=out,
                stderr=err,
            )
        running = Running(proc, stdout, stderr, f"http://127.0.0.1:{port}")
        started.append(running)
        return running

    yield start
    for running in started:
        if running.proc.returncode is None:
            running.proc.kill()
            await running.proc.wait()


async def wait_ready(session: aiohttp.ClientSession, running: Running, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert running.proc.returncode is None, f"exited early with {running.proc.returncode}:\n{running.output()}"
        try:
            async with session.get(f"{running.base_url}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.05)
    pytest.fail(f"not ready within {timeout} s:\n{running.output()}")


# --- check-config ------------------------------------------------------------------------


def test_check_config_accepts_a_good_file(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "listen: 127.0.0.1:9999\n"
        "agent_types: [worker, judge]\n"
        "limits: {max_agents: 50, max_body_size: 1 MiB}\n"
        "expiry: {agent_ttl: 10m, alert_ttl: 24h}\n",
    )
    result = run_cli("check-config", path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "OK" in result.stdout


def test_check_config_accepts_an_empty_file(tmp_path: Path) -> None:
    result = run_cli("check-config", write(tmp_path, ""))
    assert result.returncode == 0, result.stderr


def test_check_config_rejects_an_unknown_key(tmp_path: Path) -> None:
    result = run_cli("check-config", write(tmp_path, "limits: {foo: 1}\n"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "limits" in result.stderr
    assert "foo" in result.stderr
    # ...and says which keys are allowed there.
    assert "max_agents" in result.stderr
    assert "max_body_size" in result.stderr


def test_check_config_rejects_a_bad_value(tmp_path: Path) -> None:
    result = run_cli("check-config", write(tmp_path, "expiry: {agent_ttl: 5 kg}\n"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "expiry.agent_ttl" in result.stderr
    assert "kg" in result.stderr
    assert "seconds" in result.stderr  # what a duration may be written as


def test_check_config_rejects_a_missing_file(tmp_path: Path) -> None:
    result = run_cli("check-config", str(tmp_path / "nowhere.yaml"))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "nowhere.yaml" in result.stderr


# --- serve -------------------------------------------------------------------------------


async def test_serve_shuts_down_gracefully_on_sigterm(spawn: Callable[..., Any]) -> None:
    running: Running = await spawn("serve")
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, running)
        events = [{"type": "task_started", "agent": "a1"}, {"type": "task_started", "agent": "a1"}]
        async with session.post(
            f"{running.base_url}/v1/events", data=ndjson(events), headers={"Content-Type": "application/x-ndjson"}
        ) as resp:
            assert resp.status == 202
            assert await resp.json() == {"accepted": 2, "duplicates": 0}
        async with session.get(f"{running.base_url}/metrics") as resp:
            text = await resp.text()
        assert value(text, "agency_agent_active_tasks", agent="a1", agent_type="unknown") == 2
        # The keep-alive connection is still open: shutdown must not wait for it.
        started = time.monotonic()
        running.proc.send_signal(signal.SIGTERM)
        returncode = await asyncio.wait_for(running.proc.wait(), timeout=8)
    assert returncode == 0, running.output()
    assert time.monotonic() - started < 8
    assert "Traceback" not in running.output()


async def test_sigterm_lets_a_request_in_flight_finish(spawn: Callable[..., Any]) -> None:
    running: Running = await spawn("serve")
    sigterm_sent = asyncio.Event()
    lines = ndjson([{"type": "task_started", "agent": f"a{i}"} for i in range(3)]).split(b"\n")

    async def trickle() -> AsyncIterator[bytes]:
        yield lines[0] + b"\n"
        await sigterm_sent.wait()  # the rest of the body arrives after the signal
        await asyncio.sleep(0.3)
        yield b"\n".join(lines[1:])

    async with aiohttp.ClientSession() as session:
        await wait_ready(session, running)
        request = asyncio.create_task(
            session.post(
                f"{running.base_url}/v1/events", data=trickle(), headers={"Content-Type": "application/x-ndjson"}
            )
        )
        await asyncio.sleep(0.3)
        running.proc.send_signal(signal.SIGTERM)
        sigterm_sent.set()
        resp = await asyncio.wait_for(request, timeout=8)
        assert resp.status == 202
        assert await resp.json() == {"accepted": 3, "duplicates": 0}
        returncode = await asyncio.wait_for(running.proc.wait(), timeout=8)
    assert returncode == 0, running.output()


def test_serve_with_a_bad_config_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "limits: {max_agents: -1}\n")
    result = run_cli("serve", "--config", path, "--listen", f"127.0.0.1:{free_port()}", "--duration", "20")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "limits.max_agents" in result.stderr
    assert ">= 1" in result.stderr


def test_serve_with_an_unknown_key_exits_2(tmp_path: Path) -> None:
    path = write(tmp_path, "limits: {foo: 1}\n")
    result = run_cli("serve", "--config", path, "--listen", f"127.0.0.1:{free_port()}", "--duration", "20")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "foo" in result.stderr
    assert "max_agents" in result.stderr


def test_serve_with_a_bad_listen_address_exits_2() -> None:
    result = run_cli("serve", "--listen", "localhost", "--duration", "20")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "HOST:PORT" in result.stderr


# --- demo --------------------------------------------------------------------------------


async def test_demo_feeds_every_event_type_and_passes_promtool(spawn: Callable[..., Any]) -> None:
    running: Running = await spawn("demo", "--duration", "30")
    missing: set[str] = set(DEMO_FAMILIES)
    text = ""
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, running)
        deadline = time.monotonic() + 10
        while missing and time.monotonic() < deadline:
            async with session.get(f"{running.base_url}/metrics") as resp:
                assert resp.status == 200
                text = await resp.text()
            missing = set(DEMO_FAMILIES) - {name for name, _ in samples(text)}
            if missing:
                await asyncio.sleep(0.1)
    assert not missing, f"no series for {sorted(missing)} after 10 s:\n{running.output()}"
    # The simulator speaks the public API: none of its batches may be refused.
    assert sum(v for (n, _), v in samples(text).items() if n == "agency_exporter_requests_rejected_total") == 0
    assert value(text, "agency_exporter_tracked", kind="agent") == 24 + 4  # and four sending OTLP spans
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="rejected") == 0
    assert value(text, "agency_exporter_otlp_items_total", signal="traces", outcome="mapped") > 0
    assert await asyncio.to_thread(promtool_check_metrics, text) == (0, "", "")
    running.proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(running.proc.wait(), timeout=10) == 0, running.output()


async def test_sigterm_keeps_metrics_up_for_one_last_scrape(spawn: Callable[..., Any], tmp_path: Path) -> None:
    running: Running = await spawn("serve", "--config", str(write(tmp_path, "shutdown_grace: 60s\n")))
    async with aiohttp.ClientSession() as session:
        await wait_ready(session, running)
        events = ndjson([{"type": "task_started", "agent": "last-words"}])
        headers = {"Content-Type": "application/x-ndjson"}
        async with session.post(f"{running.base_url}/v1/events", data=events, headers=headers) as resp:
            assert resp.status == 202
        running.proc.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.5)
        async with session.post(f"{running.base_url}/v1/events", data=events, headers=headers) as resp:
            assert resp.status == 503  # clients keep the batch and retry
        assert running.proc.returncode is None, "the exporter waits for a last scrape"
        async with session.get(f"{running.base_url}/metrics") as resp:
            final = await resp.text()
        assert value(final, "agency_agent_active_tasks", agent="last-words", agent_type="unknown") == 1
        started = time.monotonic()
        returncode = await asyncio.wait_for(running.proc.wait(), timeout=10)
    assert returncode == 0, running.output()
    assert time.monotonic() - started < 5  # the scrape ended the grace period, not its 60 s
