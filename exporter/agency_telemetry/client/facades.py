"""One-line calls in the product's own vocabulary, on top of either client.

    tracker = AgentPerformanceTracker("judge-1", "constitutional_judge", client)
    tracker.record_task_completion(1500)          # milliseconds, as in the product
    with tracker.task():                          # task_started, then completed or failed
        judge(case)

    monitor = HealthMonitor(client)
    monitor.register_agent("judge-1", "constitutional_judge")
    monitor.update_coordination_metrics("ethics", 2000, True, False, True)
    monitor.update_business_metrics(True, 0.95, 0.08)
    alert_id = monitor.add_alert("agent_performance", "warning", "Agent performance degraded", ["judge-1"])

Both work with :class:`Client` and :class:`AsyncClient` alike: they only call ``send``,
which queues and returns at once.
"""

from __future__ import annotations

import functools
import inspect
import json
import threading
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class Sender(Protocol):
    def send(self, event: dict[str, Any]) -> str: ...


class _Task:
    """Times one task; a sync and an async context manager. An exception's class is the reason."""

    def __init__(self, tracker: AgentPerformanceTracker, trace_id: str | None, span_id: str | None) -> None:
        self.tracker = tracker
        self.quality_score: float | None = None  # set inside the block to report it
        self.cost: float | None = None
        self.trace_id = trace_id  # may be set inside the block too, once the span is known
        self.span_id = span_id
        self._started = 0.0

    def __enter__(self) -> _Task:
        self.tracker.task_started()
        self._started = time.perf_counter()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        trace = {"trace_id": self.trace_id, "span_id": self.span_id}
        if kind is None:
            self.tracker.record_task_completion(elapsed_ms, quality_score=self.quality_score, cost=self.cost, **trace)
        else:
            self.tracker.record_task_failure(kind.__name__, duration_ms=elapsed_ms, **trace)

    async def __aenter__(self) -> _Task:
        return self.__enter__()

    async def __aexit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: object) -> None:
        self.__exit__(kind, error, tb)


