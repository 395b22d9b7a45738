"""Agency Telemetry exporter against the baseline a user would build with aiohttp + prometheus_client.

What is measured, in one run, side by side:

1. Ingest over HTTP: NDJSON batches of 1,000 events (mostly task_started / task_completed /
   task_failed / agent_heartbeat, some consensus / coordination / business / decision / queue
   events and a few alerts, from the demo simulator's generators; quantities as bare numbers: ms,
   bytes, 0..1; see workload.py).
   Each server runs in its own process on 127.0.0.1 (a free port from binding port 0); the client
   in this process posts pre-built bodies over keep-alive connections of one aiohttp
   ClientSession, with 1 sender and with several concurrent senders. Ours is
   ``agency_telemetry.routes.create_app`` with limits raised; the baseline (baseline.py) is an
   aiohttp app that ``json.loads`` each line and updates prometheus_client Counter / Gauge /
   Histogram / Summary children of the same families as our catalogue, cached per agent /
   council / queue so ``.labels()`` is not called per event. The baseline validates nothing
   beyond JSON parsing and applies events one by one (not all-or-nothing, no idempotency ids, no
   limits).
2. The same ingest in-process (decode + apply, no HTTP), to show what HTTP costs.
3. /metrics render at each fleet size (default 1k and 10k agents), in-process: our Store is filled
   through EventDecoder + Store.apply with every series of the catalogue for every agent (plus
   councils, queues, alerts, workflow); the baseline registry gets the same events, so it holds
   the same label sets and values (checked on a small fleet by parsing both expositions). Timed:
   ``Exposition.render(False)``, ``render(True)`` (OpenMetrics), text + ``gzip.compress(level=1)``
   against ``generate_latest`` / the OpenMetrics ``generate_latest`` of prometheus_client
   (``_created`` series disabled so both expose the same series).
   Ingest over HTTP also reports events per CPU second of the server process (/proc): what one
   core of it takes, whatever the client costs.
4. Ingest latency while /metrics is scraped: each server in its own process holds the largest
   fleet of 3.; one client posts 100-event batches back to back, first alone, then while another
   process scrapes /metrics (gzip accepted, as Prometheus does) back to back; p50, p99 and max.
5. Memory per live series, memory under agent churn, and a scaling table at 100 to 50k agents:
   see scale.py, which this script runs last.

Method: every figure is the median of several runs (after one untimed warm-up, except for the
slow renders of big fleets); rates are events per second of wall-clock time. Runs alternate
between ours and the baseline, and the ratio is the median over rounds of baseline time / our
time for the two runs next to each other, because a shared VM's speed drifts by up to 2x within
minutes; > 1 means ours is faster. The in-process ingest keeps both sides' state out of the
garbage collector (``gc.freeze``), as each would be alone in its own process.

    .venv/bin/python -m benchmarks.bench_exporter [--quick] [--agents 1000,10000] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import gzip
import itertools
import math
import multiprocessing
import pstats
import re
import socket
import sys
import time
import urllib.request
from dataclasses import dataclass
from functools import partial
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_openmetrics
from prometheus_client.parser import text_string_to_metric_families

from agency_telemetry.cli import new_event_loop
from agency_telemetry.routes import create_app

from benchmarks import scale
from benchmarks.baseline import BaselineMetrics, baseline_app, baseline_registry
from benchmarks.ours import Ours, config_for
from benchmarks.timing import (
    WARMUP_UP_TO,
    Result,
    Times,
    cpu_seconds,
    interleaved,
    machine_lines,
    sample_lines,
    size_name,
)
from benchmarks.workload import (
    BATCH,
    DISTINCT_BODIES,
    INGEST_AGENTS,
    EventMix,
    Workload,
    apply_all,
    build_workload,
    chunks,
    fleet_events,
    ndjson,
)

NDJSON = {"Content-Type": "application/x-ndjson"}
RESERVED_PORTS = (9090, 9093, 9094)


@dataclass(frozen=True)
class Settings:
    ingest_agents: int  # fleet size of the ingest mix
    requests: int  # requests per timed run
    distinct_bodies: int  # pre-built bodies, cycled
    ingest_runs: int
    senders: tuple[int, ...]
    agents: tuple[int, ...]  # fleet sizes for /metrics
    latency_seconds: float  # how long ingest latency is measured, without and with scrapes
    quick: bool  # small sizes everywhere, for the smoke test

    def render_runs(self, agents: int) -> int:
        return 5 if agents <= WARMUP_UP_TO else 3


# --- servers in their own processes ------------------------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in RESERVED_PORTS:
            return port


def serve(side: str, port: int, agents: int) -> None:
    """Entry point of a server process (spawned, so nothing is inherited from the benchmark)."""
    config = config_for(agents)
    app = create_app(config) if side == "ours" else baseline_app(config)
    # Both on the event loop the exporter runs on (uvloop where installed), so the loop's own
    # cost is the same on both sides.
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=new_event_loop())


class Server:
    """A server process for the duration of a ``with`` block."""

    def __init__(self, side: str, agents: int) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        context = multiprocessing.get_context("spawn")
        self.process = context.Process(target=serve, args=(side, self.port, agents), daemon=True)

    def __enter__(self) -> Server:
        self.process.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.is_alive():
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=1):
                    return self
            except OSError:
                time.sleep(0.05)
        self.__exit__()
        raise RuntimeError(f"server on {self.url} did not start")

    @property
    def pid(self) -> int:
        assert self.process.pid is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# --- ingest ------------------------------------------------------------------------------


def warmup_bodies(bodies: list[bytes], senders: int) -> list[bytes]:
    return bodies[: max(senders * 2, 4)]


async def post_all(session: aiohttp.ClientSession, url: str, bodies: list[bytes], senders: int) -> float:
    """Seconds to post every body, ``senders`` requests in flight at a time."""
    pending = iter(bodies)

    async def sender() -> None:
        for body in pending:
            async with session.post(url, data=body, headers=NDJSON) as response:
                if response.status != 202:
                    raise RuntimeError(f"{url}: {response.status} {await response.text()}")
                await response.read()

    started = time.perf_counter()
    await asyncio.gather(*(sender() for _ in range(senders)))
    return time.perf_counter() - started


async def ingest_over_http(
    servers: dict[str, Server], workload: Workload, settings: Settings
) -> tuple[list[Result], dict[str, float]]:
    """One result per sender count, and the tasks_total sum each server exposes afterwards."""
    urls = {side: server.url for side, server in servers.items()}
    results = []
    bodies = workload.run_bodies(settings.requests)
    connector = aiohttp.TCPConnector(limit=2 * max(settings.senders))
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in urls.values():
            await post_all(session, f"{url}/v1/events", workload.warmup, 1)
        for senders in settings.senders:
            times: Times = {side: [] for side in urls}
            cpu: Times = {side: [] for side in urls}
            for url in urls.values():
                await post_all(session, f"{url}/v1/events", warmup_bodies(bodies, senders), senders)
            for _ in range(settings.ingest_runs):
                for side, url in urls.items():
                    cpu_before = cpu_seconds(servers[side].pid)
                    times[side].append(await post_all(session, f"{url}/v1/events", bodies, senders))
                    cpu[side].append(cpu_seconds(servers[side].pid) - cpu_before)
            label = f"ingest HTTP (NDJSON, {BATCH} events/request, {senders} sender{'s' * (senders > 1)})"
            results.append(Result(label, times, dict.fromkeys(urls, len(bodies) * BATCH), cpu))
        tasks = {}
        for side, url in urls.items():
            async with session.get(f"{url}/metrics") as response:
                tasks[side] = sum_samples(await response.text(), "agency_agent_tasks_total")
    return results, tasks


# --- ingest latency while /metrics is scraped ---------------------------------------------

LATENCY_BATCH = 100  # events per request: what an SDK flushes every second or so


def scrape_forever(url: str, stop: Any) -> None:
    """A scraper process: GET /metrics back to back, gzip accepted as Prometheus does."""
    while not stop.is_set():
        request = urllib.request.Request(f"{url}/metrics", headers={"Accept-Encoding": "gzip"})
        with urllib.request.urlopen(request, timeout=120) as response:
            response.read()


async def post_latencies(session: aiohttp.ClientSession, url: str, bodies: list[bytes], seconds: float) -> list[float]:
    """Seconds each small ingest request took, posted one after another for ``seconds``."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    for body in itertools.cycle(bodies):
        if time.perf_counter() > deadline:
            return latencies
        started = time.perf_counter()
        async with session.post(f"{url}/v1/events", data=body, headers=NDJSON) as response:
            await response.read()
        latencies.append(time.perf_counter() - started)
    raise AssertionError("unreachable")


