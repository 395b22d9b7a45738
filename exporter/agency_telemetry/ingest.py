"""The ingest gate every input shares — shutdown, overload, bearer tokens, body limits, token
scopes and rate limits — and ``POST /v1/events`` (JSON, JSON array or NDJSON, all or nothing).

An input is a :class:`Reader`: what media types it reads, how a body becomes events, and how
it answers. Each refusal is answered from the table in :mod:`refusals` and counted by reason in
the self-metrics; no metric logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from aiohttp import web

from .config import Config
from .decoder import EventDecoder, InvalidBatch, check_media_type
from .events import Event
from .limits import LimitExceeded
from .refusals import json_answer, refusal_answer
from .reload import Reloadable
from .selfmetrics import SelfMetrics
from .store import Applied, Store
from .tokens import Forbidden, Token, Tokens

Handler = Callable[[web.Request], Awaitable[web.Response]]


@dataclass
class Batch:
    """What a reader made of a request body: the events to apply, and what it left out."""

    events: list[Event]
    rejected: int = 0  # items of the request that could not be used (partial success)
    problems: list[str] = field(default_factory=list)
    plan: Any = None  # what the reader commits once the events are applied


class Refused(NamedTuple):
    """A request refused whole, as a reader answers it (``reason`` from :mod:`refusals`)."""

    reason: str
    message: str
    media_type: str
    problems: list[Any] | None = None
    retry_after: float | None = None
    headers: dict[str, str] | None = None


class Reader(Protocol):
    def check_media_type(self, media_type: str) -> None:
        """Raises InvalidBatch for a media type this reader does not read."""

    def read(self, body: bytes, media_type: str, token: Token | None) -> Batch:
        """The request's events; raises InvalidBatch when nothing of it can be used. ``token``
        (the request's, if tokens are configured) is for events the reader keeps for later."""

    def apply(self, store: Store, batch: Batch) -> Applied:
        """Applies the batch; raises LimitExceeded when the batch is refused whole."""

    def accepted(self, batch: Batch, applied: Applied, media_type: str) -> web.Response: ...

    def refused(self, refused: Refused) -> web.Response:
        """The answer to a request refused whole."""


class JsonEvents:
    """``POST /v1/events``: one JSON object, a JSON array, or NDJSON; applied all or nothing."""

    def __init__(self, config: Config) -> None:
        self.decoder = EventDecoder(
            config.agent_types, config.limits.max_label_length, config.limits.max_events_per_batch
        )

    def check_media_type(self, media_type: str) -> None:
        check_media_type(media_type)

    def read(self, body: bytes, media_type: str, token: Token | None) -> Batch:
        return Batch(self.decoder.decode(body, media_type))

    def apply(self, store: Store, batch: Batch) -> Applied:
        return store.apply(batch.events)

    def accepted(self, batch: Batch, applied: Applied, media_type: str) -> web.Response:
        return json_answer(202, {"accepted": applied.accepted, "duplicates": applied.duplicates})

    def refused(self, refused: Refused) -> web.Response:
        return refusal_answer(
            refused.reason,
            refused.message,
            problems=refused.problems,
            retry_after=refused.retry_after,
            headers=refused.headers,
        )


class Ingest:
    """The gate in front of every reader: one count of requests in flight, one drain on shutdown."""

    def __init__(
        self, config: Config, store: Store, self_metrics: SelfMetrics, tokens: Reloadable[Tokens] | None = None
    ) -> None:
        self.store = store
        self.self_metrics = self_metrics
        self.tokens = tokens
        self.max_body_size = config.limits.max_body_size
        self.max_concurrent = config.limits.max_concurrent_ingest
        self.body_timeout = config.limits.body_timeout
        self.accepting = True
        self.final_scrape = asyncio.Event()  # set by the first scrape after ingest stopped
        self.on_stop: list[Callable[[], object]] = []  # run once ingest has drained
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
        for action in self.on_stop:
            action()

    def route(self, reader: Reader) -> Handler:
        """The aiohttp handler of an ingest path read by ``reader``."""

        async def handle(request: web.Request) -> web.Response:
            refuse = _Refuser(self.self_metrics, reader, request.content_type)
            if not self.accepting:
                message = "the exporter is shutting down; retry against another replica"
                return refuse("shutting_down", message, retry_after=1)
            if self._in_flight >= self.max_concurrent:
                message = f"{self.max_concurrent} ingest requests are in flight (limits.max_concurrent_ingest); retry"
                return refuse("overloaded", message, retry_after=1)
            self._in_flight += 1
            self._idle.clear()
            try:
                return await self._handle(request, reader, refuse)
            finally:
                self._in_flight -= 1
                if not self._in_flight:
                    self._idle.set()

        return handle

    async def _handle(self, request: web.Request, reader: Reader, refuse: _Refuser) -> web.Response:
        token = None
        if self.tokens is not None:
            authenticated = self._authenticate(request.headers.get("Authorization", ""), self.tokens.current, refuse)
            if isinstance(authenticated, web.Response):
                return authenticated
            token = authenticated
        media_type = request.content_type
        try:
            reader.check_media_type(media_type)  # before reading a body that could not be decoded anyway
        except InvalidBatch as exc:
            return refuse(exc.reason, exc.message)
        if request.content_length is not None and request.content_length > self.max_body_size:
            return self._too_large(refuse)
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large(refuse)
        except TimeoutError:
            message = f"the body did not arrive within {self.body_timeout:g} s (limits.body_timeout)"
            return refuse("body_timeout", message)
        try:
            batch = reader.read(body, media_type, token)
            if token is not None:
                refusal = self._authorize(token, batch.events, refuse)
                if refusal is not None:
                    return refusal
            applied = reader.apply(self.store, batch)
        except InvalidBatch as exc:
            return refuse(exc.reason, exc.message, exc.events, problems=exc.problems)
        except LimitExceeded as exc:
            return refuse(exc.reason, str(exc), len(batch.events))
        if token is not None:
            self.self_metrics.token_used(token.name, len(batch.events))
        return reader.accepted(batch, applied, media_type)

    def _authenticate(self, authorization: str, tokens: Tokens, refuse: _Refuser) -> Token | web.Response:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            message = "send Authorization: Bearer <token> (ingest_tokens_file is set)"
            return refuse("unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        token = tokens.authenticate(presented.strip())
        if token is None:
            message = "the bearer token is not in the ingest tokens file (rotated out, or mistyped)"
            return refuse("unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        return token

    def _authorize(self, token: Token, events: list[Event], refuse: _Refuser) -> web.Response | None:
        """403 outside the token's scope, 429/413 over its rate limit, else None."""
        try:
            Tokens.authorize(token, events)
        except Forbidden as exc:
            return refuse("forbidden", str(exc), len(events))
        bucket = token.bucket
        if bucket is None:
            return None
        if len(events) > bucket.burst:
            message = f"token {token.name!r} may send at most {bucket.burst:g} events at once; split the batch"
            return refuse("batch_too_large", message, len(events))
        wait = bucket.take(len(events))
        if wait:
            message = f"token {token.name!r} is over its rate limit of {bucket.rate:g} events/s; retry later"
            return refuse("rate_limited", message, len(events), retry_after=wait)
        return None

    def _too_large(self, refuse: _Refuser) -> web.Response:
        limit = self.max_body_size
        message = f"the body is larger than {limit} bytes (limits.max_body_size); split the batch"
        return refuse("body_too_large", message)


class _Refuser:
    """Answers a refusal in the reader's way and counts it by reason."""

    def __init__(self, self_metrics: SelfMetrics, reader: Reader, media_type: str) -> None:
        self.self_metrics = self_metrics
        self.reader = reader
        self.media_type = media_type

    def __call__(
        self,
        reason: str,
        message: str,
        events: int = 0,
        *,
        problems: list[Any] | None = None,
        retry_after: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.self_metrics.rejected(reason, events)
        return self.reader.refused(Refused(reason, message, self.media_type, problems, retry_after, headers))
