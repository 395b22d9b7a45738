"""Slow and greedy clients against the real listener: header and body timeouts, and the bound
on ingest requests in flight. Raw sockets, so the test controls every byte and its timing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from agency_telemetry.routes import create_app
from agency_telemetry.server import Server, start_server, stop_server

from support.harness import immediate
from support.metrics import value

EVENT = b'{"type": "business", "completed": true}'


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Any]]:
    servers: list[Server] = []

    async def start(config: str) -> Server:
        server = await start_server(create_app(immediate(config)), "127.0.0.1", 0)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await stop_server(server, 1)


async def connect(server: Server) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", server.port)


def ingest_head(length: int) -> bytes:
    return (
        f"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-ndjson\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def metrics(server: Server) -> str:
    reader, writer = await connect(server)
    writer.write(b"GET /metrics HTTP/1.0\r\n\r\n")  # 1.0: no chunked encoding to undo
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    return answer.partition(b"\r\n\r\n")[2].decode()


async def test_a_client_trickling_its_header_is_cut_off_after_idle_timeout(serve: Callable[..., Any]) -> None:
    server = await serve("limits: {idle_timeout: 1s}\n")
    reader, writer = await connect(server)
    started = time.monotonic()
    writer.write(b"GET /metrics HTTP/1.1\r\n")
    closed_after = None
    for index in range(40):  # one header byte every 0.25 s: 10 s if nobody stops it
        try:
            writer.write(b"X-Slow: " if index == 0 else b"a")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(1), 0.25)
        except TimeoutError:
            continue
        except ConnectionError:
            data = b""
        if data == b"":
            closed_after = time.monotonic() - started
            break
    writer.close()
    assert closed_after is not None, "the server kept a slow-header connection open for 10 s"
    assert closed_after < 5


async def test_an_idle_keep_alive_connection_is_closed(serve: Callable[..., Any]) -> None:
    server = await serve("limits: {idle_timeout: 1s}\n")
    reader, writer = await connect(server)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await reader.readuntil(b"ok\n")).startswith(b"HTTP/1.1 200")
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()


async def test_a_body_that_does_not_arrive_in_time_gets_408(serve: Callable[..., Any]) -> None:
    server = await serve("limits: {body_timeout: 1s}\n")
    reader, writer = await connect(server)
    writer.write(ingest_head(len(EVENT)) + EVENT[:10])
    answer = await asyncio.wait_for(reader.read(200), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"limits.body_timeout" in answer or b"body_timeout" in answer
    text = await metrics(server)
    assert value(text, "agency_exporter_requests_rejected_total", reason="body_timeout") == 1


async def test_ingest_requests_beyond_the_bound_get_503_with_retry_after(serve: Callable[..., Any]) -> None:
    server = await serve("limits: {max_concurrent_ingest: 1}\n")
    slow_reader, slow_writer = await connect(server)
    slow_writer.write(ingest_head(len(EVENT)) + EVENT[:10])  # in flight, waiting for its body
    await slow_writer.drain()
    await asyncio.sleep(0.2)
    reader, writer = await connect(server)
    writer.write(ingest_head(len(EVENT)).replace(b"Host: x", b"Host: x\r\nConnection: close") + EVENT)
    answer = await asyncio.wait_for(reader.read(), 5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 503"), answer
    assert b"Retry-After: 1\r\n" in answer and b"max_concurrent_ingest" in answer
    slow_writer.write(EVENT[10:])  # the one in flight still completes
    assert (await asyncio.wait_for(slow_reader.read(200), 5)).startswith(b"HTTP/1.1 202")
    slow_writer.close()
    text = await metrics(server)
    assert value(text, "agency_exporter_requests_rejected_total", reason="overloaded") == 1
    assert value(text, "agency_workflow_tasks_total") == 1
