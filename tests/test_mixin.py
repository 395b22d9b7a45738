"""The monitoring mixin: generated files, promtool checks and tests, and lints of every rule."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry.events import ALERT_TYPES, SEVERITIES
from agency_telemetry.simulator import FleetSimulator

from scripts.local_stack import RULE_FILES
from support.harness import Harness, exposed_metric_names
from support.processes import require_binary

ROOT = Path(__file__).resolve().parent.parent

RULE_TESTS = sorted((ROOT / "tests/rules").glob("*.test.yml"))
RUNBOOK = ROOT / "docs/runbook.md"
LEVELS = ("agent", "agent_type", "council", "queue", "fleet", "model", "provider", "tool")


def groups(path: Path) -> list[dict[str, Any]]:
    return yaml.safe_load(path.read_text())["groups"]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for g in groups(RULE_FILES[0]) for rule in g["rules"]]


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for g in groups(RULE_FILES[1]) for rule in g["rules"]]


def promtool(*args: str | Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("promtool"), *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@cache
def rule_tests() -> list[dict[str, Any]]:
    return [test for path in RULE_TESTS for test in yaml.safe_load(path.read_text())["tests"]]


# --- generation and promtool -------------------------------------------------------------


@pytest.mark.integration
def test_generated_rule_files_are_up_to_date():
    result = subprocess.run(
        [sys.executable, "scripts/generate.py", "--check"], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.integration
@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules_lint_all_is_clean(path):
    result = promtool("check", "rules", "--lint=all", "--lint-fatal", path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout and "WARNING" not in result.stdout + result.stderr


@pytest.mark.integration
def test_promtool_rule_tests_pass():
    """promtool runs its files one after another; one promtool per core takes the wall time of
    the slowest share instead of the sum (the files with hours of history take tens of seconds)."""
    assert RULE_TESTS, "no promtool tests found under tests/rules"
    workers = max(1, min(os.cpu_count() or 1, 4))
    by_size = sorted(RULE_TESTS, key=lambda path: path.stat().st_size, reverse=True)
    shares = [by_size[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda share: promtool("test", "rules", *share), [s for s in shares if s]))
    for result in results:
        assert result.returncode == 0, result.stdout + result.stderr
    assert sum(result.stdout.count("SUCCESS") for result in results) == len(RULE_TESTS)


# --- every rule is tested ------------------------------------------------------------------


def _covered(name: str, exprs: list[str]) -> bool:
    for expr in exprs:
        if re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr):
            return True
        if any(re.fullmatch(pattern, name) for pattern in re.findall(r'__name__=~"([^"]+)"', expr)):
            return True
    return False


def test_every_recording_rule_has_a_promql_expr_test():
    exprs = [case["expr"] for test in rule_tests() for case in test.get("promql_expr_test", [])]
    untested = sorted({r["record"] for r in recording_rules() if not _covered(r["record"], exprs)})
    assert untested == []


def test_every_alert_fires_in_a_test_and_stays_quiet_in_another():
    firing: set[tuple[str, str]] = set()
    quiet: set[str] = set()
    for test in rule_tests():
        for case in test.get("alert_rule_test", []):
            if case.get("exp_alerts"):
                firing |= {(case["alertname"], a["exp_labels"].get("severity", "")) for a in case["exp_alerts"]}
            else:
                quiet.add(case["alertname"])
    for rule in alerting_rules():
        name, severity = rule["alert"], rule.get("labels", {}).get("severity")
        assert name in quiet, f"{name} has no not-firing test"
        if severity is not None:
            assert (name, severity) in firing, f"{name} at {severity} has no firing test"
        else:
            assert any(fired == name for fired, _ in firing), f"{name} has no firing test"


# --- style of the monitoring-mixin guide ---------------------------------------------------


def test_recording_rule_names_are_level_metric_operations():
    for rule in recording_rules():
        level, metric, operations = rule["record"].split(":")
        assert level in LEVELS, rule["record"]
        assert re.fullmatch(r"agency_[a-z_]+", metric), rule["record"]
        assert re.fullmatch(r"[a-z0-9_]+", operations), rule["record"]


def test_recording_rules_aggregate_without_replica_labels_so_job_and_cluster_survive():
    for rule in recording_rules():
        assert not re.search(r"\b(sum|avg|max|min|count) by\b", rule["expr"]), rule["record"]


def test_alerts_carry_labels_and_annotations():
    runbook_anchors = {
        line.removeprefix("## ").strip().lower() for line in RUNBOOK.read_text().splitlines() if line.startswith("## ")
    }
    for rule in alerting_rules():
        name, labels, notes = rule["alert"], rule.get("labels", {}), rule["annotations"]
        assert re.fullmatch(r"Agency(?:[A-Z][a-z0-9]*)+", name), name
        if name != "AgencyAgentReportedAlert":  # severity and type come from the agent's event
            assert labels["severity"] in SEVERITIES, name
            assert labels["alert_type"] in ALERT_TYPES, name
        assert set(notes) == {"summary", "description", "runbook_url", "dashboard_url"}, name
        assert "{{" not in notes["summary"], f"{name}: the summary is fixed, the description is templated"
        assert "{{" in notes["description"], name
        assert notes["runbook_url"].endswith(f"docs/runbook.md#{name.lower()}"), name
        assert name.lower() in runbook_anchors, f"docs/runbook.md has no section for {name}"
        assert re.search(r"/d/agency-[a-z]+", notes["dashboard_url"]), name


def test_all_severities_and_alert_types_are_used():
    labels = [rule.get("labels", {}) for rule in alerting_rules()]
    assert {label.get("severity") for label in labels} >= set(SEVERITIES)
    assert {label.get("alert_type") for label in labels} >= set(ALERT_TYPES)


def test_burn_rate_tiers_keep_tier_labels():
    for rule in alerting_rules():
        if rule["alert"].endswith("BudgetBurn"):
            assert {"slo", "burn_tier", "burn_window"} <= set(rule["labels"]), rule


# --- rules read only what the exporter exposes ---------------------------------------------

_NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless"}


def raw_metrics_read_by_rules() -> set[str]:
    recorded = {rule["record"] for rule in recording_rules()}
    names: set[str] = set()
    for rule in recording_rules() + alerting_rules():
        expr = re.sub(r'"[^"]*"', '""', rule["expr"])  # label values are not metric names
        expr = re.sub(r"\{[^}]*\}", "", expr)
        for token in re.findall(r"[a-zA-Z_:][\w:]*", expr):
            if token.startswith("agency_") and token not in recorded:
                names.add(token)
    return names


def test_rules_read_only_metrics_the_exporter_exposes():
    read = raw_metrics_read_by_rules()
    assert len(read) > 20, read
    assert sorted(read - exposed_metric_names()) == [], "rules read metrics the exporter does not expose"


# --- the rules on real exporter output -----------------------------------------------------


def _series_selector(name: str, labels: dict[str, str]) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    pairs = {"job": "agency-telemetry", "instance": "exporter:9477", **labels}
    return name + "{" + ",".join(f'{k}="{escape(v)}"' for k, v in sorted(pairs.items())) + "}"


def exporter_scrapes(minutes: int) -> dict[str, list[str]]:
    """Scrapes of a real exporter store fed by the demo fleet, one a minute, as promtool input."""
    harness = Harness()
    simulator = FleetSimulator("http://unused", agents=8, seed=3)
    series: dict[str, list[str]] = {}
    for minute in range(minutes):
        harness.clock.now = harness.wall.now = minute * 60.0  # promtool's clock starts at 0 too
        if minute == 0:
            harness.send(*simulator.first_batch())
        for _ in range(2):
            harness.send(*simulator.tick_batch())
        for family in text_string_to_metric_families(harness.text()):
            for sample in family.samples:
                values = series.setdefault(_series_selector(sample.name, sample.labels), ["_"] * minute)
                values.append(repr(float(sample.value)))
        for values in series.values():  # a series that vanished (resolved alert) is missing, not 0
            values.extend(["_"] * (minute + 1 - len(values)))
    series[_series_selector("up", {})] = ["1"] * minutes
    return series


@pytest.mark.integration
def test_every_recording_rule_records_data_from_real_exporter_output(tmp_path):
    """Feeds 16 minutes of real /metrics output of a demo fleet to promtool with the rules loaded.
    Baselines and their ratios need hours of history (tests/rules/alerts_baseline.test.yml has
    them); that they are not ready yet is recorded, and checked here."""
    minutes = 16
    young = re.compile(r"_(vs_)?baseline_1d$")
    test = {
        "rule_files": [str(RULE_FILES[0])],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": name, "values": " ".join(values)} for name, values in exporter_scrapes(minutes).items()
                ],
                "promql_expr_test": [
                    {
                        "expr": f"count({name}) > bool 0",
                        "eval_time": f"{minutes - 1}m",
                        "exp_samples": [{"labels": "{}", "value": 1}],
                    }
                    for name in sorted({rule["record"] for rule in recording_rules()})
                    if not young.search(name)
                ],
            }
        ],
    }
    path = tmp_path / "exporter_output.test.yml"
    path.write_text(yaml.safe_dump(test, width=10_000))
    result = promtool("test", "rules", path)
    assert result.returncode == 0, result.stdout[:5000]
