"""Reading OpenTelemetry attributes the way the GenAI semantic conventions spell them, for the
span and the metrics mappings alike: scalar values, the provider and model of an inference,
the agent type rules."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable
from typing import Any

from .config import Config
from .decoder import Problem

AGENT_TYPE_KEY = "agency.agent.type"
UNKNOWN = "unknown"  # provider or model of an inference that names neither

_SCALARS = frozenset(("string_value", "bool_value", "int_value", "double_value"))


def attributes(pairs: Iterable[Any]) -> dict[str, Any]:
    """OTLP key-value pairs as a dict of their scalar values (arrays and maps are left out)."""
    found = {}
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind in _SCALARS:
            found[pair.key] = getattr(value, kind)
    return found


def text(value: Any) -> str | None:
    """A non-empty string attribute, else None."""
    return value if isinstance(value, str) and value else None


def whole(value: Any) -> Any:
    """A count sent as a double (some SDKs do) as an int when it is whole."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


PROVIDER_KEYS = ("gen_ai.provider.name", "gen_ai.system")  # the deprecated name is accepted
MODEL_KEYS = ("gen_ai.response.model", "gen_ai.request.model")  # the model that answered, else the one asked


def provider_and_model(attrs: dict[str, Any]) -> tuple[str, str]:
    """The first of :data:`PROVIDER_KEYS` and of :data:`MODEL_KEYS` given, else ``unknown``."""
    return _first(attrs, PROVIDER_KEYS), _first(attrs, MODEL_KEYS)


def _first(attrs: dict[str, Any], keys: tuple[str, ...]) -> str:
    return next((found for key in keys if (found := text(attrs.get(key)))), UNKNOWN)


def describe(problem: Problem) -> str:
    return f"{problem.field}: {problem.message}" if problem.field else problem.message


class AgentTypes:
    """An agent's type: ``agency.agent.type`` on the item or its resource, else the first
    ``otlp.agent_types`` rule whose pattern matches its name, else None (unknown)."""

    def __init__(self, config: Config) -> None:
        self._rules = [(re.compile(fnmatch.translate(rule.agent)).match, rule.type) for rule in config.otlp.agent_types]

    def of(self, agent: str | None, attrs: dict[str, Any], resource: dict[str, Any]) -> str | None:
        declared = text(attrs.get(AGENT_TYPE_KEY)) or text(resource.get(AGENT_TYPE_KEY))
        if declared is not None or agent is None:
            return declared
        return self.of_name(agent)

    def of_name(self, agent: str) -> str | None:
        """The type of the first rule whose pattern matches ``agent``, else None."""
        for matches, agent_type in self._rules:
            if matches(agent):
                return agent_type
        return None
