"""High availability: two identical Prometheus servers and a two-peer Alertmanager cluster.

Real processes on loopback. One exporter (``serve``: only the test sends it events) is scraped
by two Prometheus servers with the same fast rule files and the same scrape configuration,
different only in the external label ``prometheus_replica`` (``a``, ``b``). Each sends its
alerts to both Alertmanagers and drops that label from them first (``alert_relabel_configs``),
so the two servers send the very same alert. The Alertmanagers run the bundle, delivering to
local sinks, and gossip over the loopback. What must hold:

- The healthy pair: a critical alert an agent reports, which both Prometheus servers and both
  Alertmanagers see, is one page and one incident-channel message, and stays one over several
  group intervals.
- One Prometheus stopped and one Alertmanager killed: a critical alert reported after that
  still pages, exactly once.
- The control: the same pair with two Alertmanagers that do not gossip pages twice, so these
  tests can see a duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import signal
import subprocess
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.local_stack import prometheus_config, stop_process
from support.alerting import (
    FAST_ROUTE_TIMINGS,
    Sinks,
    eventually,
    fast_copy,
    notified,
    receiver_paths,
    serve_sinks,
)
from support.e2e import CRITICAL_REPORTED_ALERT, fast_rule_files
from support.processes import (
    ExporterProcess,
    cluster_peers,
    start_alertmanager,
    start_alertmanager_cluster,
    start_daemon,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPLICA_LABEL = "prometheus_replica"
REPLICAS = ("a", "b")
ALERTNAME = "AgencyAgentReportedAlert"
PEER_TIMEOUT = 3  # seconds the second Alertmanager in the cluster's order waits for the first
GROUP_INTERVAL = int(FAST_ROUTE_TIMINGS["group_interval"].removesuffix("s"))
# Past the peer's turn and several group intervals, in each of which a second notification
# would go out; Prometheus resends the alert to both Alertmanagers every second meanwhile.
QUIET = PEER_TIMEOUT + 3 * GROUP_INTERVAL


def replica_config(exporter: str, replica: str, alertmanagers: list[str], rule_files: list[Path]) -> dict[str, Any]:
    """One server of the pair: the same scrape job and rules as the other, its own replica
    label, every Alertmanager as a target, and alerts sent without the replica label."""
    config = prometheus_config(exporter, rule_files=rule_files, alertmanagers=alertmanagers)
    config["global"]["external_labels"] = {REPLICA_LABEL: replica}
    config["alerting"]["alert_relabel_configs"] = [{"action": "labeldrop", "regex": REPLICA_LABEL}]
    return config


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.load(response)


def metric(url: str, name: str, **labels: str) -> float:
    """The sum of ``name`` over the series with ``labels`` on a server's own /metrics."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        lines = response.read().decode().splitlines()
    total = 0.0
    for line in lines:
        series, _, value = line.rpartition(" ")
        if series.split("{")[0] == name and all(f'{k}="{v}"' in series for k, v in labels.items()):
            total += float(value)
    return total


