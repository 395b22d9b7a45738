"""Processes the tests start: the real Prometheus tools, Alertmanager, and the exporter's CLI.

Tests that start one are marked ``integration`` (``make test-fast`` leaves them out); starting
one from a test without the mark fails, so the fast suite never needs a binary.
"""

from __future__ import annotations

import contextlib
import json
import pwd
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Gossip:
    """An Alertmanager's membership of a cluster on the loopback: its own gossip port (TCP and
    UDP) and its peers' ports.

    Gossip every 50 ms instead of 200 ms: the cluster settles (three unchanged polls, ten
    gossip intervals apart) in 1.5 s instead of 6 s, and a notification-log entry reaches the
    peer well within ``peer_timeout``, the head start each peer gives the one before it
    (15 s by default, shortened so a test need not wait that long for the peer's turn)."""

    port: int
    peers: tuple[int, ...]
    peer_timeout: str = "3s"

    def arguments(self) -> list[str]:
        address = f"127.0.0.1:{self.port}"
        return [
            f"--cluster.listen-address={address}",
            f"--cluster.advertise-address={address}",  # what it tells its peers; never a public address
            *(f"--cluster.peer=127.0.0.1:{peer}" for peer in self.peers),
            "--cluster.gossip-interval=50ms",
            "--cluster.pushpull-interval=5s",  # full-state syncs, which repair a lost gossip message
            f"--cluster.peer-timeout={self.peer_timeout}",
        ]


def start_alertmanager(
    config: Path, tmp_path: Path, port: int | None = None, gossip: Gossip | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """A real Alertmanager on a free loopback port with temp storage; waits until ready.

    Without ``gossip`` it runs alone (no cluster port); with it, it joins its peers over the
    loopback (see ``start_alertmanager_cluster``). Started again with the same ``tmp_path`` and
    ``port`` (the port of its URL), it is the same Alertmanager restarted: it reads the
    silences and notification log its predecessor saved in ``tmp_path / "alertmanager-data"``."""
    storage = tmp_path / "alertmanager-data"
    cluster = ["--cluster.listen-address="] if gossip is None else gossip.arguments()
    arguments = [f"--config.file={config}", f"--storage.path={storage}", *cluster]
    return start_daemon("prometheus-alertmanager", arguments, tmp_path, port)


def start_alertmanager_cluster(
    config: Path, workdirs: Sequence[Path], peer_timeout: str = Gossip.peer_timeout
) -> list[tuple[subprocess.Popen[bytes], str]]:
    """One Alertmanager per directory of ``workdirs``, all with ``config``, each listing every
    other one as its peer; all started or none.

    The first ones cannot reach peers that are not up yet and retry (every 10 s); the cluster
    forms as soon as a later one joins them, so it is complete once the last one is ready.
    Wait for ``cluster_peers`` to list them all before relying on it."""
    ports = [free_port() for _ in workdirs]
    started: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for workdir, port in zip(workdirs, ports, strict=True):
            workdir.mkdir(parents=True, exist_ok=True)
            gossip = Gossip(port, tuple(p for p in ports if p != port), peer_timeout)
            started.append(start_alertmanager(config, workdir, gossip=gossip))
    except BaseException:
        for proc, _ in started:
            stop_process(proc)
        raise
    return started


def cluster_peers(url: str) -> tuple[str, list[str]]:
    """An Alertmanager's own peer name and the names of every member of its cluster (itself
    included) it knows of, from ``/api/v2/status``."""
    with urllib.request.urlopen(f"{url}/api/v2/status", timeout=5) as response:
        cluster = json.load(response)["cluster"]
    return cluster.get("name", ""), sorted(peer["name"] for peer in cluster.get("peers") or [])


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
