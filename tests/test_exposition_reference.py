"""The fast ``/metrics`` rendering agrees, series for series, with a reference rendering.

:mod:`agency_telemetry.exposition` writes the exposition with f-strings over the store's
slots, for speed. Here the same store is rendered a second, slow and obvious way: one
prometheus_client ``*MetricFamily`` per catalogue family, filled from the store's slots,
with label values taken from the events that were sent (never from the store's
pre-rendered label strings), written by prometheus_client's own ``generate_latest`` in
both formats. Both renderings are parsed back and compared sample by sample, on stores
built from randomized event batches sent through the real decoder.
"""

from __future__ import annotations

import itertools
import math
import random
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from prometheus_client.registry import Collector
from prometheus_client.samples import Exemplar as ClientExemplar
from prometheus_client.utils import floatToGoString

from agency_telemetry.catalogue import FAMILIES, Exemplar, Family, Histogram
from agency_telemetry.events import ALERT_TYPES, SEVERITIES, UNKNOWN_AGENT_TYPE, owner_key
from agency_telemetry.store import Store

from support.harness import Harness

SEEDS = range(20)
SELF_PREFIX = "agency_exporter_"
Event = dict[str, Any]
Labels = tuple[str, ...]

# --- randomized events ------------------------------------------------------------------

AGENTS = (
    "judge-1",
    "worker.2",
    "team:research/3",
    "orch_4",
    "A-b.C_d:e/f",
    "x",
    "0",
    ("long-agent:" * 12)[:128],  # as long as a label may be
)
AGENT_TYPES = (None, None, "constitutional_judge", "worker", "researcher", "orchestrator", UNKNOWN_AGENT_TYPE)
COUNCILS = ("ethics", "safety-board", "c:1/2.x")
QUEUES = ("intake", "review.queue", "q/3_b")
PRINCIPLES = (None, "fairness", "privacy", "harm-avoidance", "transparency.v2")
ALERT_IDS = ("a1", "alert-2", "ns/alert:3", "a.4_b")
REASONS = (  # at least one for each default error class, and some for none of them
    "timed out after 30s",
    "Deadline exceeded",
    "rate limit hit",
    "HTTP 429",
    "connection reset by peer",
    "invalid JSON schema",
    "model context length exceeded",
    "tool crashed",
    "internal panic",
    "",
    "cosmic ray",
    'weird "quoted"\nreason \\ here',
)
MESSAGES = (  # alert messages become label values: everything that needs escaping, and more
    'x "y"',
    "C:\\temp\\",
    "line one\nline two",
    'literal \\n and \\" inside',
    "tab\there, é ✓ 日本",
    "",
    "\\",
    '"',
    "ends in a newline\n",
    "cr\r\nlf",
    '{agent="spoof"} a=b, c',
    "# HELP not a comment",
)


def _duration(rng: random.Random) -> float | str:
    """Milliseconds (the default unit) or a string with a unit, often on a bucket bound."""
    pick = rng.random()
    if pick < 0.4:
        return round(rng.uniform(0, 3000), 3)
    if pick < 0.6:
        return rng.choice((0, 50, 100, 250, 500, 1000, 2000, 2500, 10_000, 120_000, 600_000))
    if pick < 0.85:
        return rng.choice(("1.5 s", "250ms", "2m", "0 s", "1 h", "10 s", "7 s"))
    return rng.uniform(0, 1e9)  # up to 11 days: above every bound


def _ratio(rng: random.Random) -> float | str:
    return rng.choice((rng.random(), 0.0, 1.0, "85 %", "12.5%"))


def _size(rng: random.Random) -> float | str:
    return rng.choice((rng.randint(0, 2**40), rng.uniform(0, 2.0**60), "512 MiB", "1.5 GB"))


def _score(rng: random.Random) -> float:
    return rng.choice((rng.random(), 0.0, 0.1, 0.5, 0.95, 1.0))


def _cost(rng: random.Random) -> float:
    return rng.choice((rng.random(), rng.uniform(0, 1e9), 1e-9, 0.1))


