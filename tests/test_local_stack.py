"""`make stack`: the local stack without Docker, run as a user runs it and stopped with Ctrl-C."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from scripts.local_stack import ROOT, RULE_FILES

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "scripts/local_stack.py"
URL = re.compile(r"^\s+(\w+)\s+(http://127\.0\.0\.1:\d+)", re.MULTILINE)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as resp:
        return json.load(resp)


def wait_until(check: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.25)
    return result


class Running:
    def __init__(self, proc: subprocess.Popen[str], banner: str) -> None:
        self.proc = proc
        self.banner = banner
        self.urls = dict(URL.findall(banner))


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    ports = [f"--{name}-port=0" for name in ("exporter", "prometheus", "alertmanager", "sink")]
    command = [sys.executable, str(SCRIPT), "--workdir", str(tmp_path), "--scrape-interval", "1s", *ports]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    banner = ""
    assert proc.stdout is not None
    for line in proc.stdout:
        banner += line
        if "Ctrl-C" in line:
            break
    assert "Ctrl-C" in banner, f"the stack did not come up:\n{banner}\n{proc.wait(timeout=30)}"
    try:
        yield Running(proc, banner)
    finally:
        if proc.poll() is None:  # Ctrl-C, so the stack stops its processes; kill only as a last resort
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=30)


def test_stack_runs_the_bundle_end_to_end_and_stops_everything_on_ctrl_c(running: Running) -> None:
    urls = running.urls
    assert set(urls) == {"exporter", "prometheus", "alertmanager", "sink"}
    prometheus, alertmanager, sink = urls["prometheus"], urls["alertmanager"], urls["sink"]

    # Prometheus scrapes the demo fleet with every group of the mixin loaded, and evaluates it.
    groups = {g["name"] for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]}
    loaded = {g["name"] for g in get(f"{prometheus}/api/v1/rules")["data"]["groups"]}
    assert loaded == groups
    query = urllib.parse.quote("count(fleet:agency_health:status)")
    wait_until(lambda: get(f"{prometheus}/api/v1/query?query={query}")["data"]["result"])
    active = wait_until(lambda: get(f"{prometheus}/api/v1/alertmanagers")["data"]["activeAlertmanagers"])
    assert [a["url"].split("/api")[0] for a in active] == [alertmanager]

    # An emergency reaches the pager and the incident channel through the bundle's routing.
    alert = {"labels": {"alertname": "AgencyFleetMostlyDown", "severity": "emergency", "job": "agency-telemetry"}}
    body = json.dumps([alert | {"annotations": {"summary": "Most of the fleet is down."}}]).encode()
    request = urllib.request.Request(
        f"{alertmanager}/api/v2/alerts", data=body, headers={"Content-Type": "application/json"}
    )
    urllib.request.urlopen(request, timeout=5).close()
    received = wait_until(lambda: {n["path"] for n in get(f"{sink}/")} >= {"/pagerduty", "/slack/incident"}, 30)
    assert received

    running.proc.send_signal(signal.SIGINT)
    assert running.proc.wait(timeout=30) == 0
    for url in urls.values():
        with pytest.raises(OSError):
            urllib.request.urlopen(url, timeout=2)


def test_a_missing_binary_is_named_and_nothing_starts(tmp_path: Path) -> None:
    # Only this Python's directory on PATH: no Prometheus, no Alertmanager.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--workdir", str(tmp_path), "--exporter-port=0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 1
    assert "prometheus is not on PATH; `make tools` installs" in result.stderr
    assert not list(tmp_path.iterdir())  # not even the sink was started
