"""LLM requests and tool calls an agent makes, with their tokens and spend.

python examples/llm_usage.py --url http://127.0.0.1:9477

Run the exporter with a pricing table (examples/pricing.yaml) to see spend for requests that do
not report their own cost.
"""

import argparse

from agency_telemetry.client import AgentPerformanceTracker, Client


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:9477", help="the exporter")
    args = parser.parse_args()
    with Client(args.url) as client:
        tracker = AgentPerformanceTracker("researcher-1", "researcher", client)
        # input_tokens counts the cached ones too, output_tokens the reasoning ones, as in the
        # OpenTelemetry GenAI conventions; a cost given here wins over the exporter's pricing.
        tracker.record_llm_request(
            "openai", "gpt-4o", 1800, input_tokens=5200, output_tokens=640, cache_read_tokens=4096, cost=0.0083
        )
        tracker.record_llm_request("anthropic", "claude-sonnet", 2400, input_tokens=3000, output_tokens=900)
        tracker.record_llm_request("openai", "gpt-4o", 120, input_tokens=5200, failure_reason="429 rate limit")
        tracker.record_tool_call("web_search", 640)
        tracker.record_tool_call("web_search", 10_000, failure_reason="tool timed out")


if __name__ == "__main__":
    main()
