"""The whole stack from local binaries, without Docker: `make stack`.

Starts, each on 127.0.0.1 with its state and log in one working directory:

    sink          deploy/sink.py, standing in for Slack, PagerDuty and the audit webhook
    exporter      `agency-telemetry demo`: the exporter with its simulated fleet
    alertmanager  the bundle's alertmanager.yml and templates, secrets pointing at the sink
    prometheus    scraping the exporter with the mixin's rules, alerting to the Alertmanager

prints their URLs, and stops them all on Ctrl-C (or SIGTERM), or as soon as one dies:

    python scripts/local_stack.py [--agents 24] [--scrape-interval 5s] [--workdir DIR]
                                  [--exporter-port 9477] [--prometheus-port 19090] ...

Prometheus and Alertmanager are found on PATH under their Debian names (`prometheus`,
`prometheus-alertmanager`) or the upstream ones (`alertmanager`). A port of 0 takes a free one.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
RULE_FILES = (ROOT / "rules/agency-rules.yml", ROOT / "rules/agency-alerts.yml")
BUNDLE = ROOT / "alertmanager"
JOB = "agency-telemetry"  # the job the mixin's selectors name (config.libsonnet, exporterSelector)
BINARIES = {"prometheus": ("prometheus",), "alertmanager": ("prometheus-alertmanager", "alertmanager")}
PAGER_ROUTING_KEY = "local-stack-routing-key"
SINK_PATHS = {
    "slack-team-webhook-url": "/slack/team",
    "slack-incident-webhook-url": "/slack/incident",
    "slack-security-webhook-url": "/slack/security",
}


class StackError(RuntimeError):
    """A binary is missing, a process died or did not get ready, or Prometheus answered with an error."""


def find_binary(kind: str) -> str:
    for name in BINARIES[kind]:
        if path := shutil.which(name):
            return path
    names = " or ".join(BINARIES[kind])
    raise StackError(f"{names} is not on PATH; `make tools` installs the Debian packages")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def stop_process(proc: subprocess.Popen[Any], grace: float = 10) -> None:
    """SIGTERM, then SIGKILL if the process has not exited after ``grace`` seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def wait_ready(proc: subprocess.Popen[Any], url: str, log: Path, timeout: float = 30) -> None:
    """Polls ``url`` until it answers 2xx; fails with the process's log if it exits or times out."""
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise StackError(f"{proc.args[0]} exited with {proc.returncode}:\n{tail(log)}")
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=2).close()
            return
        if time.monotonic() > deadline:
            raise StackError(f"{proc.args[0]} not ready at {url} within {timeout} s:\n{tail(log)}")
        time.sleep(0.1)


def tail(log: Path, size: int = 4000) -> str:
    return log.read_text(errors="replace")[-size:] if log.exists() else ""


def prometheus_config(
    target: str,
    *,
    interval: str = "1s",
    rule_files: Iterable[Path] = RULE_FILES,
    job: str = JOB,
    target_labels: Mapping[str, str] | None = None,
    alertmanagers: Sequence[str] = (),
    remote_write: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """A Prometheus configuration scraping one exporter as ``job`` with the given rule files;
    ``remote_write`` entries are taken as they are (``url``, ``write_relabel_configs``, ...)."""
    static: dict[str, Any] = {"targets": [target]}
    if target_labels:
        static["labels"] = dict(target_labels)
    config: dict[str, Any] = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [{"job_name": job, "static_configs": [static]}],
    }
    if alertmanagers:
        config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": list(alertmanagers)}]}]}
    if remote_write:
        config["remote_write"] = [dict(entry) for entry in remote_write]
    return config


def alertmanager_bundle(target: Path, sink_url: str, timings: Mapping[str, str] | None = None) -> Path:
    """The bundle copied to ``target`` with every receiver delivering to the sink.

    Routing, grouping, inhibition and templates stay the bundle's own; only the
    /etc/alertmanager paths, the secrets (Slack URLs point at the sink) and the PagerDuty and
    webhook URLs change, and ``timings`` (e.g. ``{"group_wait": "1s"}``) replace those waits
    wherever a route sets them. Returns the path of the adapted alertmanager.yml.
    """
    shutil.copytree(BUNDLE, target, ignore=shutil.ignore_patterns("secrets"), dirs_exist_ok=True)
    secrets = target / "secrets"
    secrets.mkdir(exist_ok=True)
    for name, path in SINK_PATHS.items():
        (secrets / name).write_text(sink_url + path + "\n")
    (secrets / "pagerduty-routing-key").write_text(PAGER_ROUTING_KEY + "\n")
    (secrets / "webhook-token").write_text("local-stack-webhook-token\n")
    config = yaml.safe_load((target / "alertmanager.yml").read_text().replace("/etc/alertmanager/", f"{target}/"))
    for receiver in config["receivers"]:
        for pager in receiver.get("pagerduty_configs", []):
            pager["url"] = sink_url + "/pagerduty"
        for hook in receiver.get("webhook_configs", []):
            hook["url"] = sink_url + "/alertmanager"
    for route in [config["route"], *config["route"]["routes"]]:
        route.update({key: value for key, value in (timings or {}).items() if key in route})
    path = target / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@dataclass
