"""Memory per live series, memory under agent churn, and how costs grow with the fleet.

The workload (workload.py) and the baseline (baseline.py: aiohttp + prometheus_client) of
bench_exporter.py:

1. Memory: RSS per live series with every series of the catalogue populated for every agent
   (``workload.fleet_events``: 10,000 agents by default). Each side runs in a fresh
   spawned process, so imports and other measurements do not pollute it. The NDJSON bodies
   (1,000 events each) are built here and handed to that process, which reads its RSS
   (/proc/self/statm, after ``gc.collect()``) once it holds the imports, the bodies and an empty
   store / registry, then again after applying every body (ours: ``EventDecoder`` +
   ``Store.apply``; baseline: ``json.loads`` per line + prometheus_client children). Bytes per
   series = RSS delta / sample lines of a text render of the populated state. The fleet's events
   carry no ``id``; a second run gives every event one (32 hex digits, as the client library's
   ``uuid4().hex``) to show what the dedup window costs while the ids are remembered, and after
   an injected clock has passed ``expiry.dedup_window`` and ``Store.expire()`` forgot them.
2. Churn: one process, a store on an injected clock; each of 12 rounds brings 10,000 agents never
   seen before (every name, council, queue, alert and id prefixed with the round), every series
   populated, then the clock moves past ``expiry.agent_ttl`` and ``Store.expire()`` runs. RSS is
   read after each round's fill and after its expiry; the decoder's remembered label values,
   which outlive the agents until there are 100,000 of them, are counted beside.
3. Scaling, at 100, 1k, 10k and 50k agents: in-process ingest of the bench_exporter event mix
   (decode + apply into a store already holding that fleet), /metrics render (text), and the RSS
   per series of 1. The baseline is left out above ``--baseline-up-to`` (10,000) because it takes
   minutes there; the row says so and estimates how long it would take.

Timings are medians of several runs taken in rounds: every fleet size and side is held at once
and each round times each of them once, so that the VM's drift hits them alike (bench_exporter.py
alternates ours and the baseline for the same reason); what is held is kept out of the garbage
collector meanwhile (``gc.freeze``). The memory and churn processes run first, two at a time,
before anything is timed. Every ``*_rows`` function returns printable rows, its method lines
first; ``--quick`` (1,000 agents, 3 churn rounds, sizes 100 and 1k) takes ~15 s.

    .venv/bin/python -m benchmarks.scale [--quick] [--sizes 100,1000,10000,50000] [--memory-agents 10000]
                                         [--churn-rounds 12] [--baseline-up-to 10000]
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache, partial
from multiprocessing import get_context
from typing import Any

from prometheus_client import generate_latest

from agency_telemetry.config import Config
from agency_telemetry.exposition import Exposition
from agency_telemetry.selfmetrics import SelfMetrics
from agency_telemetry.store import Store

from benchmarks.baseline import baseline_registry
from benchmarks.ours import Ours, config_for
from benchmarks.timing import (
    WARMUP_UP_TO,
    in_rounds,
    machine_lines,
    megabytes,
    peak_rss,
    reset_peak_rss,
    rss,
    sample_lines,
    size_name,
)
from benchmarks.workload import BATCH, EventMix, apply_all, chunks, fleet_events, ndjson

WALL_EPOCH = 1.7e9  # wall clock of the injected clock at monotonic 0
# Fields whose values name something; prefixing them makes every agent, council, queue, alert and id new.
RENAMED_FIELDS = (b'"agent":"', b'"council":"', b'"queue":"', b'"alert_id":"', b'"affected_agents":["', b'"id":"')
INGEST_BODIES = 20  # distinct mix bodies of BATCH events per timed ingest run
SIZES = (100, 1000, 10_000, 50_000)
# 12, not 8: the decoder forgets its label values once it holds 100,000, in round 10 of 10k agents (and their
# councils, queues, alerts); the rounds after show whether memory stays flat once it has.
CHURN_ROUNDS = 12
QUICK_SIZES = (100, 1000)


@dataclass
class FakeClock:
    """The store's monotonic clock, moved by hand; its wall clock follows."""

    now: float = 1000.0

    def __call__(self) -> float:
        return self.now

    def wall(self) -> float:
        return WALL_EPOCH + self.now


