"""aiohttp routes. Each handler parses the request, calls the decoder, store or exposition,
and answers; no metric logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import math
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from . import __version__
from .config import Config
from .events import EventDecoder, InvalidBatch
from .exposition import OPENMETRICS_CONTENT_TYPE, TEXT_CONTENT_TYPE, Exposition, wants_openmetrics
from .reload import POLL_SECONDS, Reloadable
from .selfmetrics import SelfMetrics
from .store import LimitExceeded, Store
from .tokens import Forbidden, Token, Tokens, load_tokens
from .webconfig import TLSUpgrade, WebSecurity, load_web_config

GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip container, as Content-Encoding: gzip expects
CONFIG = web.AppKey("config", Config)
STORE = web.AppKey("store", Store)
EXPOSITION = web.AppKey("exposition", Exposition)
WEB_CONFIG = web.AppKey("web_config", Reloadable[WebSecurity])


class Ingest:
    """``POST /v1/events``: one JSON object, a JSON array, or NDJSON; applied all or nothing."""

    def __init__(
        self, config: Config, store: Store, self_metrics: SelfMetrics, tokens: Reloadable[Tokens] | None = None
    ) -> None:
        self.store = store
        self.self_metrics = self_metrics
        self.tokens = tokens
        self.max_body_size = config.limits.max_body_size
        self.max_concurrent = config.limits.max_concurrent_ingest
        self.body_timeout = config.limits.body_timeout
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
        if self._in_flight >= self.max_concurrent:
            message = f"{self.max_concurrent} ingest requests are in flight (limits.max_concurrent_ingest); retry"
            return self._reject(503, "overloaded", message, retry_after=1)
        self._in_flight += 1
        self._idle.clear()
        try:
            return await self._handle(request)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._idle.set()

    async def _handle(self, request: web.Request) -> web.Response:
        token = None
        if self.tokens is not None:
            authenticated = self._authenticate(request.headers.get("Authorization", ""), self.tokens.current)
            if isinstance(authenticated, web.Response):
                return authenticated
            token = authenticated
        media_type = request.content_type
        if media_type not in EventDecoder.MEDIA_TYPES:
            wanted = " or ".join(EventDecoder.MEDIA_TYPES)
            return self._reject(
                415, "unsupported_media_type", f"Content-Type {media_type!r} is not accepted; send {wanted}"
            )
        if request.content_length is not None and request.content_length > self.max_body_size:
            return self._too_large()
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        except TimeoutError:
            message = f"the body did not arrive within {self.body_timeout:g} s (limits.body_timeout)"
            return self._reject(408, "body_timeout", message)
        try:
            events = self.decoder.decode(body, media_type)
            if token is not None:
                refusal = self._authorize(token, events)
                if refusal is not None:
                    return refusal
            applied = self.store.apply(events)
        except InvalidBatch as exc:
            return self._reject(exc.status, exc.reason, exc.message, exc.events, problems=exc.problems)
        except LimitExceeded as exc:
            return self._reject(429, exc.reason, str(exc), len(events))
        if token is not None:
            self.self_metrics.token_used(token.name, len(events))
        return _json(202, {"accepted": applied.accepted, "duplicates": applied.duplicates})

    def _authenticate(self, authorization: str, tokens: Tokens) -> Token | web.Response:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            message = "send Authorization: Bearer <token> (ingest_tokens_file is set)"
            return self._reject(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        token = tokens.authenticate(presented.strip())
        if token is None:
            message = "the bearer token is not in the ingest tokens file (rotated out, or mistyped)"
            return self._reject(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        return token

    def _authorize(self, token: Token, events: list[Any]) -> web.Response | None:
        """403 outside the token's scope, 429/413 over its rate limit, else None."""
        try:
            Tokens.authorize(token, events)
        except Forbidden as exc:
            return self._reject(403, "forbidden", str(exc), len(events))
        bucket = token.bucket
        if bucket is None:
            return None
        if len(events) > bucket.burst:
            message = f"token {token.name!r} may send at most {bucket.burst:g} events at once; split the batch"
            return self._reject(413, "batch_too_large", message, len(events))
        wait = bucket.take(len(events))
        if wait:
            message = f"token {token.name!r} is over its rate limit of {bucket.rate:g} events/s; retry later"
            return self._reject(429, "rate_limited", message, len(events), retry_after=wait)
        return None

    def _too_large(self) -> web.Response:
        limit = self.max_body_size
        message = f"the body is larger than {limit} bytes (limits.max_body_size); split the batch"
        return self._reject(413, "body_too_large", message)

    def _reject(
        self,
        status: int,
        reason: str,
        message: str,
        events: int = 0,
        *,
        problems: list[Any] | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.self_metrics.rejected(reason, events)
        return _error(status, reason, message, _with_retry_after(headers, retry_after), problems)


INGEST = web.AppKey("ingest", Ingest)


def _json(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    body = msgspec.json.encode(payload)
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _error(
    status: int, reason: str, message: str, headers: dict[str, str] | None = None, problems: list[Any] | None = None
) -> web.Response:
    """The answer to a refused request: ``{"error": reason, "message": ..., "problems": [...]}``."""
    payload: dict[str, Any] = {"error": reason, "message": message}
    if problems is not None:
        payload["problems"] = problems
    return _json(status, payload, headers)


def _with_retry_after(headers: dict[str, str] | None, seconds: float | None) -> dict[str, str] | None:
    if seconds is None:
        return headers
    return {**(headers or {}), "Retry-After": str(max(1, math.ceil(seconds)))}


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


def web_security(settings: Reloadable[WebSecurity], self_metrics: SelfMetrics, ingest_has_tokens: bool) -> Any:
    """The web configuration's rate limit and basic auth, on every endpoint; ingest is left to
    its bearer tokens when an ingest tokens file is set (both would use ``Authorization``)."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Any:
        current = settings.current
        if current.rate_limit is not None:
            wait = current.rate_limit.take(1)
            if wait:
                self_metrics.web_rejected("rate_limit")
                message = "over the web configuration's rate_limit; retry later"
                return _error(429, "rate_limited", message, _with_retry_after(None, wait))
        auth = current.basic_auth
        exempt = ingest_has_tokens and request.path == "/v1/events"
        if auth is not None and not exempt and not await auth.check(request.headers.get("Authorization")):
            self_metrics.web_rejected("basic_auth")
            message = "basic auth required (basic_auth_users of the web configuration)"
            return _error(401, "unauthorized", message, {"WWW-Authenticate": "Basic"})
        return await handler(request)

    async def add_headers(request: web.Request, response: web.StreamResponse) -> None:
        response.headers.update(settings.current.headers)

    return middleware, add_headers


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
        middleware, add_headers = web_security(web_config, self_metrics, tokens is not None)
        app.middlewares.append(middleware)
        app.on_response_prepare.append(add_headers)
    app.router.add_post("/v1/events", ingest.handle)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz(ingest))
    app.router.add_get("/", landing(config))
    app.cleanup_ctx.append(_periodic(config.expiry.sweep_interval, store.expire))
    for reloadable in watched:
        app.cleanup_ctx.append(_periodic(POLL_SECONDS, reloadable.check))
    return app


@dataclass
class Server:
    """The listening socket and the aiohttp runner whose handlers serve its connections."""

    runner: web.AppRunner
    listener: asyncio.Server
    tls: bool

    @property
    def port(self) -> int:
        return int(self.listener.sockets[0].getsockname()[1])


async def start_server(app: web.Application, host: str, port: int) -> Server:
    """Bind and serve ``app`` (over TLS when its web configuration says so); raises OSError
    when the address cannot be used.

    The listener is opened here rather than by an aiohttp site so that, with TLS, each
    connection is upgraded with the web configuration in force when it arrives."""
    config = app[CONFIG]
    runner = web.AppRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=config.shutdown_timeout,
        keepalive_timeout=config.limits.idle_timeout,
    )
    await runner.setup()
    http = runner.server
    assert http is not None
    factory: Callable[[], asyncio.Protocol] = http
    web_config = app.get(WEB_CONFIG)
    tls = web_config is not None and web_config.current.ssl_context is not None
    if web_config is not None and tls:
        self_metrics = app[EXPOSITION].self_metrics
        factory = lambda: TLSUpgrade(http(), lambda: web_config.current, self_metrics.web_rejected)  # noqa: E731
    try:
        listener = await asyncio.get_running_loop().create_server(factory, host or None, port, reuse_address=True)
    except OSError:
        await runner.cleanup()
        raise
    return Server(runner, listener, tls)


async def stop_server(server: Server, shutdown_timeout: float, grace: float = 0.0) -> None:
    """Drain ingest requests in flight; then, for up to ``grace`` seconds, keep serving /metrics
    until Prometheus has scraped the final values once; then shut down (aiohttp waits for other
    handlers)."""
    ingest = server.runner.app[INGEST]
    await ingest.stop(shutdown_timeout)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(ingest.final_scrape.wait(), grace)
    server.listener.close()
    await server.runner.cleanup()
