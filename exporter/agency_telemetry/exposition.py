"""Renders the store as Prometheus text 0.0.4 or OpenMetrics 1.0.

Agent series are not prometheus_client children: at 10,000 agents that costs ~25 µs a line.
Instead every string that does not change between scrapes (HELP/TYPE headers, ``le`` and
other fixed label suffixes) is built once, each owner's label set once per scrape, and a
scrape is one pass of f-strings over the store's slots. The exporter's own metrics come after,
from their prometheus_client registry. Histogram buckets carry their exemplars (trace ids) in
OpenMetrics only; a histogram that never had one costs a single attribute check.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from itertools import accumulate
from typing import Any

from prometheus_client import generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_latest_openmetrics
from prometheus_client.utils import floatToGoString

from .catalogue import FAMILIES, Exemplar, Family, Histogram
from .owners import OWNERS, OwnerKind
from .selfmetrics import SelfMetrics
from .store import Store

Owners = list[tuple[str, list[Any]]]  # (rendered label set, slot values) of each owner

TEXT_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PIECE_LINES = 1000  # lines per piece of a scrape: about a millisecond of rendering
PIECE_OWNERS = 50  # owners rendered between checks of the piece size (a histogram: ~20 lines each)
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


def accepts_gzip(accept_encoding: str) -> bool:
    """True when the client takes gzip, honouring ``q=0`` ("not this one")."""
    for item in accept_encoding.split(","):
        coding, _, params = item.partition(";")
        if coding.strip().lower() in ("gzip", "*"):
            quality = params.strip()
            return not quality.startswith("q=") or quality[2:].strip() not in ("0", "0.0", "0.00", "0.000")
    return False


class Exposition:
    def __init__(self, store: Store, self_metrics: SelfMetrics) -> None:
        self.store = store
        self.self_metrics = self_metrics
        self._headers = {om: {f.name: _header(f, om) for f in FAMILIES} for om in (False, True)}
        self._suffixes = {f.name: self._label_suffixes(f) for f in FAMILIES}
        self._label_templates = {kind: _label_template(kind) for kind in OWNERS}

    def _label_suffixes(self, family: Family) -> tuple[str, ...]:
        """Closing part of each fixed-label series: ``le="0.5"}`` or ``error_class="timeout"}``."""
        if family.buckets is not None:
            bounds = [*self.store.bounds[family.buckets], float("inf")]
            return tuple(f'le="{floatToGoString(b)}"}}' for b in bounds)  # type: ignore[no-untyped-call]
        return tuple(f'{family.label}="{v}"}}' for v in self.store.label_values(family) or ())

    def _owners(self, kind: OwnerKind) -> Owners:
        """Every owner of ``kind`` with its label set rendered, as the scrape of its families sees it:
        with what is still held at zero, for a new owner or a new key of one (:meth:`Store.scraped`).

        Label values are checked against the label pattern on ingest, so only free text needs
        escaping."""
        store = self.store
        entities = list(store.entities[kind].values())
        template = self._label_templates[kind]
        if kind.free_text:
            return [(template % tuple(map(_escape, e.labels)), e.values) for e in entities]
        if store.holding:  # new series show at zero until they may count (Store.scraped)
            holding, exposed = store.holding, store.exposed
            return [(template % e.labels, exposed(kind, e) if e in holding else e.values) for e in entities]
        return [(template % e.labels, e.values) for e in entities]

    def render(self, openmetrics: bool = False) -> bytes:
        """The whole exposition at once."""
        return b"".join(self.pieces(openmetrics))

    def pieces(self, openmetrics: bool = False) -> Iterator[bytes]:
        """The exposition in pieces of about :data:`PIECE_LINES` lines.

        The HTTP handler lets ingest run between pieces, so a big scrape never holds the
        event loop for long. Each kind's owners are listed when its first family starts, so
        an owner added, relabelled or expired meanwhile changes none of that kind's families;
        as with any exporter that renders family by family, values can be a few events apart
        from one family to the next.
        """
        lines: list[str] = []
        series = 0
        headers = self._headers[openmetrics]
        renderers = _OPENMETRICS_RENDERERS if openmetrics else _RENDERERS
        owners: Owners = []
        kind = None
        for family in FAMILIES:
            lines.append(headers[family.name])
            render, suffixes = renderers[family.shape], self._suffixes[family.name]
            if family.owner is not kind:
                kind = family.owner
                owners = self._owners(kind)
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


def _label_template(kind: OwnerKind) -> str:
    """``{agent="%s",agent_type="%s"}`` for an owner's label values; "" for an unlabelled owner.
    ``%`` with the values' tuple is several times faster than ``str.format`` or a function call."""
    return "{" + ",".join(f'{name}="%s"' for name in kind.labels) + "}" if kind.labels else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _slot(family: Family) -> int:
    assert family.slot is not None, family.name
    return family.slot


