"""Time to page: from an agent's hard failure to the pager, phase by phase, on the real stack.

One run of the local stack (scripts/local_stack.py: exporter, Prometheus with the mixin's rules,
Alertmanager with the bundle, a sink standing in for PagerDuty), with the mixin rendered from
the same Jsonnet and only these settings shortened so a run takes seconds, not a quarter hour:
the scrape and evaluation interval, the agent window (agentWindow), the `for` of the agent error
alert (for.agentErrors) and Alertmanager's group_wait.

Each round brings up a new agent that finishes every task for one agent window, then fails
every task from t0 on. The phases are read off Prometheus' own samples and the sink's clock:

    scrape        t0 → the first scraped sample counting a failure
    window        → the agent's error ratio over agentWindow crosses the critical threshold
    evaluation    → the alert's first pending sample (its rule group's next evaluation)
    for           → the alert's first firing sample
    alertmanager  → the page reaches the sink (send, group_wait, notify)

Beside the medians it prints the same model with production settings: half a scrape and half
an evaluation interval on average, the same fraction of the production agent window, the
production `for`, and the production group_wait of the critical route.

    .venv/bin/python -m benchmarks.time_to_page [--rounds 3] [--scrape-interval 1s] [--window 20s]
                                                 [--for 5s] [--group-wait 2s]
"""

from __future__ import annotations

import argparse
import itertools
import json
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from scripts.generate import render_config, render_mixin
from scripts.local_stack import ROOT, LocalStack

ALERT = "AgencyAgentErrorRateHigh"
PHASES = ("scrape", "window", "evaluation", "for", "alertmanager")


def seconds(duration: str) -> float:
    """A Prometheus duration of one unit ("30s", "5m", "1h") in seconds."""
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}
    number = duration.rstrip("smhd")
    return float(number) * units[duration[len(number) :]]


@dataclass
class Settings:
    scrape_interval: str
    window: str
    alert_for: str
    group_wait: str


def production_settings() -> tuple[Settings, float]:
    """The mixin's and the bundle's own settings, and the critical error-ratio threshold."""
    config = render_config()
    bundle = yaml.safe_load((ROOT / "alertmanager/alertmanager.yml").read_text())
    [critical] = [r for r in bundle["route"]["routes"] if r.get("matchers") == ['severity="critical"']]
    deploy = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    settings = Settings(
        scrape_interval=deploy["global"]["scrape_interval"],
        window=config["agentWindow"],
        alert_for=config["for"]["agentErrors"],
        group_wait=critical["group_wait"],
    )
    return settings, float(config["thresholds"]["agentErrorRatioCritical"])


class Agent:
    """Posts a batch every 0.25 s for one agent: four finished tasks, succeeding until told to fail."""

    def __init__(self, url: str, name: str) -> None:
        self.url, self.name = url, name
        self.failing = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        base = {"agent": self.name, "agent_type": "worker"}
        while not self.stopped.wait(0.25):
            events: list[dict[str, Any]] = [{"type": "agent_heartbeat", "cpu": 0.2, **base}]
            for _ in range(4):
                if self.failing.is_set():
                    events.append({"type": "task_failed", "reason": "model unavailable", "duration": 50, **base})
                else:
                    events.append({"type": "task_completed", "duration": 50, **base})
            body = "\n".join(json.dumps(e) for e in events).encode()
            headers = {"Content-Type": "application/x-ndjson"}
            request = urllib.request.Request(f"{self.url}/v1/events", data=body, headers=headers)
            urllib.request.urlopen(request, timeout=5).close()


