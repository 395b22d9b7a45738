"""The alerts firing at every step of a simulated run, as promtool computes them from the real rule
files (used by benchmarks/alert_quality.py).

A ``promtool test rules`` file holds the run's scrapes as input series and, at every step, a
query of ``ALERTS{alertstate="firing"}`` that expects nothing: promtool then reports each
query that found alerts, with every sample it found. Its report is read strictly; anything
else in it (a rule that does not load, a rule or query error) raises :class:`PromtoolError`.

promtool evaluates the rule groups at each step in an order of its own choosing, which changes
from run to run unless the file gives one; then an alert reading a recording rule of another
group sees it either fresh or one evaluation old, and an alert on the edge of its threshold
fires in one run and not in the next. The test file orders the groups as the rule files list
them, recording rules first: every run gives the same answer, the one where each alert sees
this evaluation's recordings. Prometheus itself evaluates each group at its own offset within
the interval, so an alert there may see them up to one evaluation interval (30 s) later.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

from benchmarks.alert_fleet import STEP, ScrapedSeries

RULE_FILE_NAMES = ("agency-rules.yml", "agency-alerts.yml")
TEST_FILE_NAME = "alert-quality.test.json"

FIRING = 'ALERTS{alertstate="firing"}'
Labels = dict[str, str]


class PromtoolError(RuntimeError):
    """promtool said something other than the firing alerts asked for."""


def promtool_test(scraped: ScrapedSeries, rules: Path) -> dict[str, Any]:
    """A promtool test: the scrapes as input series, the rule files, and at every step a query
    of the firing alerts expecting none, so that promtool prints each one it finds."""
    interval = f"{STEP}s"
    files = [(rules / name).resolve() for name in RULE_FILE_NAMES]
    return {
        "rule_files": [str(path) for path in files],
        "evaluation_interval": interval,
        "group_eval_order": [group["name"] for path in files for group in yaml.safe_load(path.read_text())["groups"]],
        "tests": [
            {
                "interval": interval,
                "input_series": scraped.input_series(),
                "promql_expr_test": [
                    {"expr": FIRING, "eval_time": f"{step * STEP}s", "exp_samples": []} for step in range(scraped.steps)
                ],
            }
        ],
    }


def firing_alerts(scraped: ScrapedSeries, rules: Path, promtool: str, workdir: Path) -> dict[int, list[Labels]]:
    """The alerts firing at each step (seconds into the run) where any fired; the test file
    is written to ``workdir``."""
    path = workdir / TEST_FILE_NAME
    path.write_text(json.dumps(promtool_test(scraped, rules)))
    return parse_firing(run_promtool(promtool, path))


def run_promtool(promtool: str, path: Path) -> str:
    result = subprocess.run(
        [promtool, "test", "rules", str(path)], capture_output=True, text=True, timeout=3600, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode not in (0, 1):
        raise PromtoolError(f"promtool exited with {result.returncode}:\n{output[:4000]}")
    return output


_DURATION_UNITS = {"y": 365 * 86400, "w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_BLOCK = re.compile(
    r'^ {4}expr: "(?P<expr>(?:[^"\\]|\\.)*)", time: (?P<time>[0-9a-z]+),\n(?P<body>(?: {8}.*\n?)*)', re.M
)
_LABEL = re.compile(r'\s*([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"\s*(,|\})')
_VALUE = re.compile(r"\s*(\S+?)(?:, |$)")


def parse_duration(text: str) -> float:
    """promtool's times: "0s", "2m30s", "9h59m30s", "1d2h"."""
    parts = re.findall(r"(\d+)(ms|[ywdhms])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise PromtoolError(f"unreadable time {text!r}")
    return sum(int(number) * _DURATION_UNITS[unit] for number, unit in parts)


def parse_samples(text: str) -> list[Labels]:
    """The label sets of promtool's ``got:`` list: ``{a="1", b="x"} 1E+00, {…} 1E+00``."""
    samples: list[Labels] = []
    position = 0
    while position < len(text):
        if text[position] != "{":
            raise PromtoolError(f"unreadable samples at {text[position : position + 80]!r}")
        labels, position = _parse_labels(text, position + 1)
        value = _VALUE.match(text, position)
        if value is None or not _is_number(value.group(1)):
            raise PromtoolError(f"no value at {text[position : position + 80]!r}")
        samples.append(labels)
        position = value.end()
    return samples


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _parse_labels(text: str, position: int) -> tuple[Labels, int]:
    labels: Labels = {}
    if text.startswith("}", position):
        return labels, position + 1
    while True:
        pair = _LABEL.match(text, position)
        if pair is None:
            raise PromtoolError(f"unreadable labels at {text[position : position + 80]!r}")
        labels[pair.group(1)] = json.loads(f'"{pair.group(2)}"')
        position = pair.end()
        if pair.group(3) == "}":
            return labels, position


def parse_firing(output: str) -> dict[int, list[Labels]]:
    """The firing alerts at each step where there were any, from promtool's report of the
    queries that found some. Anything else in it (a rule that does not load, a query error)
    raises :class:`PromtoolError`."""
    lines = output.strip().splitlines()
    if not lines or not lines[0].startswith("Unit Testing:"):
        raise PromtoolError(f"not a promtool test report:\n{output[:4000]}")
    rest = "\n".join(line for line in lines[1:] if line.strip()) + "\n"
    if rest.strip() == "SUCCESS":
        return {}
    if not rest.startswith("  FAILED:\n"):
        raise PromtoolError(f"unexpected promtool output:\n{output[:4000]}")
    firing: dict[int, list[Labels]] = {}
    position = len("  FAILED:\n")
    for block in _BLOCK.finditer(rest, position):
        if block.start() != position:
            break
        position = block.end()
        if json.loads(f'"{block.group("expr")}"') != FIRING:
            raise PromtoolError(f"a report on another query: {block.group(0)[:400]}")
        firing[round(parse_duration(block.group("time")))] = _firing_samples(block.group("body"))
    if position != len(rest):
        raise PromtoolError(f"unexpected promtool output:\n{rest[position : position + 4000]}")
    return firing


def _firing_samples(body: str) -> list[Labels]:
    lines = [line.strip() for line in body.splitlines()]
    if len(lines) != 2 or lines[0] != "exp: nil" or not lines[1].startswith("got: "):
        raise PromtoolError(f"unexpected report of a query: {body[:400]}")
    return [
        {k: v for k, v in labels.items() if k not in ("__name__", "alertstate")}
        for labels in parse_samples(lines[1][5:])
    ]
