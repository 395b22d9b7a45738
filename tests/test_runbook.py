"""docs/runbook.md states the thresholds, windows, `for` durations and severities of config.libsonnet.

The runbook names the config key beside every number it gives ("`thresholds.cpuHigh` (95 %)",
"10 % (`thresholds.agentErrorRatioWarning`", "`sloPeriod` = 30d", or a `| key | default |`
table row). These tests read each such pair and compare it with the config, check the alert
index against the rendered alerts and the burn-rate tables against `burnRateTiers`, and
require every key an alert or the health score reads to be stated somewhere: change the
config without the runbook and they fail.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from scripts.generate import render_config, render_mixin

ROOT = Path(__file__).resolve().parent.parent
RUNBOOK = ROOT / "docs/runbook.md"

# Keys whose value the runbook must state at least once, besides every key of `thresholds`,
# `for` and `severities`.
STATED_KEYS = [
    "agentWindow",
    "councilWindow",
    "businessWindow",
    "gaugeWindow",
    "anomalyBaseline",
    "queueForecastHistory",
    "staleAfterSeconds",
    "minTaskRate",
    "minCouncilRate",
    "fleetDownRatio",
    "fleetLiveRatioDegraded",
    "healthyScore",
    "degradedScore",
    "loadFullScoreBelow",
    "loadZeroScoreAt",
    "healthWeights.success",
    "healthWeights.latency",
    "healthWeights.load",
    "healthWeights.liveness",
    "latencyObjectiveSeconds",
    "defaultLatencyObjectiveSeconds",
    "slos.availability.objective",
    "slos.latency.objective",
    "sloPeriod",
    "keepFiringFor",
    "relativeBaseline",
    "relativeBaselineMinHistory",
    "relativeMinEvents",
    "relativeAlerts.queueDepth.minItems",
]

_KEY = r"`(?P<key>[A-Za-z][\w.]*)(?:\[\w+\])?`"
_NUMBER = r"[-+]?\d+(?:\.\d+)?(?:\s*%)?"
_DURATION = r"\d+[smhdw]\b"
# "`key` (value…" and "`key` = value…": the value runs to the next comma, semicolon or bracket.
_KEY_THEN_VALUE = re.compile(_KEY + r"\s*(?:\(|=)\s*(?P<value>[^,;()]+)")
# "value (`key`…": a number or duration right before the key in brackets.
_VALUE_THEN_KEY = re.compile(r"(?<![\w.])(?P<value>" + _DURATION + "|" + _NUMBER + r")\s*\(" + _KEY)
# "| `key` | value | …": the defaults tables.
_TABLE_ROW = re.compile(r"^\|\s*" + _KEY + r"\s*\|\s*(?P<value>[^|]+)\|", re.MULTILINE)


@cache
def config() -> dict[str, Any]:
    return render_config()


@cache
def mixin() -> dict[str, Any]:
    return render_mixin(parts=("rules", "alerts"))  # the dashboards take most of the rendering


@cache
def runbook() -> str:
    return RUNBOOK.read_text()


def prose() -> str:
    """The runbook without its code blocks (PromQL examples), wrapped lines joined."""
    text = re.sub(r"^```.*?^```", "", runbook(), flags=re.MULTILINE | re.DOTALL)
    return re.sub(r"[ \t]*\n[ \t]*(?![|#\n-])", " ", text)


def lookup(key: str) -> Any:
    """The config value at a dotted key (`for.agentDown`, `slos.latency.objective`), or None."""
    value: Any = config()
    for part in key.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def stated_pairs() -> Iterator[tuple[str, str]]:
    """(key, the value stated for it) for every config key the runbook gives a value."""
    text = prose()
    for pattern in (_KEY_THEN_VALUE, _VALUE_THEN_KEY, _TABLE_ROW):
        for match in pattern.finditer(text):
            if lookup(match["key"]) is not None:
                yield match["key"], match["value"].strip()


def objectives(stated: str) -> dict[str, float]:
    """'judge 5 s, worker 10 s' → {'judge': 5, 'worker': 10}."""
    return {name: float(seconds) for name, seconds in re.findall(r"(\w+) (\d+(?:\.\d+)?) s\b", stated)}


def agrees(stated: str, expected: Any) -> bool:
    if isinstance(expected, dict):  # latencyObjectiveSeconds: per agent type, by short name
        said = objectives(stated)
        return len(said) == len(expected) and all(
            any(t == n or t.endswith("_" + n) for n in said if said[n] == v) for t, v in expected.items()
        )
    if isinstance(expected, str):
        return re.match(re.escape(expected) + r"\b", stated) is not None
    match = re.match(r"[-+]?\d+(?:\.\d+)?(\s*%)?", stated)
    if not match:
        return False
    number = float(match[0].rstrip("% ").strip())
    if match[1]:
        number /= 100
    return abs(number - expected) < 1e-9


def test_every_value_the_runbook_gives_for_a_config_key_is_the_configured_one():
    pairs = list(stated_pairs())
    assert len(pairs) > 50, "the runbook should state its thresholds beside their config keys"
    wrong = [
        f"`{key}` stated as {value!r}, config has {lookup(key)!r}"
        for key, value in pairs
        if not agrees(value, lookup(key))
    ]
    assert wrong == [], "docs/runbook.md disagrees with config.libsonnet:\n" + "\n".join(wrong)


def test_the_runbook_states_every_threshold_window_duration_and_severity():
    c = config()
    required = (
        [f"{group}.{key}" for group in ("thresholds", "for", "severities") for key in c[group]]
        + [f"relativeAlerts.{signal}.{field}" for signal in c["relativeAlerts"] for field in ("factor", "for")]
        + [f"multiWindowTiers.{tier}.{field}" for tier, fields in c["multiWindowTiers"].items() for field in fields]
        + STATED_KEYS
    )
    stated = {key for key, _ in stated_pairs()}
    assert sorted(set(required) - stated) == [], "state these in docs/runbook.md as `key` (value)"


def _sections() -> dict[str, str]:
    sections = re.split(r"^## ", runbook(), flags=re.MULTILINE)
    return {s.split("\n", 1)[0].strip(): s for s in sections}


def _seconds(window: str) -> float:
    return float(window[:-1]) * {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[window[-1]]


def _tier_rows(alert: str, configured: list[dict[str, Any]]) -> list[tuple[list[str], dict[str, Any]]]:
    """The rows of an alert's burn-rate table with their enabled tiers, whose name, windows,
    factor, ``for`` and severity the rows must state (checked here); the rest is the caller's."""
    rows = [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in _sections()[alert].splitlines()
        if line.startswith("| ") and not line.startswith("| burn_tier")
    ]
    tiers = [t for t in configured if t["enabled"]]
    assert [row[0] for row in rows] == [t["name"] for t in tiers]
    for row, tier in zip(rows, tiers, strict=True):
        name, long, short, factor, _, duration, severity = row[:7]
        assert (long, short, duration, severity) == (
            tier["longWindow"],
            tier["shortWindow"],
            tier["for"],
            tier["severity"],
        )
        assert float(factor) == tier["factor"], name
    return list(zip(rows, tiers, strict=True))


