"""The mixin on a distributed store: Prometheus remote-writes to VictoriaMetrics, and vmalert
evaluates the same rule files against it, sending alerts to a real Alertmanager.

One steady fleet, one exporter scraped by Prometheus (with the fast rule files, as the other
end-to-end tests run them) and a ``cluster`` target label. Prometheus forwards what it scrapes,
not what it computes: its recording-rule results and its ALERTS series are dropped before
remote write, because vmalert writes the same names into VictoriaMetrics. Every recorded series
then exists twice, once per engine, and the test compares them name by name.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import statistics
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from scripts.local_stack import free_port, stop_process, wait_ready
from support.alerting import Sinks, fast_copy, serve_sinks
from support.e2e import CRITICAL_REPORTED_ALERT, Fleet, fast_mixin, fast_rule_files
from support.processes import require_binary, start_alertmanager
from support.stack import Stack

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.asyncio(loop_scope="module")]

CLUSTER = "vm-test"
# Every series of the fast rule files with a `:` in its name is a recording-rule result; ALERTS
# and ALERTS_FOR_STATE are the alert states. vmalert writes both into VictoriaMetrics itself.
COMPUTED_SERIES = "ALERTS|ALERTS_FOR_STATE|.*:.*"

# z-scores: for a steady fleet the two agent-type ones have no data on either engine (a series
# that does not vary has no spread to divide by), and the token one divides sub-percent jitter by
# the jitter's own spread, a value no tolerance bounds. They keep the `cluster` label on both.
NO_SPREAD = {
    "agent_type:agency_agent_task_duration_seconds:p95_zscore_2m",
    "agent_type:agency_agent_tasks:error_ratio_zscore_2m",
    "fleet:agency_agent_llm_tokens:zscore_2m",
}


# Rules whose window (or the window of a rule they read) is longer than the fleet has run when the
# test compares. PromQL divides a partly filled window's increase by the whole window, MetricsQL
# by the span of the samples it has, so the two agree only once the window is full. Each must
# have data, the same series and the `cluster` label on both engines; the test checks the reason.
PARTIAL_WINDOW = {
    "fleet:agency_agent_llm_cost_usd:per_hour_rate5m": "rate over 5m",
    "fleet:agency_agent_llm_cost_usd:per_hour_rate30m": "rate over 30m",
    "fleet:agency_agent_llm_cost_usd:per_hour_rate1h": "rate over 1h",
    "fleet:agency_agent_llm_cost_usd:per_hour_rate6h": "rate over 6h",
    "fleet:agency_agent_llm_cost_usd:per_hour_rate1d": "rate over 1d",
    "fleet:agency_agent_llm_cost_usd:daily_budget_remaining_ratio": "reads the rate over 1d",
    # the 2m regression starts on the 20s rate's first values, which PromQL ramps up from 0
    "fleet:agency_workflow_task_cost_usd:per_hour_predict_linear_24h": "predict_linear over 2m",
}
# Baselines and their ratios: medians over 2m (the fast profile's relativeBaseline) of signals
# whose first values had a partly filled window, so the two engines' medians pick different
# early values. They too must have the same series on both; whether they are ready is compared.
PARTIAL_BASELINE = re.compile(r"_(vs_)?baseline_2m$")

# Rules reading the health score, on VictoriaMetrics 1.79.5: vmalert at times records nothing
# for them for many seconds (the fleet's state set in every run so far; the agents' state set
# and the fleet's mean score in some), although the score they read, each operand and the same
# expressions on imported samples answer. The cause is not found. The test holds the difference
# to these series, so that any other shows: of the state sets only `unknown` must be there.
MAY_MISS = {
    "fleet:agency_health:status": {"healthy", "degraded", "critical"},
    "agent:agency_agent_health:status": {"healthy", "degraded", "critical"},
    "fleet:agency_agent_health:score_avg": set(),
}
FILLED_SECONDS = 35  # the 20 s council and business windows are full, with margin
# Averaged over 10 s, the rates of both engines differed by at most 1.1 % here; MetricsQL counts
# from the sample before the window and does not extrapolate, so they are not equal. 5 % leaves
# room for load; a wrong selector, label or window is off by far more.
TOLERANCE = 0.05


class ExercisingFleet(Fleet):
    """The healthy fleet, plus what makes the remaining rules record something: a council that
    violates a principle, debates, and one agent whose language model refuses a request in every
    batch."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.violations = True

    def batch(self) -> list[dict[str, Any]]:
        failed_request = {"type": "llm_request", "agent": "worker-0", "agent_type": "worker", "provider": "openai"}
        failed_request |= {"model": "gpt-4o", "duration": 50, "reason": "rate limited"}
        debates = [
            {"type": "consensus", "council": council, "formation_time": 800, "achieved": True}
            | {"debate_required": True, "debate_rounds": 2}
            for council in ("ethics", "review")
        ]
        return [*super().batch(), failed_request, *debates]


