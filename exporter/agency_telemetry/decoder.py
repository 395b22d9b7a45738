"""Decodes and validates a batch of events for one configuration; nothing here touches the store.

Every event type is a msgspec Struct in one tagged union (:mod:`events`), so JSON is decoded
and type-checked in a single pass. After that pass a short per-field check converts quantities
with units to base units, checks label values and agent types, and runs each class's cross-field
rule. The decoder either returns a fully valid batch or raises :class:`InvalidBatch` listing
every problem, with a refusal reason the HTTP layer turns into an answer (:mod:`refusals`).

When the fast pass fails, the batch is diagnosed again item by item and field by field so
that the answer lists every problem, not only the first one msgspec met.
"""

from __future__ import annotations

import math
import types
import typing
from collections.abc import Callable, Iterable
from typing import Annotated, Any, NamedTuple, Union

import msgspec
from msgspec import Struct

from .events import (
    EVENT_CLASSES,
    EVENT_TYPES,
    LABEL,
    UNKNOWN_AGENT_TYPE,
    AgentEvent,
    AgentTypeField,
    AnyEvent,
    Event,
    LabelField,
    QuantityField,
    TraceContextField,
    TracedEvent,
)
from .units import Dimension, UnitError, parse_quantity
from .validation import LABEL_CHARACTERS, LABEL_VALUE, error_location

MEDIA_TYPES = ("application/json", "application/x-ndjson")
KNOWN_LABELS_MAX = 100_000  # label values remembered as valid; the set starts over when full


# --- problems ----------------------------------------------------------------------------


class Problem(Struct):
    """One thing wrong with a batch: which event (0-based), which field, what to change."""

    index: int | None
    field: str | None
    message: str