def _maybe(rng: random.Random, event: Event, name: str, make: Callable[[random.Random], Any], p: float = 0.6) -> None:
    if rng.random() < p:
        event[name] = make(rng)


def _traced(rng: random.Random, event: Event) -> Event:
    """The event, sometimes with a trace id, and some of those with a span id: an exemplar."""
    if rng.random() < 0.3:
        event["trace_id"] = rng.randbytes(16).hex()
        _maybe(rng, event, "span_id", lambda r: r.randbytes(8).hex(), p=0.5)
    return event


def _agent_event(rng: random.Random, kind: str) -> Event:
    event: Event = {"type": kind, "agent": rng.choice(AGENTS)}
    agent_type = rng.choice(AGENT_TYPES)
    if agent_type is not None:
        event["agent_type"] = agent_type
    return event


def _registered(rng: random.Random) -> Event:
    event = _agent_event(rng, "agent_registered")
    _maybe(rng, event, "capacity", lambda r: r.choice((1, 8, r.randint(1, 1_000_000))))
    return event


def _heartbeat(rng: random.Random) -> Event:
    event = _agent_event(rng, "agent_heartbeat")
    _maybe(rng, event, "cpu", _ratio)
    _maybe(rng, event, "memory", _size)
    _maybe(rng, event, "queue_depth", lambda r: r.choice((0, 3, 2**53)))
    _maybe(rng, event, "active_tasks", lambda r: r.choice((0, 2)), p=0.3)
    _maybe(rng, event, "capacity", lambda r: r.choice((1, 8)), p=0.3)
    return event


def _completed(rng: random.Random) -> Event:
    event = _agent_event(rng, "task_completed")
    event["duration"] = _duration(rng)
    _maybe(rng, event, "quality_score", _score)
    _maybe(rng, event, "cost", _cost)
    return _traced(rng, event)


def _failed(rng: random.Random) -> Event:
    event = _agent_event(rng, "task_failed")
    _maybe(rng, event, "reason", lambda r: r.choice(REASONS), p=0.85)
    _maybe(rng, event, "duration", _duration)
    return _traced(rng, event)


def _consensus(rng: random.Random) -> Event:
    event: Event = {
        "type": "consensus",
        "council": rng.choice(COUNCILS),
        "formation_time": _duration(rng),
        "achieved": rng.random() < 0.6,
    }
    if rng.random() < 0.5:
        event["debate_required"] = True
        _maybe(rng, event, "debate_rounds", lambda r: r.randint(0, 12), p=0.8)
    if rng.random() < 0.4:
        event["constitutional_compliance"] = False
        principle = rng.choice(PRINCIPLES)
        if principle is not None:
            event["violated_principle"] = principle
    return event


def _coordination(rng: random.Random) -> Event:
    event: Event = {"type": "coordination", "council": rng.choice(COUNCILS)}
    session = rng.choice(("started", "started", "ended", None))
    if session is not None:
        event["session"] = session
    if session is None or rng.random() < 0.5:
        event["overhead"] = _duration(rng)
    _maybe(rng, event, "active_sessions", lambda r: r.choice((0, 1, 3)), p=0.2)
    return event


def _business(rng: random.Random) -> Event:
    event: Event = {"type": "business", "completed": rng.random() < 0.7}
    _maybe(rng, event, "quality_score", _score)
    _maybe(rng, event, "cost", _cost)
    return event


def _decision(rng: random.Random) -> Event:
    if rng.random() < 0.5:
        event: Event = {"type": "decision", "council": rng.choice(COUNCILS)}
    else:
        event = _agent_event(rng, "decision")
    event["predicted"], event["actual"] = rng.random() < 0.5, rng.random() < 0.5
    return event


def _queue(rng: random.Random) -> Event:
    event: Event = {"type": "queue", "queue": rng.choice(QUEUES)}
    _maybe(rng, event, "depth", lambda r: r.choice((0, 5, r.randint(0, 2**53))))
    if "depth" not in event or rng.random() < 0.5:
        event["wait"] = _duration(rng)
    return event


