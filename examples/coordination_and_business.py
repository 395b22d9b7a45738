"""The product's coordination and business examples, with an asyncio client.

python examples/coordination_and_business.py --url http://127.0.0.1:9477
"""

import argparse
import asyncio

from agency_telemetry.client import AgentPerformanceTracker, AsyncClient, HealthMonitor


async def main(url: str) -> None:
    async with AsyncClient(url) as client:
        monitor = HealthMonitor(client)
        # health_monitor.update_coordination_metrics(2000, true, false, true)
        monitor.update_coordination_metrics("ethics", 2000, True, False, True)
        monitor.update_coordination_metrics("ethics", 6500, True, True, True, debate_rounds=3)
        monitor.update_coordination_metrics(
            "ethics", 9000, False, True, False, debate_rounds=5, violated_principle="fairness"
        )
        # health_monitor.update_business_metrics(true, 0.95, 0.08)
        monitor.update_business_metrics(True, 0.95, 0.08)

        tracker = AgentPerformanceTracker("worker-1", "worker", client)

        @tracker.timed
        async def summarise(text: str) -> str:
            await asyncio.sleep(0.01)
            return text[:10]

        await summarise("a long document")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter")
    asyncio.run(main(parser.parse_args().url))
