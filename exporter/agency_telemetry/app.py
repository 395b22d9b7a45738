"""aiohttp routes. Each handler parses the request, calls the decoder, store or exposition,
and answers; no metric logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
import zlib
from collections.abc import AsyncIterator
from typing import Any

import msgspec
from aiohttp import web

from . import __version__
from .config import Config
from .events import EventDecoder, InvalidBatch
from .exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, Exposition, wants_openmetrics
from .selfmetrics import SelfMetrics
from .store import LimitExceeded, Store

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip container, as Content-Encoding: gzip expects
STORE = web.AppKey("store", Store)
EXPOSITION = web.AppKey("exposition", Exposition)


class Ingest:
    """``POST /v1/events``: one JSON object, a JSON array, or NDJSON; applied all or nothing."""

    def __init__(self, config: Config, store: Store, self_metrics: SelfMetrics) -> None:
        self.store = store
        self.self_metrics = self_metrics
        self.max_body_size = config.limits.max_body_size
        self.decoder = EventDecoder(
            config.agent_types, config.limits.max_label_length, config.limits.max_events_per_batch
        )
        self.accepting = True
        self.final_scrape = asyncio.Event()  # set by the first scrape after ingest stopped
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def stop(self, timeout: float) -> None:
        """Refuse new batches (503, so clients keep them and retry) and wait for those in flight.

        aiohttp's own shutdown stops reading sockets at once, which would cut off a batch whose
        body is still arriving; draining here first lets it finish.
        """
        self.accepting = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout)

    async def handle(self, request: web.Request) -> web.Response:
        if not self.accepting:
            return self._reject(503, "shutting_down", "the exporter is shutting down; retry against another replica")
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._handle(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _handle(self, request: web.Request) -> web.Response:
        media_type = request.content_type
        if media_type not in EventDecoder.MEDIA_TYPES:
            wanted = " or ".join(EventDecoder.MEDIA_TYPES)
            return self._reject(
                415, "unsupported_media_type", f"Content-Type {media_type!r} is not accepted; send {wanted}"
            )
        if request.content_length is not None and request.content_length > self.max_body_size:
            return self._too_large()
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        try:
            events = self.decoder.decode(body, media_type)
            applied = self.store.apply(events)
        except InvalidBatch as exc:
            return self._reject(exc.status, exc.reason, exc.message, exc.events, exc.problems)
        except LimitExceeded as exc:
            return self._reject(429, exc.reason, str(exc), len(events))
        self.self_metrics.received(events)
        return _json(202, {"accepted": applied.accepted, "duplicates": applied.duplicates})

    def _too_large(self) -> web.Response:
        limit = self.max_body_size
        message = f"the body is larger than {limit} bytes (limits.max_body_size); split the batch"
        return self._reject(413, "body_too_large", message)

    def _reject(
        self, status: int, reason: str, message: str, events: int = 0, problems: list[Any] | None = None
    ) -> web.Response:
        self.self_metrics.rejected(reason, events)
        payload: dict[str, Any] = {"error": reason, "message": message}
        if problems is not None:
            payload["problems"] = problems
        return _json(status, payload)


INGEST = web.AppKey("ingest", Ingest)


def _json(status: int, payload: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=msgspec.json.encode(payload), content_type="application/json")


async def metrics(request: web.Request) -> web.StreamResponse:
    """Renders, compresses and sends piece by piece, letting other requests run in between:
    ingest waits a few milliseconds at most however big the scrape is, and memory holds one
    piece, not the whole exposition."""
    exposition = request.app[EXPOSITION]
    openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
    response = web.StreamResponse(
        headers={
            "Content-Type": OPENMETRICS_CONTENT_TYPE if openmetrics else TEXT_CONTENT_TYPE,
            "Vary": "Accept-Encoding",
        }
    )
    compressor = None
    if accepts_gzip(request.headers.get("Accept-Encoding", "")):
        compressor = zlib.compressobj(1, zlib.DEFLATED, GZIP_WBITS)
        response.headers["Content-Encoding"] = "gzip"
    await response.prepare(request)
    busy = 0.0  # seconds spent rendering and compressing, not sending or waiting for the loop
    started = time.perf_counter()
    for piece in exposition.pieces(openmetrics):
        data = compressor.compress(piece) if compressor else piece
        busy += time.perf_counter() - started
        await response.write(data)
        await asyncio.sleep(0)  # write() returns at once while the socket buffer has room
        started = time.perf_counter()
    if compressor:
        await response.write(compressor.flush())
    exposition.self_metrics.scrape_duration.observe(busy)
    await response.write_eof()
    ingest = request.app[INGEST]
    if not ingest.accepting:
        ingest.final_scrape.set()
    return response


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client takes gzip, honouring ``q=0`` ("not this one")."""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip()
            return not quality.startswith("q=") or quality[2:].strip() not in ("0", "0.0", "0.00", "0.000")
    return False


