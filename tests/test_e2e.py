"""End to end: the real exporter, a real Prometheus and a real Alertmanager on loopback.

The mixin's rules are rendered from the same Jsonnet with a fast profile (every window and
`for` scaled down through config overrides), Alertmanager delivers to local sinks standing in
for chat and pager, and each scenario is driven through the exporter's event API.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from support.alerting import FAST_ROUTE_TIMINGS, Sinks, serve_sinks
from support.e2e import CRITICAL_REPORTED_ALERT, AlertingStack, Fleet, fast_mixin, fast_rule_files
from support.stack import Stack

pytestmark = pytest.mark.integration

# As in production (group_wait 10-30 s, rules evaluated every 30 s), an alert group waits longer
# than a rule evaluation, so that an inhibiting alert from another rule group, evaluated a moment
# later, is in Alertmanager before the alert it mutes is sent.
E2E_ROUTE_TIMINGS = {**FAST_ROUTE_TIMINGS, "group_wait": "3s"}


class Scenario:
    def __init__(self, stack: Stack, fleet: Fleet, sinks: Sinks, alertmanager_url: str) -> None:
        self.stack, self.fleet, self.sinks, self.alertmanager_url = stack, fleet, sinks, alertmanager_url

    async def wait(self, check: Callable[[], Any], timeout: float = 45) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = await asyncio.to_thread(check)
            if result:
                return result
            assert time.monotonic() < deadline, f"condition not met within {timeout} s"
            await asyncio.sleep(0.5)

    def post_alert(self, labels: dict[str, str]) -> None:
        """Posts one firing alert to Alertmanager's v2 API, as a Prometheus would."""
        body = json.dumps([{"labels": labels, "annotations": {"summary": "posted by the test"}}]).encode()
        request = urllib.request.Request(
            f"{self.alertmanager_url}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=5).close()

    def alertmanager_alerts(self, alertname: str, state: str) -> list[dict[str, Any]]:
        """Alerts Alertmanager holds under ``alertname`` in ``state`` (active, suppressed)."""
        query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
        with urllib.request.urlopen(f"{self.alertmanager_url}/api/v2/alerts?{query}", timeout=5) as resp:
            return [a for a in json.load(resp) if a["status"]["state"] == state]

    def pages(self) -> list[dict[str, Any]]:
        return self.sinks.at("/pagerduty")

    def chat(self, channel: str) -> list[str]:
        return [
            m["attachments"][0]["title"] + "\n" + m["attachments"][0]["text"]
            for m in self.sinks.at(f"/slack/{channel}")
        ]


@pytest.fixture
async def scenario(tmp_path: Path) -> AsyncIterator[Scenario]:
    async for sinks in serve_sinks():
        started = await AlertingStack.start(tmp_path, sinks, E2E_ROUTE_TIMINGS, fast_rule_files(tmp_path))
        stack, am_proc, am_url = started.stack, started.alertmanager, started.alertmanager_url
        fleet = Fleet(stack.exporter_url)
        stop = asyncio.Event()
        driver = asyncio.create_task(fleet.run(stop))
        try:
            yield Scenario(stack, fleet, sinks, am_url)
        finally:
            stop.set()
            await driver
            await asyncio.to_thread(stack.stop)
            am_proc.terminate()
            am_proc.wait(timeout=10)


async def test_healthy_fleet_records_every_rule_and_pages_nobody(scenario: Scenario) -> None:
    records = sorted({r["record"] for g in fast_mixin()["rules"]["groups"] for r in g["rules"]})
    # Rules that are legitimately empty for a steady, healthy fleet, and why:
    empty_by_design = {
        # a steady fleet has no variance, and a z-score against a flat baseline is not defined
        "agent_type:agency_agent_task_duration_seconds:p95_zscore_2m",
        "agent_type:agency_agent_tasks:error_ratio_zscore_2m",
        # violations by principle: a compliant council has no principle series yet
        "council:agency_council_compliance_violations:rate20s",
        # a steady fleet's token rate has no variance either
        "fleet:agency_agent_llm_tokens:zscore_2m",
        # LLM failures by class: a request that never failed has no failure series yet
        "model:agency_agent_llm_request_failures:rate10s",
    }
    await asyncio.sleep(25)  # the 20s council and business windows fill up
    missing = [r for r in records if r not in empty_by_design and not scenario.stack.query(r)]
    assert missing == []
    assert scenario.stack.query('fleet:agency_health:status{status="healthy"} == 1')
    assert scenario.pages() == []


async def test_one_agent_failing_most_tasks_pages_naming_that_agent(scenario: Scenario) -> None:
    scenario.fleet.failing.add("worker-3")
    await scenario.wait(lambda: any("AgencyAgentErrorRateHigh" in p["payload"]["summary"] for p in scenario.pages()))
    [page] = [p for p in scenario.pages() if "AgencyAgentErrorRateHigh" in p["payload"]["summary"]]
    assert page["payload"]["severity"] == "critical"
    assert "worker-3" in page["payload"]["custom_details"]["alerts"]
    assert not any("worker-1" in p["payload"]["custom_details"]["alerts"] for p in scenario.pages())


async def test_consensus_collapse_and_violations_reach_coordination_and_security(scenario: Scenario) -> None:
    scenario.fleet.consensus_fails = True
    scenario.fleet.violations = True
    await scenario.wait(
        lambda: any("AgencyCouncilConsensusRateLow" in p["payload"]["summary"] for p in scenario.pages())
    )
    await scenario.wait(lambda: any("AgencyConstitutionalComplianceLow" in m for m in scenario.chat("security")))
    [security] = [m for m in scenario.chat("security") if "AgencyConstitutionalComplianceLow" in m]
    assert "council ethics" in security


async def test_exporter_stopped_pages_for_the_exporter_only(scenario: Scenario) -> None:
    await asyncio.sleep(5)
    scenario.stack.processes["exporter"].kill()
    await scenario.wait(lambda: any("AgencyExporterDown" in p["payload"]["summary"] for p in scenario.pages()))
    # Without scrapes the agent series go stale, so the rules raise nothing per agent; an
    # AgencyAgentDown from elsewhere (another rule file, a restarted Prometheus) is muted.
    agent_down = {"alertname": "AgencyAgentDown", "job": "agency-telemetry", "agent": "worker-1", "severity": "warning"}
    await asyncio.to_thread(scenario.post_alert, agent_down)
    [muted] = await scenario.wait(lambda: scenario.alertmanager_alerts("AgencyAgentDown", state="suppressed"))
    assert muted["status"]["inhibitedBy"]
    await asyncio.sleep(4)
    per_agent = [m for m in scenario.chat("team") + scenario.chat("incident") if "AgencyAgent" in m]
    assert per_agent == []
    assert not any("AgencyAgent" in p["payload"]["summary"] for p in scenario.pages())


async def test_whole_fleet_down_is_one_emergency(scenario: Scenario) -> None:
    await asyncio.sleep(5)
    scenario.fleet.silent.update(scenario.fleet.agents[:5])  # 5 of 6 agents stop reporting
    await scenario.wait(lambda: any("AgencyFleetMostlyDown" in p["payload"]["summary"] for p in scenario.pages()))
    [page] = [p for p in scenario.pages() if "AgencyFleetMostlyDown" in p["payload"]["summary"]]
    assert page["payload"]["summary"].startswith("[EMERGENCY]")
    assert "AgencyAgentDown" in str(scenario.stack.query('ALERTS{alertname="AgencyAgentDown",alertstate="firing"}'))
    await asyncio.sleep(4)
    assert not any("AgencyAgentDown" in m for m in scenario.chat("team"))  # inhibited by the emergency


async def test_an_alert_reported_by_an_agent_reaches_the_receiver_for_its_severity(scenario: Scenario) -> None:
    scenario.fleet.extra.append(CRITICAL_REPORTED_ALERT)
    await scenario.wait(lambda: any("AgencyAgentReportedAlert" in p["payload"]["summary"] for p in scenario.pages()))
    [page] = [p for p in scenario.pages() if "AgencyAgentReportedAlert" in p["payload"]["summary"]]
    assert page["payload"]["severity"] == "critical"
    await scenario.wait(lambda: [m for m in scenario.chat("incident") if CRITICAL_REPORTED_ALERT["message"] in m])