def clocked_ours(config: Config, clock: FakeClock) -> Ours:
    """``Ours`` with its store on an injected clock."""
    ours = Ours(config)
    ours.store = Store(config, clock=clock, wall_clock=clock.wall)
    ours.exposition = Exposition(ours.store, SelfMetrics(ours.store))
    return ours


def fleet_bodies(agents: int, ids: bool = False) -> list[bytes]:
    """NDJSON bodies of BATCH events giving every agent every series; with an ``id`` on each event if asked."""
    events = fleet_events(agents)
    if ids:
        rng = random.Random(agents)
        events = [{**event, "id": f"{rng.getrandbits(128):032x}"} for event in events]
    return chunks(events, BATCH)


def events_in(bodies: list[bytes]) -> int:
    return sum(body.count(b"\n") + 1 for body in bodies)


def fresh_processes() -> ProcessPoolExecutor:
    """A pool running each call in a newly spawned process of its own (nothing inherited, like
    bench_exporter's servers), two at a time. Only RSS is read there, and nothing is timed meanwhile.

    Not a fork server: its children inherit its heap, whose free space then takes a first part of
    what they allocate unseen by RSS (0.6 MB of the 1.3 MB a 1k-agent store takes, when tried).
    """
    return ProcessPoolExecutor(2, mp_context=get_context("spawn"), max_tasks_per_child=1)


# --- 1. memory per live series -----------------------------------------------------------


def memory_probe(side: str, agents: int, bodies: list[bytes], ids: bool) -> dict[str, Any]:
    """In a fresh process: RSS with an empty store / registry, filled, [ids forgotten,] during and after a render."""
    config = config_for(agents)
    clock = FakeClock()
    store: Store | None = None
    if side == "ours":
        ours = clocked_ours(config, clock)
        apply, store = ours.apply_ndjson, ours.store
        render: Callable[[], bytes] = partial(ours.exposition.render, False)
    else:
        registry, baseline = baseline_registry(config)
        apply, render = baseline.apply_ndjson, partial(generate_latest, registry)
    found: dict[str, Any] = {"empty": rss(), "events": events_in(bodies)}
    for body in bodies:
        apply(body)
    found["populated"] = rss()
    if store is not None and ids:
        found["dedup_ids"] = store.dedup_ids
        clock.now += config.expiry.dedup_window + 1  # well inside agent_ttl: every agent stays
        store.expire()
        assert store.dedup_ids == 0 and len(store.agents) == agents, (store.dedup_ids, len(store.agents))
        found["forgotten"] = rss()
    peak_known = reset_peak_rss()
    text = render()
    if peak_known:
        found["peak"] = peak_rss()
    found["lines"] = sample_lines(text)
    del text
    found["rendered"] = rss()
    return found


ProbeKey = tuple[str, int, bool]  # side, agents, ids
ChurnKey = tuple[int, int]  # agents, rounds
_probes: dict[ProbeKey, dict[str, Any]] = {}  # memory_probe's answers, also used by the scaling table
_churns: dict[ChurnKey, dict[str, Any]] = {}  # churn_probe's answers


def measure_rss(probes: Iterable[ProbeKey] = (), churns: Iterable[ChurnKey] = ()) -> None:
    """Runs every memory and churn probe not run yet, each in a fresh process of its own, two at a time.

    Main runs them all at once before anything is timed; the rows functions run what is missing."""
    missing_probes = [key for key in dict.fromkeys(probes) if key not in _probes]
    missing_churns = [key for key in dict.fromkeys(churns) if key not in _churns]
    if not missing_probes and not missing_churns:
        return
    bodies = cache(fleet_bodies)
    with fresh_processes() as pool:
        # The biggest first, so that the two processes finish close together.
        futures: dict[Any, Future[dict[str, Any]]] = {
            key: pool.submit(churn_probe, key[0], key[1], bodies(key[0], True)) for key in missing_churns
        }
        for key in sorted(missing_probes, key=lambda k: (k[1] * (50 if k[0] == "baseline" else 1), k), reverse=True):
            futures[key] = pool.submit(memory_probe, key[0], key[1], bodies(key[1], key[2]), key[2])
        del bodies
        for key, future in futures.items():
            (_churns if len(key) == 2 else _probes)[key] = future.result()


