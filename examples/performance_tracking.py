"""The product's "Performance Tracking" example, plus the one-line task timer.

python examples/performance_tracking.py --url http://127.0.0.1:9477
"""

import argparse
import time

from agency_telemetry.client import AgentPerformanceTracker, Client, HealthMonitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter")
    args = parser.parse_args()
    with Client(args.url) as client:
        monitor = HealthMonitor(client)
        monitor.register_agent("judge-1", "constitutional_judge")

        # health_monitor.record_agent_task_completion("judge-1", 1500)
        monitor.record_agent_task_completion("judge-1", 1500)
        # health_monitor.record_agent_task_failure("judge-1", "Network timeout error")
        monitor.record_agent_task_failure("judge-1", "Network timeout error")

        # AgentPerformanceTracker::new("constitutional-judge-1", ConstitutionalJudge, collector)
        tracker = AgentPerformanceTracker("constitutional-judge-1", "constitutional_judge", client)
        tracker.record_task_completion(1500)
        tracker.record_task_failure("Network timeout")

        # Or let the tracker time the task: task_started, then completed (or failed with the
        # exception's class as the reason).
        with tracker.task() as task:
            time.sleep(0.05)
            task.quality_score = 0.93

        @tracker.timed
        def evaluate(case: str) -> str:
            return f"verdict on {case}"

        evaluate("case-42")


if __name__ == "__main__":
    main()
