"""Alert quality: how soon the mixin's alerts catch each kind of fault, and what else they page for.

Each scenario runs the simulated fleet of benchmarks.alert_fleet for hours of simulated time
through a real exporter store, scraped every 30 s as in production, and has promtool evaluate
the real rule files on those scrapes every 30 s (benchmarks.promtool_alerts). A scenario is a
small declarative object: healthy history, one fault (which field of which owners' conditions
it sets, for how long), the alerts it should raise, each with a severity and a detection bound
from the issue's targets, and the alerts it tolerates as consequences.

Per scenario the table gives the time from the fault's start to the first firing of each
intended alert; the false pages: critical or emergency alerts neither intended nor tolerated,
and any page before the fault; the unexpected warnings, the same for warnings. Info alerts go
to a low-noise channel and are listed apart. An intended alert absent from the rule files
shows as missed ("not in the rules").

    .venv/bin/python -m benchmarks.alert_quality [--rules DIR] [--scenario NAME ...] [--jobs N]
                                                 [--seed N] [--keep DIR] [--episodes]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import dataclasses
import shutil
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import yaml

from benchmarks.alert_fleet import FLEET, HOUR, MINUTE, STEP, Fault, simulate
from benchmarks.promtool_alerts import RULE_FILE_NAMES, TEST_FILE_NAME, Labels, firing_alerts

ROOT = Path(__file__).resolve().parent.parent

# The detection targets.
HARD = 5 * MINUTE  # an agent, the fleet or the exporter down
SEVERE = 15 * MINUTE  # consensus below half its objective, error ratio >= 50 %, quality down by a third
MILD = 2 * HOUR  # drift
PAGES = ("critical", "emergency")


# --- scenarios --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match:
    """Alerts of this name (and severity, and labels, when given)."""

    alert: str
    severity: str | None = None
    labels: tuple[tuple[str, str], ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if labels.get("alertname") != self.alert:
            return False
        if self.severity is not None and labels.get("severity") != self.severity:
            return False
        return all(labels.get(name) == value for name, value in self.labels)

    def describe(self) -> str:
        extra = ",".join(f"{k}={v}" for k, v in self.labels)
        return f"{self.alert}{{{extra}}}" if extra else self.alert


@dataclass(frozen=True)
class Intended(Match):
    within: int = MILD  # detection bound, seconds from the fault's start


@dataclass(frozen=True)
class Tolerated(Match):
    max_episodes: int | None = None  # None: any number


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    fault: Fault | None = None
    intended: tuple[Intended, ...] = ()
    # Besides these, the other severities of an intended alert (its lower tiers fire on the way).
    tolerated: tuple[Tolerated, ...] = ()
    history: int = HOUR  # healthy history before the fault (the whole run without one)
    observe: int | None = None  # run on for this long after the fault; None: the longest bound + margin

    @property
    def fault_start(self) -> int:
        return self.history

    @property
    def duration(self) -> int:
        if self.fault is None:
            return self.history
        observe = self.observe if self.observe is not None else max(i.within for i in self.intended) + 10 * MINUTE
        return self.history + observe

    def faults(self) -> tuple[Fault, ...]:
        return () if self.fault is None else (dataclasses.replace(self.fault, start=self.fault_start),)


def on(**labels: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(labels.items()))


# Relative alerts compare with a 1-day baseline and need 6 h of it: their scenarios have 8 h.
BASELINE_HISTORY = 8 * HOUR

SCENARIOS = (
    Scenario(
        "healthy",
        "10 h of the noisy healthy fleet: bursts, low-traffic failures, the daily swing",
        history=10 * HOUR,
    ),
    Scenario(
        "agent_failing",
        "worker-2 fails 70 % of its tasks",
        Fault("agent", "error_ratio", 0.7, ("worker-2",)),
        (Intended("AgencyAgentErrorRateHigh", "critical", on(agent="worker-2"), within=SEVERE),),
    ),
    Scenario(
        "agent_slow",
        "worker-1's tasks take 5 times as long",
        Fault("agent", "latency_factor", 5.0, ("worker-1",)),
        (Intended("AgencyAgentLatencyHigh", "warning", on(agent="worker-1"), within=MILD),),
        (Tolerated("AgencyLatencyBudgetBurn", labels=on(agent_type="worker")),),
    ),
    Scenario(
        "agent_down",
        "judge-2 stops sending anything",
        Fault("agent", "silent", 1, ("judge-2",)),
        (Intended("AgencyAgentDown", "warning", on(agent="judge-2"), within=HARD),),
    ),
    Scenario(
        "fleet_down",
        "8 of the 11 agents stop sending anything",
        Fault("agent", "silent", 1, tuple(a.name for a in FLEET[:8])),
        (Intended("AgencyFleetMostlyDown", "emergency", within=HARD),),
        (Tolerated("AgencyAgentDown", "warning"),),
    ),
    Scenario(
        "exporter_down",
        "the exporter cannot be scraped for 10 min (events sent meanwhile are lost)",
        Fault("fleet", "exporter_down", 1, duration=10 * MINUTE),
        (Intended("AgencyExporterDown", "critical", within=HARD),),
        observe=45 * MINUTE,  # what its return brings too
    ),
    Scenario(
        "consensus_collapse",
        "council planning reaches consensus in 30 % of attempts (objective 80 %)",
        Fault("council", "consensus_success", 0.3, ("planning",)),
        (Intended("AgencyCouncilConsensusRateLow", "critical", on(council="planning"), within=SEVERE),),
    ),
    Scenario(
        "compliance_violations",
        "council ethics violates the constitution in 8 % of decisions",
        Fault("council", "violation_ratio", 0.08, ("ethics",)),
        (
            Intended("AgencyConstitutionalComplianceLow", "warning", on(council="ethics"), within=MILD),
            Intended("AgencyConstitutionalComplianceLow", "critical", on(council="ethics"), within=SEVERE),
        ),
    ),
    Scenario(
        "quality_drop",
        "mean workflow quality falls from 0.88 to 0.55 (by more than a third)",
        Fault("workflow", "quality", 0.55),
        (
            Intended("AgencyWorkflowQualityLow", "warning", within=MILD),
            Intended("AgencyWorkflowQualityLow", "critical", within=SEVERE),
        ),
        history=BASELINE_HISTORY,  # the critical tier compares with the day's quality
    ),
    Scenario(
        "cost_jump",
        "LLM prices and workflow task costs rise 4-fold (a pricier model)",
        Fault("fleet", "cost_factor", 4.0),
        (
            Intended("AgencyCostPerTaskAboveBaseline", "warning", within=MILD),
            Intended("AgencyLlmSpendAboveBaseline", "warning", within=MILD),
            Intended("AgencyCostPerTaskHigh", "warning", within=MILD),
        ),
        (Tolerated("AgencyLlmSpendBurnRateHigh", "warning"),),
        history=BASELINE_HISTORY,
    ),
    Scenario(
        "cold_start",
        "the cost jump after 2 h of history: the relative alerts must stay quiet",
        Fault("fleet", "cost_factor", 4.0),
        (),
        (Tolerated("AgencyCostPerTaskHigh", "warning"), Tolerated("AgencyLlmSpendBurnRateHigh", "warning")),
        history=2 * HOUR,
        observe=3 * HOUR,
    ),
    Scenario(
        "token_surge",
        "workers send and receive 4 times as many tokens per request (a prompt regression)",
        Fault("agent", "token_factor", 4.0, ("worker",)),
        (Intended("AgencyLlmTokensPerTaskAboveBaseline", "warning", on(agent_type="worker"), within=MILD),),
        (Tolerated("AgencyLlmSpendAboveBaseline", "warning"),),
        history=BASELINE_HISTORY,
    ),
    Scenario(
        "council_slow",
        "council review takes 4 times as long to form consensus",
        Fault("council", "formation_factor", 4.0, ("review",)),
        (
            Intended("AgencyCouncilFormationTimeAboveBaseline", "warning", on(council="review"), within=MILD),
            Intended("AgencyCouncilConsensusSlow", "warning", on(council="review"), within=MILD),
        ),
        history=BASELINE_HISTORY,
    ),
    Scenario(
        "queue_growth",
        "queue intake gets 15 more items a minute than it can serve",
        Fault("queue", "extra_arrivals_per_minute", 15, ("intake",)),
        (
            Intended("AgencyQueueBacklogGrowing", "warning", on(queue="intake"), within=MILD),
            Intended("AgencyQueueDepthAboveBaseline", "warning", on(queue="intake"), within=MILD),
            Intended("AgencyQueueWaitAboveBaseline", "warning", on(queue="intake"), within=MILD),
        ),
        history=BASELINE_HISTORY,
    ),
    Scenario(
        "false_positive_surge",
        "council review accepts 30 % of the cases it should reject",
        Fault("council", "false_positive_ratio", 0.3, ("review",)),
        (Intended("AgencyCouncilFalsePositiveRateHigh", "warning", on(council="review"), within=MILD),),
    ),
    Scenario(
        "fast_slo_burn",
        "30 % of workflow tasks fail: 30 times the error budget's rate",
        Fault("workflow", "error_ratio", 0.3),
        (Intended("AgencyAvailabilityBudgetBurn", "critical", on(burn_tier="fast"), within=MILD),),
        (Tolerated("AgencyAvailabilityBudgetBurn"),),  # the slower tiers, which Alertmanager inhibits
    ),
    Scenario(
        "slow_slo_burn",
        "5 % of workflow tasks fail: 5 times the error budget's rate",
        Fault("workflow", "error_ratio", 0.05),
        (Intended("AgencyAvailabilityBudgetBurn", "warning", on(burn_tier="slow"), within=MILD),),
        (Tolerated("AgencyAvailabilityBudgetBurn"),),
    ),
    Scenario(
        "flapping",
        "worker-3 fails every task for 3 min out of 7, for 2 h: one warning at most, no page",
        Fault("agent", "error_ratio", 1.0, ("worker-3",), flap=(3 * MINUTE, 4 * MINUTE)),
        (),
        (Tolerated("AgencyAgentErrorRateHigh", "warning", on(agent="worker-3"), max_episodes=1),),
        observe=2 * HOUR,
    ),
)
SCENARIOS_BY_NAME = {scenario.name: scenario for scenario in SCENARIOS}


# --- scoring ----------------------------------------------------------------------------------


DESCRIBED_LABELS = ("agent", "council", "queue", "agent_type", "burn_tier")


@dataclass(frozen=True)
class Episode:
    labels: tuple[tuple[str, str], ...]
    start: int  # seconds into the run
    end: int | None  # the first step it no longer fired; None: firing at the end of the run

    @property
    def label_map(self) -> Labels:
        return dict(self.labels)

    @property
    def alert(self) -> str:
        return self.label_map["alertname"]

    @property
    def severity(self) -> str:
        return self.label_map.get("severity", "")

    def describe(self) -> str:
        labels = self.label_map
        extra = ",".join(f"{k}={labels[k]}" for k in DESCRIBED_LABELS if k in labels)
        return f"{self.alert}{{{extra}}}" if extra else self.alert


def episodes(firing: Mapping[int, list[Labels]], steps: int) -> list[Episode]:
    """Each stretch of consecutive steps an alert (one label set) fired."""
    open_since: dict[tuple[tuple[str, str], ...], int] = {}
    found: list[Episode] = []
    for step in range(steps):
        at = step * STEP
        now = {tuple(sorted(labels.items())) for labels in firing.get(at, [])}
        for labels in list(open_since):
            if labels not in now:
                found.append(Episode(labels, open_since.pop(labels), at))
        for labels in now:
            open_since.setdefault(labels, at)
    found.extend(Episode(labels, start, None) for labels, start in open_since.items())
    return sorted(found, key=lambda e: (e.start, e.labels))


@dataclass(frozen=True)
class Detection:
    intended: Intended
    in_rules: bool
    seconds: int | None  # from the fault's start to the first firing; None: not within the run
    episodes: int  # how often it fired after the fault's start: each one notifies anew

    @property
    def in_bound(self) -> bool:
        return self.seconds is not None and self.seconds <= self.intended.within


@dataclass(frozen=True)
class Result:
    scenario: str
    fault_start: int  # seconds into the run; the run's end for a scenario without a fault
    observed: int  # how long the run went on after the fault's start
    detections: tuple[Detection, ...]
    false_pages: tuple[Episode, ...]
    unexpected_warnings: tuple[Episode, ...]
    infos: tuple[Episode, ...]
    beyond_tolerance: tuple[Episode, ...]  # episodes of a tolerated alert past its number (also counted above)
    all_episodes: tuple[Episode, ...]
    seconds: float  # how long simulating and promtool took

    @property
    def ok(self) -> bool:
        """Every intended alert within its bound, no false page, no tolerated alert too often."""
        return all(d.in_bound for d in self.detections) and not self.false_pages and not self.beyond_tolerance


def score(scenario: Scenario, found: Sequence[Episode], rule_alerts: set[tuple[str, str]], seconds: float) -> Result:
    """What the episodes of a run of ``scenario`` say about the rules."""
    start = scenario.fault_start if scenario.fault is not None else scenario.duration + STEP
    detections = tuple(_detection(intended, found, start, rule_alerts) for intended in scenario.intended)
    unexpected = [e for e in found if e.start < start or not _expected(scenario, e, found, start)]
    return Result(
        scenario.name,
        start,
        max(0, scenario.duration - start),
        detections,
        tuple(e for e in unexpected if e.severity in PAGES),
        tuple(e for e in unexpected if e.severity == "warning"),
        tuple(e for e in unexpected if e.severity not in (*PAGES, "warning")),
        tuple(e for e in unexpected if e.start >= start and any(t.matches(e.label_map) for t in scenario.tolerated)),
        tuple(found),
        seconds,
    )


def _detection(
    intended: Intended, found: Sequence[Episode], start: int, rule_alerts: set[tuple[str, str]]
) -> Detection:
    starts = [e.start for e in found if e.start >= start and intended.matches(e.label_map)]
    in_rules = (intended.alert, intended.severity or "") in rule_alerts
    return Detection(intended, in_rules, min(starts) - start if starts else None, len(starts))


def _expected(scenario: Scenario, episode: Episode, found: Sequence[Episode], start: int) -> bool:
    """An episode after the fault's start that the scenario intends or tolerates (within a
    tolerated alert's number of episodes)."""
    labels = episode.label_map
    if any(Match(i.alert, None, i.labels).matches(labels) for i in scenario.intended):
        return True
    for tolerated in scenario.tolerated:
        if not tolerated.matches(labels):
            continue
        if tolerated.max_episodes is None:
            return True
        since_fault = [e for e in found if start <= e.start <= episode.start and tolerated.matches(e.label_map)]
        return len(since_fault) <= tolerated.max_episodes
    return False


