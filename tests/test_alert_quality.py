"""The alert-quality simulator (benchmarks/alert_quality.py): its reading of promtool's report and
its scoring, and a regression subset of its scenarios run through the real promtool with the
repository's rule files: each intended alert within its bound, and no false page."""

from __future__ import annotations

import dataclasses

import pytest

from benchmarks.alert_fleet import FLEET, HOUR, MINUTE, STEP, Fault, ScrapedSeries, simulate
from benchmarks.alert_quality import (
    ROOT,
    SCENARIOS_BY_NAME,
    Intended,
    Result,
    Scenario,
    Tolerated,
    episodes,
    on,
    run_scenarios,
    score,
)
from benchmarks.promtool_alerts import PromtoolError, parse_firing
from support.processes import require_binary

# promtool 2.42's report of a test file whose queries of ALERTS{alertstate="firing"} at 0s, 30s,
# 1m and 1m30s expected nothing; stdout followed by stderr, as run_promtool joins them.
REPORT = r"""Unit Testing:  t.yml



  FAILED:
    expr: "ALERTS{alertstate=\"firing\"}", time: 30s,
        exp: nil
        got: {__name__="ALERTS", agent="w-1", alertname="AgencyThing", alertstate="firing", message="a, b} {c=\"d\"", severity="critical"} 1E+00

    expr: "ALERTS{alertstate=\"firing\"}", time: 1m,
        exp: nil
        got: {__name__="ALERTS", agent="w-1", alertname="AgencyThing", alertstate="firing", message="a, b} {c=\"d\"", severity="critical"} 1E+00, {__name__="ALERTS", agent="w-2", alertname="AgencyThing", alertstate="firing", severity="critical"} 1E+00

    expr: "ALERTS{alertstate=\"firing\"}", time: 1m30s,
        exp: nil
        got: {__name__="ALERTS", agent="w-2", alertname="AgencyThing", alertstate="firing", severity="critical"} 1E+00


"""  # noqa: E501
RULE_ERROR = """Unit Testing:  tb.yml
  FAILED:
bad.yml: 5:11: group "g", rule 1, "AgencyThing": could not parse expression: 1:4: parse error: unexpected end of input

"""
EVALUATION_ERROR = """Unit Testing:  t.yml
  FAILED:
    rule: agent:agency_agent_tasks:rate5m, time: 1m30s, err: query timed out in expression evaluation

"""
QUERY_ERROR = """Unit Testing:  t.yml
  FAILED:
    expr: "ALERTS{alertstate=\\"firing\\"}", time: 9h59m30s, err: query processing would load too many samples into memory in query execution
"""  # noqa: E501


# --- reading promtool's report ----------------------------------------------------------------


def test_report_is_read_as_the_alerts_firing_at_each_step():
    first = {"agent": "w-1", "alertname": "AgencyThing", "message": 'a, b} {c="d"', "severity": "critical"}
    second = {"agent": "w-2", "alertname": "AgencyThing", "severity": "critical"}
    assert parse_firing(REPORT) == {30: [first], 60: [first, second], 90: [second]}


def test_a_report_without_failures_means_nothing_fired():
    assert parse_firing("Unit Testing:  t.yml\n  SUCCESS\n\n") == {}


@pytest.mark.parametrize(
    "report",
    [RULE_ERROR, EVALUATION_ERROR, QUERY_ERROR, "promtool: error: unknown flag\n", REPORT.replace("1E+00", "x")],
)
def test_anything_else_in_the_report_is_an_error(report):
    with pytest.raises(PromtoolError):
        parse_firing(report)


# --- episodes and scores ----------------------------------------------------------------------

WARNING = {"alertname": "AgencyAgentErrorRateHigh", "agent": "w-1", "severity": "warning"}
CRITICAL = {**WARNING, "severity": "critical"}
OTHER_PAGE = {"alertname": "AgencyExporterDown", "severity": "critical"}
SCENARIO = Scenario(
    "example",
    "w-1 fails",
    Fault("agent", "error_ratio", 1.0, ("w-1",)),
    (Intended("AgencyAgentErrorRateHigh", "critical", on(agent="w-1"), within=10 * MINUTE),),
    (Tolerated("AgencyAgentDown", "warning", max_episodes=1),),
    history=HOUR,
    observe=HOUR,
)


def at(minutes: float) -> int:
    return round(minutes * MINUTE)