async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n")


def readyz(ingest: Ingest) -> Any:
    async def handler(request: web.Request) -> web.Response:
        if ingest.accepting:
            return web.Response(text="ready\n")
        return web.Response(status=503, text="shutting down\n")

    return handler


def landing(config: Config) -> Any:
    rows = "".join(
        f"<tr><td>limits.{name}</td><td>{html.escape(str(getattr(config.limits, name)))}</td></tr>"
        for name in config.limits.__struct_fields__
    ) + "".join(
        f"<tr><td>expiry.{name}</td><td>{html.escape(str(getattr(config.expiry, name)))} s</td></tr>"
        for name in config.expiry.__struct_fields__
        if name != "dedup_max_ids"
    )
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Agency Telemetry exporter</title></head>
<body><h1>Agency Telemetry exporter {__version__}</h1>
<ul>
<li><a href="/metrics">/metrics</a> — Prometheus text or OpenMetrics</li>
<li><code>POST /v1/events</code> — JSON object, JSON array or NDJSON</li>
<li><a href="/healthz">/healthz</a> — liveness</li>
<li><a href="/readyz">/readyz</a> — readiness</li>
</ul>
<p>Agent types: {html.escape(", ".join(config.agent_types))}</p>
<h2>Active limits</h2><table>{rows}<tr><td>expiry.dedup_max_ids</td><td>{config.expiry.dedup_max_ids}</td></tr></table>
</body></html>
"""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    return handler


async def _sweep(store: Store, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        store.expire()


def create_app(config: Config, store: Store | None = None) -> web.Application:
    store = store or Store(config)
    self_metrics = SelfMetrics(store)
    ingest = Ingest(config, store, self_metrics)
    # aiohttp enforces the body limit while reading, also for chunked bodies without a length.
    app = web.Application(client_max_size=config.limits.max_body_size)
    app[STORE] = store
    app[EXPOSITION] = Exposition(store, self_metrics)
    app[INGEST] = ingest
    app.router.add_post("/v1/events", ingest.handle)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz(ingest))
    app.router.add_get("/", landing(config))

    async def sweeper(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_sweep(store, config.expiry.sweep_interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(sweeper)
    return app


async def start_server(app: web.Application, host: str, port: int, shutdown_timeout: float) -> web.AppRunner:
    """Bind and serve ``app``; raises OSError when the address cannot be used."""
    runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError:
        await runner.cleanup()
        raise
    return runner


async def stop_server(runner: web.AppRunner, shutdown_timeout: float, grace: float = 0.0) -> None:
    """Drain ingest requests in flight; then, for up to ``grace`` seconds, keep serving /metrics
    until Prometheus has scraped the final values once; then shut down (aiohttp waits for other
    handlers)."""
    ingest = runner.app[INGEST]
    await ingest.stop(shutdown_timeout)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ingest.final_scrape.wait(), grace)
    await runner.cleanup()