class AgentPerformanceTracker:
    """One agent's tasks: the product's ``AgentPerformanceTracker``.

    Task, LLM and tool records take an optional W3C ``trace_id`` (32 hex digits) and
    ``span_id`` (16): the exporter keeps the latest per histogram bucket as its exemplar.
    """

    def __init__(self, agent_id: str, agent_type: str, client: Sender) -> None:
        self.agent_id = agent_id
        self.agent_type = agent_type
        self.client = client
        # Tasks started and not yet ended through this tracker: sent with each heartbeat, so the
        # exporter's count heals after it restarted or missed an event.
        self.active_tasks = 0
        # The registered capacity, repeated in each heartbeat: an exporter replica the agent
        # moves to (failover, a load balancer) learns it without seeing the registration.
        self.capacity: int | None = None
        self._lock = threading.Lock()

    def _send(self, kind: str, **fields: Any) -> str:
        event = {"type": kind, "agent": self.agent_id, "agent_type": self.agent_type}
        event.update((k, v) for k, v in fields.items() if v is not None)
        return self.client.send(event)

    def register(self, capacity: int = 1) -> str:
        self.capacity = capacity
        return self._send("agent_registered", capacity=capacity)

    def task_started(self) -> str:
        self._count(+1)
        return self._send("task_started")

    def _count(self, change: int) -> None:
        with self._lock:
            self.active_tasks = max(0, self.active_tasks + change)

    def record_task_completion(
        self,
        duration_ms: float,
        quality_score: float | None = None,
        cost: float | None = None,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> str:
        self._count(-1)
        return self._send(
            "task_completed",
            duration=duration_ms,
            quality_score=quality_score,
            cost=cost,
            trace_id=trace_id,
            span_id=span_id,
        )

    def record_task_failure(
        self, reason: str, duration_ms: float | None = None, *, trace_id: str | None = None, span_id: str | None = None
    ) -> str:
        self._count(-1)
        return self._send("task_failed", reason=reason, duration=duration_ms, trace_id=trace_id, span_id=span_id)

    def heartbeat(
        self,
        cpu: float | None = None,
        memory: float | str | None = None,
        queue_depth: int | None = None,
        active_tasks: int | None = None,
    ) -> str:
        """The agent's figures; ``active_tasks`` defaults to the tracker's own count of running
        tasks, and the registered capacity goes along."""
        active = self.active_tasks if active_tasks is None else active_tasks
        return self._send(
            "agent_heartbeat",
            cpu=cpu,
            memory=memory,
            queue_depth=queue_depth,
            active_tasks=active,
            capacity=self.capacity,
        )

    def record_llm_request(
        self,
        provider: str,
        model: str,
        duration_ms: float,
        *,
        input_tokens: int = 0,
        output_tokens: int = 0,
        cache_read_tokens: int = 0,
        cache_write_tokens: int = 0,
        reasoning_tokens: int = 0,
        cost: float | None = None,
        failure_reason: str | None = None,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> str:
        """One request to a language model. ``input_tokens`` includes the cached ones and
        ``output_tokens`` the reasoning ones; ``cost`` (USD) overrides the exporter's pricing."""
        return self._send(
            "llm_request",
            provider=provider,
            model=model,
            duration=duration_ms,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens,
            reasoning_tokens=reasoning_tokens,
            cost=cost,
            reason=failure_reason,
            trace_id=trace_id,
            span_id=span_id,
        )

    def record_tool_call(
        self,
        tool: str,
        duration_ms: float,
        failure_reason: str | None = None,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> str:
        return self._send(
            "tool_call", tool=tool, duration=duration_ms, reason=failure_reason, trace_id=trace_id, span_id=span_id
        )

    def task(self, trace_id: str | None = None, span_id: str | None = None) -> _Task:
        """``with tracker.task():`` or ``async with tracker.task():`` around one task, optionally
        part of a trace (the ids can also be set on the task inside the block)."""
        return _Task(self, trace_id, span_id)

    def timed(self, function: F) -> F:
        """Decorator: every call is a task, timed, sync or async."""
        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def run_async(*args: Any, **kwargs: Any) -> Any:
                async with self.task():
                    return await function(*args, **kwargs)

            return run_async  # type: ignore[return-value]

        @functools.wraps(function)
        def run(*args: Any, **kwargs: Any) -> Any:
            with self.task():
                return function(*args, **kwargs)

        return run  # type: ignore[return-value]


class HealthMonitor:
    """The fleet view: the product's ``AgentIntegratedHealthMonitor`` and alert management.

    ``alertmanager_url`` (optional) is where :meth:`get_active_alerts` reads firing alerts.
    """

    def __init__(self, client: Sender, alertmanager_url: str | None = None) -> None:
        self.client = client
        self.alertmanager_url = alertmanager_url
        self._agent_types: dict[str, str] = {}

    def register_agent(self, agent_id: str, agent_type: str, capacity: int = 1) -> str:
        self._agent_types[agent_id] = agent_type
        return self.tracker(agent_id).register(capacity)

    def deregister_agent(self, agent_id: str) -> str:
        agent_type = self._agent_types.pop(agent_id, None)
        event = {"type": "agent_deregistered", "agent": agent_id}
        if agent_type:
            event["agent_type"] = agent_type
        return self.client.send(event)

    def tracker(self, agent_id: str) -> AgentPerformanceTracker:
        """The tracker of a registered agent (``unknown`` type if it was never registered)."""
        return AgentPerformanceTracker(agent_id, self._agent_types.get(agent_id, "unknown"), self.client)

    def record_agent_task_completion(self, agent_id: str, duration_ms: float, **details: Any) -> str:
        return self.tracker(agent_id).record_task_completion(duration_ms, **details)

    def record_agent_task_failure(
        self,
        agent_id: str,
        reason: str,
        duration_ms: float | None = None,
        *,
        trace_id: str | None = None,
        span_id: str | None = None,
    ) -> str:
        tracker = self.tracker(agent_id)
        return tracker.record_task_failure(reason, duration_ms, trace_id=trace_id, span_id=span_id)

    def update_coordination_metrics(  # noqa: PLR0917 - positional, as the product's own call
        self,
        council: str,
        consensus_formation_time_ms: float,
        consensus_achieved: bool,
        debate_required: bool,
        constitutional_compliance: bool,
        debate_rounds: int = 0,
        violated_principle: str | None = None,
    ) -> str:
        event: dict[str, Any] = {
            "type": "consensus",
            "council": council,
            "formation_time": consensus_formation_time_ms,
            "achieved": consensus_achieved,
            "debate_required": debate_required,
            "constitutional_compliance": constitutional_compliance,
        }
        if debate_required:
            event["debate_rounds"] = debate_rounds
        if violated_principle is not None:
            event["violated_principle"] = violated_principle
        return self.client.send(event)

    def update_business_metrics(
        self, task_completed: bool, quality_score: float | None = None, cost_per_task: float | None = None
    ) -> str:
        event: dict[str, Any] = {"type": "business", "completed": task_completed}
        if quality_score is not None:
            event["quality_score"] = quality_score
        if cost_per_task is not None:
            event["cost"] = cost_per_task
        return self.client.send(event)

    def add_alert(
        self,
        alert_type: str,
        severity: str,
        message: str,
        affected_agents: Iterable[str] = (),
        alert_id: str | None = None,
    ) -> str:
        """Raise an alert (value 1 of ``agency_reported_alert`` until resolved); returns its id."""
        alert_id = alert_id or uuid.uuid4().hex
        self.client.send(
            self._alert(alert_id, alert_type, severity, message=message, agents=affected_agents, status="active")
        )
        return alert_id

    def resolve_alert(self, alert_id: str, alert_type: str, severity: str) -> str:
        return self.client.send(self._alert(alert_id, alert_type, severity, message="", agents=(), status="resolved"))

    @staticmethod
    def _alert(
        alert_id: str, alert_type: str, severity: str, *, message: str, agents: Iterable[str], status: str
    ) -> dict[str, Any]:
        return {
            "type": "alert",
            "alert_id": alert_id,
            "alert_type": alert_type,
            "severity": severity,
            "message": message,
            "affected_agents": list(agents),
            "status": status,
        }

    def get_active_alerts(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        """Firing Agency alerts from the Alertmanager v2 API (not silenced or inhibited).

        Blocking; from async code call it with ``asyncio.to_thread``. Needs ``alertmanager_url``.
        """
        if not self.alertmanager_url:
            raise ValueError("get_active_alerts needs HealthMonitor(..., alertmanager_url='http://alertmanager:9093')")
        query = urllib.parse.urlencode(
            {"active": "true", "silenced": "false", "inhibited": "false", "filter": 'alertname=~"Agency.+"'}
        )
        url = f"{self.alertmanager_url.rstrip('/')}/api/v2/alerts?{query}"
        with urllib.request.urlopen(url, timeout=timeout) as response:
            alerts: list[dict[str, Any]] = json.load(response)
        return alerts
