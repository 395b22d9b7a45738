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
