"""The asynchronous client: a bounded buffer, batches by size and time, retries without loss.

Every event gets an ``id`` when it is handed over, so a batch that reached the exporter but
whose answer was lost can be sent again: the exporter acknowledges the repeat as a duplicate.
Connection errors, 5xx and 429 are retried with exponential backoff and full jitter, never
sooner than the exporter's ``Retry-After``, for as long as it takes; a 400 is never retried —
the exporter said the events are invalid, and sending them again cannot help — it is logged
and handed to ``on_rejected``.

Given several exporter URLs, the client routes each event by its owner (agent, council, queue,
alert; workflow events take turns) with rendezvous hashing: an owner's events all go to one
replica, and adding or removing a replica moves only the owners it gains or loses. A replica
that fails (unreachable, 5xx, 429) is skipped for a backoff that doubles while it keeps
failing, its events going to each owner's next choice at once; when the backoff is over the
owners move back. Exactly-once holds per replica: a batch whose answer was lost just before a
failover may be counted on both.

The buffer holds at most ``max_buffer`` events that are not yet in flight. When it is full,
the oldest waiting event is dropped (counted in :attr:`Stats.dropped`): fresh data is worth
more than old data to a monitoring system, and memory stays bounded while the exporter is away.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import itertools
import logging
import random
import ssl
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
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
    failovers: int = 0  # events sent to another replica than their owner's first choice, which was failing


@dataclass
class ClientSettings:
    url: str | Sequence[str] = "http://127.0.0.1:9477"  # the exporter's base URL, or its replicas'
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

    def __init__(self, url: str | Sequence[str] | None = None, **settings: Any) -> None:
        self.settings = ClientSettings(url=url or ClientSettings.url, **settings)
        self.endpoints = Endpoints(self.settings)
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
        """Send one batch until the exporters answer for good; never gives up on a retryable
        error. Events of a failing replica go to their owners' next choice at once; only when
        every replica is failing does the client wait (backoff, or the exporter's Retry-After)."""
        pending, attempt = batch, 0
        while pending:
            routes, moved = self.endpoints.route(pending)
            self.stats.failovers += moved
            outcomes = await asyncio.gather(*(self._send_to(url, events) for url, events in routes.items()))
            pending = [event for failed, _ in outcomes for event in failed]
            if not pending:
                return
            self.stats.retries += 1
            if self.endpoints.any_up():
                continue
            attempt += 1
            delay = random.uniform(0, min(self.settings.backoff_max, self.settings.backoff_initial * 2**attempt))
            retry_after = max(wait for _, wait in outcomes)
            delay = max(delay, min(retry_after, self.settings.backoff_max))  # the exporter knows best
            log.debug("agency-telemetry %d events not delivered; retrying in %.2fs", len(pending), delay)
            await asyncio.sleep(delay)

    async def _send_to(self, url: str, events: list[Event]) -> tuple[list[Event], float]:
        """Posts ``events`` to one exporter: ([], 0) when it answered for good, else the events
        still to send and its Retry-After (the exporter is then skipped for a while)."""
        body = b"\n".join(msgspec.json.encode(event) for event in events)
        status, answer, retry_after = await self._post(url, body)
        if status == 202:
            self.endpoints.succeeded(url)
            self.stats.sent += len(events)
            self.stats.duplicates += int(answer.get("duplicates", 0))
            return [], 0.0
        if status == 413 and len(events) > 1:  # too big for this exporter: halve it
            half = len(events) // 2
            first, second = await self._send_to(url, events[:half]), await self._send_to(url, events[half:])
            return first[0] + second[0], max(first[1], second[1])
        if status is not None and status not in RETRYABLE_STATUS:
            self._reject(events, status, answer)
            return [], 0.0
        self.endpoints.failed(url, retry_after)
        log.debug("agency-telemetry batch of %d not delivered to %s (%s)", len(events), url, status)
        return events, retry_after

    async def _post(self, url: str, body: bytes) -> tuple[int | None, dict[str, Any], float]:
        """The status (None when unreachable), the JSON answer, and Retry-After in seconds (0 if none)."""
        assert self._session is not None
        try:
            async with self._session.post(f"{url}/v1/events", data=body) as resp:
                try:
                    answer = await resp.json(content_type=None)
                except (ValueError, aiohttp.ContentTypeError):
                    answer = {}
                retry_after = resp.headers.get("Retry-After", "")
                wait = float(retry_after) if retry_after.isdigit() else 0.0
                return resp.status, answer if isinstance(answer, dict) else {}, wait
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            log.debug("agency-telemetry exporter %s unreachable: %s", url, exc)
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


# The fields naming an event's owner, in the order they are looked for: every event of one
# agent (council, queue, alert) goes to the same replica. Workflow events have none: any
# replica will do, and they take turns.
ROUTING_FIELDS = ("agent", "council", "queue", "alert_id")


class Endpoints:
    """The exporter replicas: which one each owner's events go to, and which are failing."""

    def __init__(self, settings: ClientSettings) -> None:
        urls = [settings.url] if isinstance(settings.url, str) else list(settings.url)
        if not urls:
            raise ValueError("url: give the exporter's URL, or a list of its replicas' URLs")
        self.urls = [url.rstrip("/") for url in urls]
        self._initial, self._max = settings.backoff_initial, settings.backoff_max
        self._down_until = dict.fromkeys(self.urls, 0.0)
        self._failures = dict.fromkeys(self.urls, 0)
        self._turns = itertools.cycle([tuple(self.urls[i:] + self.urls[:i]) for i in range(len(self.urls))])
        # This client's own cache of owners' rankings (a cache on the method would be shared by
        # every client and keep them alive).
        self.ranking = functools.lru_cache(maxsize=65_536)(self._ranking)

    def _ranking(self, key: str) -> tuple[str, ...]:
        """The replicas in ``key``'s order of preference (rendezvous hashing)."""

        def score(url: str) -> bytes:
            return hashlib.blake2b(f"{url}\0{key}".encode(), digest_size=8).digest()

        return tuple(sorted(self.urls, key=score, reverse=True))

    def route(self, events: list[Event]) -> tuple[dict[str, list[Event]], int]:
        """The events by the replica each goes to — its owner's first choice that is not
        failing, or the first choice when all are — and how many did not go to their first."""
        if len(self.urls) == 1:
            return {self.urls[0]: events}, 0
        now, moved = time.monotonic(), 0
        routes: dict[str, list[Event]] = {}
        for event in events:
            owner = _owner(event)
            ranking = self.ranking(owner) if owner else next(self._turns)
            url = next((u for u in ranking if self._down_until[u] <= now), ranking[0])
            moved += url != ranking[0]
            routes.setdefault(url, []).append(event)
        return routes, moved

    def any_up(self) -> bool:
        now = time.monotonic()
        return len(self.urls) > 1 and any(until <= now for until in self._down_until.values())

    def failed(self, url: str, retry_after: float) -> None:
        self._failures[url] += 1
        backoff = min(self._max, self._initial * 2 ** self._failures[url])
        self._down_until[url] = time.monotonic() + max(backoff, min(retry_after, self._max))

    def succeeded(self, url: str) -> None:
        self._failures[url] = 0
        self._down_until[url] = 0.0


def _owner(event: Event) -> str:
    """``agent=…`` (or council, queue, alert_id) of the event's owner; "" for none."""
    for name in ROUTING_FIELDS:
        value = event.get(name)
        if value is not None:
            return f"{name}={value}"
    return ""
