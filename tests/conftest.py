"""Shared fixtures: a real exporter on a free loopback port, and helpers to read its metrics."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry.app import create_app
from agency_telemetry.config import Config, parse_config

from scripts.local_stack import free_port, stop_process, wait_ready

PROJECT = Path(__file__).resolve().parent.parent


def ndjson(events: Iterable[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(event) for event in events).encode()


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and label set."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def agent_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the agent/council/queue/workflow/alert series, without the exporter's own."""
    return {key: v for key, v in samples(text).items() if not key[0].startswith("agency_exporter_")}


def require_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; `make tools` installs it")
    return path


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``agency-telemetry ARGS`` run from the project directory, as a separate process."""
    return subprocess.run(
        [sys.executable, "-m", "agency_telemetry", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def promtool_check_metrics(text: str) -> tuple[int, str, str]:
    """``promtool check metrics`` on an exposition: (exit code, stdout, stderr)."""
    command = [require_binary("promtool"), "check", "metrics"]
    result = subprocess.run(command, input=text, capture_output=True, text=True, timeout=30, check=False)
    return result.returncode, result.stdout, result.stderr


def start_alertmanager(config: Path, tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A real Alertmanager on a free loopback port with temp storage and no cluster; waits until ready."""
    storage = tmp_path / "alertmanager-data"
    arguments = [f"--config.file={config}", f"--storage.path={storage}", "--cluster.listen-address="]
    return start_daemon("prometheus-alertmanager", arguments, tmp_path)


def start_daemon(binary: str, arguments: list[str], tmp_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus-style server (``--web.listen-address``) on a free loopback port, logging to
    ``tmp_path``; returns once its ``/-/ready`` answers."""
    port = free_port()
    log = tmp_path / f"{binary}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [require_binary(binary), *arguments, f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{url}/-/ready", log, timeout=30)
    except Exception:
        stop_process(proc)
        raise
    return proc, url


class Exporter:
    """A running exporter app with a client bound to it."""

    def __init__(self, client: TestClient, app: web.Application) -> None:
        self.client = client
        self.app = app

    async def post(self, body: bytes | str, content_type: str = "application/x-ndjson") -> tuple[int, Any]:
        data = body.encode() if isinstance(body, str) else body
        resp = await self.client.post("/v1/events", data=data, headers={"Content-Type": content_type})
        return resp.status, await resp.json()

    async def send(self, *events: dict[str, Any]) -> Any:
        status, payload = await self.post(ndjson(events))
        assert status == 202, payload
        return payload

    async def metrics(self, accept: str | None = None) -> str:
        headers = {"Accept": accept} if accept else {}
        resp = await self.client.get("/metrics", headers=headers)
        assert resp.status == 200
        return await resp.text()


@pytest.fixture
async def make_exporter() -> AsyncIterator[Callable[..., Any]]:
    """``await make_exporter(yaml_text_or_Config)`` starts an exporter on 127.0.0.1."""
    clients: list[TestClient] = []

    async def start(config: str | Config | None = None) -> Exporter:
        if isinstance(config, str):
            config = parse_config(config)
        app = create_app(config or Config())
        client = TestClient(TestServer(app, host="127.0.0.1", port=free_port()))
        await client.start_server()
        clients.append(client)
        return Exporter(client, app)

    yield start
    for client in clients:
        await client.close()


@pytest.fixture
async def exporter(make_exporter: Callable[..., Any]) -> AsyncIterator[Exporter]:
    yield await make_exporter()