def probe(side: str, agents: int, ids: bool = False) -> dict[str, Any]:
    measure_rss([(side, agents, ids)])
    return _probes[side, agents, ids]


def memory_keys(agents: int) -> list[ProbeKey]:
    return [("baseline", agents, False), ("ours", agents, False), ("ours", agents, True)]


def per_series(found: dict[str, Any], after: str = "populated") -> float:
    return float(found[after] - found["empty"]) / int(found["lines"])


def memory_rows(quick: bool, agents: int | None = None) -> list[str]:
    agents = agents or (1000 if quick else 10_000)
    measure_rss(memory_keys(agents))
    baseline, ours, with_ids = (_probes[key] for key in memory_keys(agents))
    size, lines, events = size_name(agents), ours["lines"], ours["events"]
    ids = with_ids["dedup_ids"]

    def cell(side: str, found: dict[str, Any], after: str = "populated") -> str:
        delta = found[after] - found["empty"]
        return f"{side} {per_series(found, after):>7,.1f} B/series (+{megabytes(delta):>9})"

    def row(label: str, mine: str, theirs: str = "baseline n/a", ratio: str = "") -> str:
        return f"{f'memory {size:>4} agents, {label}':<62} {mine}   {theirs:<42} {ratio}".rstrip()

    def note(text: str) -> str:
        return f"({text})".ljust(42)

    def peak(side: str, found: dict[str, Any]) -> str:
        if "peak" not in found:
            return f"{side} n/a (no /proc/self/clear_refs)"
        delta = found["peak"] - found["populated"]
        return f"{side} {delta / found['lines']:>7,.1f} B/series (+{megabytes(delta):>9})"

    per_id = ((with_ids["populated"] - with_ids["empty"]) - (ours["populated"] - ours["empty"])) / ids
    verdict = "met" if per_series(ours) < 300 else "NOT met"
    return [
        f"method:  memory: {agents:,} agents, every series of the catalogue ({events:,} events of fleet_events in "
        f"bodies of {BATCH:,});",
        "         each side in a fresh spawned process (two such processes at a time, nothing timed meanwhile);",
        "         RSS (/proc/self/statm, after gc.collect) once it holds the imports, the bodies and an empty store / "
        "registry,",
        "         then after applying every body (ours: EventDecoder + Store.apply; baseline: json.loads + "
        "prometheus_client children); B/series = RSS delta / sample lines",
        "         of a text render (ours: store + its decoder's remembered label values; ~70 of its lines are "
        "agency_exporter_*); no ids: nothing is remembered for dedup;",
        "         'id': every event gets a 32-hex-digit id (as the client does), RSS while the store remembers them, "
        "then after the injected clock passed",
        "         expiry.dedup_window and Store.expire() forgot them (the agents stay, agent_ttl is longer); "
        "B per id = (RSS delta with ids - without) / ids;",
        "         render rows: peak RSS (VmHWM, reset through /proc/self/clear_refs) during one text render above the "
        "filled RSS, and RSS once the render's output is freed",
        row(
            f"no ids, {lines:,} series",
            cell("ours", ours),
            cell("baseline", baseline),
            f"ratio {per_series(baseline) / per_series(ours):5.1f}x",
        ),
        row(
            f"an id per event, {ids:,} ids remembered",
            cell("ours", with_ids),
            note(f"{per_id:,.0f} B per id; baseline: no dedup"),
        ),
        row(
            "an id per event, ids forgotten by expire()",
            cell("ours", with_ids, "forgotten"),
            note("RSS freed for reuse, not returned"),
        ),
        row(
            "no ids, peak during a text render, above filled",
            peak("ours", ours),
            peak("baseline", baseline),
        ),
        row(
            "no ids, after one text render",
            cell("ours", ours, "rendered"),
            cell("baseline", baseline, "rendered"),
            f"ratio {per_series(baseline, 'rendered') / per_series(ours, 'rendered'):5.1f}x",
        ),
        row(
            "RSS before filling",
            f"ours {megabytes(ours['empty']):>7} (imports, bodies, empty)",
            f"baseline {megabytes(baseline['empty']):>7}",
        ),
        f"target:  ours < 300 B per live series at {size} agents: {verdict} ({per_series(ours):,.1f} B/series without "
        f"ids, {per_series(with_ids):,.1f} with {ids:,} ids remembered)",
    ]


