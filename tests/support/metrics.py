"""Reading an exposition in tests: every sample by name and labels."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text exposition, keyed by name and label set."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(text: str, name: str, **labels: str) -> float | None:
    return samples(text).get((name, frozenset(labels.items())))


def agent_samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Samples of the agent/council/queue/workflow/alert series, without the exporter's own."""
    return {key: v for key, v in samples(text).items() if not key[0].startswith("agency_exporter_")}
