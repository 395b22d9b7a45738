"""The Alertmanager bundle: amtool checks, the routing table, and a real Alertmanager on loopback
delivering to local sinks that stand in for Slack, PagerDuty and the webhook."""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from agency_telemetry import events

from scripts.local_stack import PAGER_ROUTING_KEY
from support.alerting import Sinks, fast_copy, serve_sinks
from support.processes import require_binary, start_alertmanager

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parent.parent
BUNDLE = ROOT / "alertmanager"
CONFIG = BUNDLE / "alertmanager.yml"
SEVERITIES = (*events.SEVERITIES, None)
ALERT_TYPES = (*events.ALERT_TYPES, None)
RECEIVER_BY_SEVERITY = {
    "emergency": "pager-emergency",
    "critical": "pager-critical",
    "warning": "chat-team",
    "info": "chat-info",
    None: "chat-team",
}


def amtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [require_binary("amtool"), *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


def test_amtool_check_config():
    result = amtool("check-config", CONFIG)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_no_secret_is_in_the_configuration():
    config = yaml.safe_load(CONFIG.read_text())
    text = json.dumps(config)
    assert "hooks.slack.com" not in text and 'routing_key"' not in text and 'api_url"' not in text
    for receiver in config["receivers"]:
        for slack in receiver.get("slack_configs", []):
            assert slack["api_url_file"].startswith("/etc/alertmanager/secrets/")
        for pager in receiver.get("pagerduty_configs", []):
            assert pager["routing_key_file"].startswith("/etc/alertmanager/secrets/")
        for hook in receiver.get("webhook_configs", []):
            assert hook["http_config"]["authorization"]["credentials_file"].startswith("/etc/alertmanager/secrets/")
    referenced = set(re.findall(r"secrets/([\w.-]+)", CONFIG.read_text()))
    assert referenced == {p.name for p in (BUNDLE / "secrets.example").iterdir()}, "document every secret file"


def test_info_route_is_low_noise_and_office_hours_only():
    config = yaml.safe_load(CONFIG.read_text())
    [info] = [r for r in config["route"]["routes"] if r["matchers"] == ['severity="info"']]
    assert info["active_time_intervals"] == ["office-hours"]
    assert info["group_interval"] == "1h" and info["repeat_interval"] == "24h"
    [office] = [t for t in config["time_intervals"] if t["name"] == "office-hours"]
    assert office["time_intervals"][0]["weekdays"] == ["monday:friday"]


@pytest.mark.parametrize(("severity", "alert_type"), list(itertools.product(SEVERITIES, ALERT_TYPES)))
def test_routing_table(severity, alert_type):
    expected = [RECEIVER_BY_SEVERITY[severity]]
    if alert_type == "security_violation":
        # The security route continues to the severity routes; without a severity none
        # matches, and the security channel alone is right for it.
        expected = ["chat-security"] + (expected if severity else [])
    labels = ["alertname=AgencyTest", "agent=judge-1"]
    labels += [f"severity={severity}"] if severity else []
    labels += [f"alert_type={alert_type}"] if alert_type else []
    result = amtool(
        "config", "routes", "test", f"--config.file={CONFIG}", f"--verify.receivers={','.join(expected)}", *labels
    )
    assert result.returncode == 0, f"{labels}: {result.stdout}{result.stderr}"


# --- a real Alertmanager ------------------------------------------------------------------


@pytest.fixture
async def sinks() -> AsyncIterator[Sinks]:
    async for sink in serve_sinks():
        yield sink


class Alertmanager:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self.session = session

    async def post(self, *alerts: dict[str, Any]) -> None:
        async with self.session.post(f"{self.url}/api/v2/alerts", json=list(alerts)) as resp:
            assert resp.status == 200, await resp.text()


@pytest.fixture
async def alertmanager(tmp_path: Path, sinks: Sinks) -> AsyncIterator[Alertmanager]:
    proc, url = await asyncio.to_thread(start_alertmanager, fast_copy(tmp_path, sinks), tmp_path)
    async with aiohttp.ClientSession() as session:
        yield Alertmanager(url, session)
    proc.terminate()
    proc.wait(timeout=10)


def alert(name: str, severity: str | None, alert_type: str = "agent_performance", **labels: str) -> dict[str, Any]:
    all_labels = {"alertname": name, "alert_type": alert_type, "job": "agency-telemetry", **labels}
    if severity:
        all_labels["severity"] = severity
    return {
        "labels": all_labels,
        "annotations": {
            "summary": f"Summary of {name}.",
            "description": f"{name} description for {labels.get('agent', labels.get('council', 'the fleet'))}.",
            "runbook_url": f"https://example.test/docs/runbook.md#{name.lower()}",
            "dashboard_url": "http://grafana.test/d/agency-agent?var-agent=judge-1",
        },
        "startsAt": datetime.now(UTC).isoformat(),
    }


async def eventually(check: Any, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            check()
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_each_severity_reaches_its_sinks_with_the_right_payload(alertmanager, sinks):
    await alertmanager.post(
        alert("AgencyFleetMostlyDown", "emergency", "system_health"),
        alert("AgencyAgentErrorRateHigh", "critical", agent="judge-1", agent_type="constitutional_judge"),
        alert("AgencyAgentLatencyHigh", "warning", agent="worker-2", agent_type="worker"),
        alert("AgencyCouncilDebateFrequencyHigh", "info", "coordination_failure", council="ethics"),
        alert("AgencyConstitutionalComplianceLow", "warning", "security_violation", council="ethics"),
    )

    def delivered() -> None:
        assert len(sinks.at("/pagerduty")) == 2
        assert len(sinks.at("/slack/incident")) == 2
        assert len(sinks.at("/slack/team")) == 3  # two warnings, and info (same webhook, another channel)
        assert len(sinks.at("/slack/security")) == 1
        assert len(sinks.at("/alertmanager")) == 3  # the team route (two warnings) and the security route

    await eventually(delivered)
    pages = {p["payload"]["summary"]: p for p in sinks.at("/pagerduty")}
    emergency = pages["[EMERGENCY] AgencyFleetMostlyDown"]
    critical = pages["[CRITICAL] AgencyAgentErrorRateHigh"]
    assert emergency["payload"]["severity"] == "critical"  # PagerDuty has no emergency
    assert critical["payload"]["severity"] == "critical"
    assert emergency["routing_key"] == PAGER_ROUTING_KEY  # read from the secret file
    assert emergency["event_action"] == "trigger"
    assert critical["payload"]["custom_details"]["runbook"].endswith("#agencyagenterrorratehigh")
    messages = {m["attachments"][0]["title"]: m for path in ("/slack/team", "/slack/incident") for m in sinks.at(path)}
    latency = messages["[WARNING] AgencyAgentLatencyHigh"]
    assert latency["channel"] == "#agency-alerts"
    text = latency["attachments"][0]["text"]
    assert "Summary of AgencyAgentLatencyHigh." in text
    assert "severity: warning" in text
    assert "runbook: https://example.test/docs/runbook.md#agencyagentlatencyhigh" in text
    assert "agent worker-2 (worker)" in text
    assert messages["[INFO] AgencyCouncilDebateFrequencyHigh"]["channel"] == "#agency-info"
    assert messages["[CRITICAL] AgencyAgentErrorRateHigh"]["channel"] == "#agency-incidents"
    [security] = sinks.at("/slack/security")
    assert security["channel"] == "#agency-security"
    assert "council ethics" in security["attachments"][0]["text"]


async def test_higher_severity_inhibits_lower_for_the_same_alert_and_target(alertmanager, sinks):
    judge = {"agent": "judge-1", "agent_type": "constitutional_judge"}
    await alertmanager.post(alert("AgencyAgentErrorRateHigh", "critical", **judge))
    await eventually(lambda: _assert_len(sinks.at("/pagerduty"), 1))
    await alertmanager.post(
        alert("AgencyAgentErrorRateHigh", "warning", **judge),  # same alert, same agent: muted
        alert("AgencyAgentErrorRateHigh", "warning", agent="judge-2", agent_type="constitutional_judge"),
    )
    await asyncio.sleep(4)
    titles = [m["attachments"][0]["title"] for m in sinks.at("/slack/team")]
    texts = " ".join(m["attachments"][0]["text"] for m in sinks.at("/slack/team"))
    assert titles == ["[WARNING] AgencyAgentErrorRateHigh"]
    assert "description for judge-2" in texts and "description for judge-1" not in texts


async def test_exporter_down_and_fleet_down_inhibit_per_agent_alerts(alertmanager, sinks):
    await alertmanager.post(
        alert("AgencyExporterDown", "critical", "system_health"),
        alert("AgencyFleetMostlyDown", "emergency", "system_health"),
    )
    await asyncio.sleep(0.5)
    await alertmanager.post(
        alert("AgencyAgentDown", "warning", "system_health", agent="worker-1", agent_type="worker"),
        alert("AgencyAgentCpuSaturated", "warning", "system_health", agent="worker-2", agent_type="worker"),
    )
    await asyncio.sleep(4)
    titles = sorted(p["payload"]["summary"] for p in sinks.at("/pagerduty"))
    assert titles == ["[CRITICAL] AgencyExporterDown", "[EMERGENCY] AgencyFleetMostlyDown"]
    assert sinks.at("/slack/team") == []


async def test_a_fast_burn_tier_inhibits_the_slower_tiers(alertmanager, sinks):
    def burn(tier: str, window: str, severity: str) -> dict[str, Any]:
        return alert(
            "AgencyAvailabilityBudgetBurn",
            severity,
            "system_health",
            slo="availability",
            burn_tier=tier,
            burn_window=window,
        )

    await alertmanager.post(burn("fast", "1h", "critical"))
    await asyncio.sleep(0.5)
    await alertmanager.post(
        burn("medium", "6h", "critical"), burn("slow", "1d", "warning"), burn("slowest", "3d", "warning")
    )
    await asyncio.sleep(4)
    [page] = sinks.at("/pagerduty")
    assert page["payload"]["summary"] == "[CRITICAL] AgencyAvailabilityBudgetBurn"
    assert "1 firing" in page["payload"]["custom_details"]["alerts"]
    assert sinks.at("/slack/team") == []


async def test_one_incident_is_one_notification_and_resolution_is_sent(alertmanager, sinks):
    # The same council alert from two exporter replicas is one incident: one message.
    ethics = {"council": "ethics"}
    replicas = [
        alert("AgencyCouncilConsensusRateLow", "warning", "coordination_failure", instance=f"e{i}:9477", **ethics)
        for i in (1, 2)
    ]
    await alertmanager.post(*replicas)
    await eventually(lambda: _assert_len(sinks.at("/slack/team"), 1))
    [first] = sinks.at("/slack/team")
    assert first["attachments"][0]["title"] == "[WARNING] AgencyCouncilConsensusRateLow (2)"
    ended = (datetime.now(UTC) - timedelta(seconds=1)).isoformat()
    await alertmanager.post(*({**a, "endsAt": ended} for a in replicas))
    await eventually(lambda: _assert_len(sinks.at("/slack/team"), 2))
    resolved = sinks.at("/slack/team")[1]
    assert resolved["attachments"][0]["title"].startswith("[RESOLVED] AgencyCouncilConsensusRateLow")
    assert resolved["attachments"][0]["color"] == "good"
    hooks = sinks.at("/alertmanager")
    assert [h["status"] for h in hooks] == ["firing", "resolved"]


def _assert_len(items: list[Any], count: int) -> None:
    assert len(items) == count, items


def test_every_inhibition_names_only_this_projects_alerts():
    """So the rules can be merged into a configuration shared with other alerts."""
    for rule in yaml.safe_load(CONFIG.read_text())["inhibit_rules"]:
        assert any("Agency" in m for m in rule["source_matchers"]), rule
        assert any("Agency" in m for m in rule["target_matchers"]) or "alertname" in rule["equal"], rule