# --- 2. churn ----------------------------------------------------------------------------


def renamed(body: bytes, prefix: bytes) -> bytes:
    """The same events for other agents, councils, queues, alerts and ids: every name gets ``prefix``."""
    for name in RENAMED_FIELDS:
        body = body.replace(name, name + prefix)
    return body


def churn_probe(agents: int, rounds: int, bodies: list[bytes]) -> dict[str, Any]:
    """Runs in a fresh process: rounds of new agents, each filled, then expired by moving the clock past agent_ttl."""
    config = config_for(agents)
    clock = FakeClock()
    ours = clocked_ours(config, clock)
    store = ours.store
    known: set[str] = getattr(ours.decoder, "_known_labels", set())  # private: only reported
    found: dict[str, Any] = {"empty": rss(), "rounds": []}
    for index in range(1, rounds + 1):
        prefix = f"r{index}-".encode()
        for body in bodies:
            ours.apply_ndjson(renamed(body, prefix))
        assert len(store.agents) == agents and all(name.startswith(f"r{index}-") for name in store.agents)
        populated = rss()
        live_ids = store.dedup_ids
        clock.now += config.expiry.agent_ttl + 1
        store.expire()
        found["rounds"].append(
            {
                "populated": populated,
                "expired": rss(),
                "ids": live_ids,
                "agents": len(store.agents),
                "alerts": len(store.alerts),
                "known": len(known),
                "known_bytes": sys.getsizeof(known) + sum(map(sys.getsizeof, known)),
            }
        )
    found["expired_agents"] = store.stats.expired["agent"]
    return found


def churn_rows(quick: bool, agents: int | None = None, rounds: int | None = None) -> list[str]:
    agents = agents or (1000 if quick else 10_000)
    rounds = rounds or (3 if quick else CHURN_ROUNDS)
    measure_rss(churns=[(agents, rounds)])
    found = _churns[agents, rounds]
    config = config_for(agents)
    rows = [
        f"method:  churn: {rounds} rounds of {agents:,} agents never seen before, every series populated, an id on "
        "every event; then the injected clock moves past expiry.agent_ttl "
        f"({config.expiry.agent_ttl:,.0f} s) and Store.expire() runs;",
        "         one fresh process (ours only: the baseline has no expiry), RSS after gc.collect; alerts live until "
        f"alert_ttl ({config.expiry.alert_ttl:,.0f} s), the decoder remembers valid label values until it holds "
        "100,000, then starts over",
        "         (its strings and table are what is left of expired agents; size = sys.getsizeof of the set and its "
        "strings)",
    ]
    for index, seen in enumerate(found["rounds"], start=1):
        rows.append(
            f"churn   round {index:>2}: {agents:,} new agents   RSS filled {megabytes(seen['populated']):>9} "
            f"({seen['ids']:>7,} ids remembered)   after expire() {megabytes(seen['expired']):>9} "
            f"({seen['agents']} agents, {seen['alerts']:,} alerts left)   decoder's label values {seen['known']:>7,} "
            f"({megabytes(seen['known_bytes'])})"
        )
    assert found["expired_agents"] == rounds * agents, found["expired_agents"]
    seen = found["rounds"]

    def growth(start: int, key: str) -> str:
        """From round ``start`` (1-based) to the last."""
        before, change = seen[start - 1][key], seen[-1][key] - seen[start - 1][key]
        return f"{'+' if change >= 0 else '-'}{megabytes(abs(change))} ({100 * change / before:+.1f}%)"

    second = min(2, rounds)
    live = seen[0]["populated"] - found["empty"]
    rows.append(
        f"churn   growth from round {second} to round {rounds}: filled {growth(second, 'populated')}, after expire() "
        f"{growth(second, 'expired')}; one round's live state is {megabytes(live)} "
        f"({rounds * agents:,} agents created and expired in all)"
    )
    decoder = f"the decoder's label values took up to {megabytes(max(r['known_bytes'] for r in seen))}"
    restart = next((index for index in range(1, rounds) if seen[index]["known"] < seen[index - 1]["known"]), None)
    if restart is None:
        rows.append(f"churn   {decoder}, and had not started over by round {rounds} (it does at 100,000 values)")
    else:
        rows.append(
            f"churn   {decoder}; from round {restart}, before they started over in round {restart + 1}, to round "
            f"{rounds}: filled {growth(restart, 'populated')}, after expire() {growth(restart, 'expired')}"
        )
    return rows