def _opener(labels: str) -> str:
    """``{agent="a",`` for a label set that gets one more label, ``{`` for none."""
    return labels[:-1] + "," if labels else "{"


def _render_constant(out: list[str], family: Family, owners: Owners, suffixes: tuple[str, ...]) -> None:
    name = family.name
    out.extend(f"{name}{labels} 1\n" for labels, _ in owners)


def _render_scalar(out: list[str], family: Family, owners: Owners, suffixes: tuple[str, ...]) -> None:
    name, slot = family.name, _slot(family)
    for labels, values in owners:
        value = values[slot]
        if value is not None:
            out.append(f"{name}{labels} {value}\n")


def _render_labelled(out: list[str], family: Family, owners: Owners, suffixes: tuple[str, ...]) -> None:
    name, slot, label = family.name, _slot(family), family.label
    for labels, slots in owners:
        values: Any = slots[slot]
        if values is None:
            continue
        head = name + _opener(labels)
        if isinstance(values, dict):
            _render_dict(out, f'{head}{label}="', values)
        else:
            out += [f"{head}{suffix} {count}\n" for suffix, count in zip(suffixes, values, strict=True)]


def _render_dict(out: list[str], head: str, values: dict[str, Any]) -> None:
    """One line per key. The fields of one report share one time (the same float), and a
    float's text is the dearest part of a line, so a value repeating the last one reuses its text."""
    shown: Any = None
    text = ""
    for key, value in values.items():
        if value is not shown:
            shown, text = value, repr(value)
        out.append(f'{head}{key}"}} {text}\n')


def _render_keyed(out: list[str], family: Family, owners: Owners, suffixes: tuple[str, ...]) -> None:
    """A dict per owner, keyed by the values of the family's keys (checked label values or
    "other"), holding a count or, with a fixed label, a list of counts."""
    name, slot = family.name, _slot(family)
    keys = ",".join(f'{key}="%s"' for key in family.keys)
    for labels, slots in owners:
        values: dict[tuple[str, ...], Any] = slots[slot]
        if not values:
            continue
        opener = name + _opener(labels)
        for key, value in values.items():
            head = opener + keys % key
            if suffixes:
                out += [f"{head},{suffix} {n}\n" for suffix, n in zip(suffixes, value, strict=True)]
            else:
                out.append(f"{head}}} {value}\n")


def _render_histogram(
    out: list[str], family: Family, owners: Owners, suffixes: tuple[str, ...], exemplars: bool = False
) -> None:
    """With ``exemplars`` (OpenMetrics only), each bucket's exemplar, where it has one."""
    bucket, count, total, slot = f"{family.name}_bucket", f"{family.name}_count", f"{family.name}_sum", _slot(family)
    for labels, values in owners:
        histogram: Histogram = values[slot]
        head = bucket + _opener(labels)
        cumulative = list(accumulate(histogram.counts))
        if exemplars and histogram.exemplars is not None:
            out += [
                f"{head}{suffix} {n}\n" if e is None else f"{head}{suffix} {n}{_exemplar(e)}\n"
                for suffix, n, e in zip(suffixes, cumulative, histogram.exemplars, strict=True)
            ]
        else:
            out += [f"{head}{suffix} {n}\n" for suffix, n in zip(suffixes, cumulative, strict=True)]
        out.append(f"{count}{labels} {cumulative[-1]}\n")
        out.append(f"{total}{labels} {histogram.sum}\n")


def _exemplar(exemplar: Exemplar) -> str:
    """`` # {trace_id="…",span_id="…"} value timestamp``. The ids are hex digits (checked on
    ingest), so nothing needs escaping."""
    trace_id, span_id, value, timestamp = exemplar
    span = "" if span_id is None else f',span_id="{span_id}"'
    return f' # {{trace_id="{trace_id}"{span}}} {value} {timestamp}'


def _render_summary(out: list[str], family: Family, owners: Owners, suffixes: tuple[str, ...]) -> None:
    count, total, slot = f"{family.name}_count", f"{family.name}_sum", _slot(family)
    for labels, values in owners:
        value_sum, value_count = values[slot]
        out.append(f"{count}{labels} {value_count}\n")
        out.append(f"{total}{labels} {value_sum}\n")


Renderer = Callable[[list[str], Family, Owners, tuple[str, ...]], None]
_RENDERERS: dict[str, Renderer] = {
    "constant": _render_constant,
    "scalar": _render_scalar,
    "labelled": _render_labelled,
    "keyed": _render_keyed,
    "histogram": _render_histogram,
    "summary": _render_summary,
}
# The Prometheus text format has no exemplars; only OpenMetrics renders them.
_OPENMETRICS_RENDERERS: dict[str, Renderer] = {**_RENDERERS, "histogram": partial(_render_histogram, exemplars=True)}
