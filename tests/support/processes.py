"""Processes the tests start: the real Prometheus tools, Alertmanager, and the exporter's CLI.

Tests that start one are marked ``integration`` (``make test-fast`` leaves them out); starting
one from a test without the mark fails, so the fast suite never needs a binary.
"""

from __future__ import annotations

import contextlib
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import pytest

from scripts.local_stack import free_port, stop_process, wait_ready
from support.metrics import samples

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


IMMEDIATE = "expiry: {new_series_hold: 0}\n"  # new series' values at once: tests read them right after sending


class ExporterProcess:
    """``agency-telemetry serve --config FILE ARGS`` on a fixed loopback port, which can be
    stopped, killed and restarted on the same port. ``config`` is the file's text, written to
    ``config_dir`` (the test's directory by default); ``user`` runs it as that user (setpriv)."""

    def __init__(
        self,
        tmp_path: Path,
        config: str = IMMEDIATE,
        args: Sequence[str] = (),
        user: str | None = None,
        config_dir: Path | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = tmp_path / "exporter.log"
        self.config = (config_dir or tmp_path) / "exporter.yml"
        self.config.write_text(config)
        self.config.chmod(0o644)
        self.args = ["--config", str(self.config), *args]
        self.user = user
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ExporterProcess:
        require_integration("the exporter")
        command = [sys.executable, "-m", "agency_telemetry", "serve", "--listen", f"127.0.0.1:{self.port}", *self.args]
        if self.user is not None:
            group = pwd.getpwnam(self.user).pw_gid
            setpriv = [require_binary("setpriv"), f"--reuid={self.user}", f"--regid={group}", "--clear-groups"]
            command = [*setpriv, *command]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(command, cwd=PROJECT, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/readyz", timeout=1):
                    return self
            except OSError:
                assert self.proc.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "exporter did not become ready"
                time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self) -> int:
        """SIGTERM, and the exit code once it has shut down."""
        assert self.proc is not None
        self.proc.terminate()
        return self.proc.wait(timeout=30)

    def stop(self) -> None:
        """SIGTERM; a scrape, which ends a ``shutdown_grace`` wait; SIGKILL if still running after 10 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        with contextlib.suppress(OSError):
            self.metrics()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def total(self, name: str, **labels: str) -> float:
        """Sum of a metric over every series matching ``labels``."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in samples(self.metrics()).items() if n == name and wanted <= ls)
