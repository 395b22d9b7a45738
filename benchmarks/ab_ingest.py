"""In-process ingest and render cost of two versions of the exporter, side by side in one process.

On a shared VM whose speed drifts by ±30 % within minutes, two benchmark runs a minute apart
cannot tell a 3 % change from noise. This script imports each version's package from its
directory under a name of its own (``at_a``, ``at_b``), builds a store and decoder of each, and
feeds both the same NDJSON bodies of the bench_exporter event mix, alternating batch by batch
(the order flips every round), so the drift hits both alike. Each batch is timed in stages:
decode (+ the fast check pass), Store.apply, SelfMetrics.received (in versions that have it),
and freeing the batch; a ratio is the median over rounds of a's time / b's time, so > 1 means b
is faster. Both stores hold the same fleet, so absolute µs/event run higher than with one store
alone (twice the data competes for the CPU cache); the ratio is the figure to read. A version
against itself reads 0.97-1.04 here, so smaller differences are noise.

Then, with ``--render-agents N`` (default 10,000; 0 skips it), a fresh store of each version is
filled with the same fleet of N agents (every series of the catalogue for each) and
``Exposition.render`` of the Prometheus text format is timed, alternating between the versions.

    git archive HEAD~1 exporter | tar -x -C /tmp/before
    .venv/bin/python -m benchmarks.ab_ingest /tmp/before/exporter/agency_telemetry exporter/agency_telemetry

The decoder is ``EventDecoder`` of the package's ``decoder`` module, or of its ``events`` module
in versions before that one existed.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks.ours import config_for
from benchmarks.workload import BATCH, INGEST_AGENTS, build_workload, chunks, fleet_events

STAGES = ("decode", "apply", "received", "free")
NDJSON = "application/x-ndjson"


@dataclass
class Side:
    decoder: Any
    store: Any
    self_metrics: Any
    exposition: Any

    def timed(self, body: bytes, into: dict[str, float]) -> None:
        clock = time.perf_counter
        started = clock()
        events = self.decoder.decode(body, NDJSON)
        decoded = clock()
        self.store.apply(events)
        applied = clock()
        if hasattr(self.self_metrics, "received"):  # versions before the store counted types itself
            self.self_metrics.received(events)
        received = clock()
        del events
        freed = clock()
        into["decode"] += decoded - started
        into["apply"] += applied - decoded
        into["received"] += received - applied
        into["free"] += freed - received


def import_package(package_dir: str, name: str) -> ModuleType:
    """The package in ``package_dir`` imported as ``name``: its relative imports find its own modules."""
    init = Path(package_dir) / "__init__.py"
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(init.parent)])
    if spec is None or spec.loader is None:
        raise SystemExit(f"{package_dir}: not a Python package")
    package = importlib.util.module_from_spec(spec)
    sys.modules[name] = package
    spec.loader.exec_module(package)
    return package


def decoder_class(name: str) -> Any:
    """``EventDecoder`` of package ``name``: in its ``decoder`` module, or in ``events`` in older versions."""
    for module in ("decoder", "events"):
        try:
            found = importlib.import_module(f"{name}.{module}")
        except ModuleNotFoundError as exc:
            if exc.name != f"{name}.{module}":
                raise
            continue
        if hasattr(found, "EventDecoder"):
            return found.EventDecoder
    raise SystemExit(f"no EventDecoder in {name}.decoder or {name}.events")


def load(name: str, agents: int = INGEST_AGENTS) -> Side:
    """A store, decoder and exposition of package ``name`` (imported already), like the benchmark's."""
    config = config_for(agents)
    store = importlib.import_module(f"{name}.store").Store(config)
    limits = config.limits
    decoder = decoder_class(name)(config.agent_types, limits.max_label_length, limits.max_events_per_batch)
    self_metrics = importlib.import_module(f"{name}.selfmetrics").SelfMetrics(store)
    exposition = importlib.import_module(f"{name}.exposition").Exposition(store, self_metrics)
    return Side(decoder, store, self_metrics, exposition)


