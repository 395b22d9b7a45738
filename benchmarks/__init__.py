"""Benchmarks of the exporter. Each script runs as a module from the project root::

    .venv/bin/python -m benchmarks.bench_exporter --quick

The shared modules are imported downward only: ``workload`` (the event mix and its NDJSON
bodies), ``baseline`` (the aiohttp + prometheus_client exporter a user would write), ``ours``
(our exporter in-process) and ``timing`` (interleaved runs, medians, ratios, RSS, the machine).
The scripts on top (``bench_exporter``, ``scale``, ``ab_ingest``, ``soak``, ``time_to_page``)
import those, and ``bench_exporter`` runs ``scale``'s rows last; ``sizing`` times its replica
rows with ``scale``'s per-size timing and runs a real Prometheus with the mixin's rules.
``otlp_ingest`` (OTLP/HTTP traces in-process, with its own span workload and prometheus_client
baseline) needs only ``timing``. ``alert_quality`` scores the mixin's alerts on simulated faults:
``alert_fleet`` (the fleet, its faults and the exporter series it produces) feeds
``promtool_alerts`` (the alerts promtool finds firing at each step).
"""
