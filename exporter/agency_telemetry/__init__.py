"""Agency Telemetry: a Prometheus exporter for councils of AI agents."""

__version__ = "0.1.0"