@dataclasses.dataclass
class Deployment:
    prometheus: Stack
    victoria: Stack  # VictoriaMetrics' Prometheus-compatible API, queried like Prometheus'
    vmalert_url: str
    alertmanager_url: str
    sinks: Sinks
    fleet: Fleet
    fleet_started: float


def start_server(binary: str, arguments: Sequence[str], workdir: Path, port: int) -> subprocess.Popen[bytes]:
    """A VictoriaMetrics binary on a loopback port, logging to ``workdir``; returns once ``/health`` answers."""
    log = workdir / f"{binary}.log"
    with log.open("ab") as out:
        command = [require_binary(binary), f"-httpListenAddr=127.0.0.1:{port}", *arguments]
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, f"http://127.0.0.1:{port}/health", log, timeout=30)
    except BaseException:
        stop_process(proc)
        raise
    return proc


def victoria_metrics(workdir: Path, port: int) -> subprocess.Popen[bytes]:
    return start_server(
        "victoria-metrics",
        [
            f"-storageDataPath={workdir / 'victoria-metrics-data'}",
            # By default a sample becomes visible to queries 30 s after its timestamp, so vmalert
            # would evaluate every rule on data 30 s old; remote-written samples are complete.
            "-search.latencyOffset=0s",
        ],
        workdir,
        port,
    )


def vmalert(workdir: Path, port: int, victoria_url: str, alertmanager_url: str, rules: Sequence[Path]) -> Any:
    return start_server(
        "vmalert",
        [
            f"-external.url=http://127.0.0.1:{port}",  # the alerts' generatorURL
            *(f"-rule={path}" for path in rules),
            f"-datasource.url={victoria_url}",
            f"-remoteWrite.url={victoria_url}",
            f"-notifier.url={alertmanager_url}",
            "-evaluationInterval=1s",  # as Prometheus' evaluation_interval in the stack
            # Recorded series are sent every 5 s by default; rules that read other rules'
            # results would lag up to that much behind their Prometheus counterparts.
            "-remoteWrite.flushInterval=200ms",
        ],
        workdir,
        port,
    )


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deployment(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Deployment]:
    tmp_path = tmp_path_factory.mktemp("victoriametrics")
    rules = fast_rule_files(tmp_path, keep_firing=False)  # vmalert 1.79.5 rejects keep_firing_for
    victoria_port, vmalert_port = free_port(), free_port()
    victoria_url = f"http://127.0.0.1:{victoria_port}"
    processes: list[subprocess.Popen[bytes]] = []
    stack: Stack | None = None
    async for sinks in serve_sinks():
        try:
            processes.append(await asyncio.to_thread(victoria_metrics, tmp_path, victoria_port))
            alertmanager, alertmanager_url = await asyncio.to_thread(
                start_alertmanager, fast_copy(tmp_path, sinks), tmp_path
            )
            processes.append(alertmanager)
            remote_write = {
                "url": f"{victoria_url}/api/v1/write",
                "write_relabel_configs": [{"source_labels": ["__name__"], "regex": COMPUTED_SERIES, "action": "drop"}],
                # Sent within a fraction of the 1 s scrape interval rather than every 5 s.
                "queue_config": {"batch_send_deadline": "200ms"},
            }
            stack = await asyncio.to_thread(
                Stack.start,
                tmp_path / "stack",
                fleet=False,
                rule_files=rules,
                target_labels={"cluster": CLUSTER},
                remote_write=[remote_write],
            )
            processes.append(
                await asyncio.to_thread(vmalert, tmp_path, vmalert_port, victoria_url, alertmanager_url, rules)
            )
            fleet = ExercisingFleet(stack.exporter_url)
            stop = asyncio.Event()
            driver = asyncio.create_task(fleet.run(stop))
            victoria = dataclasses.replace(stack, prometheus_url=victoria_url, processes={})
            try:
                vmalert_url = f"http://127.0.0.1:{vmalert_port}"
                yield Deployment(stack, victoria, vmalert_url, alertmanager_url, sinks, fleet, time.time())
            finally:
                stop.set()
                await driver
        finally:
            if stack is not None:
                await asyncio.to_thread(stack.stop)
            for proc in reversed(processes):
                await asyncio.to_thread(stop_process, proc)


