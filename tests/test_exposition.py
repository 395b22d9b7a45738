"""Both exposition formats, the catalogue, and the README's metric table agree."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text

from agency_telemetry.catalogue import FAMILIES

from support.events import ONE_OF_EACH
from support.harness import Harness
from support.processes import promtool_check_metrics

README = Path(__file__).resolve().parent.parent / "README.md"


def populated() -> Harness:
    h = Harness()
    h.send(*ONE_OF_EACH)
    return h


def test_every_catalogue_family_has_series_after_one_event_of_each_type():
    text = populated().text()
    exposed = {f.name for f in parse_text(text)}
    for family in FAMILIES:
        base = family.name.removesuffix("_total")
        assert base in exposed, family.name
        assert f"# HELP {family.name} " in text and f"# TYPE {family.name} {family.type}\n" in text


def test_text_and_openmetrics_carry_the_same_samples():
    h = populated()
    text_samples = {(s.name, frozenset(s.labels.items()), s.value) for f in parse_text(h.text()) for s in f.samples}
    om_text = h.text(openmetrics=True)
    om_samples = {(s.name, frozenset(s.labels.items()), s.value) for f in parse_openmetrics(om_text) for s in f.samples}
    assert text_samples == om_samples
    assert om_text.endswith("# EOF\n") and om_text.count("# EOF") == 1
    assert "# TYPE agency_agent_tasks counter\n" in om_text  # OpenMetrics names the family without _total
    assert "# TYPE agency_agent_tasks_total counter\n" in h.text()


@pytest.mark.integration
def test_promtool_finds_nothing_to_criticise():
    assert promtool_check_metrics(populated().text()) == (0, "", "")


def test_series_gauge_counts_rendered_samples():
    h = populated()
    text = h.text()
    lines = [line for line in text.splitlines() if line and not line.startswith(("#", "agency_exporter_"))]
    assert h.exposition.self_metrics.series == len(lines)


def test_readme_catalogue_lists_exactly_the_catalogue():
    documented = set(
        re.findall(r"^\| `(agency_(?:agent|council|workflow|queue|reported|llm|tool)\w*)` \|", README.read_text(), re.M)
    )
    assert documented == {f.name for f in FAMILIES}


# --- exemplars ---------------------------------------------------------------------------

TRACE_ID, SPAN_ID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
WORKER = {"agent": "w-1", "agent_type": "worker"}
WALL = 1_700_000_000.0  # the harness's wall clock
Sample = tuple[str, frozenset[tuple[str, str]]]


def traced() -> Harness:
    """Traced and untraced observations in the three histograms that take exemplars."""
    h = Harness()
    llm = {"type": "llm_request", **WORKER, "provider": "openai", "model": "gpt-4o", "duration": 900}
    h.send(
        {"type": "task_completed", **WORKER, "duration": 430, "trace_id": TRACE_ID, "span_id": SPAN_ID},
        {"type": "task_completed", **WORKER, "duration": 20},
        {"type": "task_failed", **WORKER, "duration": "7 s", "trace_id": "1" * 32},
        {**llm, "trace_id": "2" * 32},
        {
            "type": "tool_call",
            **WORKER,
            "tool": "web_search",
            "duration": 30,
            "trace_id": "3" * 32,
            "span_id": "4" * 16,
        },
    )
    return h


def bucket(name: str, **labels: str) -> Sample:
    return f"{name}_bucket", frozenset(labels.items())


def exemplars(text: str) -> dict[Sample, tuple[dict[str, str], float, float]]:
    """(exemplar labels, value, timestamp) of every sample of an OpenMetrics text that has one."""
    return {
        (s.name, frozenset(s.labels.items())): (s.exemplar.labels, s.exemplar.value, float(s.exemplar.timestamp))
        for family in parse_openmetrics(text)
        for s in family.samples
        if s.exemplar is not None
    }


def test_openmetrics_shows_each_exemplar_on_the_bucket_its_value_fell_in():
    text = traced().text(openmetrics=True)
    task = "agency_agent_task_duration_seconds"
    assert exemplars(text) == {
        bucket(task, **WORKER, le="0.5"): ({"trace_id": TRACE_ID, "span_id": SPAN_ID}, 0.43, WALL),
        bucket(task, **WORKER, le="10.0"): ({"trace_id": "1" * 32}, 7.0, WALL),
        bucket("agency_llm_request_duration_seconds", provider="openai", model="gpt-4o", le="1.28"): (
            {"trace_id": "2" * 32},
            0.9,
            WALL,
        ),
        bucket("agency_tool_call_duration_seconds", tool="web_search", le="0.05"): (
            {"trace_id": "3" * 32, "span_id": "4" * 16},
            0.03,
            WALL,
        ),
    }
    exemplar = f'# {{trace_id="{TRACE_ID}",span_id="{SPAN_ID}"}} 0.43 {WALL}'
    assert f'{task}_bucket{{agent="w-1",agent_type="worker",le="0.5"}} 2 {exemplar}\n' in text


def test_the_text_format_never_carries_exemplars():
    h = traced()
    text = h.text()
    assert [line for line in text.splitlines() if "#" in line and not line.startswith("# ")] == []
    om_samples = {
        (s.name, frozenset(s.labels.items()), s.value) for f in parse_openmetrics(h.text(True)) for s in f.samples
    }
    assert {(s.name, frozenset(s.labels.items()), s.value) for f in parse_text(text) for s in f.samples} == om_samples


def test_openmetrics_without_trace_ids_has_no_exemplars():
    h = Harness()
    h.send(*({k: v for k, v in event.items() if k not in ("trace_id", "span_id")} for event in ONE_OF_EACH))
    assert exemplars(h.text(openmetrics=True)) == {}
