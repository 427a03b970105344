"""CPU time and memory of processes, read from /proc."""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.testenv.processes import group_members

TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Usage:
    cpu_seconds: float  # user + system, every thread of every member
    peak_rss_bytes: int  # the largest VmHWM among the members
    rss_bytes: int = 0  # the largest VmRSS among the members, now


def usage(pgid: int) -> Usage:
    cpu, peak, now = 0.0, 0, 0
    for pid in group_members(pgid):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue  # exited between the listing and the read
        cpu += _ticks(stat) / TICKS
        for line in status.splitlines():
            if line.startswith("VmHWM:"):
                peak = max(peak, int(line.split()[1]) * 1024)
            elif line.startswith("VmRSS:"):
                now = max(now, int(line.split()[1]) * 1024)
    return Usage(cpu, peak, now)


@contextmanager
def frozen(pgids: Iterable[int]) -> Iterator[None]:
    """The process groups stopped (SIGSTOP) inside, continued after: a baseline measured meanwhile does
    not share Milvus (or its one-at-a-time queue) with their background passes."""
    groups = list(pgids)
    for pgid in groups:
        os.killpg(pgid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pgid in groups:
            os.killpg(pgid, signal.SIGCONT)


# the processes worth watching, by a piece of their command line
WATCHED = {"milvus run": "milvus", "kube-apiserver": "apiserver", "etcd": "etcd", "milvusops": "operator"}


def cpu_ticks() -> Counter[str]:
    """CPU ticks (user + system) used so far by each watched kind of process."""
    ticks: Counter[str] = Counter()
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        for needle, name in WATCHED.items():
            if needle in command:
                ticks[name] += _ticks(stat)
                break
    return ticks


def _ticks(stat: str) -> int:
    """utime + stime of a /proc/<pid>/stat line."""
    # the command name may contain spaces: utime and stime are fields 14 and 15, counted after ')'
    fields = stat[stat.rfind(")") + 2 :].split()
    return int(fields[11]) + int(fields[12])