def alerts_in_rules(rules: Path) -> set[tuple[str, str]]:
    """(alert name, severity) of every alerting rule."""
    document = yaml.safe_load((rules / RULE_FILE_NAMES[1]).read_text())
    return {
        (rule["alert"], str(rule.get("labels", {}).get("severity", "")))
        for group in document["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }


# --- running ----------------------------------------------------------------------------------


def run_scenario(scenario: Scenario, rules: Path, promtool: str, seed: int, keep: Path | None = None) -> Result:
    started = time.perf_counter()
    scraped = simulate(scenario.faults(), scenario.duration, seed)
    with tempfile.TemporaryDirectory(prefix=f"alert-quality-{scenario.name}-") as directory:
        workdir = Path(directory)
        try:
            firing = firing_alerts(scraped, rules, promtool, workdir)
        finally:
            if keep is not None:
                keep.mkdir(parents=True, exist_ok=True)
                shutil.copy(workdir / TEST_FILE_NAME, keep / f"{scenario.name}.test.json")
    found = episodes(firing, scraped.steps)
    return score(scenario, found, alerts_in_rules(rules), time.perf_counter() - started)


def run_scenarios(
    scenarios: Sequence[Scenario], rules: Path, promtool: str, *, seed: int = 1, jobs: int = 2, keep: Path | None = None
) -> list[Result]:
    """The scenarios' results in their order; the longest runs start first."""
    ordered = sorted(scenarios, key=lambda s: -s.duration)
    with concurrent.futures.ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {s.name: pool.submit(run_scenario, s, rules, promtool, seed, keep) for s in ordered}
        return [futures[s.name].result() for s in scenarios]


# --- the table ----------------------------------------------------------------------------------


def minutes(seconds: float) -> str:
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    if hours:
        return f"{hours}h{rest // 60:02d}m"
    return f"{rest // 60}m{rest % 60:02d}s" if rest % 60 else f"{rest // 60}m"


def detected(detection: Detection, observed: int) -> str:
    if detection.seconds is None:
        where = "not in the rules" if not detection.in_rules else f"not within {minutes(observed)}"
        return f"missed ({where})"
    late = "" if detection.in_bound else f", over {minutes(detection.intended.within)}"
    again = f" ({detection.episodes} episodes)" if detection.episodes > 1 else ""
    return f"{minutes(detection.seconds)}{late}{again}"


def counted(found: Sequence[Episode]) -> str:
    """How many episodes, and of which alerts."""
    if not found:
        return "0"
    names: dict[str, int] = {}
    for episode in found:
        names[episode.describe()] = names.get(episode.describe(), 0) + 1
    return f"{len(found)}: " + ", ".join(name + (f" x{n}" if n > 1 else "") for name, n in names.items())


TABLE_HEAD = (
    "| scenario | intended alert | severity | bound | detected after | false pages | unexpected warnings |\n"
    "|---|---|---|---|---|---|---|"
)


def table(results: Sequence[Result]) -> str:
    """A Markdown table: a row per intended alert; a scenario's false pages and warnings on its first."""
    rows = [TABLE_HEAD]
    for result in results:
        cells = [
            (d.intended.describe(), d.intended.severity or "", minutes(d.intended.within), detected(d, result.observed))
            for d in result.detections
        ] or [("none", "", "", "")]
        for index, (alert, severity, bound, when) in enumerate(cells):
            name, pages, warnings = (
                (result.scenario, counted(result.false_pages), counted(result.unexpected_warnings))
                if index == 0
                else ("", "", "")
            )
            rows.append(f"| {name} | {alert} | {severity} | {bound} | {when} | {pages} | {warnings} |")
    return "\n".join(rows)


def timeline(result: Result) -> str:
    """Each episode, from and to, relative to the fault's start."""

    def relative(at: int | None) -> str:
        if at is None:
            return "end"
        return ("-" if at < result.fault_start else "+") + minutes(abs(at - result.fault_start))

    return "\n".join(
        f"    {e.severity:9} {e.describe()} {relative(e.start)} .. {relative(e.end)}" for e in result.all_episodes
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rules", type=Path, default=ROOT / "rules", help="the directory of agency-rules.yml and agency-alerts.yml"
    )
    parser.add_argument("--scenario", nargs="+", choices=sorted(SCENARIOS_BY_NAME), help="run only these")
    parser.add_argument("--jobs", type=int, default=2, help="scenarios run at once")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", type=Path, help="keep the promtool test files in this directory")
    parser.add_argument("--episodes", action="store_true", help="list every alert's episodes")
    args = parser.parse_args(argv)
    promtool = shutil.which("promtool")
    if promtool is None:
        print("promtool is not installed; `make tools` installs it", file=sys.stderr)
        return 2
    scenarios = [SCENARIOS_BY_NAME[name] for name in args.scenario] if args.scenario else list(SCENARIOS)
    started = time.perf_counter()
    results = run_scenarios(scenarios, args.rules, promtool, seed=args.seed, jobs=args.jobs, keep=args.keep)
    print(table(results))
    print()
    for scenario in scenarios:
        print(f"- {scenario.name}: {scenario.summary}")
    print()
    for result in results:
        infos = counted(result.infos)
        print(f"{result.scenario}: {'ok' if result.ok else 'FAILS'} in {result.seconds:.1f} s; info alerts {infos}")
        if args.episodes:
            print(timeline(result))
    elapsed = time.perf_counter() - started
    print(f"\n{len(results)} scenarios, step {STEP} s, seed {args.seed}, rules {args.rules}: {elapsed:.1f} s in all")
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
