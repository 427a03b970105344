"""The environment every benchmark runs in: a real control plane with the CRDs and Milvus, always stopped."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.e2e.helpers import Kube, OperatorProcess
from tests.testenv import gobins
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer


@dataclass
class Environment:
    workdir: Path
    plane: ControlPlane
    milvus: MilvusServer
    kube: Kube
    namespace: str
    stack: ExitStack

    def start_operator(self, **env: str) -> OperatorProcess:
        """The operator as a process, with the production defaults unless overridden; stopped on exit."""
        settings = {"MILVUSOPS_RESYNC_SECONDS": "30", "MILVUSOPS_LOADING_RECHECK_SECONDS": "2", **env}
        operator = OperatorProcess(self.plane, self.milvus, self.namespace, self.workdir, **settings).start()
        self.stack.callback(operator.stop)
        return operator


@contextmanager
def environment(namespace: str) -> Iterator[Environment]:
    workdir = Path(tempfile.mkdtemp(prefix=f"milvusops-{namespace}-"))
    plane = ControlPlane(gobins.ensure_all(), workdir / "kube")
    milvus = MilvusServer(workdir / "milvus")
    with ExitStack() as stack:
        stack.callback(plane.stop)
        plane.start()
        plane.kubectl("apply", "--server-side", "-f", "crds")
        plane.kubectl("wait", "--for=condition=Established", "-f", "crds")
        plane.kubectl("create", "namespace", namespace)
        stack.callback(milvus.release)
        milvus.start()
        yield Environment(workdir, plane, milvus, Kube(plane), namespace, stack)
