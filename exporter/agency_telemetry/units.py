"""Quantities with units: ``"1.5 s"``, ``"1500 ms"``, ``"512 MiB"``, ``"85 %"``.

pint is slow (tens of microseconds per parse), so it is asked once per distinct unit string
and the resulting factor is cached; whole quantity strings are cached too, because agents
tend to send the same few values. Nothing here is parsed twice on the hot path.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import pint

_REGISTRY: Any = pint.UnitRegistry(cache_folder=None)
_NUMBER_THEN_UNIT = re.compile(r"\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*")
_QUANTITY_CACHE_SIZE = 4096
# Prometheus writes minutes as "m"; to pint "m" is a metre. For durations, side with Prometheus.
_PROMETHEUS_TIME_UNITS = {"m": "minute", "d": "day", "w": "week", "y": "year"}


class UnitError(ValueError):
    """A quantity string that cannot be read as the wanted kind of quantity."""


@dataclass(frozen=True)
class Dimension:
    """A kind of quantity, its base unit, and the unit a bare number is read in."""

    name: str  # "duration", "size", "ratio"
    base_unit: str  # what the exporter stores: seconds, bytes, a 0..1 ratio
    default_unit: str  # what a bare number means
    base_units_of_kind: str  # pint base units every accepted unit reduces to
    example: str  # how to write one, for error messages

    @property
    def default_factor(self) -> float:
        return unit_factor(self, self.default_unit)


DURATION = Dimension("duration", "second", "millisecond", "second", 'milliseconds, or "1500 ms", "1.5 s"')
SIZE = Dimension("size", "byte", "byte", "bit", 'bytes, or "512 MiB"')
RATIO = Dimension("ratio", "dimensionless", "dimensionless", "dimensionless", 'a ratio 0..1, or "85 %"')
SECONDS = Dimension("duration", "second", "second", "second", 'seconds, or "30s", "24h"')


@lru_cache(maxsize=256)
def unit_factor(dimension: Dimension, unit: str) -> float:
    """Factor that turns a number in ``unit`` into the dimension's base unit (cached)."""
    if dimension.base_units_of_kind == "second":
        unit = _PROMETHEUS_TIME_UNITS.get(unit, unit)
    try:
        parsed = _REGISTRY.Unit(unit)
    except (pint.errors.UndefinedUnitError, pint.errors.DefinitionSyntaxError, ValueError, TypeError):
        raise UnitError(f"unknown unit {unit!r}") from None
    except Exception as exc:  # pint raises assorted errors on odd input
        raise UnitError(f"unreadable unit {unit!r} ({exc})") from None
    reduced = (1 * parsed).to_base_units()
    if str(reduced.units) != dimension.base_units_of_kind:
        raise UnitError(f"{unit!r} is not a unit of {dimension.name}; give {dimension.example}")
    return float(_REGISTRY.Quantity(1, parsed).to(dimension.base_unit).magnitude)


@lru_cache(maxsize=_QUANTITY_CACHE_SIZE)
def parse_quantity(dimension: Dimension, text: str) -> float:
    """Read ``"<number> [unit]"`` as a finite number in the dimension's base unit."""
    match = _NUMBER_THEN_UNIT.fullmatch(text)
    if match is None:
        raise UnitError(f"{text!r} is not a number with an optional unit; give {dimension.example}")
    number, unit = match.groups()
    factor = unit_factor(dimension, unit) if unit else dimension.default_factor
    value = float(number) * factor
    if not math.isfinite(value):
        raise UnitError(f"{text!r} is out of range")
    return value