@dataclass
class Pair:
    """The exporter, the Prometheus pair (by replica) and two Alertmanagers, all running."""

    exporter: ExporterProcess
    prometheus: dict[str, tuple[subprocess.Popen[bytes], str]]
    alertmanagers: list[tuple[subprocess.Popen[bytes], str]]
    sinks: Sinks
    bundle: Path

    def report(self, event: dict[str, Any]) -> None:
        request = urllib.request.Request(
            f"{self.exporter.url}/v1/events",
            data=json.dumps(event).encode(),
            headers={"Content-Type": "application/x-ndjson"},
        )
        urllib.request.urlopen(request, timeout=5).close()

    def alertmanager_urls(self) -> list[str]:
        """The running Alertmanagers' URLs."""
        return [url for proc, url in self.alertmanagers if proc.poll() is None]

    def held(self, url: str) -> list[dict[str, Any]]:
        """The reported alerts an Alertmanager holds."""
        query = urllib.parse.urlencode({"filter": f'alertname="{ALERTNAME}"'})
        return list(get(f"{url}/api/v2/alerts?{query}"))

    def sends_to_every_alertmanager(self, prometheus: str) -> bool:
        """Whether a Prometheus's notifier has discovered every running Alertmanager (and no other)."""
        active = get(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"]
        return sorted(a["url"].removesuffix("/api/v2/alerts") for a in active) == sorted(self.alertmanager_urls())

    def firing(self, url: str) -> list[dict[str, Any]]:
        """The reported alert's firing ``ALERTS`` series on one Prometheus."""
        query = urllib.parse.urlencode({"query": f'ALERTS{{alertname="{ALERTNAME}",alertstate="firing"}}'})
        return list(get(f"{url}/api/v1/query?{query}")["data"]["result"])

    def clustered(self) -> bool:
        """Every Alertmanager lists itself and every other one as members of its cluster."""
        views = [cluster_peers(url) for url in self.alertmanager_urls()]
        names = sorted(name for name, _ in views)
        return all(members == names for _, members in views)

    def first_in_turn(self) -> int:
        """The index of the Alertmanager that notifies first: the cluster orders its members by
        name, and each waits its position times ``peer_timeout`` before it looks whether a peer has
        already sent a notification."""
        names = [cluster_peers(url)[0] for url in self.alertmanager_urls()]
        return names.index(min(names))

    def expected_pages(self) -> list[tuple[str, str]]:
        """One notification per integration of the receiver the Alertmanagers routed the
        alert to, titled as the bundle's template titles a critical alert."""
        receivers = {r["name"] for url in self.alertmanager_urls() for a in self.held(url) for r in a["receivers"]}
        [receiver] = receivers
        title = f"[{CRITICAL_REPORTED_ALERT['severity'].upper()}] {ALERTNAME}"
        return [(path, title) for path in receiver_paths(self.bundle, receiver)]

    def notifications(self) -> list[tuple[str, str]]:
        """(path, title) of the reported alert's notifications, sorted. Others are left out: a
        Prometheus just started fires AgencyExporterDown for a few seconds with the fast
        profile's `for: 2s` (its first scrape waits for the scrape manager's first reload,
        about 5 s, while rules are evaluated from the start)."""
        return sorted(n for n in notified(self.sinks) if ALERTNAME in n[1])


@contextlib.asynccontextmanager
async def running_pair(tmp_path: Path, *, clustered: bool = True) -> AsyncIterator[Pair]:
    """Starts everything (the Alertmanagers, clustered or not, first), yields the pair and stops
    every process it started."""
    async for sinks in serve_sinks():
        bundle = fast_copy(tmp_path, sinks)
        workdirs = [tmp_path / f"alertmanager-{n}" for n in (1, 2)]
        exporter = ExporterProcess(tmp_path)
        pair = Pair(exporter, {}, [], sinks, bundle)
        try:
            if clustered:
                pair.alertmanagers = start_alertmanager_cluster(bundle, workdirs, peer_timeout=f"{PEER_TIMEOUT}s")
            else:
                for workdir in workdirs:
                    workdir.mkdir()
                    pair.alertmanagers.append(start_alertmanager(bundle, workdir))
            exporter.start()
            rule_files = fast_rule_files(tmp_path)
            targets = [url.removeprefix("http://") for url in pair.alertmanager_urls()]
            for replica in REPLICAS:
                workdir = tmp_path / f"prometheus-{replica}"
                workdir.mkdir()
                config = workdir / "prometheus.yml"
                settings = replica_config(exporter.url.removeprefix("http://"), replica, targets, rule_files)
                config.write_text(yaml.safe_dump(settings, sort_keys=False))
                arguments = [
                    f"--config.file={config}",
                    f"--storage.tsdb.path={workdir / 'data'}",
                    "--rules.alert.resend-delay=1s",
                ]
                pair.prometheus[replica] = start_daemon("prometheus", arguments, workdir)
            yield pair
        finally:
            for proc, _ in pair.prometheus.values():
                stop_process(proc)
            exporter.stop()
            for proc, _ in pair.alertmanagers:
                stop_process(proc)


async def wait_for_cluster(pair: Pair) -> None:
    await eventually(pair.clustered, 30, "both Alertmanagers list both as cluster members")
    for url in pair.alertmanager_urls():
        _, members = cluster_peers(url)
        assert len(members) == len(pair.alertmanagers), members


async def wait_for_pages(pair: Pair, copies: int) -> list[tuple[str, str]]:
    """Waits until the alert is held and every path of its receiver got ``copies`` notifications."""
    await eventually(lambda: all(pair.held(url) for url in pair.alertmanager_urls()), 30, "the alert held")
    expected = pair.expected_pages()

    def delivered() -> bool:
        got = pair.notifications()
        return all(got.count(page) >= copies for page in expected)

    await eventually(delivered, 30, f"{copies} notification(s) on each of {expected}")
    return expected


async def test_the_healthy_pair_pages_once_for_an_alert_both_servers_and_both_alertmanagers_see(
    tmp_path: Path,
) -> None:
    async with running_pair(tmp_path) as pair:
        await wait_for_cluster(pair)
        # Each Prometheus sends to both Alertmanagers (once its notifier has discovered them).
        for _, url in pair.prometheus.values():
            await eventually(functools.partial(pair.sends_to_every_alertmanager, url), 30, url)

        await asyncio.to_thread(pair.report, CRITICAL_REPORTED_ALERT)
        expected = await wait_for_pages(pair, 1)
        await asyncio.sleep(QUIET)

        # Both servers fire it, both send it to both Alertmanagers (and nothing fails) ...
        for _, url in pair.prometheus.values():
            assert pair.firing(url), url
            for am in pair.alertmanager_urls():
                assert metric(url, "prometheus_notifications_sent_total", alertmanager=f"{am}/api/v2/alerts") > 0
            assert metric(url, "prometheus_notifications_errors_total") == 0
        # ... where the two servers' copies are one alert, without the replica label ...
        for url in pair.alertmanager_urls():
            [alert] = pair.held(url)
            assert alert["labels"]["alert_id"] == CRITICAL_REPORTED_ALERT["alert_id"]
            assert REPLICA_LABEL not in alert["labels"]
        # ... and one notification per integration of its receiver, not one per copy.
        assert pair.notifications() == expected, notified(pair.sinks)


async def test_a_page_is_delivered_once_with_one_prometheus_and_one_alertmanager_down(tmp_path: Path) -> None:
    async with running_pair(tmp_path) as pair:
        await wait_for_cluster(pair)
        # Kill (no goodbye to its peer) the Alertmanager that would notify first; stop a Prometheus.
        first = pair.first_in_turn()
        dead_am, _ = pair.alertmanagers[first]
        dead_am.send_signal(signal.SIGKILL)
        dead_am.wait(timeout=10)
        dead_prometheus, _ = pair.prometheus["b"]
        stop_process(dead_prometheus)
        assert dead_am.returncode is not None and dead_prometheus.returncode is not None

        await asyncio.to_thread(pair.report, CRITICAL_REPORTED_ALERT)
        [survivor] = pair.alertmanager_urls()
        expected = await wait_for_pages(pair, 1)
        await asyncio.sleep(QUIET)

        assert pair.firing(pair.prometheus["a"][1])
        assert pair.held(survivor)
        assert pair.notifications() == expected, notified(pair.sinks)


async def test_control_two_alertmanagers_without_the_cluster_page_twice(tmp_path: Path) -> None:
    async with running_pair(tmp_path, clustered=False) as pair:
        for url in pair.alertmanager_urls():
            assert cluster_peers(url)[1] == []  # no cluster at all
        await asyncio.to_thread(pair.report, CRITICAL_REPORTED_ALERT)
        expected = await wait_for_pages(pair, 2)
        await asyncio.sleep(2 * GROUP_INTERVAL)

        assert pair.notifications() == sorted(expected * 2), notified(pair.sinks)
