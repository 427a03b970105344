"""A cgroup v1 memory cgroup with a limit, for a process that must see little memory (a small query node).

It is made under this process's own memory cgroup, so the child stays inside whatever limits and
accounting already apply to the test run. The kernel enforces the limit wherever the child runs, but
Milvus 2.3.5 only *reads* it as its memory inside a container: it checks that pid 1 of its PID
namespace has a devices cgroup other than `/`, then reads `memory.limit_in_bytes` at the root of the
mounted memory hierarchy. `wrap` makes that so: a devices cgroup of its own, a PID and a mount
namespace, and the memory cgroup bind-mounted over /sys/fs/cgroup/memory (seen: a 600 MiB node then
reports `memory: 629145600` in GetMetrics, and 25 GB, the host's, without it).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import time
import uuid
from pathlib import Path

CGROUPS = Path("/sys/fs/cgroup")
ROOT = CGROUPS / "memory"


def own_cgroup(controller: str = "memory") -> Path:
    """The cgroup this process runs in (cgroup v1: `N:memory:/path` in /proc/self/cgroup)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            return CGROUPS / controller / path.lstrip("/")
    raise RuntimeError(f"no cgroup v1 {controller} controller for this process")


def available() -> bool:
    try:
        return os.access(own_cgroup(), os.W_OK)
    except (OSError, RuntimeError):
        return False


class MemoryCgroup:
    """One memory cgroup; `procs` is the file a child writes its pid to before it allocates anything."""

    def __init__(self, limit_bytes: int, prefix: str = "milvusops") -> None:
        self.limit_bytes = limit_bytes
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.path = own_cgroup() / name
        self.devices = own_cgroup("devices") / name  # makes Milvus believe it runs in a container
        self.path.mkdir()
        (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))
        self.devices.mkdir()

    @property
    def procs(self) -> Path:
        return self.path / "cgroup.procs"

    def wrap(self, argv: list[str]) -> list[str]:
        """argv run as in a container: in both cgroups, PID 1 of its own PID namespace, this cgroup as root."""
        inner = f"mount --bind {shlex.quote(str(self.path))} /sys/fs/cgroup/memory && exec {shlex.join(argv)}"
        script = (
            # the shell joins the cgroups before it execs anything, so all the node allocates counts here
            f"echo $$ > {shlex.quote(str(self.procs))} && echo $$ > {shlex.quote(str(self.devices / 'cgroup.procs'))}"
            " && exec unshare --pid --fork --kill-child --mount --mount-proc --propagation private"
            f" sh -c {shlex.quote(inner)}"
        )
        return ["sh", "-c", script]

    def pids(self) -> list[int]:
        with contextlib.suppress(OSError):
            return [int(pid) for pid in self.procs.read_text().split()]
        return []

    def read(self, name: str) -> int:
        """A counter such as `memory.usage_in_bytes`, `memory.max_usage_in_bytes` or `memory.failcnt`."""
        return int((self.path / name).read_text())

    def oom_kills(self) -> int:
        """How many processes the kernel killed for this cgroup's limit (`oom_kill` of memory.oom_control)."""
        for line in (self.path / "memory.oom_control").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
        return 0

    def remove(self, timeout: float = 10) -> None:
        """rmdir both cgroups once their processes are gone (the kernel refuses while any is left)."""
        for path in (self.path, self.devices):
            _rmdir(path, time.monotonic() + timeout)


def _rmdir(path: Path, deadline: float) -> None:
    while True:
        try:
            path.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"cgroup {path} still holds processes") from None
            time.sleep(0.1)
