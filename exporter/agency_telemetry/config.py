"""Configuration: a YAML file whose every key has a default, so no file is needed at all.

Unknown keys and bad values are rejected with the key path and what is allowed. Durations
(``"30s"``, ``"24h"``) and sizes (``"10 MiB"``) are read with units; a bare number is in
seconds or bytes. The README's configuration table lists every key.
"""

from __future__ import annotations

import itertools
import re
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar

import msgspec
import yaml
from msgspec import Meta, Struct

from .units import SECONDS, SIZE, UnitError, parse_quantity
from .validation import ID_PATTERN, error_location

DEFAULT_PORT = 9477
T = TypeVar("T", bound=Struct)

Positive = Annotated[int, Meta(ge=1)]
Name = Annotated[str, Meta(pattern=ID_PATTERN, max_length=64)]


class Seconds(float):
    """A duration setting: seconds, or a string with a unit ("30s", "10m", "24h")."""


class SecondsOrZero(Seconds):
    """A duration setting where 0 turns its feature off."""


class ByteSize(int):
    """A size setting: bytes, or a string with a unit ("16 MiB")."""


def _decode_setting(kind: type, value: Any) -> Any:
    """msgspec hook that reads :class:`Seconds` and :class:`ByteSize` values with units."""
    dimension = {Seconds: SECONDS, SecondsOrZero: SECONDS, ByteSize: SIZE}.get(kind)
    if dimension is None:
        raise NotImplementedError(kind)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number or a string with a unit, got {type(value).__name__}")
    try:
        converted = parse_quantity(dimension, value) if isinstance(value, str) else float(value)
    except UnitError as exc:
        raise ValueError(str(exc)) from None
    if converted < 0 or (converted == 0 and kind is not SecondsOrZero):
        raise ValueError(f"must be {'0 or more' if kind is SecondsOrZero else 'above 0'}, got {value!r}")
    return kind(converted)


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and what is allowed."""


class _Section(Struct, kw_only=True, forbid_unknown_fields=True):
    pass


class Limits(_Section):
    max_agents: Positive = 10_000
    max_councils: Positive = 1_000
    max_queues: Positive = 1_000
    max_principles: Positive = 100
    max_active_alerts: Positive = 1_000
    # Distinct (provider, model) pairs and tools agents may name; past them an LLM request or
    # tool call still counts, under provider/model/tool "other" (agency_exporter_overflow_total).
    max_models: Positive = 100
    max_tools: Positive = 200
    max_label_length: Annotated[int, Meta(ge=1, le=1024)] = 128
    max_events_per_batch: Positive = 10_000
    max_body_size: ByteSize = ByteSize(16 * 2**20)
    # Ingest requests in flight at once (reading, decoding, applying); more get 503 and retry.
    # Bounds memory to about max_concurrent_ingest x max_body_size.
    max_concurrent_ingest: Positive = 64
    # A connection must send a complete request header within this time of opening or of its
    # previous response, else it is closed: slow or idle clients cannot hold connections.
    idle_timeout: Seconds = Seconds(60)
    # An ingest body must arrive within this time once its header has (408 otherwise).
    body_timeout: Seconds = Seconds(60)


class Expiry(_Section):
    agent_ttl: Seconds = Seconds(3600)
    alert_ttl: Seconds = Seconds(86400)
    dedup_window: Seconds = Seconds(600)
    dedup_max_ids: Positive = 100_000
    sweep_interval: Seconds = Seconds(10)
    # A new owner's counters, histograms and summaries (and a new label value of them, such as an
    # agent's first model) are exposed at zero until a scrape has shown them at zero and they are
    # this old; their first increments show at the next scrape after that. Prometheus assumes
    # nothing about where a new series starts, so a series first seen above zero loses its first
    # increase to rate() and increase(). Every scraper scraping at least this often (both servers
    # of an HA pair) sees the zero. 0: values show at once.
    new_series_hold: SecondsOrZero = SecondsOrZero(30)


Buckets = Annotated[tuple[Annotated[float, Meta(ge=0)], ...], Meta(min_length=1, max_length=64)]


class HistogramBuckets(_Section):
    """Upper bounds (``le``) of each histogram, in the metric's base unit."""

    task_duration_seconds: Buckets = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
    consensus_formation_seconds: Buckets = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120)
    debate_rounds: Buckets = (1, 2, 3, 4, 5, 7, 10)
    workflow_task_quality_score: Buckets = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1)
    queue_wait_seconds: Buckets = (0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600)
    # The OpenTelemetry GenAI conventions' bounds of gen_ai.client.operation.duration.
    llm_request_duration_seconds: Buckets = (
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92
    )  # fmt: skip
    tool_call_duration_seconds: Buckets = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

    def __post_init__(self) -> None:
        for name in self.__struct_fields__:
            bounds = getattr(self, name)
            if any(a >= b for a, b in itertools.pairwise(bounds)):
                raise ValueError(f"{name}: bucket bounds must be strictly increasing, got {bounds}")


