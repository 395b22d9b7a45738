"""The real exporter process across SIGTERM, kill -9 and an unwritable disk, fed by the SDK and
scraped by a real Prometheus: exact counts after, no duplicates, no reset seen by rate()."""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from agency_telemetry.client import Client
from agency_telemetry.config import parse_config
from agency_telemetry.snapshot import restore
from agency_telemetry.store import Store

from scripts.local_stack import prometheus_config, stop_process
from support.metrics import samples
from support.processes import IMMEDIATE, ExporterProcess, start_daemon

pytestmark = pytest.mark.integration

FAST = {"flush_interval": 0.02, "backoff_initial": 0.05, "backoff_max": 0.3, "batch_size": 40}
AGENTS = 8


def persisted(tmp_path: Path, interval: str = "1h", grace: str | None = None) -> ExporterProcess:
    """An exporter persisting to ``tmp_path/state`` (set by the command line's flags)."""
    config = IMMEDIATE + (f"shutdown_grace: {grace}\n" if grace else "")
    flags = ["--persistence.file", str(tmp_path / "state" / "snapshot"), "--persistence.interval", interval]
    return ExporterProcess(tmp_path, config, flags)


@pytest.fixture
def stopping() -> Iterator[list[ExporterProcess]]:
    started: list[ExporterProcess] = []
    yield started
    for process in started:
        process.stop()


class Sender(threading.Thread):
    """Sends ``total`` task_completed events through the SDK as fast as it takes them."""

    def __init__(self, client: Client, total: int) -> None:
        super().__init__(daemon=True)
        self.client = client
        self.total = total
        self.handed = 0

    def run(self) -> None:
        for n in range(self.total):
            self.client.send(
                {"type": "task_completed", "agent": f"w{n % AGENTS}", "agent_type": "worker", "duration": 1}
            )
            self.handed += 1
            if n % 200 == 199:
                time.sleep(0.04)  # about 5,000 events a second: load, not a flood the buffer drops


def tasks(exporter: ExporterProcess) -> float:
    return exporter.total("agency_agent_tasks_total")


def test_sigterm_every_acknowledged_event_is_in_the_last_scrape_and_the_final_snapshot(
    tmp_path: Path, stopping: list[ExporterProcess]
) -> None:
    exporter = persisted(tmp_path, grace="20s").start()
    stopping.append(exporter)
    with Client(exporter.url, **FAST) as client:
        sender = Sender(client, 6000)
        sender.start()
        while client.stats.sent < 2000:
            time.sleep(0.01)
        assert exporter.proc is not None
        exporter.proc.terminate()  # under load
        time.sleep(0.3)  # ingest stops at once; /metrics is served until one scrape or 20 s
        last_scrape = tasks(exporter)
        assert exporter.proc.wait(timeout=30) == 0
        acknowledged = client.stats.sent
        store = Store(parse_config(""))
        restore(store, (tmp_path / "state" / "snapshot").read_bytes())
        in_snapshot = sum(store.agents[f"w{n}"].values[_slot("agency_agent_tasks_total")] for n in range(AGENTS))
        assert 2000 <= acknowledged < 6000
        assert last_scrape == in_snapshot == acknowledged

        exporter.start()  # the same files: counters go on
        sender.join(timeout=60)
        assert client.flush(60)
    assert client.stats.sent == 6000 and client.stats.dropped == 0
    assert tasks(exporter) == 6000  # each event exactly once across the restart


def _slot(name: str) -> int:
    from agency_telemetry.catalogue import FAMILIES

    slot = next(f.slot for f in FAMILIES if f.name == name)
    assert slot is not None
    return slot


@pytest.mark.parametrize("persistence", [True, False], ids=["persisted", "not-persisted"])
def test_kill_9_under_load_loses_no_acknowledged_event(
    tmp_path: Path, stopping: list[ExporterProcess], persistence: bool
) -> None:
    exporter = (persisted(tmp_path) if persistence else ExporterProcess(tmp_path)).start()
    stopping.append(exporter)
    with Client(exporter.url, **FAST) as client:
        sender = Sender(client, 6000)
        sender.start()
        while client.stats.sent < 3000:
            time.sleep(0.01)
        exporter.kill()  # no snapshot since the one at start: the journal holds everything
        acknowledged = client.stats.sent
        exporter.start()
        sender.join(timeout=60)
        assert client.flush(60)
    assert client.stats.sent == 6000 and client.stats.dropped == 0
    if persistence:
        assert tasks(exporter) == 6000
        assert samples(exporter.metrics())[("agency_exporter_persistence_writable", frozenset())] == 1
    else:
        assert tasks(exporter) <= 6000 - acknowledged  # what makes the first case meaningful