def _alert(rng: random.Random) -> Event:
    event: Event = {
        "type": "alert",
        "alert_id": rng.choice(ALERT_IDS),
        "alert_type": rng.choice(ALERT_TYPES),
        "severity": rng.choice(SEVERITIES),
    }
    _maybe(rng, event, "message", lambda r: r.choice(MESSAGES) if r.random() < 0.7 else _random_text(r), p=0.9)
    _maybe(rng, event, "affected_agents", lambda r: r.sample(AGENTS, r.randint(0, 3)))
    if rng.random() < 0.25:
        event["status"] = "resolved"
    return event


def _random_text(rng: random.Random) -> str:
    return "".join(rng.choices('ab "\\\n\t{}=,#é', k=rng.randint(0, 24)))


PROVIDERS = ("openai", "anthropic", "local/llama")
MODELS = ("gpt-4o", "claude-sonnet", "m:1/2.x")
TOOLS = ("web_search", "calc.v2", "fs/read")


def _tokens(rng: random.Random) -> dict[str, int]:
    cache_read, cache_write, reasoning = rng.randint(0, 500), rng.randint(0, 50), rng.randint(0, 100)
    return {
        "input_tokens": cache_read + cache_write + rng.choice((0, rng.randint(0, 10**6))),
        "output_tokens": reasoning + rng.randint(0, 2000),
        "cache_read_tokens": cache_read,
        "cache_write_tokens": cache_write,
        "reasoning_tokens": reasoning,
    }


def _llm_request(rng: random.Random) -> Event:
    event = _agent_event(rng, "llm_request")
    event.update(provider=rng.choice(PROVIDERS), model=rng.choice(MODELS), duration=_duration(rng), **_tokens(rng))
    _maybe(rng, event, "cost", _cost, p=0.3)
    _maybe(rng, event, "reason", lambda r: r.choice(REASONS), p=0.3)
    return _traced(rng, event)


def _tool_call(rng: random.Random) -> Event:
    event = _agent_event(rng, "tool_call")
    event.update(tool=rng.choice(TOOLS), duration=_duration(rng))
    _maybe(rng, event, "reason", lambda r: r.choice(REASONS), p=0.3)
    return _traced(rng, event)


MAKERS: tuple[tuple[Callable[[random.Random], Event], int], ...] = (
    (_registered, 3),
    (lambda r: _agent_event(r, "agent_deregistered"), 1),
    (_heartbeat, 3),
    (lambda r: _agent_event(r, "task_started"), 4),
    (_completed, 4),
    (_failed, 4),
    (_consensus, 3),
    (_coordination, 2),
    (_business, 2),
    (_decision, 3),
    (_queue, 2),
    (_alert, 3),
    (_llm_request, 3),
    (_tool_call, 2),
)


def random_batches(seed: int, id_prefix: str = "") -> list[list[Event]]:
    """1 to 4 batches of valid events; some carry an ``id``, and some of those are sent again."""
    rng = random.Random(seed)
    makers, weights = zip(*MAKERS, strict=True)
    with_id: list[Event] = []
    batches = []
    for number in range(rng.randint(1, 4)):
        batch: list[Event] = []
        for _ in range(rng.randint(1, 60)):
            event = rng.choices(makers, weights)[0](rng)
            if rng.random() < 0.2:
                event["id"] = f"{id_prefix}{seed}-{number}-{len(batch)}"
                with_id.append(event)
            batch.append(event)
            if with_id and rng.random() < 0.05:
                batch.append(dict(rng.choice(with_id)))  # a retry: must count once
        batches.append(batch)
    return batches


# --- what the events leave behind -------------------------------------------------------


