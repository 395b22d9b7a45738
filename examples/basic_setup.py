"""The product's "Basic Setup" example: a health monitor with registered agents.

python examples/basic_setup.py --url http://127.0.0.1:9477
"""

import argparse

from agency_telemetry.client import Client, HealthMonitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter")
    args = parser.parse_args()
    with Client(args.url) as client:
        monitor = HealthMonitor(client)
        monitor.register_agent("judge-1", "constitutional_judge")
        monitor.register_agent("worker-1", "worker", capacity=4)
        monitor.register_agent("researcher-1", "researcher", capacity=2)
    # Leaving the block flushed every event to the exporter.


if __name__ == "__main__":
    main()