class Probe:
    """Reads first-sample timestamps from Prometheus and pages from the sink."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack = stack

    def samples(self, selector: str, lookback: str) -> list[tuple[float, float]]:
        query = urllib.parse.urlencode({"query": f"{selector}[{lookback}]"})
        with urllib.request.urlopen(f"{self.stack.url('prometheus')}/api/v1/query?{query}", timeout=10) as resp:
            result = json.load(resp)["data"]["result"]
        return sorted((float(t), float(v)) for series in result for t, v in series["values"])

    def first(self, selector: str, after: float, lookback: str, where: Any = lambda v: True) -> float | None:
        return next((t for t, v in self.samples(selector, lookback) if t >= after and where(v)), None)

    def page_time(self, agent: str) -> float | None:
        with urllib.request.urlopen(self.stack.url("sink") + "/", timeout=10) as resp:
            notifications = json.load(resp)
        for note in notifications:
            text = json.dumps(note["body"])
            if note["path"] == "/pagerduty" and ALERT in text and agent in text:
                return float(note["time"])
        return None


def one_round(stack: LocalStack, probe: Probe, name: str, bench: Settings, threshold: float) -> dict[str, float]:
    agent = Agent(stack.url("exporter"), name)
    agent.thread.start()
    try:
        time.sleep(seconds(bench.window) + 2 * seconds(bench.scrape_interval))  # a healthy window first
        t0 = time.time()
        agent.failing.set()
        deadline = t0 + 20 * seconds(bench.window) + 60
        while (paged := probe.page_time(name)) is None:
            if time.time() > deadline:
                raise SystemExit(f"no page for {name} within {deadline - t0:.0f} s; logs in {stack.workdir}")
            time.sleep(0.1)
    finally:
        agent.stopped.set()
        agent.thread.join()
    lookback = f"{int(paged - t0) + 60}s"
    labels = f'agent="{name}"'
    ratio_rule = f"agent:agency_agent_tasks:success_ratio_rate{bench.window}"
    alert = f'ALERTS{{alertname="{ALERT}",severity="critical",{labels},alertstate="%s"}}'
    marks = [
        t0,
        probe.first(f"agency_agent_task_failures_total{{{labels}}}", t0, lookback, lambda v: v > 0),
        probe.first(f"{ratio_rule}{{{labels}}}", t0, lookback, lambda v: 1 - v > threshold),
        probe.first(alert % "pending", t0, lookback),
        probe.first(alert % "firing", t0, lookback),
        paged,
    ]
    if None in marks:
        raise SystemExit(f"a phase left no sample in Prometheus: {marks}; logs in {stack.workdir}")
    times = [float(m) for m in marks if m is not None]
    return {phase: max(0.0, end - start) for phase, (start, end) in zip(PHASES, itertools.pairwise(times), strict=True)}


def model(settings: Settings, window_fraction: float) -> dict[str, float]:
    """Expected phases with the given settings: waits for a periodic tick average half a period."""
    interval = seconds(settings.scrape_interval)
    return {
        "scrape": interval / 2,
        "window": window_fraction * seconds(settings.window),
        "evaluation": interval / 2,
        "for": seconds(settings.alert_for),
        "alertmanager": seconds(settings.group_wait),
    }


def report(rounds: list[dict[str, float]], bench: Settings, production: Settings) -> str:
    medians = {phase: statistics.median(r[phase] for r in rounds) for phase in PHASES}
    fraction = medians["window"] / seconds(bench.window)
    expected_bench, expected_production = model(bench, fraction), model(production, fraction)
    setting = {
        "scrape": lambda s: f"scrape every {s.scrape_interval}",
        "window": lambda s: f"agentWindow {s.window}",
        "evaluation": lambda s: f"evaluate every {s.scrape_interval}",
        "for": lambda s: f"for {s.alert_for}",
        "alertmanager": lambda s: f"group_wait {s.group_wait}",
    }
    head = f"{'phase':<13} {'measured':>9} {'model':>7}  {'benchmark setting':<22} {'production':>10}  setting"
    lines = [f"time to page ({ALERT}, critical): median of {len(rounds)} round(s)", head, "-" * len(head)]
    for phase in PHASES:
        lines.append(
            f"{phase:<13} {medians[phase]:>8.1f}s {expected_bench[phase]:>6.1f}s  {setting[phase](bench):<22} "
            f"{expected_production[phase]:>9.0f}s  {setting[phase](production)}"
        )
    total, total_bench, total_production = (sum(d.values()) for d in (medians, expected_bench, expected_production))
    lines.append(
        f"{'total':<13} {total:>8.1f}s {total_bench:>6.1f}s  {'':<22} {total_production:>9.0f}s  "
        f"(≈ {total_production / 60:.1f} min)"
    )
    lines.append(f"the error ratio crossed the threshold after {fraction:.0%} of the agent window")
    lines.append("rounds: " + "; ".join(f"{sum(r.values()):.1f}s" for r in rounds))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="failing agents, one after another (%(default)s)")
    parser.add_argument("--scrape-interval", default="1s", help="scrape and evaluation interval (%(default)s)")
    parser.add_argument("--window", default="20s", help="agentWindow (%(default)s)")
    parser.add_argument("--for", dest="alert_for", default="5s", help="for.agentErrors (%(default)s)")
    parser.add_argument("--group-wait", default="2s", help="Alertmanager group_wait (%(default)s)")
    args = parser.parse_args(argv)
    bench = Settings(args.scrape_interval, args.window, args.alert_for, args.group_wait)
    production, threshold = production_settings()
    mixin = render_mixin({"agentWindow": bench.window, "for": {"agentErrors": bench.alert_for}})
    with tempfile.TemporaryDirectory(prefix="agency-time-to-page-") as tmp:
        workdir = Path(tmp)
        rule_files = []
        for key in ("rules", "alerts"):
            path = workdir / f"{key}.yml"
            path.write_text(yaml.safe_dump(mixin[key], sort_keys=False))
            rule_files.append(path)
        ports = dict.fromkeys(("sink", "exporter", "alertmanager", "prometheus"), 0)
        stack = LocalStack(
            workdir / "stack",
            ports,
            scrape_interval=bench.scrape_interval,
            fleet=False,
            rule_files=rule_files,
            route_timings={"group_wait": bench.group_wait},
        )
        stack.start()
        try:
            probe = Probe(stack)
            rounds = [one_round(stack, probe, f"victim-{n}", bench, threshold) for n in range(args.rounds)]
        finally:
            stack.stop()
    print(report(rounds, bench, production))
    return 0


if __name__ == "__main__":
    sys.exit(main())