@pytest.mark.parametrize(
    ("alert", "slo"), [("AgencyAvailabilityBudgetBurn", "availability"), ("AgencyLatencyBudgetBurn", "latency")]
)
def test_burn_rate_tables_follow_the_tiers(alert, slo):
    c = config()
    objective = c["slos"][slo]["objective"]
    for row, tier in _tier_rows(alert, c["burnRateTiers"]):
        name, threshold = row[0], row[4]
        assert agrees(threshold, tier["factor"] * (1 - objective)), (name, threshold)
        if len(row) > 7:  # budget spent when it fires, and how soon all of it would be gone
            spent = re.fullmatch(r"(\S+) % in (\w+)", row[7])
            assert spent and spent[2] == tier["longWindow"], (name, row[7])
            period = _seconds(c["sloPeriod"])
            assert float(spent[1]) == round(100 * tier["factor"] * _seconds(tier["longWindow"]) / period, 6), name
            gone = re.fullmatch(r"(~?)(\d+(?:\.\d+)?) days", row[8])
            days = period / 86400 / tier["factor"]
            assert gone and (round(days) if gone[1] else days) == float(gone[2]), (name, row[8])


def _index() -> dict[str, list[str]]:
    rows = re.findall(r"^\| \[(Agency\w+)\]\(#(\w+)\) \| (.+) \|$", runbook(), flags=re.MULTILINE)
    assert rows, "no alert index"
    return {name: [anchor, *(cell.strip() for cell in cells.split("|"))] for name, anchor, cells in rows}


