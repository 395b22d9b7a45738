"""Sizing: series per agent, what one exporter replica takes, what Prometheus pays per series and for the rules.

1. Series per owner, by family, counted from the exporter's own text exposition (in-process,
   new series shown at once): the lines that ``--owners`` more owners add, divided by their
   number, so that series shared by the fleet (the exporter's own, the workflow's, one per
   model and tool) are left out and counted apart. A typical agent registers, heartbeats, runs
   tasks that complete and fail with two error classes, calls one LLM model and one tool and
   makes decisions of all four outcomes; a minimal one only heartbeats. A council forms
   consensus (with a violation), coordinates and decides; a queue reports its depth and waits.
2. Per replica, in-process, with ``scale.measure_sizes``: a fleet of typical agents (and a
   council and a queue per 100 agents) filled into one store per size, then timed in rounds:
   the text render of /metrics, and ingest of the benchmarks' event mix (decode + apply, one
   process, one core) into the filled store.
3. Prometheus (the ``prometheus`` binary on PATH) on a free loopback port, its TSDB in a temporary
   directory, scraping a real exporter (``agency-telemetry serve``) that holds the same fleet
   every ``--interval`` seconds, while a sender posts a batch of the event mix every second:
   for a third of ``--duration`` without rules, then, after a reload, with the mixin's rule files
   (``rules/agency-rules.yml``, ``rules/agency-alerts.yml``) evaluated every ``--evaluation``
   seconds. At the end: head series (``prometheus_tsdb_head_series``), RSS
   (``process_resident_memory_bytes``) and bytes per series, the scrape's duration as Prometheus
   saw it, each rule group's ``prometheus_rule_group_last_duration_seconds`` (median of readings
   over the second half of the run with rules) summed, and the CPU Prometheus used with the rules
   and without them (/proc): their difference times the evaluation interval is what the rules
   cost per evaluation. The groups run at once, so on a busy machine their durations include the
   time each waited for a core; the CPU is not inflated that way.

The default run takes ~9 minutes, ``--quick`` (for the smoke test) under a minute.

    .venv/bin/python -m benchmarks.sizing [--quick] [--replica-sizes 1000,5000,10000,20000]
                                          [--prometheus-sizes 1000,5000,10000] [--duration 150]
                                          [--interval 5] [--evaluation 30]
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry.simulator import (
    Agent,
    agent_named,
    llm_request,
    registered,
    task_finished,
    task_started,
    tool_call,
)

from benchmarks.ours import Ours, config_for
from benchmarks.scale import measure_sizes
from benchmarks.timing import MB, cpu_seconds, machine_lines, sample_lines, status_bytes
from benchmarks.workload import (
    BATCH,
    EventMix,
    chunks,
    mix_consensus,
    mix_heartbeat,
    mix_queue,
    ndjson,
)
from scripts.local_stack import JOB, RULE_FILES, find_binary, free_port, prometheus_config, stop_process, wait_ready

Event = dict[str, Any]
MODEL = ("openai", "gpt-4o-mini")  # the one model of every typical agent
TOOL = "web_search"  # and its one tool
FAILURES = ("Network timeout", "upstream rate limit exceeded (429)")  # error classes timeout and rate_limited
OUTCOMES = tuple(itertools.product((True, False), repeat=2))  # (predicted, actual): tp, fn, fp, tn
OWNERS_PER_COUNCIL = 100  # agents per council, and per queue, in the fleets of 2. and 3.
REPLICA_SIZES = (1000, 5000, 10_000, 20_000)
PROMETHEUS_SIZES = (1000, 5000, 10_000)
QUICK = {"owners": 20, "replica": (100, 1000), "prometheus": (100, 300), "duration": 16.0}
QUICK.update({"interval": 2.0, "evaluation": 2.0})
FULL = {"owners": 100, "replica": REPLICA_SIZES, "prometheus": PROMETHEUS_SIZES, "duration": 150.0}
FULL.update({"interval": 5.0, "evaluation": 30.0})  # evaluation: as deploy/prometheus/prometheus.yml
NDJSON = {"Content-Type": "application/x-ndjson"}


# --- the owners --------------------------------------------------------------------------


def decisions(**owner: str) -> list[Event]:
    return [{"type": "decision", **owner, "predicted": p, "actual": a} for p, a in OUTCOMES]


def typical_agent(rng: random.Random, agent: Agent) -> list[Event]:
    names = {"agent": agent.name, "agent_type": agent.kind}
    events = [registered(agent), mix_heartbeat(rng, agent), *(task_started(agent) for _ in range(3))]
    events.append(task_finished(rng, agent, fail=False))
    events += [{**task_finished(rng, agent, fail=True), "reason": reason} for reason in FAILURES]
    provider, model = MODEL
    events.append({**llm_request(rng, agent, failure_rate=0), "provider": provider, "model": model})
    events.append({**tool_call(rng, agent, failure_rate=0), "tool": TOOL})
    return events + decisions(**names)


def minimal_agent(rng: random.Random, agent: Agent) -> list[Event]:
    return [mix_heartbeat(rng, agent)]


def council(rng: random.Random, name: str) -> list[Event]:
    events = [mix_consensus(rng, name, violation=True), mix_consensus(rng, name, violation_rate=0)]
    events.append({"type": "coordination", "council": name, "session": "started", "overhead": 120})
    return events + decisions(council=name)


def queue(rng: random.Random, name: str) -> list[Event]:
    return [mix_queue(rng, name)]


Owner = Callable[[random.Random, int], list[Event]]  # (rng, index) -> the events of the index-th owner of a kind
OWNER_KINDS: dict[str, Owner] = {
    "typical agent": lambda rng, i: typical_agent(rng, agent_named(i)),
    "minimal agent": lambda rng, i: minimal_agent(rng, agent_named(i)),
    "council": lambda rng, i: council(rng, f"council-{i}"),
    "queue": lambda rng, i: queue(rng, f"queue-{i}"),
}


def owners(kind: Owner, count: int, seed: int = 5) -> list[Event]:
    rng = random.Random(seed)
    return [event for index in range(count) for event in kind(rng, index)]


def typical_fleet(agents: int) -> list[Event]:
    """Typical agents, and a council and a queue for every OWNERS_PER_COUNCIL of them."""
    others = max(1, agents // OWNERS_PER_COUNCIL)
    kinds = OWNER_KINDS
    return owners(kinds["typical agent"], agents) + owners(kinds["council"], others) + owners(kinds["queue"], others)


def typical_bodies(agents: int) -> list[bytes]:
    return chunks(typical_fleet(agents), BATCH)


# --- 1. series per owner -----------------------------------------------------------------


def family_lines(text: bytes) -> Counter[str]:
    """Sample lines of each family (as its ``# TYPE`` line names it) of a text exposition."""
    counts: Counter[str] = Counter()
    family = ""
    for line in text.split(b"\n"):
        if line.startswith(b"# TYPE "):
            family = line.split()[2].decode()
        elif line and not line.startswith(b"#"):
            counts[family] += 1
    return counts


def exposition_of(events: list[Event]) -> bytes:
    ours = Ours(config_for(len(events)))
    for body in chunks(events, BATCH):
        ours.apply_ndjson(body)
    return ours.exposition.render(False)


@dataclass
class SeriesCount:
    per_owner: dict[str, dict[str, float]]  # kind -> family -> series per owner
    fixed: int  # series of a typical fleet of ``owners`` agents that do not grow with it
    owners: int


def count_series(count: int) -> SeriesCount:
    """Series each owner adds: (lines of 2 x count owners - lines of count owners) / count, by family."""
    per_owner: dict[str, dict[str, float]] = {}
    for kind, owner in OWNER_KINDS.items():
        small, big = (family_lines(exposition_of(owners(owner, n))) for n in (count, 2 * count))
        per_owner[kind] = {f: (big[f] - small[f]) / count for f in big if big[f] != small[f]}
    text = exposition_of(owners(OWNER_KINDS["typical agent"], count))
    fixed = sample_lines(text) - round(count * sum(per_owner["typical agent"].values()))
    return SeriesCount(per_owner, fixed, count)


def series_rows(found: SeriesCount) -> list[str]:
    kinds = list(OWNER_KINDS)
    families = sorted({f for counts in found.per_owner.values() for f in counts})
    rows = [
        f"method:  series per owner: (sample lines with {2 * found.owners} owners - with {found.owners}) / "
        f"{found.owners}, by family, from the exporter's text /metrics (in-process); a typical agent: tasks (1 "
        "completed, 2 failed: error classes timeout, rate_limited),",
        f"         1 LLM model ({'/'.join(MODEL)}), 1 tool ({TOOL}), decisions of all 4 outcomes, a heartbeat; "
        "minimal: a heartbeat only; council: consensus (1 violation), coordination, decisions; queue: a sample",
        f"{'series  family':<55}" + "".join(f"{kind:>15}" for kind in kinds),
    ]
    for family in families:
        cells = "".join(f"{_count(found.per_owner[kind].get(family)):>15}" for kind in kinds)
        rows.append(f"series  {family:<47}{cells}")
    totals = "".join(f"{_count(sum(found.per_owner[kind].values())):>15}" for kind in kinds)
    rows.append(f"series  {'total per owner':<47}{totals}")
    rows.append(
        f"series  fixed: {found.fixed:,} series whatever the fleet (the exporter's own, the workflow's, per model "
        f"and tool: {'/'.join(MODEL)}, {TOOL})"
    )
    return rows


def _count(value: float | None) -> str:
    return "" if not value else f"{value:g}"


# --- 2. per replica ----------------------------------------------------------------------


def replica_rows(sizes: tuple[int, ...], quick: bool) -> list[str]:
    result = measure_sizes(sizes, 0, quick, typical_bodies)
    rows = [
        "method:  per replica: scale.measure_sizes on typical fleets (a council and a queue per "
        f"{OWNERS_PER_COUNCIL} agents), in-process, every size held at once and timed in rounds;",
        "         render = text /metrics in one string (median of 3-5); ingest = the event mix (workload.EventMix, "
        "bodies of 1,000 events) decoded and applied into the filled store (median of 3-5): one process, one core",
        f"{'replica agents':<16}{'series':>11}{'text MB':>10}{'render ms':>11}{'render µs/agent':>17}"
        f"{'ingest events/s':>17}",
    ]
    for agents in sizes:
        key = (agents, "ours")
        render = statistics.median(result.render[key])
        rate = 1e6 / result.median("ingest", key)
        rows.append(
            f"replica {agents:>7,}{result.lines[agents]:>12,}{result.size[agents] / MB:>10.1f}"
            f"{render * 1000:>11.0f}{render * 1e6 / agents:>17.1f}{rate:>17,.0f}"
        )
    return rows


# --- 3. Prometheus -----------------------------------------------------------------------


@dataclass
class Observed:
    agents: int
    fill_rate: float  # events/s of the first fill over HTTP, one sender
    exporter_rss: int
    head_series: int
    recorded_series: int
    rss: int
    heap: int
    scrape_seconds: float  # median scrape_duration_seconds over the run's second half
    scraped: int  # scrape_samples_scraped
    body_bytes: int  # scrape_body_size_bytes (uncompressed)
    render_seconds: float  # the exporter's own mean render time per scrape
    rule_groups: dict[str, float]  # group -> median last duration (s)
    missed: int  # rule group iterations missed
    scrapes: int
    prometheus_cpu: float  # CPU seconds per second of Prometheus over the second half of the run with rules
    scrape_only_cpu: float  # and over the second half of the run before the rules were loaded
    exporter_cpu: float  # and of the exporter


def get(url: str, timeout: float = 300) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return bytes(resp.read())


def post(url: str, body: bytes) -> None:
    request = urllib.request.Request(url, data=body, headers=NDJSON)
    with urllib.request.urlopen(request, timeout=60) as resp:
        if resp.status != 202:
            raise SystemExit(f"the exporter refused a batch: {resp.status} {resp.read()!r}")


def query(prometheus: str, promql: str) -> float:
    """The value of a PromQL query with one result (NaN without one)."""
    payload = json.loads(get(f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"))
    result = payload["data"]["result"]
    return float(result[0]["value"][1]) if result else float("nan")


def own_metrics(prometheus: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus's own /metrics: sample name -> (labels, value) of each sample."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(get(f"{prometheus}/metrics").decode()):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def one(metrics: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float:
    return metrics[name][0][1]


def group_name(labels: dict[str, str]) -> str:
    return labels["rule_group"].rpartition(";")[2]


@contextmanager
def process(command: list[str], log: Path, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_ready(proc, ready, log, timeout=60)
        yield proc
    finally:
        stop_process(proc)


def exporter_command(workdir: Path, agents: int, port: int) -> list[str]:
    config = workdir / "exporter.yml"
    config.write_text(
        f"limits: {{max_agents: {2 * agents + 100}, max_events_per_batch: {BATCH}}}\nexpiry: {{new_series_hold: 0}}\n"
    )
    return [sys.executable, "-m", "agency_telemetry", "serve", "--config", str(config), "--listen", f"127.0.0.1:{port}"]


def write_prometheus_config(workdir: Path, target: str, interval: str, evaluation: str, rules: bool) -> Path:
    config = prometheus_config(target, interval=interval, rule_files=RULE_FILES if rules else ())
    config["global"].update({"scrape_timeout": interval, "evaluation_interval": evaluation})
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def prometheus_command(workdir: Path, path: Path, port: int) -> list[str]:
    return [
        find_binary("prometheus"),
        f"--config.file={path}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--enable-feature=extra-scrape-metrics",  # scrape_body_size_bytes
    ]


def fill(exporter: str, agents: int) -> float:
    """Posts the typical fleet, one body at a time; its events per second."""
    bodies = typical_bodies(agents)
    started = time.perf_counter()
    for body in bodies:
        post(f"{exporter}/v1/events", body)
    return sum(body.count(b"\n") + 1 for body in bodies) / (time.perf_counter() - started)


def keep_sending(exporter: str, agents: int, stop: threading.Event) -> threading.Thread:
    """A thread posting a batch of the event mix every second, so that values keep changing."""
    mix = EventMix(agents)
    bodies = [ndjson(mix.events(BATCH)) for _ in range(10)]

    def run() -> None:
        for body in itertools.cycle(bodies):
            if stop.wait(1.0):
                return
            post(f"{exporter}/v1/events", body)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def observe(agents: int, duration: float, interval: str, evaluation: str) -> Observed:
    """One exporter holding ``agents`` typical agents, one Prometheus scraping it for ``duration`` seconds."""
    with tempfile.TemporaryDirectory(prefix="agency-sizing-") as tmp:
        workdir = Path(tmp)
        exporter_port, prometheus_port = free_port(), free_port()
        exporter, prometheus = f"http://127.0.0.1:{exporter_port}", f"http://127.0.0.1:{prometheus_port}"
        command = exporter_command(workdir, agents, exporter_port)
        with process(command, workdir / "exporter.log", f"{exporter}/readyz") as exporter_proc:
            fill_rate = fill(exporter, agents)
            target = f"127.0.0.1:{exporter_port}"
            config = write_prometheus_config(workdir, target, interval, evaluation, rules=False)
            command = prometheus_command(workdir, config, prometheus_port)
            stop = threading.Event()
            sender = keep_sending(exporter, agents, stop)
            try:
                with process(command, workdir / "prometheus.log", f"{prometheus}/-/ready") as prometheus_proc:
                    pids = (prometheus_proc.pid, exporter_proc.pid)
                    scrape_only_cpu = watch(prometheus, duration / 3, pids)[1][0]
                    write_prometheus_config(workdir, target, interval, evaluation, rules=True)
                    prometheus_proc.send_signal(signal.SIGHUP)  # reloads the configuration: the rules start
                    wait_for_rules(prometheus)
                    groups, cpu = watch(prometheus, 2 * duration / 3, pids)
                    return read_figures(
                        prometheus,
                        agents=agents,
                        duration=duration,
                        fill_rate=fill_rate,
                        exporter_pid=exporter_proc.pid,
                        groups=groups,
                        cpu=cpu,
                        scrape_only_cpu=scrape_only_cpu,
                    )
            finally:
                stop.set()
                sender.join(timeout=70)


def wait_for_rules(prometheus: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not json.loads(get(f"{prometheus}/api/v1/rules"))["data"]["groups"]:
        if time.monotonic() > deadline:
            raise SystemExit(f"Prometheus loaded no rules within {timeout} s")
        time.sleep(0.5)


def watch(prometheus: str, duration: float, pids: tuple[int, ...]) -> tuple[dict[str, float], list[float]]:
    """Waits ``duration`` seconds. Returns each rule group's median last duration over the second
    half, and the CPU seconds per second each of ``pids`` used in it."""
    started = time.monotonic()
    readings: dict[str, list[float]] = {}
    cpu: tuple[float, list[float]] | None = None
    while (elapsed := time.monotonic() - started) < duration:
        time.sleep(min(3.0, duration - elapsed))
        if time.monotonic() - started >= duration / 2:
            cpu = cpu or (time.monotonic(), [cpu_seconds(pid) for pid in pids])
            for labels, value in own_metrics(prometheus).get("prometheus_rule_group_last_duration_seconds", []):
                readings.setdefault(group_name(labels), []).append(value)
    assert cpu is not None
    since, before = cpu
    used = [(cpu_seconds(pid) - spent) / (time.monotonic() - since) for pid, spent in zip(pids, before, strict=True)]
    return {group: statistics.median(values) for group, values in readings.items()}, used


def read_figures(
    prometheus: str,
    *,
    agents: int,
    duration: float,
    fill_rate: float,
    exporter_pid: int,
    groups: dict[str, float],
    cpu: list[float],
    scrape_only_cpu: float,
) -> Observed:
    metrics = own_metrics(prometheus)
    job = f'{{job="{JOB}"}}'
    half = f"{max(2, int(duration / 3))}s"  # the second half of the run with rules
    render = (
        f"sum(increase(agency_exporter_scrape_duration_seconds_sum{job}[{half}])) / "
        f"sum(increase(agency_exporter_scrape_duration_seconds_count{job}[{half}]))"
    )
    return Observed(
        agents=agents,
        fill_rate=fill_rate,
        exporter_rss=status_bytes("VmRSS", exporter_pid),
        head_series=int(one(metrics, "prometheus_tsdb_head_series")),
        recorded_series=int(query(prometheus, 'count({__name__=~".+:.+"})')),
        rss=int(one(metrics, "process_resident_memory_bytes")),
        heap=int(one(metrics, "go_memstats_heap_inuse_bytes")),
        scrape_seconds=query(prometheus, f"quantile_over_time(0.5, scrape_duration_seconds{job}[{half}])"),
        scraped=int(query(prometheus, f"scrape_samples_scraped{job}")),
        body_bytes=int(query(prometheus, f"scrape_body_size_bytes{job}")),
        render_seconds=query(prometheus, render),
        rule_groups=groups,
        missed=int(sum(value for _, value in metrics.get("prometheus_rule_group_iterations_missed_total", []))),
        scrapes=int(query(prometheus, f"sum_over_time(up{job}[{int(duration) + 10}s])")),
        prometheus_cpu=cpu[0],
        scrape_only_cpu=scrape_only_cpu,
        exporter_cpu=cpu[1],
    )


def prometheus_header(duration: float, interval: str, evaluation: str) -> list[str]:
    version = subprocess.run([find_binary("prometheus"), "--version"], capture_output=True, text=True, check=False)
    return [
        f"method:  prometheus: {version.stdout.splitlines()[0] if version.stdout else 'prometheus'}, one per fleet "
        f"size, a scrape every {interval} (timeout {interval}) for {duration:.0f} s: a third without rules, then "
        f"{', '.join(p.name for p in RULE_FILES)} evaluated every {evaluation};",
        "         scraping one exporter holding a typical fleet (first filled over HTTP: fill events/s, then a batch "
        "of 1,000 mixed events a second); read at the end: prometheus_tsdb_head_series,",
        "         process_resident_memory_bytes, go_memstats_heap_inuse_bytes; scrape = median "
        "scrape_duration_seconds, render = the exporter's own scrape_duration mean, CPU = cores used (/proc),",
        "         all over the second half of the run with rules (CPU no rules: of the run before them); scrapes = "
        "successful ones",
        f"{'prometheus agents':<19}{'scrapes':>8}{'scraped':>10}{'body MB':>9}{'scrape ms':>11}{'render ms':>11}"
        f"{'head series':>13}{'recorded':>10}{'RSS MB':>9}{'heap MB':>9}{'B/series':>10}{'exporter MB':>13}"
        f"{'fill events/s':>15}{'CPU':>7}{'CPU no rules':>14}{'CPU exporter':>14}",
    ]


def prometheus_row(seen: Observed) -> str:
    return (
        f"prometheus {seen.agents:>7,}{seen.scrapes:>9}{seen.scraped:>10,}{seen.body_bytes / MB:>9.1f}"
        f"{seen.scrape_seconds * 1000:>11.0f}{seen.render_seconds * 1000:>11.0f}{seen.head_series:>13,}"
        f"{seen.recorded_series:>10,}{seen.rss / MB:>9.0f}{seen.heap / MB:>9.0f}"
        f"{seen.rss / seen.head_series:>10,.0f}{seen.exporter_rss / MB:>13.0f}{seen.fill_rate:>15,.0f}"
        f"{seen.prometheus_cpu:>7.2f}{seen.scrape_only_cpu:>14.2f}{seen.exporter_cpu:>14.2f}"
    )


def prometheus_summary(observed: list[Observed], evaluation: float) -> list[str]:
    rows = []
    if len(observed) > 1:
        small, big = observed[0], observed[-1]
        slope = (big.rss - small.rss) / (big.head_series - small.head_series)
        heap = (big.heap - small.heap) / (big.head_series - small.head_series)
        rows.append(
            f"prometheus from {small.agents:,} to {big.agents:,} agents: {slope:,.0f} B of RSS ({heap:,.0f} B of heap) "
            "per added head series"
        )
    return rows + rule_rows(observed, evaluation)


def rule_rows(observed: list[Observed], evaluation: float) -> list[str]:
    groups = sorted({group for seen in observed for group in seen.rule_groups})
    sizes = "".join(f"{f'{seen.agents:,} agents':>15}" for seen in observed)
    rows = [f"{'rules   group (last duration, ms, median)':<48}{sizes}"]
    for group in groups:
        cells = "".join(f"{seen.rule_groups.get(group, float('nan')) * 1000:>15.1f}" for seen in observed)
        rows.append(f"rules   {group:<40}{cells}")
    totals = [sum(seen.rule_groups.values()) for seen in observed]
    cpu = [(seen.prometheus_cpu - seen.scrape_only_cpu) * evaluation for seen in observed]
    rows.append(f"rules   {'sum of all groups':<40}" + "".join(f"{total * 1000:>15.1f}" for total in totals))
    per_agent = "".join(f"{total * 1e6 / seen.agents:>15.1f}" for total, seen in zip(totals, observed, strict=True))
    rows.append(f"rules   {'sum per agent (µs)':<40}{per_agent}")
    rows.append(f"rules   {'CPU ms per evaluation (with - without)':<40}" + "".join(f"{c * 1000:>15.0f}" for c in cpu))
    rows.append(f"rules   {'iterations missed':<40}" + "".join(f"{seen.missed:>15}" for seen in observed))
    if len(observed) > 1:
        small, big = observed[0], observed[-1]
        factor = big.agents / small.agents
        rows.append(
            f"rules   from {small.agents:,} to {big.agents:,} agents ({factor:g}x): the sum of durations grew "
            f"{totals[-1] / totals[0]:.2f}x ({totals[-1] / totals[0] / factor:.2f} of linear), the CPU per evaluation "
            f"{cpu[-1] / cpu[0]:.2f}x ({cpu[-1] / cpu[0] / factor:.2f} of linear)"
        )
    return rows


# --- main --------------------------------------------------------------------------------


def sizes_arg(text: str) -> tuple[int, ...]:
    return tuple(int(n) for n in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small fleets and a short Prometheus run (~1 min)")
    parser.add_argument("--replica-sizes", type=sizes_arg, help="fleet sizes of 2. (1000,5000,10000,20000)")
    parser.add_argument("--prometheus-sizes", type=sizes_arg, help="fleet sizes of 3. (1000,5000,10000)")
    parser.add_argument("--duration", type=float, help="seconds Prometheus scrapes each fleet (150)")
    parser.add_argument("--interval", type=float, help="Prometheus scrape interval and timeout, seconds (5)")
    parser.add_argument("--evaluation", type=float, help="Prometheus rule evaluation interval, seconds (30)")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    args.owners = defaults["owners"]
    args.replica_sizes = args.replica_sizes or defaults["replica"]
    args.prometheus_sizes = args.prometheus_sizes or defaults["prometheus"]
    args.duration = args.duration or defaults["duration"]
    args.interval = args.interval or defaults["interval"]
    args.evaluation = args.evaluation or defaults["evaluation"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    print("\n".join([*machine_lines(), f"date:    {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"]), flush=True)
    print("\n".join(series_rows(count_series(args.owners))), flush=True)
    print("\n".join(replica_rows(args.replica_sizes, args.quick)), flush=True)
    interval, evaluation = f"{args.interval:g}s", f"{args.evaluation:g}s"
    print("\n".join(prometheus_header(args.duration, interval, evaluation)), flush=True)
    observed = []
    for agents in args.prometheus_sizes:
        observed.append(observe(agents, args.duration, interval, evaluation))
        print(prometheus_row(observed[-1]), flush=True)
    print("\n".join(prometheus_summary(observed, args.evaluation)), flush=True)
    print(f"took {time.perf_counter() - started:,.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