# --- 3. scaling --------------------------------------------------------------------------

Key = tuple[int, str]  # agents, side
Times = dict[Key, list[float]]  # seconds of each run, run i of every key in the same round


def mix_bodies(agents: int, count: int) -> list[bytes]:
    mix = EventMix(agents)
    return [ndjson(mix.events(BATCH)) for _ in range(count)]


def new_side(side: str, config: Config) -> tuple[Callable[[bytes], int], Callable[[], bytes]]:
    """An empty store (ours) or registry (baseline): its ingest of one NDJSON body and its text render."""
    if side == "ours":
        ours = Ours(config)
        return ours.apply_ndjson, partial(ours.exposition.render, False)
    registry, baseline = baseline_registry(config)
    return baseline.apply_ndjson, partial(generate_latest, registry)


@dataclass
class Scaling:
    sizes: tuple[int, ...]
    keys: list[Key]
    events: dict[int, int]  # fleet size -> events of a fill
    lines: dict[int, int]  # fleet size -> sample lines of our text render
    size: dict[int, int]  # fleet size -> bytes of our text render
    mix_events: int  # events of one timed ingest run
    fill: Times
    render: Times
    ingest: Times

    def per_unit(self, kind: str, key: Key) -> list[float]:
        """µs per event (ingest, fill) or per sample line (render) of each run."""
        unit = {"ingest": self.mix_events, "fill": self.events[key[0]], "render": self.lines[key[0]]}[kind]
        return [seconds * 1e6 / unit for seconds in getattr(self, kind)[key]]

    def median(self, kind: str, key: Key) -> float:
        return statistics.median(self.per_unit(kind, key))

    def growth(self, kind: str, small: int, big: int) -> float:
        """Median over rounds of our per-unit cost at ``big`` / at ``small``, runs of one round being close in time."""
        pairs = zip(self.per_unit(kind, (big, "ours")), self.per_unit(kind, (small, "ours")), strict=False)
        return statistics.median(b / s for b, s in pairs)


def fill_runs(key: Key, quick: bool) -> int:
    agents, side = key
    return 3 if side == "ours" or (agents <= 1000 and not quick) else 1


def render_runs(key: Key, quick: bool) -> int:
    return 5 if key[0] <= WARMUP_UP_TO and not quick else 3


def measure_sizes(
    sizes: tuple[int, ...],
    baseline_up_to: int,
    quick: bool,
    bodies_of: Callable[[int], list[bytes]] = fleet_bodies,
) -> Scaling:
    """Every fleet size and side held at once here, timed in rounds (fills, then renders, then ingest).

    ``bodies_of`` gives the NDJSON bodies filling a fleet of that size (every series by default).

    What is held is kept out of the garbage collector (``gc.freeze``) while anything is timed, so
    that its full collections cost what they would with one side and one size alone in a process,
    as bench_exporter's in-process ingest does."""
    keys = [(agents, side) for agents in sizes for side in ("ours", "baseline")[: 1 + (agents <= baseline_up_to)]]
    configs = {agents: config_for(agents) for agents in sizes}
    bodies = {agents: bodies_of(agents) for agents in sizes}
    held: dict[Key, tuple[Callable[[bytes], int], Callable[[], bytes]]] = {}
    fill: Times = {key: [] for key in keys}
    try:
        for index in range(max(fill_runs(key, quick) for key in keys)):
            for key in keys:
                if index < fill_runs(key, quick):
                    if held.pop(key, None) is not None:
                        gc.unfreeze()  # the side just dropped has reference cycles: let the collector free it
                    gc.collect()
                    gc.freeze()
                    apply, render = new_side(key[1], configs[key[0]])
                    started = time.perf_counter()
                    apply_all(apply, bodies[key[0]])
                    fill[key].append(time.perf_counter() - started)
                    held[key] = apply, render
        events = {agents: events_in(fleet) for agents, fleet in bodies.items()}
        del bodies
        gc.collect()
        gc.freeze()
        texts = {agents: held[agents, "ours"][1]() for agents in sizes}
        lines = {agents: sample_lines(text) for agents, text in texts.items()}
        size = {agents: len(text) for agents, text in texts.items()}
        del texts
        renders: dict[Key, Callable[[], object]] = {key: held[key][1] for key in keys}
        for key in keys:
            if render_runs(key, quick) == 5:
                renders[key]()  # warm-up
        render_times = in_rounds(renders, {key: render_runs(key, quick) for key in keys})
        mixes = {agents: mix_bodies(agents, 5 if quick else INGEST_BODIES) for agents in sizes}
        fns: dict[Key, Callable[[], object]] = {key: partial(apply_all, held[key][0], mixes[key[0]]) for key in keys}
        for fn in fns.values():
            fn()  # warm-up
        gc.collect()
        gc.freeze()
        ingest = in_rounds(fns, dict.fromkeys(keys, 3 if quick else 5))
    finally:
        gc.unfreeze()
    mix_events = len(mixes[sizes[0]]) * BATCH
    return Scaling(sizes, keys, events, lines, size, mix_events, fill, render_times, ingest)