@pytest.mark.slow
def test_the_alert_index_lists_each_alert_with_its_severities_type_and_for():
    rules: dict[str, list[dict[str, Any]]] = {}
    for group in mixin()["alerts"]["groups"]:
        for rule in group["rules"]:
            rules.setdefault(rule["alert"], []).append(rule)
    index = _index()
    assert list(index) == list(rules), "the index lists every alert once, in the order of agency-alerts.yml"
    for name, found in rules.items():
        anchor, severity, alert_type, duration = index[name]
        assert anchor == name.lower()
        if "labels" not in found[0]:  # AgencyAgentReportedAlert: the agent's own labels
            assert (severity, alert_type) == ("from the event", "from the event"), name
        elif "burn_tier" in found[0]["labels"]:
            by_severity: dict[str, list[str]] = {}
            for rule in found:
                by_severity.setdefault(rule["labels"]["severity"], []).append(rule["labels"]["burn_tier"])
            assert severity == ", ".join(f"{s} ({', '.join(tiers)})" for s, tiers in by_severity.items()), name
        else:
            assert severity == ", ".join(dict.fromkeys(r["labels"]["severity"] for r in found)), name
        if "labels" in found[0]:
            assert alert_type == found[0]["labels"]["alert_type"], name
        assert duration == " / ".join(dict.fromkeys(r["for"] for r in found)), name


def test_recording_rules_the_runbook_names_exist():
    """Rule names carry their window (`…_rate5m`): a changed window must show up in the runbook."""
    recorded = {rule["record"] for group in mixin()["rules"]["groups"] for rule in group["rules"]}
    named = set(
        re.findall(
            r"(?<![\w:])((?:agent|agent_type|council|queue|fleet|model|provider|tool):agency_\w+:\w+)(?![\w<…])",
            runbook(),
        )
    )
    assert named, "the runbook names no recording rule"
    assert sorted(named - recorded) == []


def test_the_health_score_rule_shown_is_the_rendered_one():
    shown = re.search(r"With the default configuration the rule is:\n\n```promql\n(.*?)\n```", runbook(), re.DOTALL)
    assert shown, "the health score rule is no longer shown"
    [rule] = [
        r
        for g in mixin()["rules"]["groups"]
        for r in g["rules"]
        if r.get("record") == "agent:agency_agent_health:score"
    ]
    assert shown[1] == rule["expr"]


def test_llm_budget_burn_table_follows_the_tiers():
    c = config()
    budget = c["llmDailyBudgetUsd"]
    for row, tier in _tier_rows("AgencyLlmSpendBurnRateHigh", c["llmBudgetBurnTiers"]):
        assert len(row) == 9, row
        name, threshold, spent, gone = row[0], row[4], row[7], row[8]
        assert threshold == f"{tier['factor'] * budget / 24:g} USD/h", name
        # a burn rate of factor spends factor/24 of the daily budget per hour
        share = re.fullmatch(r"(\S+) % in (\w+)", spent)
        assert share and share[2] == tier["longWindow"], (name, spent)
        assert float(share[1]) == round(100 * tier["factor"] * _seconds(tier["longWindow"]) / 86400, 6), name
        assert gone == f"{24 / tier['factor']:g} hours", name
