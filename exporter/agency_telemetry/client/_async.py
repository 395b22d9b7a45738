"""The asynchronous client: a bounded buffer, batches by size and time, retries without loss.

Every event gets an ``id`` when it is handed over, so a batch that reached the exporter but
whose answer was lost can be sent again: the exporter acknowledges the repeat as a duplicate.
Connection errors, 5xx and 429 are retried with exponential backoff and full jitter, never
sooner than the exporter's ``Retry-After``, for as long as it takes; a 400 is never retried —
the exporter said the events are invalid, and sending them again cannot help — it is logged
and handed to ``on_rejected``.

The buffer holds at most ``max_buffer`` events that are not yet in flight. When it is full,
the oldest waiting event is dropped (counted in :attr:`Stats.dropped`): fresh data is worth
more than old data to a monitoring system, and memory stays bounded while the exporter is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import msgspec

log = logging.getLogger("agency_telemetry.client")

Event = dict[str, Any]
RejectedHandler = Callable[[list[Event], dict[str, Any]], None]
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass
class Stats:
    """What happened to the events handed over; read it to alert on your own client."""

    queued: int = 0  # events handed over
    sent: int = 0  # events the exporter acknowledged (duplicates included)
    duplicates: int = 0  # of those, repeats the exporter had already applied
    dropped: int = 0  # oldest events dropped because the buffer was full
    rejected: int = 0  # events in batches the exporter refused as invalid (400/413/415)
    retries: int = 0  # batch sends that failed and were tried again


@dataclass
class ClientSettings:
    url: str = "http://127.0.0.1:9477"  # the exporter's base URL
    batch_size: int = 500  # events per request at most
    flush_interval: float = 1.0  # seconds an event may wait for its batch to fill
    max_buffer: int = 10_000  # events waiting at most; beyond it the oldest are dropped
    timeout: float = 10.0  # seconds per request
    backoff_initial: float = 0.2  # first retry waits up to this long …
    backoff_max: float = 30.0  # … doubling up to this cap
    token: str | None = None  # bearer token, when the exporter asks for one
    ssl_context: ssl.SSLContext | None = field(default=None, repr=False)  # https: private CA, client cert
    on_rejected: RejectedHandler | None = field(default=None, repr=False)


class AsyncClient:
    """Batches events to ``POST /v1/events`` from inside a running event loop.

    ``send`` only enqueues and never blocks; the sending happens in a background task.
    Use ``async with AsyncClient(...)`` or call ``start()`` and ``close()``.
    """

    def __init__(self, url: str | None = None, **settings: Any) -> None:
        self.settings = ClientSettings(url=url or ClientSettings.url, **settings)
        self.stats = Stats()
        self._pending: deque[Event] = deque()
        self._in_flight = 0
        self._wakeup = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._session: aiohttp.ClientSession | None = None

    # handing events over --------------------------------------------------------------

    def send(self, event: Event) -> str:
        """Queue one event (a dict as in the event API); returns its ``id``."""
        event.setdefault("id", uuid.uuid4().hex)
        if len(self._pending) >= self.settings.max_buffer:
            self._pending.popleft()
            self.stats.dropped += 1
            if self.stats.dropped == 1 or self.stats.dropped % 1000 == 0:
                log.warning("agency-telemetry buffer full: %d oldest events dropped so far", self.stats.dropped)
        self._pending.append(event)
        self.stats.queued += 1
        self._idle.clear()
        if len(self._pending) >= self.settings.batch_size:
            self._wakeup.set()
        return str(event["id"])

    async def flush(self, timeout: float | None = None) -> bool:
        """Send everything queued so far; False if ``timeout`` passed first."""
        self._wakeup.set()
        try:
            await asyncio.wait_for(self._idle.wait(), timeout)
        except TimeoutError:
            return False
        return True

    # lifecycle --------------------------------------------------------------------------

    async def start(self) -> AsyncClient:
        if self._task is None:
            headers = {"Content-Type": "application/x-ndjson"}
            if self.settings.token:
                headers["Authorization"] = f"Bearer {self.settings.token}"
            self._session = aiohttp.ClientSession(
                base_url=self.settings.url,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout),
                connector=aiohttp.TCPConnector(ssl=self.settings.ssl_context or True),
            )
            self._task = asyncio.create_task(self._run(), name="agency-telemetry-client")
        return self

    async def close(self, timeout: float | None = 30.0) -> None:
        """Flush (for up to ``timeout`` seconds), then stop the sender."""
        if self._task is None:
            return
        await self.flush(timeout)
        self._closing = True
        self._wakeup.set()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> AsyncClient:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # the sender -----------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            if len(self._pending) < self.settings.batch_size:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.settings.flush_interval)
            self._wakeup.clear()
            size = min(len(self._pending), self.settings.batch_size)
            batch = [self._pending.popleft() for _ in range(size)]
            self._in_flight = len(batch)
            await self._deliver(batch)
            self._in_flight = 0

    async def _deliver(self, batch: list[Event]) -> None:
        """Send one batch until the exporter answers for good; never gives up on a retryable error."""
        body = b"\n".join(msgspec.json.encode(event) for event in batch)
        attempt = 0
        while True:
            status, answer, retry_after = await self._post(body)
            if status == 202:
                self.stats.sent += len(batch)
                self.stats.duplicates += int(answer.get("duplicates", 0))
                return
            if status == 413 and len(batch) > 1:  # too big for this exporter: halve it
                half = len(batch) // 2
                await self._deliver(batch[:half])
                await self._deliver(batch[half:])
                return
            if status is not None and status not in RETRYABLE_STATUS:
                self._reject(batch, status, answer)
                return
            attempt += 1
            self.stats.retries += 1
            delay = random.uniform(0, min(self.settings.backoff_max, self.settings.backoff_initial * 2**attempt))
            delay = max(delay, min(retry_after, self.settings.backoff_max))  # the exporter knows best
            log.debug("agency-telemetry batch of %d not delivered (%s); retrying in %.2fs", len(batch), status, delay)
            await asyncio.sleep(delay)

    async def _post(self, body: bytes) -> tuple[int | None, dict[str, Any], float]:
        """The status (None when unreachable), the JSON answer, and Retry-After in seconds (0 if none)."""
        assert self._session is not None
        try:
            async with self._session.post("/v1/events", data=body) as resp:
                try:
                    answer = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    answer = {}
                retry_after = resp.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.isdigit() else 0.0
                return resp.status, answer if isinstance(answer, dict) else {}, wait
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("agency-telemetry exporter unreachable: %s", exc)
            return None, {}, 0.0

    def _reject(self, batch: list[Event], status: int, answer: dict[str, Any]) -> None:
        self.stats.rejected += len(batch)
        log.error(
            "agency-telemetry exporter rejected %d events with %d: %s %s",
            len(batch),
            status,
            answer.get("message", ""),
            answer.get("problems", ""),
        )
        if self.settings.on_rejected is not None:
            self.settings.on_rejected(batch, {"status": status, **answer})