def scaling_keys(sizes: Iterable[int], baseline_up_to: int) -> list[ProbeKey]:
    return [
        (side, agents, False) for agents in sizes for side in ("ours", "baseline")[: 1 + (agents <= baseline_up_to)]
    ]


def scaling_rows(sizes: tuple[int, ...] = SIZES, quick: bool = False, baseline_up_to: int = 10_000) -> list[str]:
    measure_rss(scaling_keys(sizes, baseline_up_to))
    result = measure_sizes(sizes, baseline_up_to, quick)
    renders = "3 runs" if quick else "5 runs after a warm-up (3 runs, no warm-up, above 2,000 agents)"
    rows = [
        "method:  scaling: every size and side filled and held here at once, then timed in rounds (each round times "
        "every size and side once, so drift hits all alike);",
        "         what is held is kept out of the garbage collector (gc.freeze) while timing, so each side and size "
        "costs what it would alone in a process;",
        f"         ingest = the bench_exporter event mix ({5 if quick else INGEST_BODIES} bodies of "
        f"{BATCH:,} events, no ids) decoded + applied in-process into a store already holding the fleet, "
        f"median of {3 if quick else 5} runs after a warm-up;",
        "         first fill = fleet_events applied to an empty store / registry (creates every series; median of 3 "
        f"runs, baseline {'1 run' if quick else 'above 1,000 agents 1 run'}); render = text /metrics, median of "
        f"{renders};",
        "         B/series = RSS delta / series as in the memory rows (fresh process per side and size; coarse for "
        "small fleets, where the delta is a few hundred kB)",
        f"{'scale   agents':<15} {'series':>10}   {'ingest µs/event':>22}   {'first fill µs/event':>22}   "
        f"{'render text ms':>24}   {'render µs/line':>20}   {'RSS B/series':>20}",
        f"{'':<15} {'':>10}   {'ours':>10} {'baseline':>11}   {'ours':>10} {'baseline':>11}   {'ours':>10} "
        f"{'baseline':>13}   {'ours':>8} {'baseline':>11}   {'ours':>8} {'baseline':>11}",
    ]

    def pair(value: Callable[[Key], float], agents: int, width: int, digits: int, base_width: int = 11) -> str:
        theirs = (
            f"{value((agents, 'baseline')):>{base_width},.{digits}f}"
            if (agents, "baseline") in result.keys
            else "skipped".rjust(base_width)
        )
        return f"{value((agents, 'ours')):>{width},.{digits}f} {theirs}"

    def render_ms(key: Key) -> float:
        return statistics.median(result.render[key]) * 1000

    def memory(key: Key) -> float:
        return per_series(probe(key[1], key[0]))

    for agents in sizes:
        rows.append(
            f"scale   {agents:>7,} {result.lines[agents]:>10,}   "
            f"{pair(partial(result.median, 'ingest'), agents, 10, 2)}   "
            f"{pair(partial(result.median, 'fill'), agents, 10, 2)}   {pair(render_ms, agents, 10, 1, 13)}   "
            f"{pair(partial(result.median, 'render'), agents, 8, 2)}   {pair(memory, agents, 8, 1)}"
        )
    skipped = [agents for agents in sizes if (agents, "baseline") not in result.keys]
    if skipped:
        rows.append(
            f"scale   baseline at {', '.join(f'{n:,}' for n in skipped)} agents: {skip_reason(result, skipped)}"
        )
    if len(sizes) > 1:
        # From the smallest fleet of 1,000 agents or more: below, the RSS delta is too small to mean much.
        small, big = next((n for n in sizes[:-1] if n >= 1000), sizes[0]), sizes[-1]
        growth = {kind: result.growth(kind, small, big) for kind in ("ingest", "fill", "render")}
        growth["RSS"] = memory((big, "ours")) / memory((small, "ours"))
        names = {"ingest": "ingest µs/event", "fill": "first fill µs/event", "render": "render µs/line"}
        factors = ", ".join(f"{names.get(kind, 'RSS B/series')} x{factor:.2f}" for kind, factor in growth.items())
        rows.append(
            f"scale   ours, per-unit cost at {big:,} / at {small:,} agents "
            f"({result.lines[big] / result.lines[small]:,.0f}x the series; median over rounds): {factors}"
        )
    return rows