def test_an_unwritable_directory_keeps_the_exporter_serving_and_says_so(
    tmp_path: Path, stopping: list[ExporterProcess], request: pytest.FixtureRequest
) -> None:
    shared = Path(tempfile.mkdtemp(prefix="agency-readonly-"))  # pytest's own directory is root's alone
    request.addfinalizer(lambda: shutil.rmtree(shared))
    shared.chmod(0o755)
    directory = shared / "state"
    directory.mkdir()
    directory.chmod(0o555)  # read-only for the exporter, which runs as nobody
    config = IMMEDIATE + f"persistence: {{file: {directory / 'snapshot'}, interval: 1s}}\n"
    exporter = ExporterProcess(tmp_path, config, user="nobody", config_dir=shared).start()
    stopping.append(exporter)
    with Client(exporter.url, **FAST) as client:
        for _ in range(100):
            client.send({"type": "task_completed", "agent": "w", "duration": 1})
        assert client.flush(10)
    text = exporter.metrics()
    assert samples(text)[("agency_exporter_persistence_writable", frozenset())] == 0
    assert samples(text)[("agency_exporter_persistence_failures_total", frozenset({("operation", "snapshot")}))] >= 1
    assert tasks(exporter) == 100  # served and counted all the same

    directory.chmod(0o777)  # fixed: the next snapshot succeeds
    deadline = time.monotonic() + 10
    while samples(exporter.metrics())[("agency_exporter_persistence_writable", frozenset())] != 1:
        assert time.monotonic() < deadline, "persistence did not recover"
        time.sleep(0.2)
    assert (directory / "snapshot").exists()


def test_a_restart_with_persistence_is_no_reset_for_prometheus(tmp_path: Path, stopping: list[ExporterProcess]) -> None:
    """Scraped every 0.5 s while it is killed and restarted: with the state restored, Prometheus
    sees one continuous counter per agent, and increase() counts every event."""
    exporter = persisted(tmp_path).start()
    stopping.append(exporter)
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(prometheus_config(f"127.0.0.1:{exporter.port}", interval="500ms", rule_files=())))
    prometheus, url = start_daemon(
        "prometheus", [f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}"], tmp_path
    )
    try:
        with Client(exporter.url, **FAST) as client:
            for n in range(AGENTS):
                client.send({"type": "agent_registered", "agent": f"w{n}", "agent_type": "worker"})
            assert client.flush(10)
            _wait_for_samples(url, 'agency_agent_tasks_total{agent="w0"}', 3)
            sent = 0
            for round_number in range(12):
                for n in range(AGENTS * 25):
                    client.send(
                        {"type": "task_completed", "agent": f"w{n % AGENTS}", "agent_type": "worker", "duration": 1}
                    )
                sent += AGENTS * 25
                assert client.flush(20)
                if round_number == 5:
                    exporter.kill()
                    time.sleep(1.5)  # scrapes fail meanwhile
                    exporter.start()
                time.sleep(0.6)
            time.sleep(1.5)
        assert _query(url, "sum(resets(agency_agent_tasks_total[2m]))") == 0
        counted = _query(
            url, "sum(max_over_time(agency_agent_tasks_total[2m]) - min_over_time(agency_agent_tasks_total[2m]))"
        )
        assert counted == sent
    finally:
        stop_process(prometheus)


def _query(url: str, expr: str) -> float:
    with urllib.request.urlopen(f"{url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}", timeout=10) as r:
        result: list[dict[str, Any]] = json.load(r)["data"]["result"]
    assert result, f"no result for {expr}"
    return float(result[0]["value"][1])


def _wait_for_samples(url: str, selector: str, count: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        with urllib.request.urlopen(
            f"{url}/api/v1/query?{urllib.parse.urlencode({'query': f'count_over_time({selector}[1m])'})}", timeout=10
        ) as r:
            result = json.load(r)["data"]["result"]
        if result and float(result[0]["value"][1]) >= count:
            return
        assert time.monotonic() < deadline, f"Prometheus did not scrape {selector}"
        time.sleep(0.2)
