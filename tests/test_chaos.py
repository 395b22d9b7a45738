"""Chaos: Prometheus and Alertmanager stopped and started again under a running stack.

Real processes on loopback, as in test_e2e: the exporter fed by a scripted healthy fleet,
Prometheus evaluating the mixin's rules every second, Alertmanager with the bundle's routing
delivering to local sinks. What must hold:

- Prometheus restarted on its own TSDB after a gap of several scrapes raises nothing: no
  page, and no alert (not even a pending one) that the healthy run before did not have.
- A critical alert that Alertmanager took in but could not deliver before it was stopped is
  delivered exactly once after it comes back (Prometheus resends every firing alert), and a
  restart after delivery sends nothing again (the notification log is kept on disk).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from scripts.local_stack import RULE_FILES, stop_process
from support.alerting import FAST_ROUTE_TIMINGS, Sinks, eventually, notified, serve_sinks
from support.e2e import CRITICAL_REPORTED_ALERT, AlertingStack, Fleet, fast_rule_files
from support.processes import start_alertmanager
from support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PAGER_PATHS = ("/pagerduty", "/slack/incident")  # where critical and emergency alerts go
JOB = 'job="agency-telemetry"'


def alert_states(stack: Stack, start: float, end: float) -> set[tuple[str, str, str]]:
    """(alertname, severity, state) of every alert pending or firing at some second in [start, end]."""
    series = stack.query_range("ALERTS", start=start, end=end, step=1)
    return {(s["metric"]["alertname"], s["metric"].get("severity", ""), s["metric"]["alertstate"]) for s in series}


# --- Prometheus restarted mid-run -----------------------------------------------------------

# The gap is longer than the fast profile's staleAfterSeconds (6 s: agents not heard from
# for that long are down) and shorter than its gaugeWindow (10 s): the samples from before
# the gap are still in every range the rules read, and all of them are older than 6 s when
# Prometheus comes back. Prometheus then scrapes again only after its scrape manager's first
# reload (about 5 s), while rules are evaluated from the first second: for those seconds
# every rule sees only data from before the gap.
GAP = 8
WARM_UP = 20  # the profile's 20 s council and business windows fill up
BASELINE = 10
AFTER_RESTART = 30  # every window of the profile but the SLO ones (≥ 20 s) holds the gap; `for` is 2 s


async def test_prometheus_restarted_after_a_gap_raises_nothing(tmp_path: Path) -> None:
    async for sinks in serve_sinks():
        started = await AlertingStack.start(tmp_path, sinks, FAST_ROUTE_TIMINGS, fast_rule_files(tmp_path))
        stack, am = started.stack, started.alertmanager
        fleet, stop = Fleet(stack.exporter_url), asyncio.Event()
        driver = asyncio.create_task(fleet.run(stop))
        try:
            await asyncio.sleep(WARM_UP)
            baseline_start, baseline_notifications = time.time(), len(sinks.received)
            await asyncio.sleep(BASELINE)
            baseline = alert_states(stack, baseline_start, time.time())
            # The healthy run is quiet, so anything after the restart is the restart's doing.
            assert baseline == set()
            assert notified(sinks, baseline_notifications) == []

            await asyncio.to_thread(stack.stop_prometheus)
            stopped = time.time()
            await asyncio.sleep(GAP)  # the fleet keeps reporting to the exporter meanwhile
            await asyncio.to_thread(stack.start_prometheus)
            restarted = time.time()
            await asyncio.to_thread(stack.wait_for, f"timestamp(up{{{JOB}}}) > {restarted}", 30)
            await asyncio.sleep(AFTER_RESTART)
            end = time.time()

            # Prometheus really was away: not one scrape in the gap.
            assert stack.query(f"count_over_time(up{{{JOB}}}[{GAP - 1}s])", at=stopped + GAP - 0.5) == []
            # Every agent stayed live and the fleet healthy, from the first evaluation on.
            for expr in ("fleet:agency_agent_liveness:ratio", f'fleet:agency_health:status{{status="healthy",{JOB}}}'):
                [series] = stack.query_range(expr, start=restarted, end=end)
                assert {v for _, v in series["values"]} == {"1"}, (expr, series["values"][:10])
            # No alert at all, not even pending for a moment; no notification, pages included.
            # (Counted from the baseline: in the fast profile's 2 s `for`, the very first start
            # can page AgencyExporterDown before Prometheus's first scrape, ~5 s in.)
            assert alert_states(stack, restarted, end) == baseline
            assert notified(sinks, baseline_notifications) == []
        finally:
            stop.set()
            await driver
            await asyncio.to_thread(stack.stop)
            stop_process(am)


# --- Alertmanager stopped and restarted -----------------------------------------------------

# group_wait is long enough to stop Alertmanager after it has taken an alert in and before it
# notifies anyone; group_interval is the 2 s of the fast timings, so a duplicate (a group
# re-sent as new) would show within a few seconds.
AM_TIMINGS = {**FAST_ROUTE_TIMINGS, "group_wait": "4s"}
GROUP_INTERVAL = 2
QUIET = 4 * GROUP_INTERVAL + 4  # longer than a group_wait and several group intervals


@dataclass
class Alerting:
    """The production rules on a stack without a fleet, and an Alertmanager that can be restarted."""

    stack: Stack
    sinks: Sinks
    bundle: Path
    workdir: Path
    alertmanager: subprocess.Popen[bytes]
    alertmanager_url: str

    def start_alertmanager(self) -> None:
        """Starts Alertmanager again on its port and storage: the same one, restarted."""
        port = int(self.alertmanager_url.rsplit(":", 1)[1])
        self.alertmanager, _ = start_alertmanager(self.bundle, self.workdir, port=port)

    def stop_alertmanager(self) -> None:
        stop_process(self.alertmanager)

    def report_critical_alert(self) -> None:
        request = urllib.request.Request(
            f"{self.stack.exporter_url}/v1/events",
            data=json.dumps(CRITICAL_REPORTED_ALERT).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        urllib.request.urlopen(request, timeout=5).close()

    def held(self) -> list[dict[str, Any]]:
        """The AgencyAgentReportedAlert alerts Alertmanager holds (an empty list when it is down)."""
        query = urllib.parse.urlencode({"filter": 'alertname="AgencyAgentReportedAlert"'})
        try:
            with urllib.request.urlopen(f"{self.alertmanager_url}/api/v2/alerts?{query}", timeout=2) as resp:
                return list(json.load(resp))
        except OSError:
            return []

    def pages(self) -> list[tuple[str, str]]:
        return [n for n in notified(self.sinks) if n[0] in PAGER_PATHS]

    def send_errors(self) -> float:
        """Prometheus's count of failed sends to Alertmanager, from its own /metrics (the stack
        does not scrape Prometheus)."""
        with urllib.request.urlopen(f"{self.stack.prometheus_url}/metrics", timeout=5) as resp:
            lines = resp.read().decode().splitlines()
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("prometheus_notifications_errors_total")
        )


@pytest.fixture
async def alerting(tmp_path: Path) -> AsyncIterator[Alerting]:
    async for sinks in serve_sinks():
        # The production rules: the reported alert has `for: 0m`.
        started = await AlertingStack.start(tmp_path, sinks, AM_TIMINGS, RULE_FILES)
        stack = started.stack
        setup = Alerting(stack, sinks, started.bundle, tmp_path, started.alertmanager, started.alertmanager_url)
        try:
            yield setup
        finally:
            await asyncio.to_thread(stack.stop)
            setup.stop_alertmanager()


def assert_one_page(setup: Alerting) -> None:
    # One notification per pager route: PagerDuty and the incident channel, once each.
    assert sorted(setup.pages()) == [
        ("/pagerduty", "[CRITICAL] AgencyAgentReportedAlert"),
        ("/slack/incident", "[CRITICAL] AgencyAgentReportedAlert"),
    ], notified(setup.sinks)


async def test_a_critical_alert_taken_in_by_a_stopped_alertmanager_is_delivered_once(alerting: Alerting) -> None:
    # The sharper of the two outages: Prometheus has handed the alert over (it does not queue
    # it for this Alertmanager any more), and Alertmanager dies in its group_wait with the
    # alert in memory only. Its return must not lose the page, nor send it twice.
    await asyncio.to_thread(alerting.report_critical_alert)
    await eventually(alerting.held, 20, "Alertmanager holds the reported alert")
    await asyncio.to_thread(alerting.stop_alertmanager)
    assert alerting.sinks.received == []  # stopped before it notified anyone
    errors = await asyncio.to_thread(alerting.send_errors)
    await eventually(lambda: alerting.send_errors() > errors + 2, 20, "Prometheus keeps resending, in vain")
    assert alerting.sinks.received == []

    await asyncio.to_thread(alerting.start_alertmanager)
    await eventually(lambda: len(alerting.pages()) >= 2, 20, "the page after Alertmanager's return")
    await asyncio.sleep(QUIET)  # Prometheus resends every second meanwhile
    assert_one_page(alerting)


async def test_alertmanager_restarted_after_a_page_does_not_page_again(alerting: Alerting) -> None:
    await asyncio.to_thread(alerting.report_critical_alert)
    await eventually(lambda: len(alerting.pages()) >= 2, 20, "the page")
    await asyncio.to_thread(alerting.stop_alertmanager)
    await asyncio.to_thread(alerting.start_alertmanager)  # same storage: its notification log is back
    await eventually(alerting.held, 10, "Prometheus resends the alert to the new Alertmanager")
    await asyncio.sleep(QUIET)  # the group's group_wait and several group_intervals
    assert_one_page(alerting)
