"""The refusal table: every reason the package refuses for is in it, and it decides the answers."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import agency_telemetry
from agency_telemetry.owners import LIMITED
from agency_telemetry.refusals import INGEST_REFUSALS, REFUSALS, WEB_REFUSALS, refusal_answer

from support.harness import Harness

PACKAGE = Path(agency_telemetry.__file__).parent
# Callables whose first argument is a refusal reason.
TAKES_A_REASON = {"InvalidBatch", "refuse", "refusal_answer", "on_refusal", "on_failure", "web_rejected", "rejected"}


def reasons_in_the_source() -> dict[str, list[str]]:
    """Each reason written as the first argument of a call that takes one, with where."""
    found: dict[str, list[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call) or not node.args:
                continue
            callee = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", None)
            first = node.args[0]
            if callee in TAKES_A_REASON and isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.setdefault(first.value, []).append(f"{path.name}:{node.lineno}")
    return found


def test_every_reason_raised_anywhere_is_in_the_table():
    found = reasons_in_the_source()
    unknown = {reason: where for reason, where in found.items() if reason not in REFUSALS}
    assert not unknown, f"refused for reasons the table does not know: {unknown}"


def test_every_reason_in_the_table_is_raised_somewhere():
    raised = set(reasons_in_the_source()) | {kind.limit_reason for kind in LIMITED}
    assert set(REFUSALS) == raised


def test_answers_take_their_status_from_the_table():
    for refusal in REFUSALS.values():
        if refusal.status is None:
            continue
        answer = refusal_answer(refusal.reason, "what to change")
        assert answer.status == refusal.status
        assert json.loads(answer.body)["error"] == (refusal.error or refusal.reason)  # type: ignore[arg-type]
        assert "Retry-After" not in answer.headers


def test_only_a_retryable_refusal_carries_retry_after():
    for refusal in REFUSALS.values():
        if refusal.status is None:
            continue
        if refusal.retryable:
            assert refusal_answer(refusal.reason, "x", retry_after=1.5).headers["Retry-After"] == "2"
            assert refusal_answer(refusal.reason, "x", retry_after=0.01).headers["Retry-After"] == "1"
        else:
            with pytest.raises(ValueError, match="not retryable"):
                refusal_answer(refusal.reason, "x", retry_after=1)
    assert {r.status for r in REFUSALS.values() if r.retryable} <= {408, 429, 503}


def test_self_metrics_start_every_ingest_reason_at_zero():
    text = Harness().text()
    for refusal in INGEST_REFUSALS:
        for family in ("agency_exporter_requests_rejected_total", "agency_exporter_events_rejected_total"):
            assert f'{family}{{reason="{refusal.reason}"}} 0.0\n' in text
    assert not any(refusal.web for refusal in INGEST_REFUSALS)
    assert all(refusal.web for refusal in WEB_REFUSALS)