async def latencies_with_and_without_scrapes(url: str, agents: int, seconds: float) -> dict[str, list[float]]:
    mix = EventMix(agents)
    bodies = [ndjson(mix.events(LATENCY_BATCH)) for _ in range(20)]
    async with aiohttp.ClientSession() as session:
        for body in chunks(fleet_events(agents), 10_000):
            async with session.post(f"{url}/v1/events", data=body, headers=NDJSON) as response:
                assert response.status == 202, await response.text()
        quiet = await post_latencies(session, url, bodies, seconds)
        context = multiprocessing.get_context("spawn")
        stop = context.Event()
        scraper = context.Process(target=scrape_forever, args=(url, stop), daemon=True)
        scraper.start()
        await asyncio.sleep(1)  # the first scrape is under way
        scraped = await post_latencies(session, url, bodies, seconds)
        stop.set()
        scraper.join(120)
    return {"quiet": quiet, "scraped": scraped}


def latency_rows(agents: int, seconds: float) -> list[str]:
    """p50 / p99 / max of ingest requests with no scrape, and with scrapes running back to back."""
    measured = {}
    for side in ("ours", "baseline"):
        with Server(side, agents) as server:
            measured[side] = asyncio.run(latencies_with_and_without_scrapes(server.url, agents, seconds))

    def cell(side: str, when: str) -> str:
        values = sorted(measured[side][when])
        p50, p99 = values[len(values) // 2], values[min(len(values) - 1, int(len(values) * 0.99))]
        return f"{side} p50 {p50 * 1000:7.1f} p99 {p99 * 1000:7.1f} max {values[-1] * 1000:7.1f} ms"

    label = f"ingest latency, {LATENCY_BATCH} events/request, {size_name(agents)} agents"
    return [
        f"{label + ', no scrape':<54} {cell('ours', 'quiet')}   {cell('baseline', 'quiet')}",
        f"{label + ', scraped':<54} {cell('ours', 'scraped')}   {cell('baseline', 'scraped')}",
    ]


def expected_tasks(workload: Workload, settings: Settings) -> int:
    bodies = workload.run_bodies(settings.requests)
    warmups = sum(workload.tasks_in(warmup_bodies(bodies, senders)) for senders in settings.senders)
    runs = settings.ingest_runs * len(settings.senders)
    return workload.tasks_in(workload.warmup) + warmups + runs * workload.tasks_in(bodies)


def sum_samples(text: str, name: str) -> float:
    pattern = re.compile(rf"^{name}{{[^}}]*}} (\S+)$", re.MULTILINE)
    return sum(float(value) for value in pattern.findall(text))


def in_process(workload: Workload, settings: Settings) -> Result:
    """Decode + apply without HTTP. Both sides' state is frozen out of the GC, as each would live alone."""
    config = config_for(settings.ingest_agents)
    appliers = {"ours": Ours(config).apply_ndjson, "baseline": baseline_registry(config)[1].apply_ndjson}
    bodies = workload.run_bodies(settings.requests)
    for apply in appliers.values():
        for body in workload.warmup:
            apply(body)
    gc.collect()
    gc.freeze()
    try:
        times = interleaved(
            {side: partial(apply_all, apply, bodies) for side, apply in appliers.items()}, settings.ingest_runs
        )
    finally:
        gc.unfreeze()
    return Result("ingest in-process (decode + apply, no HTTP)", times, dict.fromkeys(appliers, len(bodies) * BATCH))


# --- /metrics ----------------------------------------------------------------------------


def populate(agents: int) -> tuple[Ours, CollectorRegistry, BaselineMetrics]:
    """Both sides fed the same events: ours through EventDecoder + Store.apply, the baseline directly."""
    config = config_for(agents)
    events = fleet_events(agents)
    ours = Ours(config)
    for body in chunks(events, 10_000):
        ours.apply_ndjson(body)
    registry, baseline = baseline_registry(config)
    baseline.apply(events)
    return ours, registry, baseline


def render_results(agents: int, runs: int) -> list[Result]:
    ours, registry, _ = populate(agents)
    render = ours.exposition.render
    candidates = {
        "text": (lambda: render(False), lambda: generate_latest(registry)),
        "OpenMetrics": (lambda: render(True), lambda: generate_latest_openmetrics(registry)),
        "text+gzip(1)": (
            lambda: gzip.compress(render(False), compresslevel=1),
            lambda: gzip.compress(generate_latest(registry), compresslevel=1),
        ),
    }
    lines = {"ours": sample_lines(render(False)), "baseline": sample_lines(generate_latest(registry))}
    return [
        Result(
            f"/metrics {kind:<12} {size_name(agents):>4} agents ({lines['ours']:,} lines)",
            interleaved({"ours": mine, "baseline": theirs}, runs, warmup=agents <= WARMUP_UP_TO),
            lines,
        )
        for kind, (mine, theirs) in candidates.items()
    ]


# --- checks ------------------------------------------------------------------------------


def exposed(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the catalogue's families, without the exporter's own and without wall-clock times."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.startswith("agency_exporter_") and "last_seen" not in sample.name
    }


def same_series_check(workload: Workload) -> tuple[int, list[str]]:
    """Feeds a small fleet and a few ingest batches to both; returns the sample count and differences."""
    ours, registry, baseline = populate(40)
    for body in workload.warmup[-3:] + workload.bodies[:2]:
        ours.apply_ndjson(body)
        baseline.apply_ndjson(body)
    mine, theirs = exposed(ours.exposition.render().decode()), exposed(generate_latest(registry).decode())
    problems = [f"only in ours: {key}" for key in mine.keys() - theirs.keys()]
    problems += [f"only in baseline: {key}" for key in theirs.keys() - mine.keys()]
    problems += [
        f"{key}: ours {mine[key]} baseline {theirs[key]}"
        for key in mine.keys() & theirs.keys()
        if not math.isclose(mine[key], theirs[key], rel_tol=1e-9, abs_tol=1e-12)
    ]
    return len(mine), problems


# --- report ------------------------------------------------------------------------------


def rate_row(result: Result) -> str:
    def cell(side: str) -> str:
        amount, times = result.amount[side], result.times[side]
        spread = f"{amount / max(times) / 1000:,.0f}-{amount / min(times) / 1000:,.0f}k"
        return f"{side} {result.rate(side):>10,.0f} events/s ({spread:>11})"

    row = f"{result.label:<54} {cell('ours')}   {cell('baseline')}   ratio {result.ratio():6.2f}x"
    if result.cpu is None:
        return row
    ours, baseline = result.cpu_rate("ours"), result.cpu_rate("baseline")
    per_core = f"{'  per server CPU second (one core)':<54} ours {ours:>10,.0f} events/s"
    return f"{row}\n{per_core}{'':<14}   baseline {baseline:>10,.0f} events/s{'':<14}   ratio {ours / baseline:6.2f}x"


def render_row(result: Result) -> str:
    def cell(side: str) -> str:
        median = result.median(side)
        return f"{side} {median * 1000:>10,.2f} ms ({median * 1e6 / result.amount[side]:5.2f} µs/line)"

    return f"{result.label:<54} {cell('ours')}      {cell('baseline')}      ratio {result.ratio():6.2f}x"


def header(settings: Settings) -> list[str]:
    return [
        *machine_lines(),
        f"method:  ingest: {settings.requests} requests x {BATCH} events per run ({settings.distinct_bodies} "
        f"distinct pre-built NDJSON bodies, {settings.ingest_agents} agents), median (min-max) of "
        f"{settings.ingest_runs} runs after a warm-up, runs alternating between ours and baseline;",
        "         servers in their own processes on 127.0.0.1 (both on the same event loop), "
        "client: one keep-alive aiohttp session in this process",
        f"         /metrics: in-process, both sides fed the same events, runs alternating, median of 5 runs after a "
        f"warm-up (<= {WARMUP_UP_TO:,} agents) or of 3 runs (more)",
        "         baseline: aiohttp + prometheus_client, json.loads per line, children cached per owner; no validation "
        "beyond JSON parsing, not all-or-nothing, no idempotency, no limits; _created series disabled",
        "         ratio = median over rounds of baseline time / our time for runs next to each other (this VM's speed "
        "drifts), so > 1 means ours is faster",
    ]


def profile_ours(workload: Workload, settings: Settings) -> None:
    ours = Ours(config_for(settings.ingest_agents))
    for body in workload.warmup:
        ours.apply_ndjson(body)
    profiler = cProfile.Profile()
    profiler.enable()
    for body in workload.run_bodies(settings.requests):
        ours.apply_ndjson(body)
    profiler.disable()
    print("\nprofile of our in-process ingest (decode + apply), top 15 by own time:")
    pstats.Stats(profiler, stream=sys.stdout).sort_stats("tottime").print_stats(15)


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> tuple[Settings, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (< 20 s)")
    parser.add_argument("--agents", help="fleet sizes for /metrics, comma-separated (default 1000,10000)")
    parser.add_argument("--senders", default="1,4", help="concurrent ingest senders to try (default 1,4)")
    parser.add_argument("--profile", action="store_true", help="also cProfile our in-process ingest")
    args = parser.parse_args(argv)
    agents = args.agents or ("200" if args.quick else "1000,10000")
    settings = Settings(
        ingest_agents=200 if args.quick else INGEST_AGENTS,
        requests=10 if args.quick else 50,
        distinct_bodies=10 if args.quick else DISTINCT_BODIES,
        ingest_runs=2 if args.quick else 7,
        senders=tuple(int(n) for n in args.senders.split(",")),
        agents=tuple(int(n) for n in agents.split(",")),
        latency_seconds=2 if args.quick else 15,
        quick=args.quick,
    )
    return settings, args.profile


def ingest_results(workload: Workload, settings: Settings) -> tuple[list[Result], bool]:
    with Server("ours", settings.ingest_agents) as ours, Server("baseline", settings.ingest_agents) as baseline:
        results, tasks = asyncio.run(ingest_over_http({"ours": ours, "baseline": baseline}, workload, settings))
    expected = expected_tasks(workload, settings)
    print(
        f"check:   agency_agent_tasks_total summed after HTTP ingest: ours {tasks['ours']:,.0f}, "
        f"baseline {tasks['baseline']:,.0f}, finished tasks sent {expected:,}",
        flush=True,
    )
    return results, all(value == expected for value in tasks.values())


def main(argv: list[str] | None = None) -> int:
    settings, profile = parse_args(argv)
    print("\n".join(header(settings)), flush=True)
    workload = build_workload(settings.ingest_agents, settings.distinct_bodies)
    samples, problems = same_series_check(workload)
    print(f"check:   40 agents + 5 ingest batches: {samples:,} samples, {len(problems)} differences ours/baseline")
    print("".join(f"         {problem}\n" for problem in problems[:10]), end="", flush=True)
    http, tasks_ok = ingest_results(workload, settings)
    print()
    for result in [*http, in_process(workload, settings)]:
        print(rate_row(result), flush=True)
    for agents in settings.agents:
        for result in render_results(agents, settings.render_runs(agents)):
            print(render_row(result), flush=True)
    for row in latency_rows(max(settings.agents), settings.latency_seconds):
        print(row, flush=True)
    print()
    print("\n".join(scale.all_rows(settings.quick)), flush=True)
    if profile:
        profile_ours(workload, settings)
    return 0 if tasks_ok and not problems else 1


if __name__ == "__main__":
    sys.exit(main())
