"""Fixtures: a real exporter on a free loopback port. Helpers live in the ``support`` package."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from agency_telemetry.config import Config
from agency_telemetry.routes import create_app

from scripts.local_stack import free_port
from support import processes
from support.exporter import Exporter
from support.harness import immediate


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Lets the process helpers check that a test starting a process is marked integration;
    set before any fixture of the test, module-scoped ones included."""
    processes.current_marks = {mark.name for mark in item.iter_markers()}


def pytest_runtest_teardown(item: pytest.Item) -> None:
    processes.current_marks = set()


@pytest.fixture
async def make_exporter() -> AsyncIterator[Callable[..., Any]]:
    """``await make_exporter(yaml_text_or_Config)`` starts an exporter on 127.0.0.1, showing new
    series' values at once unless the configuration sets ``expiry.new_series_hold``."""
    clients: list[TestClient] = []

    async def start(config: str | Config | None = None) -> Exporter:
        app = create_app(immediate(config))
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
