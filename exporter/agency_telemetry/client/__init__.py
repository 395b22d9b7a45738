"""Python SDK: report agent events to the exporter in one line, with nothing lost or counted twice.

    from agency_telemetry.client import Client, AgentPerformanceTracker

    with Client("http://127.0.0.1:9477") as client:
        tracker = AgentPerformanceTracker("judge-1", "constitutional_judge", client)
        with tracker.task():
            ...

:class:`Client` sends from a background thread; :class:`AsyncClient` from a running event
loop. The SDK shares nothing with the exporter but the event schema.
"""

from ._async import AsyncClient, ClientSettings, Stats
from ._sync import Client
from .facades import AgentPerformanceTracker, HealthMonitor

__all__ = ["AgentPerformanceTracker", "AsyncClient", "Client", "ClientSettings", "HealthMonitor", "Stats"]