@dataclass
class Expected:
    """The owners the events sent so far leave behind, with the label values the events gave them."""

    agents: dict[str, dict[str, str]] = field(default_factory=dict)
    councils: dict[str, dict[str, str]] = field(default_factory=dict)
    queues: dict[str, dict[str, str]] = field(default_factory=dict)
    alerts: dict[str, dict[str, str]] = field(default_factory=dict)
    models: dict[str, dict[str, str]] = field(default_factory=dict)
    tools: dict[str, dict[str, str]] = field(default_factory=dict)
    touched: dict[tuple[str, str], float] = field(default_factory=dict)  # (owner, key) -> clock at last event
    ids: set[str] = field(default_factory=set)

    def apply(self, events: list[Event], now: float) -> int:
        """Record a batch applied at monotonic time ``now``; the number of duplicates it held."""
        duplicates = 0
        for event in events:
            key = event.get("id")
            if key is not None:
                if key in self.ids:
                    duplicates += 1
                    continue
                self.ids.add(key)
            self._apply(event, now)
        return duplicates

    def _apply(self, event: Event, now: float) -> None:
        kind = event["type"]
        if kind == "agent_deregistered":
            self.agents.pop(event["agent"], None)
            return
        if kind == "alert":
            alert_id = event["alert_id"]
            if event.get("status", "active") == "resolved":
                self.alerts.pop(alert_id, None)
                return
            self.alerts[alert_id] = {
                "alert_id": alert_id,
                "alert_type": event["alert_type"],
                "severity": event["severity"],
                "affected_agents": ",".join(event.get("affected_agents", [])),
                "message": event.get("message", ""),
            }
            self.touched["alert", alert_id] = now
            return
        agent = event.get("agent")
        if agent is not None:
            agent_type = event.get("agent_type")
            if agent not in self.agents:  # a new agent: its type, or "unknown" until it says
                self.agents[agent] = {"agent": agent, "agent_type": agent_type or UNKNOWN_AGENT_TYPE}
            elif agent_type is not None:  # an agent that names a type changes to it
                self.agents[agent]["agent_type"] = agent_type
            self.touched["agent", agent] = now
        for owner, tracked in (("council", self.councils), ("queue", self.queues), ("tool", self.tools)):
            name = event.get(owner)
            if name is not None:
                tracked[name] = {owner: name}
                self.touched[owner, name] = now
        if kind == "llm_request":
            key = owner_key(event["provider"], event["model"])
            self.models[key] = {"provider": event["provider"], "model": event["model"]}
            self.touched["model", key] = now

    def expire(self, now: float, agent_ttl: float, alert_ttl: float) -> None:
        for owner, tracked, ttl in (
            ("agent", self.agents, agent_ttl),
            ("council", self.councils, agent_ttl),
            ("queue", self.queues, agent_ttl),
            ("alert", self.alerts, alert_ttl),
            ("model", self.models, agent_ttl),
            ("tool", self.tools, agent_ttl),
        ):
            for key in [key for key in tracked if self.touched[owner, key] < now - ttl]:
                del tracked[key]


def send(h: Harness, expected: Expected, batches: list[list[Event]]) -> None:
    """Each batch through the real decoder into the store, and into the expectations."""
    for batch in batches:
        applied = h.send(*batch)
        assert applied.duplicates == expected.apply(batch, h.clock.now)


# --- the reference rendering ------------------------------------------------------------


class Reference(Collector):
    """Every catalogue family as a prometheus_client metric family, from the store's slots."""

    def __init__(self, store: Store, expected: Expected) -> None:
        self.store = store
        self.expected = expected

    def collect(self) -> Iterator[Metric]:
        for family in FAMILIES:
            yield reference_family(family, self.owners(family), self.store)

    def owners(self, family: Family) -> list[tuple[Labels, list[Any]]]:
        """(label values in the owner kind's label order, slot values) of each owner of the family."""
        store, expected = self.store, self.expected
        if family.owner.name == "workflow":
            return [((), store.workflow.values)]
        tracked, labels = {
            "agent": (store.agents, expected.agents),
            "council": (store.councils, expected.councils),
            "queue": (store.queues, expected.queues),
            "alert": (store.alerts, expected.alerts),
            "model": (store.models, expected.models),
            "tool": (store.tools, expected.tools),
        }[family.owner.name]
        assert set(tracked) == set(labels), (
            f"{family.owner.name}s only the store tracks: {sorted(set(tracked) - set(labels))}; "
            f"only the events left: {sorted(set(labels) - set(tracked))}"
        )
        names = family.owner.labels
        return [(tuple(labels[key][name] for name in names), tracked[key].values) for key in labels]