def compare(sides: dict[str, Side], bodies: list[bytes], rounds: int) -> dict[str, dict[str, list[float]]]:
    """Seconds per stage per round, for each side."""
    times: dict[str, dict[str, list[float]]] = {side: {stage: [] for stage in STAGES} for side in sides}
    for index in range(rounds):
        spent = {side: dict.fromkeys(STAGES, 0.0) for side in sides}
        order = list(sides) if index % 2 else list(reversed(sides))
        for body in bodies:
            for side in order:
                sides[side].timed(body, spent[side])
        for side in sides:
            for stage in STAGES:
                times[side][stage].append(spent[side][stage])
    return times


def compare_renders(sides: dict[str, Side], rounds: int) -> dict[str, list[float]]:
    """Seconds of each side's text render, per round."""
    times: dict[str, list[float]] = {side: [] for side in sides}
    for index in range(rounds):
        for side in list(sides) if index % 2 else list(reversed(sides)):
            started = time.perf_counter()
            sides[side].exposition.render(False)
            times[side].append(time.perf_counter() - started)
    return times


def render_row(times: dict[str, list[float]], agents: int) -> str:
    a, b = times["a"], times["b"]
    ratios = [x / y for x, y in zip(a, b, strict=True)]
    return (
        f"render {agents:,} agents: a {statistics.median(a) * 1e3:6.1f}  b {statistics.median(b) * 1e3:6.1f} ms   "
        f"a/b {statistics.median(ratios):5.3f} (per round {min(ratios):.2f}-{max(ratios):.2f})"
    )


def filled(name: str, agents: int) -> Side:
    side = load(name, agents)
    for body in chunks(fleet_events(agents), 10_000):
        side.store.apply(side.decoder.decode(body, NDJSON))
    return side


def per_round(times: dict[str, dict[str, list[float]]], side: str, stage: str) -> list[float]:
    if stage == "total":
        return [sum(parts) for parts in zip(*times[side].values(), strict=True)]
    return times[side][stage]


def report(times: dict[str, dict[str, list[float]]], events: int) -> list[str]:
    rows = []
    for stage in (*STAGES, "total"):
        a, b = per_round(times, "a", stage), per_round(times, "b", stage)
        ratios = [x / y for x, y in zip(a, b, strict=True) if y > 0]
        rows.append(
            f"{stage:<9} a {statistics.median(a) * 1e6 / events:6.3f}  b {statistics.median(b) * 1e6 / events:6.3f} "
            f"µs/event   a/b {statistics.median(ratios):5.3f} (per round {min(ratios):.2f}-{max(ratios):.2f})"
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="directory of one version's agency_telemetry package")
    parser.add_argument("b", help="directory of the other version's agency_telemetry package")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--render-agents", type=int, default=10_000, help="fleet size of the render comparison")
    args = parser.parse_args(argv)
    workload = build_workload()
    import_package(args.a, "at_a")
    import_package(args.b, "at_b")
    sides = {"a": load("at_a"), "b": load("at_b")}
    for side in sides.values():
        for body in workload.warmup:
            side.store.apply(side.decoder.decode(body, NDJSON))
    gc.collect()
    gc.freeze()
    times = compare(sides, workload.bodies, args.rounds)
    print(f"a = {args.a}\nb = {args.b}\n{args.rounds} rounds of {len(workload.bodies)} batches of {BATCH}")
    print("\n".join(report(times, len(workload.bodies) * BATCH)))
    if args.render_agents:
        del sides
        gc.unfreeze()
        gc.collect()
        renders = {"a": filled("at_a", args.render_agents), "b": filled("at_b", args.render_agents)}
        for side in renders.values():
            side.exposition.render(False)  # warm-up
        gc.collect()
        gc.freeze()
        print(render_row(compare_renders(renders, args.rounds), args.render_agents))
    return 0


if __name__ == "__main__":
    sys.exit(main())