class ErrorClass(_Section):
    """Failure reasons matching ``pattern`` (a case-insensitive regex) get ``error_class: name``."""

    name: Name
    pattern: str

    def __post_init__(self) -> None:
        try:
            re.compile(self.pattern)
        except re.error as exc:
            raise ValueError(
                f"pattern {self.pattern!r} of error class {self.name!r} is not a valid regex: {exc}"
            ) from None


PerMillion = Annotated[float, Meta(ge=0, le=1e6)]  # USD per million tokens


class Price(_Section):
    """What a model costs, in USD per million tokens; ``model`` and ``provider`` are shell patterns
    (``gpt-4o*``), and the first entry of ``pricing`` that matches a request prices it.

    ``input`` is charged for input tokens that are not cached, ``cache_read`` and ``cache_write``
    for the cached ones (at ``input`` when not given); ``output`` for output tokens that are not
    reasoning tokens, ``reasoning`` for those (at ``output`` when not given)."""

    model: Annotated[str, Meta(min_length=1)]
    input: PerMillion
    output: PerMillion
    provider: Annotated[str, Meta(min_length=1)] | None = None
    cache_read: PerMillion | None = None
    cache_write: PerMillion | None = None
    reasoning: PerMillion | None = None


class AgentTypeRule(_Section):
    """OpenTelemetry agents whose name matches ``agent`` (a shell pattern) are of ``type``, unless
    their spans or resource say otherwise (``agency.agent.type``)."""

    agent: Annotated[str, Meta(min_length=1)]
    type: Name


class Otlp(_Section):
    # An LLM or tool span waits this long for the invoke_agent span it belongs to: children end,
    # and are exported, before their parent, often in an earlier request. Past it the span counts
    # for its own gen_ai.agent.name, else its service.name.
    attribution_hold: Seconds = Seconds(30)
    # Spans (and the parent links of their traces) held at once; past it the oldest are counted
    # at once under their fallback agent. Bounds memory to about 300 bytes each.
    max_held_spans: Positive = 100_000
    agent_types: Annotated[list[AgentTypeRule], Meta(max_length=256)] = []
    # OTLP metrics (gen_ai.client.*) from a service that sent GenAI spans within this window are
    # not counted: the spans already were, with their agent (an app exporting both counts once).
    spans_win_window: Seconds = Seconds(600)
    # Cumulative OTLP metric streams (service, metric, attributes) whose last point is kept to
    # turn the next into an increment; points of new streams past it are rejected.
    max_metric_streams: Positive = 10_000


class PersistenceSettings(_Section):
    # The snapshot file; its journal segments and temporary file are written beside it. None:
    # nothing survives a restart (counters restart from 0, which rate() reads as a reset).
    file: str | None = None
    # How often the whole state is written. Every acknowledged batch is also journalled at once,
    # so this bounds the journal's size, the replay at start and what a power loss costs, not
    # what a killed process loses (nothing).
    interval: Seconds = Seconds(60)


DEFAULT_ERROR_CLASSES = [
    ErrorClass(name="timeout", pattern=r"time(d)?[ _-]?out|deadline"),
    ErrorClass(name="rate_limited", pattern=r"rate[ _-]?limit|too many requests|\b429\b|quota"),
    ErrorClass(name="network", pattern=r"network|connection|unreachable|dns|socket|reset by peer"),
    ErrorClass(name="validation", pattern=r"invalid|validation|schema|malformed|parse"),
    ErrorClass(name="model", pattern=r"model|llm|token|context length|hallucinat|inference"),
    ErrorClass(name="tool", pattern=r"tool|plugin|function call"),
    ErrorClass(name="internal", pattern=r"internal|panic|exception|assert|bug"),
]
FALLBACK_ERROR_CLASS = "other"


