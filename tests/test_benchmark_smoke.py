"""Smoke test of the benchmarks: a --quick run of benchmarks.bench_exporter finishes and reports every figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
FIGURE = r"([\d,]+(?:\.\d+)?) (events/s|spans/s|ms)"


def figures(line: str) -> dict[str, float]:
    """``{"ours": x, "baseline": y}`` from one row of the benchmark's table."""
    found = {side: re.search(rf"\b{side}\s+{FIGURE}", line) for side in ("ours", "baseline")}
    return {side: float(match.group(1).replace(",", "")) for side, match in found.items() if match}


def run_benchmark(script: str, *arguments: str, timeout: float) -> str:
    """The standard output of ``python -m benchmarks.<script>``, which must exit 0."""
    command = [sys.executable, "-m", f"benchmarks.{script}", *arguments]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_quick_benchmark_reports_ingest_and_metrics_for_both_sides() -> None:
    output = run_benchmark("bench_exporter", "--quick", timeout=240)
    rows = [line for line in output.splitlines() if line.startswith(("ingest", "/metrics"))]
    for prefix in ("ingest HTTP", "ingest in-process", "/metrics text", "/metrics OpenMetrics"):
        matching = [line for line in rows if line.startswith(prefix)]
        assert matching, f"no {prefix!r} row in:\n{output}"
        for line in matching:
            values = figures(line)
            assert set(values) == {"ours", "baseline"}, line
            assert all(value > 0 for value in values.values()), line
    lines = output.splitlines()
    per_core = [line for line in lines if line.strip().startswith("per server CPU second")]
    assert len(per_core) == 2 and all(figures(line).keys() == {"ours", "baseline"} for line in per_core), per_core
    latency = [line for line in lines if line.startswith("ingest latency")]
    assert [("no scrape" in line, "scraped" in line) for line in latency] == [(True, False), (False, True)]
    assert all(len(re.findall(r"p99\s+[\d.]+", line)) == 2 for line in latency), latency
    memory = next(line for line in lines if line.startswith("memory ") and "no ids" in line)
    assert re.search(r"ours\s+[\d.]+ B/series.*baseline\s+[\d.]+ B/series", memory), memory
    assert any(line.startswith("target:") and ": met" in line for line in lines), "the memory target line"
    assert len([line for line in lines if re.match(r"churn\s+round\s+\d+:", line)]) == 3
    assert [line.split()[1] for line in lines if re.match(r"scale\s+\d", line)] == ["100", "1,000"]


def test_otlp_ingest_reports_spans_per_second_and_latency_of_both_sides_for_both_layouts() -> None:
    output = run_benchmark("otlp_ingest", "--quick", timeout=120)
    lines = output.splitlines()
    rows = [line for line in lines if "spans/s" in line and "floor" not in line]
    starts = [" ".join(line.split()[:3]) for line in rows]
    assert starts == ["whole trees ours", "per CPU second:", "split trees ours", "per CPU second:"], output
    latency = [line for line in lines if "latency per request" in line]
    assert len(latency) == 2, output
    for line in rows + latency:
        values = figures(line)
        assert set(values) == {"ours", "baseline"} and all(value > 0 for value in values.values()), line
    assert all(re.search(r"ours/baseline\s+[\d.]+x", line) for line in rows), rows
    # The floor: what parsing and reading the fields costs alone, and the ratio it bounds.
    floors = [line for line in lines if "floor" in line]
    assert len(floors) == 2 and all(re.search(r"[\d,]+ spans/s: .* more than [\d.]+x$", line) for line in floors)
    # Both sides counted the same tasks, failures, LLM requests, tokens and tool calls.
    assert re.search(r"^counted: tasks_total [\d,]+", output, re.MULTILINE), output
    assert "MISMATCH" not in output


def test_time_to_page_reports_every_phase_from_a_real_page() -> None:
    output = run_benchmark("time_to_page", "--rounds", "1", "--window", "10s", "--for", "3s", timeout=180)
    measured = {
        match.group(1): float(match.group(2)) for match in re.finditer(r"^(\w+)\s+([\d.]+)s\s", output, re.MULTILINE)
    }
    assert set(measured) == {"scrape", "window", "evaluation", "for", "alertmanager", "total"}, output
    # Prometheus keeps an alert pending for at least its `for` before it fires.
    assert measured["for"] >= 3.0 - 0.01
    assert measured["total"] == pytest.approx(sum(v for k, v in measured.items() if k != "total"), abs=0.2)
    assert re.search(r"for 10m\s*$", output, re.MULTILINE), "the production column reads config.libsonnet"


def test_soak_rotates_agents_past_their_ttl_and_reports_rss() -> None:
    output = run_benchmark("soak", "--duration", "10", "--ttl", "2", "--rotate", "1", "--every", "2", timeout=120)
    rows = [line.split() for line in output.splitlines() if re.match(r"\s*\d+\s+[\d,]+\s", line)]
    assert len(rows) >= 4, output
    expired = [float(row[5].replace(",", "")) for row in rows]
    assert expired[-1] > 0, "agents past their TTL are expired"
    assert "RSS once the first generations expired" in output


def test_ab_ingest_compares_two_package_versions_stage_by_stage() -> None:
    package = "exporter/agency_telemetry"
    output = run_benchmark("ab_ingest", package, package, "--rounds", "2", "--render-agents", "200", timeout=120)
    rows = {line.split()[0]: line for line in output.splitlines() if "µs/event" in line}
    assert list(rows) == ["decode", "apply", "received", "free", "total"], output
    ratio = float(re.search(r"a/b\s+([\d.]+)", rows["total"]).group(1))
    assert 0.5 < ratio < 2, f"a version against itself should read about 1: {rows['total']}"
    [render] = [line for line in output.splitlines() if line.startswith("render 200 agents:")]
    assert 0.5 < float(re.search(r"a/b\s+([\d.]+)", render).group(1)) < 2, render
