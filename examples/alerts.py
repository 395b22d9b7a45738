"""The product's "Alert Management" example: add a custom alert, read the active ones.

    python examples/alerts.py --url http://127.0.0.1:9477 [--alertmanager http://127.0.0.1:9093]

The alert becomes agency_reported_alert{...} = 1 on the exporter; the mixin's
AgencyAgentReportedAlert rule routes it with the severity and type given here.
get_active_alerts reads Alertmanager's v2 API, so it needs --alertmanager.
"""

import argparse

from agency_telemetry.client import Client, HealthMonitor


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter")
    parser.add_argument("--alertmanager", help="Alertmanager's URL, for get_active_alerts")
    args = parser.parse_args()
    with Client(args.url) as client:
        monitor = HealthMonitor(client, alertmanager_url=args.alertmanager)
        alert_id = monitor.add_alert(
            alert_type="agent_performance",
            severity="warning",
            message="Agent performance degraded",
            affected_agents=["judge-1"],
        )
        print(f"raised alert {alert_id}")
        if args.alertmanager:
            for alert in monitor.get_active_alerts():
                print(
                    alert["labels"]["alertname"], alert["labels"].get("severity"), alert["annotations"].get("summary")
                )


if __name__ == "__main__":
    main()
