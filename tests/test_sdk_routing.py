"""The SDK with several exporter replicas: each owner's events to one replica, failover and back."""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agency_telemetry.client import Client, ClientSettings
from agency_telemetry.client._async import Endpoints

from support.metrics import samples
from support.processes import ExporterProcess

URLS = ("http://10.0.0.1:9477", "http://10.0.0.2:9477", "http://10.0.0.3:9477")
FAST = {"flush_interval": 0.05, "backoff_initial": 0.05, "backoff_max": 0.5, "timeout": 2.0}


def endpoints(*urls: str, **settings: float) -> Endpoints:
    return Endpoints(ClientSettings(url=list(urls), **settings))


def first_choices(replicas: Endpoints, agents: int) -> dict[str, str]:
    return {f"a{i}": replicas.ranking(f"agent=a{i}")[0] for i in range(agents)}


def test_owners_spread_over_the_replicas_and_stay_put():
    replicas = endpoints(*URLS)
    choices = first_choices(replicas, 3000)
    shares = collections.Counter(choices.values())
    assert set(shares) == set(URLS)
    assert all(800 < n < 1200 for n in shares.values()), shares  # about a third each
    assert first_choices(endpoints(*URLS), 3000) == choices  # the same in another client


def test_removing_a_replica_moves_only_its_owners():
    before = first_choices(endpoints(*URLS), 3000)
    after = first_choices(endpoints(*URLS[:2]), 3000)
    moved = {agent for agent in before if before[agent] != after[agent]}
    assert moved == {agent for agent, url in before.items() if url == URLS[2]}


def test_every_event_of_one_owner_goes_to_one_replica():
    replicas = endpoints(*URLS)
    events = [
        {"type": "task_started", "agent": "a1", "id": "1"},
        {"type": "task_completed", "agent": "a1", "duration": 1, "id": "2"},
        {"type": "consensus", "council": "ethics", "id": "3"},
        {"type": "queue", "queue": "intake", "depth": 1, "id": "4"},
        {"type": "alert", "alert_id": "x", "id": "5"},
    ]
    routes, moved = replicas.route(events)
    assert moved == 0
    where = {event["id"]: url for url, batch in routes.items() for event in batch}
    assert where["1"] == where["2"] == replicas.ranking("agent=a1")[0]
    assert where["3"] == replicas.ranking("council=ethics")[0]
    assert where["4"] == replicas.ranking("queue=intake")[0]
    assert where["5"] == replicas.ranking("alert_id=x")[0]


def test_events_without_an_owner_take_turns():
    replicas = endpoints(*URLS)
    routes, moved = replicas.route([{"type": "business", "completed": True, "id": str(i)} for i in range(6)])
    assert moved == 0
    assert sorted(map(len, routes.values())) == [2, 2, 2]


def test_a_failing_replica_is_skipped_until_its_backoff_ends():
    replicas = endpoints(*URLS, backoff_initial=0.05, backoff_max=0.2)
    event = {"type": "task_started", "agent": "a1", "id": "1"}
    first, second = replicas.ranking("agent=a1")[:2]
    replicas.failed(first, retry_after=0)
    routes, moved = replicas.route([event])
    assert list(routes) == [second] and moved == 1
    time.sleep(0.25)  # past the backoff (0.05 * 2, at most 0.2)
    routes, moved = replicas.route([event])
    assert list(routes) == [first] and moved == 0


def test_when_every_replica_fails_events_wait_for_their_first_choice():
    replicas = endpoints(*URLS)
    for url in URLS:
        replicas.failed(url, retry_after=0)
    assert not replicas.any_up()
    routes, _ = replicas.route([{"type": "task_started", "agent": "a1", "id": "1"}])
    assert list(routes) == [replicas.ranking("agent=a1")[0]]


def test_no_url_says_what_to_give():
    with pytest.raises(ValueError, match="replicas' URLs"):
        endpoints()


# --- against real exporters ---------------------------------------------------------------


@pytest.fixture
def replicas(tmp_path: Path) -> Iterator[list[ExporterProcess]]:
    processes = []
    for i in range(3):
        directory = tmp_path / f"replica-{i}"
        directory.mkdir()
        processes.append(ExporterProcess(directory).start())
    yield processes
    for process in processes:
        process.stop()


def tasks_by_agent(replica: ExporterProcess) -> dict[str, float]:
    return {
        dict(labels)["agent"]: v
        for (name, labels), v in samples(replica.metrics()).items()
        if name == "agency_agent_tasks_total"
    }


def send_tasks(client: Client, agents: int, per_agent: int) -> None:
    for _ in range(per_agent):
        for i in range(agents):
            client.send({"type": "task_completed", "agent": f"a{i}", "agent_type": "worker", "duration": 10})
    assert client.flush(30)


@pytest.mark.integration
def test_sticky_routing_fails_over_and_back_without_losing_an_event(replicas: list[ExporterProcess]) -> None:
    agents = 30
    with Client([r.url for r in replicas], **FAST) as client:
        send_tasks(client, agents, 2)
        seen = [tasks_by_agent(r) for r in replicas]
        # Each agent on exactly one replica, every replica with some.
        owner = {agent: i for i, counts in enumerate(seen) for agent in counts}
        assert sorted(owner) == sorted(f"a{i}" for i in range(agents))
        assert sum(len(counts) for counts in seen) == agents
        assert all(seen)
        assert all(v == 2 for counts in seen for v in counts.values())

        replicas[1].kill()  # its agents go to their next choice; nothing is lost
        send_tasks(client, agents, 3)
        assert client.stats.failovers >= 3 * len(seen[1])
        moved = [tasks_by_agent(replicas[i]) for i in (0, 2)]
        for agent, i in owner.items():
            total = sum(counts.get(agent, 0) for counts in moved)
            assert total == (5 if i != 1 else 3), agent

        replicas[1].start()  # same port, empty (no persistence): its agents come back to it
        time.sleep(FAST["backoff_max"] + 0.1)
        send_tasks(client, agents, 1)
        back = tasks_by_agent(replicas[1])
        assert back == dict.fromkeys(seen[1], 1)
        assert client.stats.rejected == client.stats.dropped == 0
        assert client.stats.sent == agents * 6
