"""The environment every benchmark runs in: a real control plane with the CRDs and Milvus, always stopped."""

from __future__ import annotations

import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.helpers import Kube, OperatorProcess
from tests.testenv import gobins
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer, Server

from bench.lib.profiling import Profiler
from bench.standin.process import StandInServer


class SetupClock:
    """Adds up the time spent preparing and cleaning up, to report it apart from the measured figures."""

    def __init__(self) -> None:
        self.seconds = 0.0

    @contextmanager
    def measure(self, what: str) -> Iterator[None]:
        started = time.perf_counter()
        yield
        elapsed = time.perf_counter() - started
        self.seconds += elapsed
        print(f"setup (not counted): {what} in {elapsed:.1f}s", flush=True)


@dataclass
class Environment:
    workdir: Path
    plane: ControlPlane
    milvus: Server  # the real Milvus 2.3.5, or the scale stand-in (bench/standin)
    kube: Kube
    namespace: str
    stack: ExitStack
    profiler: Profiler | None = None
    setup: SetupClock = field(default_factory=SetupClock)

    def start_operator(self, **env: str) -> OperatorProcess:
        """The operator as a process, with the production defaults unless overridden; stopped on exit."""
        # the production defaults, not the test harness's (which observes in full every 15 s)
        production = {"MILVUSOPS_RESYNC_SECONDS": "30", "MILVUSOPS_LOADING_RECHECK_SECONDS": "2"}
        production["MILVUSOPS_FULL_OBSERVATION_SECONDS"] = "300"
        production["MILVUSOPS_STEADY_CALLS_PER_SECOND"] = "50"  # the harness turns the call budget off
        production["MILVUSOPS_REPLICAS_SETTLE_SECONDS"] = "120"  # the harness's is for its 10 s session TTL
        settings = {**production, **env}
        operator = OperatorProcess(self.plane, self.milvus, self.namespace, self.workdir, **settings).start()
        self.stack.callback(operator.stop)
        if self.profiler is not None and operator.process is not None:
            self.stack.callback(self.profiler.attach(operator.process.popen.pid))
        return operator

    def fresh_milvus(self) -> None:
        """Milvus started again on an empty data directory, same port: it has held and loaded nothing yet."""
        if not isinstance(self.milvus, MilvusServer):
            raise TypeError(f"a fresh start needs the real Milvus, not {type(self.milvus).__name__}")
        self.milvus.stop()
        shutil.rmtree(self.milvus.workdir / "data" / "data", ignore_errors=True)  # etcd, rocksmq, segments
        self.milvus.start()


@contextmanager
def environment(
    namespace: str,
    profile: bool = False,
    server: Callable[[Path], MilvusServer | StandInServer] = MilvusServer,
    raw_profile: bool = False,
) -> Iterator[Environment]:
    profiler = Profiler(raw=raw_profile) if profile else None  # before anything starts: py-spy may be missing
    # a SIGTERM (e.g. `kill`, a CI timeout) must unwind the stack below, or the servers outlive the run
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix=f"milvusops-{namespace}-"))
    plane = ControlPlane(gobins.ensure_all(), workdir / "kube")
    milvus = server(workdir / "milvus")
    with ExitStack() as stack:
        stack.callback(plane.stop)
        plane.start()
        plane.kubectl("apply", "--server-side", "-f", "crds")
        plane.kubectl("wait", "--for=condition=Established", "-f", "crds")
        plane.kubectl("create", "namespace", namespace)
        stack.callback(milvus.stop)
        milvus.start()
        kube = Kube(plane)
        # bulk creates and deletes run 16 at a time: keep that many connections instead of discarding them
        kube.api.rest_client.pool_manager.connection_pool_kw["maxsize"] = 32
        yield Environment(workdir, plane, milvus, kube, namespace, stack, profiler)
