"""Smoke tests of the benchmarks: a --quick (or short) run of each finishes and reports every figure."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from agency_telemetry.config import parse_config

from scripts.local_stack import RULE_FILES

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


def sizing_columns(line: str, start: int = 55, width: int = 15) -> list[str]:
    """The cells of a row of the sizing script's series table, one per owner kind."""
    return [line[i : i + width].strip() for i in range(start, len(line), width)]


def test_sizing_counts_series_per_owner_and_measures_a_replica_and_prometheus_with_the_rules() -> None:
    output = run_benchmark("sizing", "--quick", timeout=240)
    lines = output.splitlines()
    # 1. Series per owner, by family, from the exposition.
    [header] = [line for line in lines if line.startswith("series  family")]
    kinds = [" ".join(cell.split()) for cell in re.split(r"\s{2,}", header[55:].strip())]
    assert kinds == ["typical agent", "minimal agent", "council", "queue"], header
    per_owner: dict[str, dict[str, float]] = {kind: {} for kind in kinds}
    for line in lines:
        if re.match(r"series  agency_", line):
            family = line.split()[1]
            for kind, cell in zip(kinds, sizing_columns(line), strict=False):
                if cell:
                    per_owner[kind][family] = float(cell)
    [total] = [line for line in lines if line.startswith("series  total per owner")]
    totals = dict(zip(kinds, map(float, sizing_columns(total)), strict=True))
    assert totals == pytest.approx({kind: sum(counts.values()) for kind, counts in per_owner.items()}), total
    buckets = parse_config("").buckets
    typical, minimal = per_owner["typical agent"], per_owner["minimal agent"]
    # A histogram per agent: its buckets, +Inf, _sum and _count; one decision series per outcome sent.
    assert typical["agency_agent_task_duration_seconds"] == len(buckets.task_duration_seconds) + 3
    assert typical["agency_agent_decisions_total"] == 4 and "agency_agent_decisions_total" not in minimal
    assert typical["agency_agent_llm_requests_total"] == 1 and typical["agency_agent_tool_calls_total"] == 1
    assert all(typical[family] == count for family, count in minimal.items()) and totals["minimal agent"] > 0
    assert per_owner["queue"]["agency_queue_wait_seconds"] == len(buckets.queue_wait_seconds) + 3
    assert per_owner["council"]["agency_council_decisions_total"] == 4
    fixed = int(re.search(r"^series  fixed: ([\d,]+) series", output, re.MULTILINE).group(1).replace(",", ""))
    # 2. Per replica: the series of a fleet are what part 1 counted per owner (a council and a queue per 100 agents).
    rows = [line.split() for line in lines if re.match(r"replica\s+[\d,]+\s", line)]
    replica = {int(row[1].replace(",", "")): row for row in rows}
    assert list(replica) == [100, 1000], output
    for agents, row in replica.items():
        others = max(1, agents // 100)
        expected = fixed + agents * totals["typical agent"] + others * (totals["council"] + totals["queue"])
        assert int(row[2].replace(",", "")) == expected, row
        assert all(float(cell.replace(",", "")) > 0 for cell in row[3:]), row
    # 3. Prometheus scraped the exporter and evaluated every rule group of the mixin's files.
    prometheus = [row for line in lines if re.match(r"prometheus\s+[\d,]+\s+\d", line) for row in [line.split()]]
    assert [row[1] for row in prometheus] == ["100", "300"], output
    for row in prometheus:
        scrapes, scraped, head, recorded = (int(cell.replace(",", "")) for cell in (row[2], row[3], row[7], row[8]))
        assert scrapes >= 1 and head >= scraped + recorded and recorded > 0, row
        assert float(row[9]) > 0 and float(row[11].replace(",", "")) > 0, row
    # The exporter's own lines and the sender's mix come on top of the fleet of part 2.
    assert int(prometheus[0][3].replace(",", "")) >= int(replica[100][2].replace(",", ""))
    groups = {group["name"] for path in RULE_FILES for group in yaml.safe_load(path.read_text())["groups"]}
    measured = {line.split()[1] for line in lines if re.match(r"rules   agency-\S+\s+[\d.]+\s+[\d.]+$", line)}
    assert measured == groups, sorted(groups ^ measured)
    assert re.search(r"^rules   sum of all groups\s+[\d.]+\s+[\d.]+$", output, re.MULTILINE), output
