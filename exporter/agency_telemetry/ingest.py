"""``POST /v1/events``: authenticate, rate-limit, read, decode, authorize, apply; all or nothing.

Each refusal is answered from the table in :mod:`refusals` and counted by reason in the
self-metrics; no metric logic lives here.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from aiohttp import web

from .config import Config
from .decoder import EventDecoder, InvalidBatch, check_media_type
from .limits import LimitExceeded
from .refusals import json_answer, refusal_answer
from .reload import Reloadable
from .selfmetrics import SelfMetrics
from .store import Store
from .tokens import Forbidden, Token, Tokens


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
            return self._refuse("shutting_down", "the exporter is shutting down; retry against another replica")
        if self._in_flight >= self.max_concurrent:
            message = f"{self.max_concurrent} ingest requests are in flight (limits.max_concurrent_ingest); retry"
            return self._refuse("overloaded", message, retry_after=1)
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
        try:
            check_media_type(media_type)  # before reading a body that could not be decoded anyway
        except InvalidBatch as exc:
            return self._refuse(exc.reason, exc.message)
        if request.content_length is not None and request.content_length > self.max_body_size:
            return self._too_large()
        try:
            async with asyncio.timeout(self.body_timeout):
                body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return self._too_large()
        except TimeoutError:
            message = f"the body did not arrive within {self.body_timeout:g} s (limits.body_timeout)"
            return self._refuse("body_timeout", message)
        try:
            events = self.decoder.decode(body, media_type)
            if token is not None:
                refusal = self._authorize(token, events)
                if refusal is not None:
                    return refusal
            applied = self.store.apply(events)
        except InvalidBatch as exc:
            return self._refuse(exc.reason, exc.message, exc.events, problems=exc.problems)
        except LimitExceeded as exc:
            return self._refuse(exc.reason, str(exc), len(events))
        if token is not None:
            self.self_metrics.token_used(token.name, len(events))
        return json_answer(202, {"accepted": applied.accepted, "duplicates": applied.duplicates})

    def _authenticate(self, authorization: str, tokens: Tokens) -> Token | web.Response:
        scheme, _, presented = authorization.partition(" ")
        if scheme.lower() != "bearer" or not presented.strip():
            message = "send Authorization: Bearer <token> (ingest_tokens_file is set)"
            return self._refuse("unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        token = tokens.authenticate(presented.strip())
        if token is None:
            message = "the bearer token is not in the ingest tokens file (rotated out, or mistyped)"
            return self._refuse("unauthorized", message, headers={"WWW-Authenticate": "Bearer"})
        return token

    def _authorize(self, token: Token, events: list[Any]) -> web.Response | None:
        """403 outside the token's scope, 429/413 over its rate limit, else None."""
        try:
            Tokens.authorize(token, events)
        except Forbidden as exc:
            return self._refuse("forbidden", str(exc), len(events))
        bucket = token.bucket
        if bucket is None:
            return None
        if len(events) > bucket.burst:
            message = f"token {token.name!r} may send at most {bucket.burst:g} events at once; split the batch"
            return self._refuse("batch_too_large", message, len(events))
        wait = bucket.take(len(events))
        if wait:
            message = f"token {token.name!r} is over its rate limit of {bucket.rate:g} events/s; retry later"
            return self._refuse("rate_limited", message, len(events), retry_after=wait)
        return None

    def _too_large(self) -> web.Response:
        limit = self.max_body_size
        message = f"the body is larger than {limit} bytes (limits.max_body_size); split the batch"
        return self._refuse("body_too_large", message)

    def _refuse(
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
        return refusal_answer(reason, message, problems=problems, retry_after=retry_after, headers=headers)