def skip_reason(result: Scaling, skipped: list[int]) -> str:
    measured = [agents for agents in result.sizes if (agents, "baseline") in result.keys]
    if not measured:
        return "skipped (too slow): above --baseline-up-to"
    known = (measured[-1], "baseline")
    factor = sum(skipped) / known[0]
    fill = statistics.median(result.fill[known])
    render = statistics.median(result.render[known])
    estimate = factor * (2 * fill + 4 * render)  # a fill and a render in the memory process, a fill and 3 renders here
    gigabytes = per_series(probe("baseline", known[0])) * factor * result.lines[known[0]] / 2**30
    return (
        f"skipped (too slow): at {known[0]:,} agents it took {fill:,.1f} s to fill and {render:,.1f} s per render "
        f"({render / statistics.median(result.render[known[0], 'ours']):,.0f}x ours), so it would add "
        f"~{estimate / 60:,.0f} min and ~{gigabytes:,.1f} GiB twice (memory process and here); "
        f"--baseline-up-to {max(skipped)} includes it"
    )


# --- main --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke test (< 20 s)")
    parser.add_argument("--sizes", help="fleet sizes of the scaling table (default 100,1000,10000,50000)")
    parser.add_argument("--memory-agents", type=int, help="fleet size of the memory rows (default 10000)")
    parser.add_argument("--churn-rounds", type=int, help=f"rounds of new agents (default {CHURN_ROUNDS})")
    parser.add_argument("--baseline-up-to", type=int, default=10_000, help="largest fleet the baseline runs at")
    return parser.parse_args(argv)


def all_rows(
    quick: bool,
    sizes: tuple[int, ...] | None = None,
    agents: int | None = None,
    rounds: int | None = None,
    baseline_up_to: int = 10_000,
) -> list[str]:
    """Memory, churn and scaling rows, the RSS probes of all three run first, two at a time."""
    started = time.perf_counter()
    sizes = sizes or (QUICK_SIZES if quick else SIZES)
    agents = agents or (1000 if quick else 10_000)
    rounds = rounds or (3 if quick else CHURN_ROUNDS)
    measure_rss([*memory_keys(agents), *scaling_keys(sizes, baseline_up_to)], [(agents, rounds)])
    return [
        f"memory:  every RSS probe run in {time.perf_counter() - started:,.1f} s",
        *memory_rows(quick, agents),
        *churn_rows(quick, agents, rounds),
        *scaling_rows(sizes, quick, baseline_up_to),
    ]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else None
    print("\n".join(machine_lines()), flush=True)
    rows = all_rows(args.quick, sizes, args.memory_agents, args.churn_rounds, args.baseline_up_to)
    print("\n".join(rows), flush=True)
    print(f"took {time.perf_counter() - started:,.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
