"""How the benchmarks time and weigh: runs in rounds, medians and ratios, RSS and CPU from /proc, the machine.

A shared VM's speed drifts by up to 2x within minutes, so every figure compared with another is
taken in rounds: each round runs every contender once, and a ratio is the median over rounds of
the ratio of runs next to each other in time.
"""

from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from importlib.metadata import version
from typing import TypeVar

from agency_telemetry import __version__
from agency_telemetry.cli import new_event_loop

K = TypeVar("K", bound=Hashable)
Times = dict[str, list[float]]  # side -> seconds of each timed run
WARMUP_UP_TO = 2000  # agents; above, renders take seconds and the line count render is the warm-up
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MB = 2**20


# --- the machine ---------------------------------------------------------------------------


def machine_lines() -> list[str]:
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), model)
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ", ".join(f"{name} {version(name)}" for name in ("aiohttp", "prometheus-client", "msgspec"))
    loop = type(new_event_loop()).__module__.split(".")[0]  # what the servers run on: uvloop or asyncio
    return [
        f"machine: {model}, {os.cpu_count()} cores ({usable} usable), {platform.system()} {platform.release()}",
        f"python:  {platform.python_implementation()} {platform.python_version()}, servers on the {loop} loop; "
        f"agency-telemetry {__version__}, {packages}",
    ]


# --- runs in rounds ------------------------------------------------------------------------


def in_rounds(fns: dict[K, Callable[[], object]], runs: dict[K, int]) -> dict[K, list[float]]:
    """Each round times every function still due once: every contender sees the VM's drift alike."""
    times: dict[K, list[float]] = {key: [] for key in fns}
    for index in range(max(runs.values())):
        for key, fn in fns.items():
            if index < runs[key]:
                started = time.perf_counter()
                fn()
                times[key].append(time.perf_counter() - started)
    return times


def interleaved(fns: dict[str, Callable[[], object]], runs: int, warmup: bool = True) -> Times:
    """Seconds of each run; runs alternate between the sides so that drift hits both alike."""
    for fn in fns.values() if warmup else ():
        fn()  # untimed
    return in_rounds(fns, dict.fromkeys(fns, runs))


@dataclass(frozen=True)
class Result:
    label: str
    times: Times
    amount: dict[str, int]  # side -> events per run, or sample lines per render
    cpu: Times | None = None  # side -> CPU seconds the server process used in each run

    def cpu_rate(self, side: str) -> float:
        """Events per CPU second of the server: what one core of it can take."""
        assert self.cpu is not None
        return self.amount[side] / statistics.median(self.cpu[side])

    def median(self, side: str) -> float:
        return statistics.median(self.times[side])

    def rate(self, side: str) -> float:
        return self.amount[side] / self.median(side)

    def ratio(self) -> float:
        """Median over rounds of baseline seconds / our seconds: runs next to each other in time are compared."""
        return statistics.median(b / o for o, b in zip(self.times["ours"], self.times["baseline"], strict=True))


def sample_lines(text: bytes) -> int:
    """Sample lines of an exposition: what a render's cost is divided by."""
    return sum(1 for line in text.split(b"\n") if line and not line.startswith(b"#"))


def size_name(agents: int) -> str:
    return f"{agents // 1000}k" if agents % 1000 == 0 else str(agents)


# --- memory and CPU (Linux /proc) ----------------------------------------------------------


def rss() -> int:
    """Resident set size of this process in bytes, after a full collection."""
    gc.collect()
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[1]) * PAGE_SIZE


def status_bytes(name: str, pid: int | str = "self") -> int:
    """A size in /proc/<pid>/status, such as VmRSS or VmHWM, in bytes."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        return next(int(line.split()[1]) * 1024 for line in status if line.startswith(f"{name}:"))


def reset_peak_rss() -> bool:
    """Restarts the kernel's count of peak RSS (VmHWM); False where /proc does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as clear_refs:
            clear_refs.write("5")
    except OSError:
        return False
    return True


def peak_rss() -> int:
    return status_bytes("VmHWM")


def megabytes(size: float) -> str:
    return f"{size / MB:,.1f} MB"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
