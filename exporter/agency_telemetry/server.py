"""The listener: binds the address, upgrades each connection to TLS with the web configuration
in force when it arrives, serves the application, and shuts down in order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .routes import CONFIG, EXPOSITION, INGEST, WEB_CONFIG
from .webconfig import WebSecurity

log = logging.getLogger("agency_telemetry.server")
TLS_HANDSHAKE_TIMEOUT = 10.0  # seconds; a client that stalls the handshake is dropped


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


class TLSUpgrade(asyncio.Protocol):
    """Accepts a plain TCP connection and starts TLS on it with the context in force *now*.

    asyncio fixes a listener's SSLContext when it starts, and switching contexts in an SNI
    callback keeps the first context's client-certificate policy; upgrading each connection
    ourselves is what lets a reloaded web configuration (new certificate, new client CA, new
    client_auth_type) apply to the next connection without reopening the listener."""

    def __init__(
        self,
        http_protocol: asyncio.Protocol,
        settings: Callable[[], WebSecurity],
        on_failure: Callable[[str], None],
    ) -> None:
        self.http_protocol = http_protocol
        self.settings = settings
        self.on_failure = on_failure
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.pause_reading()  # the handshake reads once start_tls has taken over
        self._task = asyncio.ensure_future(self._upgrade(transport))

    def connection_lost(self, exc: Exception | None) -> None:
        pass  # before the handshake ends start_tls fails and _upgrade closes; after, the TLS layer owns it

    async def _upgrade(self, transport: asyncio.Transport) -> None:
        settings = self.settings()
        assert settings.ssl_context is not None
        loop = asyncio.get_running_loop()
        try:
            tls = await loop.start_tls(
                transport,
                self.http_protocol,
                settings.ssl_context,
                server_side=True,
                ssl_handshake_timeout=TLS_HANDSHAKE_TIMEOUT,
            )
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
            self.on_failure("handshake")
            log.debug("TLS handshake failed: %s", exc)
            transport.close()
            return
        if tls is None:  # the peer went away during the handshake
            transport.close()
            return
        allowed = settings.allowed_sans
        if allowed is not None and not _san_allowed(tls.get_extra_info("peercert"), allowed):
            self.on_failure("client_san")
            tls.abort()
            return
        self.http_protocol.connection_made(tls)


def _san_allowed(peercert: dict[str, Any] | None, allowed: frozenset[str]) -> bool:
    names = (value for _, value in (peercert or {}).get("subjectAltName", ()))
    return any(name in allowed for name in names)