def alertmanager_alerts(url: str, alertname: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"filter": f'alertname="{alertname}"'})
    with urllib.request.urlopen(f"{url}/api/v2/alerts?{query}", timeout=5) as resp:
        return list(json.load(resp))


async def wait_until(check: Callable[[], Any], timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := await asyncio.to_thread(check)):
        assert time.monotonic() < deadline, f"condition not met within {timeout} s"
        await asyncio.sleep(0.5)
    return result


async def test_an_alert_an_agent_reports_reaches_alertmanager_through_vmalert(deployment: Deployment) -> None:
    deployment.fleet.extra.append(CRITICAL_REPORTED_ALERT)

    def page() -> list[dict[str, Any]]:
        return [p for p in deployment.sinks.at("/pagerduty") if "AgencyAgentReportedAlert" in p["payload"]["summary"]]

    [sent, *_] = await wait_until(page)
    assert sent["payload"]["severity"] == "critical"
    assert "worker-2" in sent["payload"]["custom_details"]["alerts"]
    [alert] = alertmanager_alerts(deployment.alertmanager_url, "AgencyAgentReportedAlert")
    # Prometheus sends no alerts in this deployment; the generator is vmalert's own page.
    assert alert["generatorURL"].startswith(deployment.vmalert_url)
    wanted = {key: CRITICAL_REPORTED_ALERT[key] for key in ("alert_id", "alert_type", "severity")}
    assert wanted | {"cluster": CLUSTER} == {key: alert["labels"][key] for key in [*wanted, "cluster"]}
    assert CRITICAL_REPORTED_ALERT["message"] in alert["annotations"]["description"]  # vmalert's templating


# --- the recorded series of both engines, side by side ------------------------------------------

Key = frozenset[tuple[str, str]]
COMPARED_SECONDS = 10  # each side's samples over the same 10 s are averaged


def recording_rules() -> dict[str, list[str]]:
    """Each record name of the fast rule files and its expressions (a state set has several)."""
    rules: dict[str, list[str]] = {}
    for group in fast_mixin(keep_firing=False)["rules"]["groups"]:  # as deployed: rendered once
        for rule in group["rules"]:
            rules.setdefault(rule["record"], []).append(rule["expr"])
    return rules


