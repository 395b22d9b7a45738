"""Renders the store as Prometheus text 0.0.4 or OpenMetrics 1.0.

Agent series are not prometheus_client children: at 10,000 agents that costs ~25 µs a line.
Instead every string that does not change between scrapes (HELP/TYPE headers, ``le`` and
other fixed label suffixes, each owner's label set) is built once, and a scrape is one pass
of f-strings over the store's slots. The exporter's own metrics come after, from their
prometheus_client registry.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import accumulate
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_openmetrics
from prometheus_client.utils import floatToGoString

from .catalogue import FAMILIES, Family, Histogram
from .selfmetrics import SelfMetrics
from .store import Entity, Store

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PIECE_LINES = 1000  # lines per piece of a scrape: about a millisecond of rendering
PIECE_OWNERS = 50  # owners rendered between checks of the piece size (a histogram: ~20 lines each)
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


class Exposition:
    def __init__(self, store: Store, self_metrics: SelfMetrics) -> None:
        self.store = store
        self.self_metrics = self_metrics
        self._headers = {om: {f.name: _header(f, om) for f in FAMILIES} for om in (False, True)}
        self._suffixes = {f.name: self._label_suffixes(f) for f in FAMILIES}

    def _label_suffixes(self, family: Family) -> tuple[str, ...]:
        """Closing part of each fixed-label series: ``le="0.5"}`` or ``error_class="timeout"}``."""
        if family.buckets is not None:
            bounds = [*self.store.bounds[family.buckets], float("inf")]
            return tuple(f'le="{floatToGoString(b)}"}}' for b in bounds)  # type: ignore[no-untyped-call]
        values = family.label_values
        if family.label == "error_class":
            values = self.store.classifier.names
        return tuple(f'{family.label}="{v}"}}' for v in values or ())

    def _owners(self, family: Family) -> Iterable[Entity]:
        store = self.store
        return {
            "agent": store.agents.values(),
            "council": store.councils.values(),
            "queue": store.queues.values(),
            "alert": store.alerts.values(),
            "workflow": (store.workflow,),
        }[family.owner]

    def render(self, openmetrics: bool = False) -> bytes:
        """The whole exposition at once."""
        return b"".join(self.pieces(openmetrics))

    def pieces(self, openmetrics: bool = False) -> Iterator[bytes]:
        """The exposition in pieces of about :data:`PIECE_LINES` lines.

        The HTTP handler lets ingest run between pieces, so a big scrape never holds the
        event loop for long. Each family's owners are listed when the family starts, so an
        owner added or expired meanwhile changes nothing mid-family; as with any exporter
        that renders family by family, families can be a few events apart from each other.
        """
        lines: list[str] = []
        series = 0
        headers = self._headers[openmetrics]
        for family in FAMILIES:
            lines.append(headers[family.name])
            render, suffixes = _RENDERERS[_shape(family)], self._suffixes[family.name]
            owners = list(self._owners(family))
            for start in range(0, len(owners), PIECE_OWNERS):
                render(lines, family, owners[start : start + PIECE_OWNERS], suffixes)
                if len(lines) >= PIECE_LINES:
                    series += len(lines)
                    yield "".join(lines).encode()
                    lines = []
        self.self_metrics.series = series + len(lines) - len(FAMILIES)
        own = (generate_latest_openmetrics if openmetrics else generate_latest)(self.self_metrics.registry)
        yield "".join(lines).encode() + own


def _header(family: Family, openmetrics: bool) -> str:
    name = family.family_name if openmetrics else family.name
    return f"# HELP {name} {family.help}\n# TYPE {name} {family.type}\n"


def _shape(family: Family) -> str:
    if family.slot is None:
        return "constant"
    if family.type in ("histogram", "summary"):
        return family.type
    if family.label is None:
        return "scalar"
    return "labelled"


def _slot(family: Family) -> int:
    assert family.slot is not None, family.name
    return family.slot


def _opener(labels: str) -> str:
    """``{agent="a",`` for a label set that gets one more label, ``{`` for none."""
    return labels[:-1] + "," if labels else "{"


def _render_constant(out: list[str], family: Family, owners: Iterable[Entity], suffixes: tuple[str, ...]) -> None:
    name = family.name
    out.extend(f"{name}{e.labels} 1\n" for e in owners)


def _render_scalar(out: list[str], family: Family, owners: Iterable[Entity], suffixes: tuple[str, ...]) -> None:
    name, slot = family.name, _slot(family)
    for e in owners:
        value = e.values[slot]
        if value is not None:
            out.append(f"{name}{e.labels} {value}\n")


def _render_labelled(out: list[str], family: Family, owners: Iterable[Entity], suffixes: tuple[str, ...]) -> None:
    name, slot, label = family.name, _slot(family), family.label
    for e in owners:
        values: Any = e.values[slot]
        if values is None:
            continue
        head = name + _opener(e.labels)
        if isinstance(values, dict):
            out += [f'{head}{label}="{key}"}} {count}\n' for key, count in values.items()]
        else:
            out += [f"{head}{suffix} {count}\n" for suffix, count in zip(suffixes, values, strict=True)]


def _render_histogram(out: list[str], family: Family, owners: Iterable[Entity], suffixes: tuple[str, ...]) -> None:
    bucket, count, total, slot = f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum", _slot(family)
    for e in owners:
        histogram: Histogram = e.values[slot]
        head, labels = bucket + _opener(e.labels), e.labels
        cumulative = list(accumulate(histogram.counts))
        out += [f"{head}{suffix} {n}\n" for suffix, n in zip(suffixes, cumulative, strict=True)]
        out.append(f"{count}{labels} {cumulative[-1]}\n")
        out.append(f"{total}{labels} {histogram.sum}\n")


def _render_summary(out: list[str], family: Family, owners: Iterable[Entity], suffixes: tuple[str, ...]) -> None:
    count, total, slot = f"{family.name}_count", f"{family.name}_sum", _slot(family)
    for e in owners:
        value_sum, value_count = e.values[slot]
        out.append(f"{count}{e.labels} {value_count}\n")
        out.append(f"{total}{e.labels} {value_sum}\n")


_RENDERERS = {
    "constant": _render_constant,
    "scalar": _render_scalar,
    "labelled": _render_labelled,
    "histogram": _render_histogram,
    "summary": _render_summary,
}