def test_episodes_are_stretches_of_consecutive_steps():
    firing = {at(1): [WARNING], at(1.5): [WARNING], at(3): [WARNING, OTHER_PAGE]}
    found = episodes(firing, steps=at(4) // STEP)
    assert [(e.alert, e.start, e.end) for e in found] == [
        ("AgencyAgentErrorRateHigh", at(1), at(2)),
        ("AgencyAgentErrorRateHigh", at(3), at(3.5)),
        ("AgencyExporterDown", at(3), at(3.5)),
    ]


def scored(firing: dict[int, list[dict[str, str]]]) -> Result:
    return score(
        SCENARIO, episodes(firing, SCENARIO.duration // STEP + 1), {("AgencyAgentErrorRateHigh", "critical")}, 0
    )


def test_detection_is_the_first_firing_of_the_intended_alert_after_the_fault():
    start = SCENARIO.fault_start
    result = scored({start + at(4): [WARNING], start + at(8): [WARNING, CRITICAL]})
    [detection] = result.detections
    assert detection.seconds == at(8) and detection.in_bound and detection.episodes == 1 and result.ok
    again = scored({start + at(8): [CRITICAL], start + at(12): [CRITICAL]}).detections[0]
    assert again.seconds == at(8) and again.episodes == 2
    late = scored({start + at(11): [CRITICAL]}).detections[0]
    assert late.seconds == at(11) and not late.in_bound


def test_pages_before_the_fault_or_not_expected_are_false_pages():
    start = SCENARIO.fault_start
    result = scored({at(10): [CRITICAL], start + at(2): [CRITICAL, OTHER_PAGE]})
    assert [(e.alert, e.start) for e in result.false_pages] == [
        ("AgencyAgentErrorRateHigh", at(10)),
        ("AgencyExporterDown", start + at(2)),
    ]
    assert not result.ok


def test_a_tolerated_alert_beyond_its_episodes_is_unexpected():
    start = SCENARIO.fault_start
    down = {"alertname": "AgencyAgentDown", "agent": "w-2", "severity": "warning"}
    result = scored({start + at(5): [down], start + at(20): [down]})
    assert [e.start for e in result.unexpected_warnings] == [start + at(20)]
    assert [e.start for e in result.beyond_tolerance] == [start + at(20)]
    assert result.false_pages == () and not result.ok


# --- the simulated fleet ----------------------------------------------------------------------


def test_a_fault_names_a_field_of_its_owner_s_conditions():
    with pytest.raises(ValueError, match="no field 'quality'"):
        Fault("agent", "quality", 0.5)


def increases(values: list[str]) -> list[float]:
    """A counter's increase at each step (none where it was not scraped)."""
    last, found = 0.0, []
    for value in values:
        number = last if value in ("_", "stale") else float(value)
        found.append(number - last)
        last = number
    return found


def summed(scraped: ScrapedSeries, prefix: str) -> list[float]:
    """The increase at each step of the sum of the series starting with ``prefix``."""
    per_series = [increases(values) for series, values in scraped.values.items() if series.startswith(prefix)]
    return [sum(step) for step in zip(*per_series, strict=True)]


def test_the_healthy_fleet_holds_bursts_and_lone_failures_of_quiet_agents():
    """What the healthy scenario claims to hold is in the exporter's series it scrapes."""
    healthy = dataclasses.replace(SCENARIOS_BY_NAME["healthy"], history=3 * HOUR)
    scraped = simulate(healthy.faults(), healthy.duration, seed=1)

    for agent in ("worker-4", "researcher-2"):
        tasks = summed(scraped, f'agency_agent_tasks_total{{agent="{agent}"')
        failures = summed(scraped, f'agency_agent_task_failures_total{{agent="{agent}"')
        assert sum(tasks) / (3 * HOUR) < 0.01, f"{agent} stays under the alerts' minimum task rate"
        assert 0 < sum(failures) < sum(tasks) / 4, f"{agent} fails a task now and then"
    owners = [
        (f'agency_agent_tasks_total{{agent="{a.name}"', f'agency_agent_task_failures_total{{agent="{a.name}"')
        for a in FLEET
        if a.traffic == 1
    ]
    owners.append(("agency_workflow_tasks_total", "agency_workflow_task_failures_total"))
    bursts = [
        tasks
        for tasks, failures in owners
        if any(t >= 3 and f == t for t, f in zip(summed(scraped, tasks), summed(scraped, failures), strict=True))
    ]
    assert bursts, "an agent of ordinary traffic or the workflow failed every task of a step"


# --- the regression subset: the repository's rules through the real promtool -----------------

# Short scenarios that meet their targets with the rules in rules/, the healthy run shortened to
# 2 h: together 70-90 s on two cores (a scenario with 8 h of history takes 2-3 min alone).
HEALTHY = dataclasses.replace(SCENARIOS_BY_NAME["healthy"], history=2 * HOUR)
SUBSET = (
    HEALTHY,
    SCENARIOS_BY_NAME["agent_failing"],
    SCENARIOS_BY_NAME["agent_down"],
    SCENARIOS_BY_NAME["fleet_down"],
    SCENARIOS_BY_NAME["exporter_down"],
    SCENARIOS_BY_NAME["consensus_collapse"],
    SCENARIOS_BY_NAME["flapping"],
)


@pytest.fixture(scope="module")
def results() -> dict[str, Result]:
    promtool = require_binary("promtool")
    return {r.scenario: r for r in run_scenarios(SUBSET, ROOT / "rules", promtool, seed=1, jobs=2)}


@pytest.mark.integration
@pytest.mark.slow
def test_the_healthy_fleet_pages_nobody(results):
    result = results["healthy"]
    assert result.false_pages == ()
    assert result.unexpected_warnings == ()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("name", [s.name for s in SUBSET if s.intended])
def test_intended_alerts_fire_within_their_bound_and_nothing_else_pages(results, name):
    result = results[name]
    for detection in result.detections:
        assert detection.in_rules, detection.intended
        assert detection.seconds is not None, f"{detection.intended.describe()} did not fire"
        assert detection.seconds <= detection.intended.within, detection
    assert result.false_pages == ()


@pytest.mark.integration
@pytest.mark.slow
def test_a_flapping_agent_raises_one_warning_and_no_page(results):
    result = results["flapping"]
    assert result.ok, result
    warnings = [e for e in result.all_episodes if e.alert == "AgencyAgentErrorRateHigh" and e.severity == "warning"]
    assert len(warnings) == 1, "the flapping agent is one warning, held through the dips"
    assert result.false_pages == () and result.unexpected_warnings == ()