def longest_range_seconds(record: str, rules: dict[str, list[str]]) -> float:
    """The longest range selector in the rule's expressions and in those of the rules they read."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    expressions = rules[record]
    ranges = [int(n) * units[u] for e in expressions for n, u in re.findall(r"\[(\d+)([smhd])\]", e)]
    read = {other for other in rules if other != record and any(other in e for e in expressions)}
    return max([*ranges, *(longest_range_seconds(other, rules) for other in read)], default=0)


def window_means(store: Stack, record: str, at: float) -> dict[Key, float]:
    """The mean of each series of ``record`` over the ``COMPARED_SECONDS`` before ``at``, from
    the raw samples (a range selector), keyed by its labels without the name. NaN (0/0) is left
    out: Prometheus records it, VictoriaMetrics drops it from results, and both mean no value."""
    means = {}
    for series in store.query(f'{{__name__="{record}"}}[{COMPARED_SECONDS}s]', at=at):
        values = [float(value) for _, value in series["values"] if not math.isnan(float(value))]
        if values:
            means[frozenset((k, v) for k, v in series["metric"].items() if k != "__name__")] = statistics.fmean(values)
    return means


def common_labels(left: dict[Key, float], right: dict[Key, float]) -> tuple[dict[Key, float], dict[Key, float]]:
    """Both sides keyed by the label names both have (one engine may add labels of its own)."""
    if not (left and right):
        return left, right
    names = {k for key in left for k, _ in key} & {k for key in right for k, _ in key}

    def narrow(side: dict[Key, float]) -> dict[Key, float]:
        narrowed = {frozenset((k, v) for k, v in key if k in names): value for key, value in side.items()}
        assert len(narrowed) == len(side), f"series only told apart by labels one side lacks: {sorted(side)}"
        return narrowed

    return narrow(left), narrow(right)


def relative_difference(a: float, b: float) -> float:
    """|a - b| relative to the larger; 0 where both are 0 up to rounding (1 - x/x is 0 or 1e-16)."""
    return 0.0 if abs(a - b) < 1e-9 else abs(a - b) / max(abs(a), abs(b))


async def test_every_recording_rule_records_the_same_on_victoriametrics(deployment: Deployment) -> None:
    rules = recording_rules()
    await asyncio.sleep(max(0, deployment.fleet_started + FILLED_SECONDS - time.time()))
    at = time.time() - 3  # both engines have evaluated and stored every rule up to here
    filled = at - deployment.fleet_started
    differences: dict[str, float] = {}
    for record in sorted(rules):
        prometheus, victoria = common_labels(
            window_means(deployment.prometheus, record, at), window_means(deployment.victoria, record, at)
        )
        # Constants (latency objectives, `vector(5)`) read no series, so carry no target label;
        # the rules that join them keep the `cluster` of the other side.
        constant = all(expression.startswith("vector(") for expression in rules[record])
        for side in () if constant else (prometheus, victoria):
            assert all(dict(key).get("cluster") == CLUSTER for key in side), (record, sorted(side, key=str))
        if record in NO_SPREAD:
            continue
        if record in MAY_MISS:
            assert prometheus and victoria.keys() <= prometheus.keys(), record
            assert {dict(key).get("status") for key in prometheus.keys() - victoria.keys()} <= MAY_MISS[record] | {None}
            if MAY_MISS[record]:  # a state set: `unknown` reads no score and is always there
                assert any(dict(key)["status"] == "unknown" for key in victoria), record
            if not victoria:
                continue
        else:
            assert prometheus and victoria, (
                f"{record}: {len(prometheus)} series on Prometheus, {len(victoria)} on VictoriaMetrics"
            )
            assert prometheus.keys() == victoria.keys(), record
        if record in PARTIAL_WINDOW or PARTIAL_BASELINE.search(record):
            assert longest_range_seconds(record, rules) > filled, f"{record}: its window is full; compare it"
            continue
        differences[record] = max(
            relative_difference(prometheus[k], victoria[k]) for k in prometheus.keys() & victoria.keys()
        )
    for record, difference in sorted(differences.items(), key=lambda item: -item[1]):
        print(f"{difference:9.2%}  {record}")
    assert {record: d for record, d in differences.items() if d > TOLERANCE} == {}
    partial = PARTIAL_WINDOW.keys() | {record for record in rules if PARTIAL_BASELINE.search(record)}
    assert differences.keys() >= rules.keys() - NO_SPREAD - partial - MAY_MISS.keys()
