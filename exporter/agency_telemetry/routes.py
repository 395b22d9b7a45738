"""The exporter's HTTP application: its routes (metrics, health, landing page), the background
sweeps, and the factory that wires configuration, store, ingest, exposition and web security.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import time
import zlib
from collections.abc import AsyncIterator, Callable
from functools import partial
from typing import Any

from aiohttp import web

from . import __version__
from .config import Config
from .exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, Exposition, accepts_gzip, wants_openmetrics
from .ingest import Ingest, JsonEvents
from .otlp_ingest import otlp_readers
from .persistence import Persistence
from .reload import POLL_SECONDS, Reloadable
from .selfmetrics import SelfMetrics
from .store import Store
from .tokens import load_tokens
from .webconfig import WebSecurity, load_web_config, web_security

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip container, as Content-Encoding: gzip expects
CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
EXPOSITION = web.AppKey("exposition", Exposition)
INGEST = web.AppKey("ingest", Ingest)
WEB_CONFIG = web.AppKey("web_config", Reloadable[WebSecurity])
ATTRIBUTION_SWEEP_SECONDS = 1.0  # how late past otlp.attribution_hold a held span may count


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
    ingest = request.app[INGEST]
    store = request.app[STORE]
    if ingest.accepting:
        store.scraped()
    else:  # the final scrape: nothing more will come to be held back for
        store.reveal()
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
    if not ingest.accepting:
        ingest.final_scrape.set()
    return response


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
<li><code>POST /v1/traces</code>, <code>POST /v1/metrics</code> — OTLP/HTTP with the GenAI conventions</li>
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


async def _every(interval: float, action: Callable[[], object]) -> None:
    while True:
        await asyncio.sleep(interval)
        action()


def _periodic(interval: float, action: Callable[[], object]) -> Any:
    """A cleanup context calling ``action`` every ``interval`` seconds from start-up to shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_every(interval, action))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


def _persisted(persistence: Persistence) -> Any:
    """A cleanup context restoring the store before the first request, snapshotting it every
    interval, and writing the final snapshot after ingest has stopped."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        persistence.start()
        task = asyncio.create_task(persistence.run())
        yield
        persistence.stop()
        await task  # a snapshot being written is finished, not cut off
        persistence.close()

    return context


def create_app(config: Config, store: Store | None = None) -> web.Application:
    """The exporter's application. Raises ConfigError when the web configuration or ingest
    tokens file (if set) cannot be used: the exporter never starts less protected than asked."""
    store = store or Store(config)
    self_metrics = SelfMetrics(store)
    tokens = web_config = None
    if config.ingest_tokens_file:
        tokens = Reloadable("ingest_tokens", config.ingest_tokens_file, load_tokens)
    if config.web_config_file:
        web_config = Reloadable("web_config", config.web_config_file, load_web_config)
    watched = [r for r in (web_config, tokens) if r is not None]
    self_metrics.watch(watched)
    ingest = Ingest(config, store, self_metrics, tokens)
    # aiohttp enforces the body limit while reading, also for chunked bodies without a length.
    app = web.Application(client_max_size=config.limits.max_body_size)
    app[CONFIG] = config
    app[STORE] = store
    app[EXPOSITION] = Exposition(store, self_metrics)
    app[INGEST] = ingest
    if web_config is not None:
        app[WEB_CONFIG] = web_config
        middleware, add_headers = web_security(web_config, self_metrics.web_rejected, tokens is not None)
        app.middlewares.append(middleware)
        app.on_response_prepare.append(add_headers)
    app.router.add_post("/v1/events", ingest.route(JsonEvents(config)))
    traces, metrics_reader = otlp_readers(config, store, self_metrics)
    app.router.add_post("/v1/traces", ingest.route(traces))
    app.router.add_post("/v1/metrics", ingest.route(metrics_reader))
    ingest.on_stop.append(partial(traces.release_held, store))
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz(ingest))
    app.router.add_get("/", landing(config))
    if config.persistence.file is not None:
        persistence = Persistence(config.persistence, store)
        self_metrics.watch_persistence(persistence)
        app.cleanup_ctx.append(_persisted(persistence))  # first in, last out: after the other sweeps stop
    app.cleanup_ctx.append(_periodic(config.expiry.sweep_interval, store.expire))
    app.cleanup_ctx.append(_periodic(ATTRIBUTION_SWEEP_SECONDS, partial(traces.sweep, store)))
    app.cleanup_ctx.append(_periodic(config.expiry.sweep_interval, metrics_reader.sweep))
    for reloadable in watched:
        app.cleanup_ctx.append(_periodic(POLL_SECONDS, reloadable.check))
    return app
