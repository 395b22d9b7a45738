"""Every reason the exporter refuses a request or connection for, with its HTTP answer.

The decoder, the store and the token checks name a refusal by its reason; this table alone
says what the client is answered. The self-metrics start each reason's counters at zero from
it, so a dashboard can show a reason before it first happens.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import msgspec
from aiohttp import web

from .owners import LIMITED


@dataclass(frozen=True)
class Refusal:
    reason: str  # the `reason` label of the self-metric, and the answer's "error" unless `error` is set
    status: int | None  # the HTTP status; None: a connection dropped before any HTTP was spoken
    retryable: bool = False  # the same request may succeed later: a client keeps it and sends it again
    web: bool = False  # under the web configuration (agency_exporter_web_rejected_total), not ingest
    error: str | None = None


INGEST_REFUSALS = (
    Refusal("malformed", 400),
    Refusal("invalid", 400),
    Refusal("unsupported_media_type", 415),
    Refusal("body_too_large", 413),
    Refusal("batch_too_large", 413),
    # Past a limit the same batch keeps failing until owners expire or the limit is raised.
    *(Refusal(kind.limit_reason, 429) for kind in LIMITED),
    Refusal("shutting_down", 503, retryable=True),
    Refusal("overloaded", 503, retryable=True),
    Refusal("body_timeout", 408, retryable=True),
    Refusal("unauthorized", 401),
    Refusal("forbidden", 403),
    Refusal("rate_limited", 429, retryable=True),
)
WEB_REFUSALS = (
    Refusal("basic_auth", 401, web=True, error="unauthorized"),
    Refusal("rate_limit", 429, retryable=True, web=True, error="rate_limited"),
    Refusal("handshake", None, web=True),
    Refusal("client_san", None, web=True),
)
REFUSALS = {refusal.reason: refusal for refusal in (*INGEST_REFUSALS, *WEB_REFUSALS)}


def json_answer(status: int, payload: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    body = msgspec.json.encode(payload)
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def refusal_answer(
    reason: str,
    message: str,
    *,
    problems: list[Any] | None = None,
    retry_after: float | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    """``{"error": ..., "message": ..., "problems": [...]}`` with the reason's status and headers
    (:func:`refusal_headers`)."""
    refusal = REFUSALS[reason]
    payload: dict[str, Any] = {"error": refusal.error or reason, "message": message}
    if problems is not None:
        payload["problems"] = problems
    return json_answer(refusal_status(reason), payload, refusal_headers(reason, retry_after, headers))


def refusal_status(reason: str) -> int:
    status = REFUSALS[reason].status
    assert status is not None, reason
    return status


def refusal_headers(reason: str, retry_after: float | None, headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` and a ``Retry-After`` of whole seconds (at least 1) when ``retry_after`` is given,
    which only a retryable refusal may be (a client told to wait would otherwise resend a hopeless
    request)."""
    if retry_after is None:
        return headers
    if not REFUSALS[reason].retryable:
        raise ValueError(f"{reason} is not retryable: it cannot carry Retry-After")
    return {**(headers or {}), "Retry-After": str(max(1, math.ceil(retry_after)))}
