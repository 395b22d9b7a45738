"""Processes the tests start: the real Prometheus tools, Alertmanager, and the exporter's CLI.

Tests that start one are marked ``integration`` (``make test-fast`` leaves them out); starting
one from a test without the mark fails, so the fast suite never needs a binary.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from scripts.local_stack import free_port, stop_process, wait_ready

PROJECT = Path(__file__).resolve().parent.parent.parent
current_marks: set[str] = set()  # the marks of the running test, kept by conftest


def require_integration(what: str) -> None:
    if "integration" not in current_marks:
        pytest.fail(f"a test that runs {what} must be marked integration (pytestmark = pytest.mark.integration)")


def require_binary(name: str) -> str:
    require_integration(name)
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is not installed; `make tools` installs it")
    return path


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """``agency-telemetry ARGS`` run from the project directory, as a separate process."""
    require_integration("the agency-telemetry command")
    return subprocess.run(
        [sys.executable, "-m", "agency_telemetry", *args],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def promtool_check_metrics(text: str) -> tuple[int, str, str]:
    """``promtool check metrics`` on an exposition: (exit code, stdout, stderr)."""
    command = [require_binary("promtool"), "check", "metrics"]
    result = subprocess.run(command, input=text, capture_output=True, text=True, timeout=30, check=False)
    return result.returncode, result.stdout, result.stderr


def start_alertmanager(config: Path, tmp_path: Path, port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    """A real Alertmanager on a free loopback port with temp storage and no cluster; waits until ready.

    Started again with the same ``tmp_path`` and ``port`` (the port of its URL), it is the same
    Alertmanager restarted: it reads the silences and notification log its predecessor saved
    in ``tmp_path / "alertmanager-data"``."""
    storage = tmp_path / "alertmanager-data"
    arguments = [f"--config.file={config}", f"--storage.path={storage}", "--cluster.listen-address="]
    return start_daemon("prometheus-alertmanager", arguments, tmp_path, port)


def start_daemon(
    binary: str, arguments: list[str], tmp_path: Path, port: int | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A Prometheus-style server (``--web.listen-address``) on ``port`` of the loopback (a free
    one by default), logging to ``tmp_path`` (appending, so a restart keeps the earlier run's
    log); returns once its ``/-/ready`` answers."""
    port = free_port() if port is None else port
    log = tmp_path / f"{binary}.log"
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [require_binary(binary), *arguments, f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(proc, f"{url}/-/ready", log, timeout=30)
    except Exception:
        stop_process(proc)
        raise
    return proc, url