def reference_family(family: Family, owners: list[tuple[Labels, list[Any]]], store: Store) -> Metric:
    names = list(family.owner.labels)
    metric: Metric
    if family.type == "histogram":
        assert family.buckets is not None and family.slot is not None
        metric = HistogramMetricFamily(family.name, family.help, labels=names)
        les = [floatToGoString(bound) for bound in (*store.bounds[family.buckets], math.inf)]
        for labels, values in owners:
            histogram = values[family.slot]
            assert isinstance(histogram, Histogram), family.name
            cumulative = itertools.accumulate(histogram.counts)
            exemplars = histogram.exemplars or [None] * len(les)
            buckets = [bucket(le, n, e) for le, n, e in zip(les, cumulative, exemplars, strict=True)]
            metric.add_metric(list(labels), buckets, sum_value=histogram.sum)
        return metric
    if family.type == "summary":
        assert family.slot is not None
        metric = SummaryMetricFamily(family.name, family.help, labels=names)
        for labels, values in owners:
            total, count = values[family.slot]
            metric.add_metric(list(labels), count_value=count, sum_value=total)
        return metric
    kind = {"gauge": GaugeMetricFamily, "counter": CounterMetricFamily}[family.type]
    names = [*names, *family.keys]
    metric = kind(family.name, family.help, labels=[*names, family.label] if family.label else names)
    for labels, values in owners:
        for extra, value in series(family, values, store):
            metric.add_metric([*labels, *extra], value)
    return metric


def bucket(le: str, count: int, exemplar: Exemplar | None) -> tuple[str, float] | tuple[str, float, ClientExemplar]:
    """A bucket of a HistogramMetricFamily, with its exemplar when it has one."""
    if exemplar is None:
        return le, count
    labels = {"trace_id": exemplar.trace_id} | ({} if exemplar.span_id is None else {"span_id": exemplar.span_id})
    return le, count, ClientExemplar(labels, exemplar.value, exemplar.timestamp)


def series(family: Family, values: list[Any], store: Store) -> Iterator[tuple[Labels, float]]:
    """(extra label values, value) of one owner's series of a gauge or counter family."""
    if family.slot is None:  # info-style: 1 while the owner exists
        yield (), 1
        return
    value = values[family.slot]
    if value is None:  # not reported yet: no series
        return
    if family.keys:  # label values events bring: a dict keyed by their tuple, then a fixed label
        for key, counts in value.items():
            if family.label is None:
                yield key, counts
            else:
                labels = fixed_label_values(family, store)
                yield from (((*key, label), n) for label, n in zip(labels, counts, strict=True))
    elif family.label is None:
        yield (), value
    elif isinstance(value, dict):  # a bounded dynamic label
        yield from (((key,), count) for key, count in value.items())
    else:
        yield from (((label,), count) for label, count in zip(fixed_label_values(family, store), value, strict=True))


def fixed_label_values(family: Family, store: Store) -> tuple[str, ...]:
    if family.label_values is not None:
        return family.label_values
    if family.label == "error_class":
        return store.classifier.names
    pytest.fail(f"{family.name}: no known values for its label {family.label!r}")


def reference_render(store: Store, expected: Expected, openmetrics: bool) -> str:
    registry = CollectorRegistry()
    registry.register(Reference(store, expected))
    return (generate_latest_openmetrics if openmetrics else generate_latest)(registry).decode()


# --- comparing --------------------------------------------------------------------------

SampleKey = tuple[str, frozenset[tuple[str, str]]]
Exemplars = dict[SampleKey, list[tuple[frozenset[tuple[str, str]], float, float | None]]]


def parse(text: str, openmetrics: bool) -> tuple[dict[str, tuple[str, str]], dict[SampleKey, list[float]], Exemplars]:
    """(family name -> (type, help), sample -> its values, sample -> its exemplars) of the
    catalogue's families."""
    families: dict[str, tuple[str, str]] = {}
    samples: dict[SampleKey, list[float]] = defaultdict(list)
    exemplars: Exemplars = defaultdict(list)
    for family in (parse_openmetrics if openmetrics else parse_text)(text):
        if family.name.startswith(SELF_PREFIX):
            continue
        assert family.name not in families, f"family {family.name} appears twice"
        families[family.name] = (family.type, family.documentation)
        for sample in family.samples:
            key = sample.name, frozenset(sample.labels.items())
            samples[key].append(sample.value)
            if sample.exemplar is not None:
                labels, value, timestamp = sample.exemplar
                exemplars[key].append(
                    (frozenset(labels.items()), value, None if timestamp is None else float(timestamp))
                )
    return families, samples, exemplars


