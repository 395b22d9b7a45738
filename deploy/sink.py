"""A tiny HTTP sink standing in for Slack, PagerDuty and the audit webhook in the local stacks.

Alertmanager's notifications are POSTed here; each one is printed as one line on standard
output (what arrived where, firing or resolved, which alerts) and kept in memory, newest last:

    POST /slack/incident   Slack #agency-incidents: [FIRING:1] AgencyFleetMostlyDown …
    POST /pagerduty        PagerDuty trigger critical: [FIRING:1] AgencyFleetMostlyDown …
    POST /alertmanager     webhook firing chat-team: AgencyAgentReportedAlert (1 alert)

    GET /            the kept notifications as JSON: [{"time", "path", "summary", "body"}]
    GET /healthz     200

Standard library only, so it runs in any Python 3.11 (the compose stack's image, the venv).

    python deploy/sink.py [--listen HOST:PORT] [--keep N] [--verbose]
"""

from __future__ import annotations

import argparse
import collections
import json
import signal
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MAX_BODY = 4 * 1024 * 1024


def summarize(path: str, body: Any) -> str:
    """One line saying what a notification is: Slack, PagerDuty, Alertmanager webhook, or other."""
    if isinstance(body, dict):
        if "attachments" in body or "channel" in body:  # Slack incoming webhook
            attachments = body.get("attachments") or [{}]
            title = attachments[0].get("title") or body.get("text") or ""
            return f"Slack {body.get('channel', '(default channel)')}: {_first_line(title)}"
        if "event_action" in body:  # PagerDuty Events API v2
            payload = body.get("payload") or {}
            return (
                f"PagerDuty {body['event_action']} {payload.get('severity', '')}: "
                f"{_first_line(payload.get('summary', body.get('dedup_key', '')))}"
            )
        if "alerts" in body and "receiver" in body:  # Alertmanager webhook
            names = sorted({a.get("labels", {}).get("alertname", "?") for a in body["alerts"]})
            count = len(body["alerts"])
            return (
                f"webhook {body.get('status', '?')} {body['receiver']}: {', '.join(names)} "
                f"({count} alert{'s' if count != 1 else ''})"
            )
    return f"{len(json.dumps(body))} bytes to {path}"


def _first_line(text: str) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= 200 else line[:199] + "…"


class Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], keep: int, verbose: bool) -> None:
        super().__init__(address, Handler)
        self.received: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.verbose = verbose
        self.lock = threading.Lock()

    def record(self, path: str, headers: dict[str, str], body: Any) -> None:
        summary = summarize(path, body)
        entry = {"time": time.time(), "path": path, "summary": summary, "headers": headers, "body": body}
        with self.lock:
            self.received.append(entry)
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} sink: POST {path:<18} {summary}", flush=True)
        if self.verbose:
            print(json.dumps(body, indent=2, sort_keys=True), flush=True)


class Handler(BaseHTTPRequestHandler):
    server: Sink
    server_version = "agency-sink"

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            self._answer(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": "body too large"})
            return
        raw = self.rfile.read(length)
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode(errors="replace")
        # Which secret reached us matters (a bearer token), not its value.
        headers = {"authorization": "present"} if self.headers.get("Authorization") else {}
        self.server.record(self.path, headers, body)
        self._answer(HTTPStatus.OK, {"status": "ok"})

    def do_GET(self) -> None:
        if self.path == "/healthz":
            self._answer(HTTPStatus.OK, {"status": "ok"})
        elif self.path in ("/", "/received"):
            with self.server.lock:
                self._answer(HTTPStatus.OK, list(self.server.received))
        else:
            self._answer(HTTPStatus.NOT_FOUND, {"error": "GET / or /healthz; POST anything"})

    def _answer(self, status: HTTPStatus, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # one line per notification is enough
        pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--listen", default="0.0.0.0:8080", help="HOST:PORT to listen on (default %(default)s)")
    parser.add_argument("--keep", type=int, default=200, help="notifications kept for GET / (default %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="print every body in full, too")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    try:
        sink = Sink((host or "0.0.0.0", int(port)), args.keep, args.verbose)
    except (OSError, ValueError) as exc:
        print(f"sink: cannot listen on {args.listen}: {exc}", file=sys.stderr)
        return 1
    # As PID 1 in a container SIGTERM has no default action: turn it into a clean exit.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(f"sink: listening on http://{args.listen}/ (POST anything; GET / lists what arrived)", flush=True)
    try:
        sink.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        sink.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