class Config(_Section):
    listen: str = f"0.0.0.0:{DEFAULT_PORT}"
    agent_types: Annotated[tuple[Name, ...], Meta(min_length=1, max_length=64)] = (
        "constitutional_judge",
        "worker",
        "researcher",
        "orchestrator",
    )
    limits: Limits = msgspec.field(default_factory=Limits)
    expiry: Expiry = msgspec.field(default_factory=Expiry)
    buckets: HistogramBuckets = msgspec.field(default_factory=HistogramBuckets)
    error_classes: Annotated[list[ErrorClass], Meta(max_length=32)] = msgspec.field(
        default_factory=lambda: list(DEFAULT_ERROR_CLASSES)
    )
    # Prices of the models agents call, for agency_agent_llm_cost_usd_total; none by default
    # (prices change: see examples/pricing.yaml). A request that carries its own cost keeps it.
    pricing: Annotated[list[Price], Meta(max_length=1000)] = []
    otlp: Otlp = msgspec.field(default_factory=Otlp)
    persistence: PersistenceSettings = msgspec.field(default_factory=PersistenceSettings)
    shutdown_timeout: Seconds = Seconds(10)
    shutdown_grace: SecondsOrZero = SecondsOrZero(0)  # 0: no wait for a last scrape
    web_config_file: str | None = None  # exporter-toolkit web configuration: TLS, basic auth
    ingest_tokens_file: str | None = None  # bearer tokens allowed to POST /v1/events

    def __post_init__(self) -> None:
        parse_listen(self.listen)
        names = [c.name for c in self.error_classes]
        if len(set(names)) != len(names) or FALLBACK_ERROR_CLASS in names:
            raise ValueError(f"error_classes: names must be unique and not {FALLBACK_ERROR_CLASS!r}, got {names}")
        for rule in self.otlp.agent_types:
            if rule.type not in self.agent_types:
                raise ValueError(
                    f"otlp.agent_types: {rule.type!r} (for {rule.agent!r}) is not one of agent_types: "
                    + ", ".join(self.agent_types)
                )

    @property
    def error_class_names(self) -> list[str]:
        return [c.name for c in self.error_classes] + [FALLBACK_ERROR_CLASS]


def parse_listen(listen: str) -> tuple[str, int]:
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ValueError(f"listen: {listen!r} is not HOST:PORT (e.g. 127.0.0.1:{DEFAULT_PORT} or :{DEFAULT_PORT})")
    return host.strip("[]") or "0.0.0.0", int(port)


def load_config(path: str | Path | None) -> Config:
    """The configuration in ``path`` (defaults for everything it leaves out), or defaults.

    Files it names by a relative path are found next to it, wherever the exporter is started."""
    if path is None:
        return Config()
    config = load_yaml(path, Config, "configuration file")
    directory = Path(path).parent
    resolved = {
        key: str(directory / value)
        for key in ("web_config_file", "ingest_tokens_file")
        if (value := getattr(config, key)) is not None
    }
    config = msgspec.structs.replace(config, **resolved)
    if config.persistence.file is not None:
        persistence = msgspec.structs.replace(config.persistence, file=str(directory / config.persistence.file))
        config = msgspec.structs.replace(config, persistence=persistence)
    return config


def load_yaml(path: str | Path, root: type[T], what: str) -> T:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what}: {exc.strerror}") from None
    return parse_yaml(text, str(path), root)


def parse_config(text: str, source: str = "<config>") -> Config:
    return parse_yaml(text, source, Config)


def with_overrides(config: Config, overrides: dict[str, Any], source: str) -> Config:
    """``config`` with the settings of ``overrides`` (a section's as a dict; None: not given),
    each checked as the file's would be."""
    changes: dict[str, Any] = {}
    for key, value in overrides.items():
        if isinstance(value, dict):
            given = {name: setting for name, setting in value.items() if setting is not None}
            if given:
                changes[key] = _section_with(getattr(config, key), given, f"{source}: {key}")
        elif value is not None:
            changes[key] = value
    return msgspec.structs.replace(config, **changes) if changes else config


def _section_with(section: T, given: dict[str, Any], where: str) -> T:
    data = {name: getattr(section, name) for name in section.__struct_fields__} | given
    try:
        return msgspec.convert(data, type(section), dec_hook=_decode_setting, strict=False)
    except msgspec.ValidationError as exc:
        text, _, path = error_location(str(exc))
        raise ConfigError(f"{where}.{path.lstrip('$.')}: {text}") from None


def parse_yaml(text: str, source: str, root: type[T]) -> T:
    """``text`` read as the settings struct ``root``: strict keys, units, key-path errors.

    Shared by every file the exporter reads (configuration, web configuration, ingest tokens)
    so they all reject mistakes the same way."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping of keys, got {type(data).__name__}")
    return _converted(data, source, root)


def _converted(data: dict[str, Any], source: str, root: type[T]) -> T:
    try:
        return msgspec.convert(data, root, dec_hook=_decode_setting)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"{source}: {_readable(str(exc), root)}") from None


def _readable(message: str, root: type[Struct]) -> str:
    """msgspec says ``... - at `$.limits.max_agents```; lead with the key path instead."""
    text, _, path = error_location(message)
    if text.startswith("Object contains unknown field"):
        section = _section_at(path, root)
        if section is not None:
            text += f"; allowed keys here: {', '.join(section.__struct_fields__)}"
    return f"{path}: {text}" if path else text


def _section_at(path: str, root: type[Struct]) -> type[Struct] | None:
    """The settings section type at a msgspec path like ``limits`` or ``error_classes[2]``."""
    section: type[Struct] = root
    for key in filter(None, re.sub(r"\[\d+\]", "", path).split(".")):
        hint = typing.get_type_hints(section).get(key)
        candidate = typing.get_args(hint)[0] if typing.get_origin(hint) in (list, tuple) else hint
        if not (isinstance(candidate, type) and issubclass(candidate, Struct)):
            return None
        section = candidate
    return section