def headers(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.startswith("# ") and SELF_PREFIX not in line}


def differences(fast_text: str, reference_text: str, openmetrics: bool) -> list[str]:
    """Every way the fast rendering differs from the reference, or nothing."""
    fast_families, fast, fast_exemplars = parse(fast_text, openmetrics)
    reference_families, reference, reference_exemplars = parse(reference_text, openmetrics)
    assert set(reference_families) == {f.family_name for f in FAMILIES}
    found = [
        f"family {name}: fast has {fast_families.get(name)}, reference {reference_families.get(name)}"
        for name in sorted(fast_families.keys() | reference_families.keys())
        if fast_families.get(name) != reference_families.get(name)
    ]
    found.extend(
        f"header line only in the {side}: {line!r}"
        for side, lines in (
            ("fast rendering", headers(fast_text) - headers(reference_text)),
            ("reference", headers(reference_text) - headers(fast_text)),
        )
        for line in sorted(lines)
    )
    for key in sorted(fast.keys() | reference.keys(), key=repr):
        got, want = sorted(fast.get(key, [])), sorted(reference.get(key, []))
        if len(got) != len(want) or not all(math.isclose(g, w, rel_tol=1e-12) for g, w in zip(got, want, strict=True)):
            name, labels = key
            found.append(f"{name}{dict(sorted(labels))}: fast {got}, reference {want}")
    for key in sorted(fast_exemplars.keys() | reference_exemplars.keys(), key=repr):
        got_exemplars, want_exemplars = fast_exemplars.get(key), reference_exemplars.get(key)
        if got_exemplars != want_exemplars:
            found.append(
                f"exemplar of {key[0]}{dict(sorted(key[1]))}: fast {got_exemplars}, reference {want_exemplars}"
            )
    return found


def assert_agree(h: Harness, expected: Expected, formats: tuple[bool, ...] = (False, True)) -> None:
    for openmetrics in formats:
        fast = h.exposition.render(openmetrics).decode()
        found = differences(fast, reference_render(h.store, expected, openmetrics), openmetrics)
        fmt = "OpenMetrics" if openmetrics else "text 0.0.4"
        assert not found, f"{fmt}: {len(found)} differences from the reference:\n" + "\n".join(found[:25])


# --- tests ------------------------------------------------------------------------------


def test_empty_store_renders_like_the_reference():
    assert_agree(Harness(), Expected())


@pytest.mark.parametrize("seed", SEEDS)
def test_random_store_renders_like_the_reference(seed):
    h = Harness()
    expected = Expected()
    rng = random.Random(-seed)
    for batch in random_batches(seed):
        h.clock.now += rng.uniform(0, 60)
        h.wall.now += rng.uniform(0, 60)  # last-seen timestamps with fractions of a second
        send(h, expected, [batch])
    assert_agree(h, expected)


def test_a_store_of_hundreds_of_agents_renders_like_the_reference():
    """260 agents, some 9,000 lines: a rendering done in slices of owners or pieces of lines crosses their edges."""
    h = Harness()
    expected = Expected()
    rng = random.Random(260)
    batch: list[Event] = []
    for number in range(260):
        agent = {"agent": f"agent-{number:03d}", "agent_type": rng.choice(AGENT_TYPES[2:])}
        batch.append({"type": "agent_registered", **agent, "capacity": rng.randint(1, 16)})
        batch.append({"type": "task_completed", **agent, "duration": _duration(rng), "quality_score": _score(rng)})
        if rng.random() < 0.3:
            batch.append({"type": "task_failed", **agent, "reason": rng.choice(REASONS)})
        if rng.random() < 0.3:
            batch.append({"type": "decision", **agent, "predicted": True, "actual": rng.random() < 0.5})
    send(h, expected, [batch])
    assert_agree(h, expected, formats=(False,))  # the slow part is parsing; both formats share the slicing


