"""Whom series belong to: the kinds of owner, with their labels, limit, lifetime and token scope.

Events name owners (:attr:`events.Event.owners`), the store tracks them, tokens scope them,
the exposition labels their series and the self-metrics count them, all from this one table,
so a new kind of owner or a new event naming one cannot be missed by any of them.
"""

from __future__ import annotations

from dataclasses import dataclass

FLEET = "fleet"  # the scope of owners no id pattern can select: the token needs `fleet: true`


@dataclass(frozen=True, eq=False)
class OwnerKind:
    name: str  # the `kind` label of agency_exporter_tracked and agency_exporter_expired_total
    labels: tuple[str, ...]  # label names of its series, in the order they are rendered
    limit: str | None = None  # the Limits setting bounding how many are tracked at once
    ttl: str | None = None  # the Expiry setting: silent longer than this, it is removed with its series
    scope: str | None = None  # the tokens-file key listing the ids a token may name, or FLEET
    free_text: bool = False  # some label values are free text and need escaping
    # Past the limit, refuse the batch (429), or count the event under the label value OTHER.
    # Agents name models and tools freely, and one more model must not lose a task's figures.
    overflow: bool = False

    @property
    def limit_reason(self) -> str:
        """The refusal reason when a batch would pass the limit: ``agents_limit``."""
        assert self.limit is not None, self.name
        return f"{self.limit.removeprefix('max_')}_limit"


AGENT = OwnerKind("agent", ("agent", "agent_type"), limit="max_agents", ttl="agent_ttl", scope="agents")
COUNCIL = OwnerKind("council", ("council",), limit="max_councils", ttl="agent_ttl", scope="councils")
QUEUE = OwnerKind("queue", ("queue",), limit="max_queues", ttl="agent_ttl", scope="queues")
ALERT = OwnerKind(
    "alert",
    ("alert_id", "alert_type", "severity", "affected_agents", "message"),
    limit="max_active_alerts",
    ttl="alert_ttl",
    scope=FLEET,
    free_text=True,
)
# A principle is a label value of its council's violation counter, not an owner of series of its
# own; it is bounded because agents name it, and is covered by its council's scope.
PRINCIPLE = OwnerKind("principle", ("principle",), limit="max_principles")
WORKFLOW = OwnerKind("workflow", (), scope=FLEET)  # the one, unlabelled owner of the business series
# An LLM (provider and model) and a tool that agents call: the owners of the latency histograms,
# and the bound on the provider, model and tool labels of the agents' LLM and tool series.
MODEL = OwnerKind("model", ("provider", "model"), limit="max_models", ttl="agent_ttl", overflow=True)
TOOL = OwnerKind("tool", ("tool",), limit="max_tools", ttl="agent_ttl", overflow=True)
OTHER = "other"  # the label value of whatever is past an overflowing kind's limit

OWNERS: tuple[OwnerKind, ...] = (AGENT, COUNCIL, QUEUE, ALERT, PRINCIPLE, WORKFLOW, MODEL, TOOL)
LIMITED: tuple[OwnerKind, ...] = tuple(k for k in OWNERS if k.limit is not None and not k.overflow)  # refuse
CAPPED: tuple[OwnerKind, ...] = tuple(k for k in OWNERS if k.overflow)  # fold into OTHER
EXPIRING: tuple[OwnerKind, ...] = tuple(kind for kind in OWNERS if kind.ttl is not None)
