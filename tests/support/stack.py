"""A real stack for end-to-end tests: the exporter's demo fleet, scraped by a real Prometheus
that evaluates the mixin's recording rules and alerts.

    with Stack.start(tmp_path, agents=12, tick=0.25) as stack:
        stack.wait_for("count(fleet:agency_health:status)")
        stack.query("up")

Both processes listen on free loopback ports and keep their state and logs under the given
directory; they are stopped on exit, by their own process ids. Prometheus scrapes and
evaluates every ``interval`` (1s by default), so rules have data within seconds.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import yaml

from scripts.local_stack import (
    JOB,
    ROOT,
    RULE_FILES,
    StackError,
    free_port,
    prometheus_config,
    stop_process,
    tail,
    wait_ready,
)
from support.processes import require_binary


@dataclass
class Stack:
    workdir: Path
    exporter_url: str
    prometheus_url: str
    started_at: float  # Unix time at which Prometheus was ready
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    prometheus_command: list[str] = field(default_factory=list)

    # --- starting and stopping ------------------------------------------------------------

    @classmethod
    def start(
        cls,
        workdir: Path,
        *,
        fleet: bool = True,
        agents: int = 12,
        tick: float = 0.25,
        interval: str = "1s",
        rule_files: Iterable[Path] = RULE_FILES,
        job: str = JOB,
        target_labels: Mapping[str, str] | None = None,
        alertmanagers: Sequence[str] = (),
        remote_write: Sequence[Mapping[str, Any]] = (),
        exporter_args: Sequence[str] = (),
        exporter_config: str = "expiry: {new_series_hold: 0}\n",
        prometheus_args: Sequence[str] = (),
        timeout: float = 30,
    ) -> Stack:
        """The demo fleet (``agency_telemetry demo``) and Prometheus scraping it as ``job``.

        With ``fleet=False`` the exporter runs without the simulated fleet (``serve``), for a
        test that sends its own events to ``exporter_url``. ``target_labels`` are attached to
        the scraped series (e.g. ``{"cluster": "eu-1"}``); ``alertmanagers`` are ``host:port``
        addresses Prometheus sends alerts to; ``remote_write`` its ``remote_write`` entries;
        ``prometheus_args`` are added to its command line
        (e.g. ``--enable-feature=exemplar-storage``). ``exporter_config`` is the exporter's
        configuration file; by default new series show their values at once (no
        ``expiry.new_series_hold``), so that a test reads them at the first scrape.
        """
        workdir.mkdir(parents=True, exist_ok=True)
        exporter_port, prometheus_port = free_port(), free_port()
        stack = cls(
            workdir=workdir,
            exporter_url=f"http://127.0.0.1:{exporter_port}",
            prometheus_url=f"http://127.0.0.1:{prometheus_port}",
            started_at=0.0,
        )
        try:
            exporter_yml = workdir / "exporter.yml"
            exporter_yml.write_text(exporter_config)
            command = [sys.executable, "-m", "agency_telemetry", "demo" if fleet else "serve"]
            command += ["--config", str(exporter_yml), "--listen", f"127.0.0.1:{exporter_port}", *exporter_args]
            if fleet:
                command += ["--agents", str(agents), "--tick", str(tick)]
            stack._spawn("exporter", command)
            stack._wait_http("exporter", f"{stack.exporter_url}/readyz", timeout)
            config = workdir / "prometheus.yml"
            config.write_text(
                yaml.safe_dump(
                    prometheus_config(
                        f"127.0.0.1:{exporter_port}",
                        interval=interval,
                        rule_files=rule_files,
                        job=job,
                        target_labels=target_labels,
                        alertmanagers=alertmanagers,
                        remote_write=remote_write,
                    ),
                    sort_keys=False,
                )
            )
            stack.prometheus_command = [
                require_binary("prometheus"),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'prometheus-data'}",
                f"--web.listen-address=127.0.0.1:{prometheus_port}",
                "--rules.alert.resend-delay=1s",
                *prometheus_args,
            ]
            stack.start_prometheus(timeout)
            stack.started_at = time.time()
            stack.wait_for(f'up{{job="{job}"}} == 1', timeout=timeout)
        except BaseException:
            stack.stop()
            raise
        return stack

    @classmethod
    def prometheus_alone(cls, workdir: Path, config: Mapping[str, Any], timeout: float = 30) -> Stack:
        """Prometheus with ``config`` (prometheus.yml as data), for a test that starts its own
        exporters; stopped by ``stop()`` as in a full stack."""
        workdir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        stack = cls(workdir=workdir, exporter_url="", prometheus_url=f"http://127.0.0.1:{port}", started_at=0.0)
        (workdir / "prometheus.yml").write_text(yaml.safe_dump(dict(config), sort_keys=False))
        stack.prometheus_command = [
            require_binary("prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        try:
            stack.start_prometheus(timeout)
        except BaseException:
            stack.stop()
            raise
        stack.started_at = time.time()
        return stack

    def start_prometheus(self, timeout: float = 30) -> None:
        """Starts Prometheus with the command line of the first start (same configuration, port
        and TSDB directory) and waits until it is ready; after ``stop_prometheus``, this is a
        restart that replays the WAL and carries on with the series and alert states it had."""
        self._spawn("prometheus", self.prometheus_command)
        self._wait_http("prometheus", f"{self.prometheus_url}/-/ready", timeout)

    def stop_prometheus(self) -> None:
        """Stops Prometheus alone (SIGTERM, as an orchestrator does), waiting until it has exited.

        The other processes keep running; ``start_prometheus`` brings it back. Until then the
        Prometheus API is unreachable and ``wait_for`` fails."""
        stop_process(self.processes["prometheus"])

    def stop(self) -> None:
        """Terminates the processes this stack started (SIGTERM, then SIGKILL after 10 s)."""
        for proc in reversed(self.processes.values()):
            stop_process(proc)

    def __enter__(self) -> Stack:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def log(self, name: str) -> str:
        return tail(self.workdir / f"{name}.log")

    def _spawn(self, name: str, command: list[str]) -> None:
        with (self.workdir / f"{name}.log").open("ab") as out:  # a restart appends to the log
            self.processes[name] = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)

    def _check_alive(self) -> None:
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise StackError(f"{name} exited with {proc.returncode}:\n{self.log(name)}")

    def _wait_http(self, name: str, url: str, timeout: float) -> None:
        wait_ready(self.processes[name], url, self.workdir / f"{name}.log", timeout)

    # --- the Prometheus HTTP API ---------------------------------------------------------

    def api(self, path: str, params: Mapping[str, str | Sequence[str]] | None = None, method: str = "POST") -> Any:
        """Calls ``/api/v1/<path>`` and returns its ``data``. POST sends the parameters
        form-encoded, so long queries fit; the label endpoints take GET only."""
        query = urllib.parse.urlencode(params or {}, doseq=True)
        url = f"{self.prometheus_url}/api/v1/{path}"
        if method == "GET":
            request = urllib.request.Request(f"{url}?{query}")
        else:
            request = urllib.request.Request(
                url, data=query.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
            )
        try:
            with urllib.request.urlopen(request, timeout=30) as resp:
                payload = json.load(resp)
        except urllib.error.HTTPError as exc:
            text = exc.read().decode(errors="replace")
            with contextlib.suppress(ValueError):
                text = json.loads(text).get("error", text)
            raise StackError(f"{path} {dict(params or {})}: HTTP {exc.code}: {text}") from exc
        if payload.get("status") != "success":
            raise StackError(f"{path} {dict(params or {})}: {payload}")
        return payload["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query: the vector's samples (``[{"metric": {...}, "value": [t, "v"]}]``)."""
        params = {"query": expr} | ({"time": repr(at)} if at is not None else {})
        data = self.api("query", params)
        if data["resultType"] == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def query_range(
        self, expr: str, start: float | None = None, end: float | None = None, step: float = 1.0
    ) -> list[dict[str, Any]]:
        """A range query from ``start`` (default: when Prometheus got ready) to ``end`` (now)."""
        end = time.time() if end is None else end
        start = self.started_at if start is None else start
        params = {"query": expr, "start": repr(start), "end": repr(max(end, start)), "step": repr(step)}
        return list(self.api("query_range", params)["result"])

    def exemplars(self, expr: str) -> list[dict[str, Any]]:
        """Exemplars of the series ``expr`` selects since Prometheus got ready (needs
        ``--enable-feature=exemplar-storage``): ``[{"seriesLabels": {...}, "exemplars": [...]}]``."""
        params = {"query": expr, "start": repr(self.started_at - 60), "end": repr(time.time())}
        return list(self.api("query_exemplars", params))

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """Values of ``label`` on series matching ``match`` (what Grafana's label_values() asks)."""
        params: dict[str, str | Sequence[str]] = {"start": repr(self.started_at), "end": repr(time.time())}
        if match is not None:
            params["match[]"] = [match]
        return sorted(self.api(f"label/{urllib.parse.quote(label)}/values", params, method="GET"))

    def metric_names(self) -> set[str]:
        return set(self.label_values("__name__"))

    def wait_for(
        self, expr: str, timeout: float = 30, until: Callable[[list[dict[str, Any]]], bool] = bool
    ) -> list[dict[str, Any]]:
        """Polls an instant query until ``until(result)`` holds (by default: non-empty)."""
        deadline = time.monotonic() + timeout
        while True:
            self._check_alive()
            result = self.query(expr)
            if until(result):
                return result
            if time.monotonic() > deadline:
                raise StackError(f"{expr!r} did not hold within {timeout} s; last result: {result}")
            time.sleep(0.25)