@pytest.mark.parametrize("seed", range(3))
def test_expired_owners_leave_the_rendering_like_the_reference(seed):
    h = Harness()
    expected = Expected()
    agent_ttl, alert_ttl = h.config.expiry.agent_ttl, h.config.expiry.alert_ttl
    start = h.clock.now
    idle = [
        {"type": "agent_registered", "agent": "idle-agent", "agent_type": "worker"},
        {"type": "consensus", "council": "idle-council", "formation_time": 10, "achieved": True},
        {"type": "queue", "queue": "idle-queue", "depth": 1},
        {"type": "alert", "alert_id": "old-alert", "alert_type": "system_health", "severity": "info"},
    ]
    send(h, expected, [*random_batches(seed, "old-"), idle])
    h.clock.now = start + agent_ttl / 2
    busy = [
        {"type": "task_started", "agent": "busy-agent", "agent_type": "researcher"},
        {"type": "alert", "alert_id": "new-alert", "alert_type": "agent_performance", "severity": "critical"},
    ]
    send(h, expected, [*random_batches(seed + 1000, "new-")[:1], busy])

    h.clock.now = start + agent_ttl + 1  # everything only the first batches touched is idle
    h.store.expire()
    expected.expire(h.clock.now, agent_ttl, alert_ttl)
    assert "idle-agent" not in expected.agents and "idle-council" not in expected.councils
    assert "busy-agent" in expected.agents and "old-alert" in expected.alerts
    assert_agree(h, expected)

    # Owners that come back start over; an agent that names no type is "unknown" again.
    send(h, expected, [*random_batches(seed + 2000, "back-"), [{"type": "task_started", "agent": "idle-agent"}]])
    assert expected.agents["idle-agent"]["agent_type"] == UNKNOWN_AGENT_TYPE
    assert_agree(h, expected)

    h.clock.now = start + alert_ttl + 1  # every agent is idle; alerts of the first batches too
    h.store.expire()
    expected.expire(h.clock.now, agent_ttl, alert_ttl)
    assert not expected.agents and "old-alert" not in expected.alerts and "new-alert" in expected.alerts
    assert_agree(h, expected)

    h.clock.now += alert_ttl
    h.store.expire()
    expected.expire(h.clock.now, agent_ttl, alert_ttl)
    assert not expected.alerts
    assert_agree(h, expected)


def test_random_batches_exercise_every_family_and_label():
    """Together the seeds expose every family, every error class, principles and hard label values."""
    exposed: set[str] = set()
    labels: dict[str, set[str]] = defaultdict(set)
    duplicates = 0
    for seed in SEEDS:
        h = Harness()
        expected = Expected()
        for batch in random_batches(seed):
            duplicates += h.send(*batch).duplicates
            expected.apply(batch, h.clock.now)
        for metric in Reference(h.store, expected).collect():
            for sample in metric.samples:
                exposed.add(metric.name)
                if sample.value or metric.type == "gauge":
                    for name, value in sample.labels.items():
                        labels[name].add(value)
    assert exposed == {f.family_name for f in FAMILIES}
    assert labels["error_class"] == set(Harness().store.classifier.names)
    assert {"unspecified", "fairness", "privacy", "harm-avoidance"} <= labels["principle"]
    assert labels["agent_type"] == {t or UNKNOWN_AGENT_TYPE for t in AGENT_TYPES}
    assert labels["outcome"] == {"tp", "fp", "tn", "fn"}
    assert labels["token_type"] == {"input", "output", "cache_read", "cache_write", "reasoning"}
    assert labels["model"] == set(MODELS) and labels["tool"] == set(TOOLS)
    for needs_escaping in ('"', "\\", "\n"):
        assert any(needs_escaping in message for message in labels["message"]), repr(needs_escaping)
    assert any("," in affected for affected in labels["affected_agents"])
    assert duplicates > 0