class LocalStack:
    """Sink, exporter with demo fleet, Alertmanager and Prometheus as child processes."""

    workdir: Path
    ports: dict[str, int]
    agents: int = 24
    tick: float = 0.5
    scrape_interval: str = "5s"
    fleet: bool = True  # `demo` (exporter and simulated fleet); False: `serve`, events come from outside
    rule_files: Sequence[Path] = RULE_FILES
    route_timings: Mapping[str, str] | None = None  # see alertmanager_bundle
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def start(self, timeout: float = 30) -> None:
        """Starts every process in dependency order, each ready before the next; all or none."""
        binaries = {kind: find_binary(kind) for kind in BINARIES}  # fail before starting anything
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ports = {name: port or free_port() for name, port in self.ports.items()}
        try:
            self._spawn("sink", [sys.executable, str(ROOT / "deploy/sink.py"), "--listen", self._addr("sink")])
            self._wait_ready("sink", "/healthz", timeout)
            self._spawn("exporter", self._exporter_command())
            self._wait_ready("exporter", "/readyz", timeout)
            self._spawn("alertmanager", self._alertmanager_command(binaries["alertmanager"]))
            self._wait_ready("alertmanager", "/-/ready", timeout)
            self._spawn("prometheus", self._prometheus_command(binaries["prometheus"]))
            self._wait_ready("prometheus", "/-/ready", timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stops the processes in reverse order: SIGTERM, then SIGKILL after 10 s."""
        for proc in reversed(self.processes.values()):
            stop_process(proc)

    def dead(self) -> str | None:
        """The name of a process that has exited, if any."""
        return next((name for name, proc in self.processes.items() if proc.poll() is not None), None)

    def log(self, name: str) -> str:
        return tail(self.workdir / f"{name}.log")

    def _addr(self, name: str) -> str:
        return f"127.0.0.1:{self.ports[name]}"

    def _exporter_command(self) -> list[str]:
        command = [sys.executable, "-m", "agency_telemetry", "demo" if self.fleet else "serve"]
        command += ["--listen", self._addr("exporter")]
        # With persistence, as in production: a stack restarted on the same directory continues its counters.
        command += ["--persistence.file", str(self.workdir / "exporter-state" / "snapshot")]
        return command + (["--agents", str(self.agents), "--tick", str(self.tick)] if self.fleet else [])

    def _alertmanager_command(self, binary: str) -> list[str]:
        config = alertmanager_bundle(self.workdir / "alertmanager", self.url("sink"), self.route_timings)
        return [
            binary,
            f"--config.file={config}",
            f"--storage.path={self.workdir / 'alertmanager-data'}",
            f"--web.listen-address={self._addr('alertmanager')}",
            f"--web.external-url={self.url('alertmanager')}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ]

    def _prometheus_command(self, binary: str) -> list[str]:
        config = self.workdir / "prometheus.yml"
        settings = prometheus_config(
            self._addr("exporter"),
            interval=self.scrape_interval,
            rule_files=self.rule_files,
            alertmanagers=[self._addr("alertmanager")],
        )
        config.write_text(yaml.safe_dump(settings, sort_keys=False))
        return [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={self.workdir / 'prometheus-data'}",
            f"--web.listen-address={self._addr('prometheus')}",
            f"--web.external-url={self.url('prometheus')}",
            "--enable-feature=exemplar-storage",  # the trace ids on the duration buckets
        ]

    def _spawn(self, name: str, command: list[str]) -> None:
        # Own session: Ctrl-C reaches this script only, which then stops the rest in order.
        with (self.workdir / f"{name}.log").open("wb") as out:
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def _wait_ready(self, name: str, path: str, timeout: float) -> None:
        wait_ready(self.processes[name], self.url(name) + path, self.workdir / f"{name}.log", timeout)


def banner(stack: LocalStack) -> str:
    lines = [
        "Agency Telemetry local stack is up:",
        f"  exporter      {stack.url('exporter')}/metrics        (POST events to /v1/events)",
        f"  prometheus    {stack.url('prometheus')}/alerts         (rules: {stack.url('prometheus')}/rules)",
        f"  alertmanager  {stack.url('alertmanager')}/",
        f"  sink          {stack.url('sink')}/                 (notifications as JSON; also in sink.log)",
        f"  logs and data {stack.workdir}",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=24, help="agents in the demo fleet (%(default)s)")
    parser.add_argument("--tick", type=float, default=0.5, help="seconds between fleet batches (%(default)s)")
    parser.add_argument(
        "--scrape-interval", default="5s", help="Prometheus scrape and rule evaluation interval (%(default)s)"
    )
    parser.add_argument("--workdir", type=Path, help="keep logs and data here (default: a temp dir, removed)")
    for name, port in (("exporter", 9477), ("prometheus", 19090), ("alertmanager", 19093), ("sink", 18080)):
        parser.add_argument(f"--{name}-port", type=int, default=port, help=f"{name} port, 0 = free (%(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stopping.set())
    with contextlib.ExitStack() as cleanup:
        workdir = args.workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="agency-stack-")))
        ports = {name: getattr(args, f"{name}_port") for name in ("sink", "exporter", "alertmanager", "prometheus")}
        stack = LocalStack(workdir, ports, agents=args.agents, tick=args.tick, scrape_interval=args.scrape_interval)
        try:
            stack.start()
        except StackError as exc:
            print(f"stack: {exc}", file=sys.stderr)
            return 1
        print(banner(stack), flush=True)
        try:
            while not stopping.wait(0.5):
                if name := stack.dead():
                    print(f"stack: {name} exited unexpectedly:\n{stack.log(name)}", file=sys.stderr)
                    return 1
        finally:
            print("stack: stopping", flush=True)
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