class InvalidBatch(Exception):
    """The batch is rejected as a whole, for ``reason`` (a key of :data:`refusals.REFUSALS`)."""

    def __init__(self, reason: str, message: str, problems: list[Problem] | None = None, events: int = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.problems = problems or []
        self.events = events  # how many events the rejected batch held, where known


def _problem_from_msgspec(error: Exception, index: int | None = None) -> Problem:
    text, path_index, field = error_location(str(error))
    return Problem(index if path_index is None else path_index, field or None, text)


def check_media_type(media_type: str) -> None:
    """Raises :class:`InvalidBatch` unless the decoder reads ``media_type``."""
    if media_type not in MEDIA_TYPES:
        message = f"Content-Type {media_type or '(none)'!r} is not accepted; send {' or '.join(MEDIA_TYPES)}"
        raise InvalidBatch("unsupported_media_type", message)


# --- the decoder -------------------------------------------------------------------------

FieldCheck = Callable[[Any], Any]  # returns the converted value or raises ValueError


class EventDecoder:
    """Decodes and validates a batch for the limits and agent types of one configuration."""

    def __init__(self, agent_types: Iterable[str], max_label_length: int, max_events: int) -> None:
        self.agent_types = frozenset(agent_types) | {UNKNOWN_AGENT_TYPE}
        self.max_label_length = max_label_length
        self.max_events = max_events
        self._one: msgspec.json.Decoder[Any] = msgspec.json.Decoder(AnyEvent)
        self._many: msgspec.json.Decoder[Any] = msgspec.json.Decoder(list[AnyEvent])
        self._any: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
        self._hints = {cls: typing.get_type_hints(cls, include_extras=True) for cls in EVENT_CLASSES}
        self._checks = {cls: self._field_checks(self._hints[cls]) for cls in EVENT_CLASSES}
        self._plans = {cls: _CheckPlan.of(cls, self._hints[cls]) for cls in EVENT_CLASSES}
        self._known_labels: set[str] = set()

    # public ---------------------------------------------------------------------------

    def decode(self, body: bytes, media_type: str) -> list[Event]:
        """A fully validated batch, or :class:`InvalidBatch` listing every problem."""
        events = self._decode(body, media_type)
        if self._passes(events):
            return events
        # Diagnose from fresh values: the fast pass may have converted some quantities already.
        events = self._decode(body, media_type)
        problems = [p for index, event in enumerate(events) for p in self._post_check(index, event)]
        if problems:
            raise self._invalid(problems, len(events))
        return events

    def validate(self, items: list[dict[str, Any]]) -> tuple[list[Event | None], list[Problem]]:
        """Events built as JSON objects by another input (OTLP), each validated as if it had come
        as JSON: the event, or None and its problems. Used by inputs that keep the valid items of
        a request (OTLP's partial success) instead of refusing it whole."""
        try:
            converted: list[Event] = msgspec.convert(items, list[AnyEvent])
            if self._passes(converted):
                return list(converted), []
        except msgspec.ValidationError:
            pass
        problems: list[Problem] = []
        events: list[Event | None] = []
        for index, item in enumerate(items):
            event, found = self._diagnosed(index, item)
            problems.extend(found)
            events.append(event)
        return events, problems

    def _decode(self, body: bytes, media_type: str) -> list[Event]:
        check_media_type(media_type)
        if media_type == "application/x-ndjson":
            events = self._decode_lines(body)
            if events is not None:
                return events
            lines = [line for line in body.split(b"\n") if line.strip()]
            self._check_size(len(lines))
            return self._decode_ndjson(lines)
        events = self._decode_json(body)
        self._check_size(len(events))
        return events

    # decoding -------------------------------------------------------------------------

    def _decode_json(self, body: bytes) -> list[Event]:
        stripped = body.lstrip()
        if not stripped:
            raise InvalidBatch("malformed", "the body is empty; send one event, a JSON array or NDJSON")
        try:
            if stripped[:1] == b"[":
                events: list[Event] = self._many.decode(body)
                return events
            return [self._one.decode(body)]
        except msgspec.ValidationError:
            pass
        except msgspec.DecodeError as exc:
            raise InvalidBatch("malformed", f"the body is not valid JSON: {exc}") from None
        except UnicodeDecodeError as exc:
            raise InvalidBatch("malformed", f"the body is not valid UTF-8: {exc.reason} at byte {exc.start}") from None
        try:
            raw = self._any.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            problem = _problem_from_msgspec(exc)
            raise InvalidBatch("malformed", f"the body cannot be read: {problem.message}") from None
        items = raw if isinstance(raw, list) else [raw]
        self._check_size(len(items))
        raise self._invalid(self._diagnose(items), len(items))

    def _decode_lines(self, body: bytes) -> list[Event] | None:
        """The fast path for NDJSON: msgspec reads the lines itself; None sends the batch the
        slow way (too many lines, blank lines, a problem, or a line holding several values).

        A blank line and a line with two values in one batch would cancel out in the count;
        both values are still validated in full, so nothing invalid gets through.
        """
        lines = body.count(b"\n") + (not body.endswith(b"\n"))
        if lines > self.max_events:
            return None
        try:
            events: list[Event] = self._one.decode_lines(body)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            return None
        return events if events and len(events) == lines else None

    def _decode_ndjson(self, lines: list[bytes]) -> list[Event]:
        # One decode of the whole batch as an array is several times faster than a decode
        # per line; the count check catches a line that smuggles in several values.
        try:
            events = list(self._many.decode(b"[" + b",".join(lines) + b"]"))
            if len(events) == len(lines):
                return events
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
            pass
        items: list[Any] = []
        problems: list[Problem] = []
        for index, line in enumerate(lines):
            try:
                items.append(self._any.decode(line))
            except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
                items.append(None)
                problems.append(Problem(index, None, f"line is not a single JSON value: {exc}"))
        diagnosed = self._diagnose(items, skip={p.index for p in problems})
        raise self._invalid(sorted(problems + diagnosed, key=lambda p: p.index or 0), len(lines))

    def _check_size(self, count: int) -> None:
        if count > self.max_events:
            raise InvalidBatch(
                "batch_too_large",
                f"the batch has {count} events; at most {self.max_events} are accepted per request "
                "(limits.max_events_per_batch): split it",
                events=count,
            )
        if count == 0:
            raise InvalidBatch("malformed", "the batch holds no events")

    def _invalid(self, problems: list[Problem], count: int) -> InvalidBatch:
        bad = len({p.index for p in problems})
        return InvalidBatch(
            "invalid",
            f"{bad} of {count} events are invalid; nothing was applied. Fix the listed fields and resend the batch",
            problems,
            events=count,
        )

    # checks after decoding ----------------------------------------------------------

    def _field_checks(self, hints: dict[str, Any]) -> list[tuple[str, FieldCheck]]:
        checks = []
        for name, hint in hints.items():
            marker = _marker_of(hint)
            if isinstance(marker, QuantityField):
                checks.append((name, _quantity_check(marker)))
            elif isinstance(marker, AgentTypeField):
                checks.append((name, self._check_agent_type))
            elif isinstance(marker, LabelField):
                checks.append((name, self._check_label))
            elif _is_label_list(hint):
                checks.append((name, self._check_labels))
        return checks

    def _passes(self, events: list[Event]) -> bool:
        """The checks of :meth:`_post_check` without explanations, converting quantities.

        This is the per-event hot path: label values are checked once and then remembered,
        and it stops at the first problem, leaving the explaining to the slow path. The
        ``agent`` and ``agent_type`` of agent events (nine in ten) are read as attributes,
        much faster than ``getattr`` by name; the ``if`` before each loop skips making an
        iterator for the (mostly empty) tuples of other fields.
        """
        known, agent_types, plans = self._known_labels, self.agent_types, self._plans
        for event in events:
            agent_fields, labels, label_lists, agent_type_fields, quantities, traced, cross_field = plans[type(event)]
            if agent_fields:
                agent_event: AgentEvent = event  # type: ignore[assignment]
                if agent_event.agent not in known and not self._learn_label(agent_event.agent):
                    return False
                agent_type = agent_event.agent_type
                if agent_type is not None and agent_type not in agent_types:
                    return False
            if labels:
                for name in labels:
                    value = getattr(event, name)
                    if value is not None and value not in known and not self._learn_label(value):
                        return False
            if label_lists:
                for name in label_lists:
                    if not all(value in known or self._learn_label(value) for value in getattr(event, name)):
                        return False
            if agent_type_fields:
                for name in agent_type_fields:
                    value = getattr(event, name)
                    if value is not None and value not in agent_types:
                        return False
            if quantities:
                for name, dimension, factor, upper in quantities:
                    value = getattr(event, name)
                    if value is None:
                        continue
                    if type(value) is str:
                        try:
                            value = parse_quantity(dimension, value)
                        except UnitError:
                            return False
                    else:
                        value *= factor
                    if not 0.0 <= value <= upper:  # also False for NaN
                        return False
                    setattr(event, name, value)
            if traced:
                traced_event: TracedEvent = event  # type: ignore[assignment]
                if traced_event.span_id is not None and traced_event.trace_id is None:
                    return False
            if cross_field and next(iter(event.cross_field_problems()), None) is not None:
                return False
        return True

    def _learn_label(self, value: str) -> bool:
        """Checks a label value seen for the first time (rare: not worth a second copy of the rules)."""
        try:
            self._check_label(value)
        except ValueError:
            return False
        if len(self._known_labels) >= KNOWN_LABELS_MAX:
            self._known_labels.clear()
        self._known_labels.add(value)
        return True

    def _post_check(self, index: int, event: Event) -> list[Problem]:
        problems = []
        for name, check in self._checks[type(event)]:
            value = getattr(event, name)
            if value is None:
                continue
            try:
                setattr(event, name, check(value))
            except ValueError as exc:
                problems.append(Problem(index, name, str(exc)))
        if not problems:
            problems.extend(Problem(index, name, message) for name, message in event.cross_field_problems())
        return problems

    def _check_label(self, value: str) -> str:
        if LABEL_VALUE.match(value) is None:
            raise ValueError(f"{value!r} is not a valid label value: use only {LABEL_CHARACTERS}")
        if len(value) > self.max_label_length:
            raise ValueError(
                f"is {len(value)} characters long; at most {self.max_label_length} are allowed "
                "(limits.max_label_length)"
            )
        return value

    def _check_labels(self, values: list[str]) -> list[str]:
        return [self._check_label(value) for value in values]

    def _check_agent_type(self, value: str) -> str:
        if value not in self.agent_types:
            allowed = ", ".join(sorted(self.agent_types))
            raise ValueError(f"unknown agent type {value!r}; configured agent_types are: {allowed}")
        return value

    # diagnosis of a batch that failed the fast pass -----------------------------------

    def _diagnose(self, items: list[Any], skip: Iterable[int | None] = ()) -> list[Problem]:
        skipped = set(skip)
        return [p for index, item in enumerate(items) if index not in skipped for p in self._diagnosed(index, item)[1]]

    def _diagnosed(self, index: int, item: Any) -> tuple[Event | None, list[Problem]]:
        """The item as a valid event and no problems, or None and every problem it has."""
        if not isinstance(item, dict):
            return None, [Problem(index, None, f"expected a JSON object, got {type(item).__name__}")]
        kind = item.get("type")
        if not isinstance(kind, str) or kind not in EVENT_TYPES:  # a list or object is not hashable
            known = ", ".join(EVENT_TYPES)
            what = "is missing" if kind is None else f"{kind!r} is not an event type"
            return None, [Problem(index, "type", f"{what}; use one of: {known}")]
        cls = EVENT_TYPES[kind]
        hints = self._hints[cls]
        problems = [
            Problem(index, name, f"unknown field; {kind} accepts: {', '.join(hints)}")
            for name in item
            if name != "type" and name not in hints
        ]
        for field in msgspec.structs.fields(cls):
            if field.required and field.name not in item:
                problems.append(Problem(index, field.name, "required field is missing"))
        checks = dict(self._checks[cls])
        for name, value in item.items():
            if name not in hints:
                continue
            try:
                converted = msgspec.convert(value, hints[name])
                if name in checks and converted is not None:
                    checks[name](converted)
            except msgspec.ValidationError as exc:
                problems.append(Problem(index, name, _explain_type_error(exc, hints[name], value)))
            except ValueError as exc:
                problems.append(Problem(index, name, str(exc)))
        if problems:
            return None, problems
        try:
            event = msgspec.convert(item, AnyEvent)
        except msgspec.ValidationError as exc:  # pragma: no cover - every field passed on its own
            return None, [_problem_from_msgspec(exc, index)]
        problems = self._post_check(index, event)
        return (None, problems) if problems else (event, [])


class _CheckPlan(NamedTuple):
    """Which fields of one event class the fast pass checks, and how (a tuple, to unpack at once)."""

    agent_fields: bool  # an AgentEvent: its agent and agent_type are not among the names below
    labels: tuple[str, ...]
    label_lists: tuple[str, ...]
    agent_types: tuple[str, ...]
    quantities: tuple[tuple[str, Dimension, float, float], ...]  # name, dimension, default factor, upper
    traced: bool  # a TracedEvent: its rule (span_id only with trace_id) is checked inline, not below
    cross_field: bool  # a rule of the class's own, checked through cross_field_problems

    @classmethod
    def of(cls, event_class: type[Event], hints: dict[str, Any]) -> _CheckPlan:
        agent_fields = issubclass(event_class, AgentEvent)
        markers = {
            name: _marker_of(hint)
            for name, hint in hints.items()
            if not (agent_fields and name in ("agent", "agent_type"))
        }
        return cls(
            agent_fields=agent_fields,
            labels=tuple(name for name, marker in markers.items() if marker is LABEL),
            label_lists=tuple(name for name in markers if _is_label_list(hints[name])),
            agent_types=tuple(name for name, marker in markers.items() if isinstance(marker, AgentTypeField)),
            quantities=tuple(
                (name, marker.dimension, marker.dimension.default_factor, marker.upper)
                for name, marker in markers.items()
                if isinstance(marker, QuantityField)
            ),
            traced=issubclass(event_class, TracedEvent),
            cross_field=event_class.cross_field_problems not in _INLINE_CROSS_FIELD,
        )


# Rules the fast pass checks without a generator per event (most events are traced ones).
_INLINE_CROSS_FIELD = (Event.cross_field_problems, TracedEvent.cross_field_problems)


def _marker_of(hint: Any) -> object | None:
    """The post-check marker inside ``Annotated[...]``, also when wrapped in ``X | None``."""
    if typing.get_origin(hint) is Annotated:
        for extra in hint.__metadata__:
            if isinstance(extra, LabelField | AgentTypeField | QuantityField | TraceContextField):
                return extra
        return None
    if typing.get_origin(hint) in (Union, types.UnionType):
        for arg in typing.get_args(hint):
            marker = _marker_of(arg)
            if marker is not None:
                return marker
    return None


def _is_label_list(hint: Any) -> bool:
    if typing.get_origin(hint) is Annotated:
        hint = typing.get_args(hint)[0]
    return typing.get_origin(hint) is list and _marker_of(typing.get_args(hint)[0]) is LABEL


def _quantity_check(quantity: QuantityField) -> FieldCheck:
    dimension, upper = quantity.dimension, quantity.upper
    default_factor = dimension.default_factor

    def check(value: float | str) -> float:
        if isinstance(value, str):
            try:
                converted = parse_quantity(dimension, value)
            except UnitError as exc:
                raise ValueError(str(exc)) from None
        else:
            converted = value * default_factor
        if not (0.0 <= converted <= upper) or math.isnan(converted):
            raise ValueError(
                f"{value!r} is out of range: give {dimension.example}, from 0 to {upper:g} {dimension.base_unit}s"
            )
        return converted

    return check


def _explain_type_error(error: msgspec.ValidationError, hint: Any, value: Any) -> str:
    marker = _marker_of(hint)
    message = str(error)
    if isinstance(marker, TraceContextField):
        # msgspec's message would show the regex; say what a valid id looks like instead
        wrong = f"{value!r} is not a valid {marker.name}" if isinstance(value, str) else message
        return f"{wrong}: give {marker.digits} lowercase hex digits, not all zero (W3C trace context)"
    if isinstance(marker, QuantityField):
        return f"{message}: give {marker.dimension.example}"
    if isinstance(marker, LabelField | AgentTypeField):
        return f"{message}: use only {LABEL_CHARACTERS}"
    return message
