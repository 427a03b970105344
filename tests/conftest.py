"""Session-wide real control plane and Milvus for tests/e2e; unit tests never touch these fixtures."""

from __future__ import annotations

import os
import time
import uuid

# Tests start servers and operators with subprocess.Popen from a process that also talks gRPC (pymilvus). With
# gRPC's fork support on, its poller thread restarts in the forked child, whose epoll fd close_fds has closed:
# the child dies before exec ("epoll_wait error: Bad file descriptor", grpc/grpc#43055). Set before grpc loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.testenv import gobins
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusServer
from tests.testenv.milvus_cluster import MilvusCluster

ROOT = Path(__file__).resolve().parent.parent
# the session's servers and their data are thrown away: a graceful stop (Kafka's, a query node's with
# segments) took up to 30 s at the end of a worker's run, all of it on the CI's wall clock
TEARDOWN_GRACE_SECONDS = 2.0
pytest_plugins = ["tests.testenv.stop_on_sigterm", "tests.testenv.worker_scheduling"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call" and report.failed:
        for operator in getattr(item, "operators", []):
            report.sections.append((f"operator log {operator.log_path.name}", operator.log()[-30000:]))
    return report


class Figures:
    """Numbers measured by tests (recovery times, counts), printed at the end of the run for the docs."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str]] = []

    def record(self, name: str, value: str) -> None:
        self.rows.append((name, value))


FIGURES = Figures()


@pytest.fixture(scope="session")
def figures() -> Figures:
    return FIGURES


def pytest_sessionfinish(session: pytest.Session) -> None:
    workeroutput = getattr(session.config, "workeroutput", None)  # set in a pytest-xdist worker only
    if workeroutput is not None:
        workeroutput["figures"] = FIGURES.rows


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """pytest-xdist: a worker's figures reach the controller, which prints them."""
    FIGURES.rows.extend((name, value) for name, value in getattr(node, "workeroutput", {}).get("figures", []))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES.rows:
        terminalreporter.section("figures measured in this run")
        for name, value in FIGURES.rows:
            terminalreporter.write_line(f"{name}: {value}")


@pytest.fixture(scope="session")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("testenv")


@pytest.fixture(scope="session")
def binaries() -> gobins.Binaries:
    return gobins.ensure_all()


@pytest.fixture(scope="session")
def control_plane(binaries: gobins.Binaries, workdir: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(binaries, workdir / "kube")
    try:
        plane.start()
        plane.kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        plane.kubectl("wait", "--for=condition=Established", "--timeout=60s", "-f", str(ROOT / "crds"))
        _wait_for_published_schemas(plane)
        yield plane
    finally:
        plane.stop()


def _wait_for_published_schemas(plane: ControlPlane, timeout: float = 60) -> None:
    """Established is not published: the API server serves a new CRD's OpenAPI schema (kubectl explain,
    server-side apply's field types) a little later, and a test run first on a worker would see none."""
    deadline = time.monotonic() + timeout
    for kind in ("milvuscollection.spec", "milvusconnection.spec", "milvusalias.spec"):
        while plane.kubectl("explain", kind, check=False).returncode != 0:
            if time.monotonic() > deadline:
                raise TimeoutError(f"kubectl explain {kind}: no schema published after {timeout:.0f} s")
            time.sleep(0.2)


@pytest.fixture(scope="session")
def milvus(workdir: Path) -> Iterator[MilvusServer]:
    server = MilvusServer(workdir / "milvus")
    try:
        server.start()
        yield server
    finally:
        server.stop(grace=TEARDOWN_GRACE_SECONDS)


@pytest.fixture(scope="session")
def milvus_cluster(binaries: gobins.Binaries, workdir: Path) -> Iterator[MilvusCluster]:
    """Milvus distributed, two query nodes; started only by the tests that ask for it."""
    cluster = MilvusCluster(binaries, workdir / "milvus-cluster")
    try:
        cluster.start()
        FIGURES.record("Milvus cluster started in", f"{cluster.started_in:.1f} s")
        yield cluster
    finally:
        cluster.stop(grace=TEARDOWN_GRACE_SECONDS)


SMALL_NODE_MEMORY = 200 * 2**20  # the small cluster's one query node: a cgroup v1 memory limit


@pytest.fixture(scope="session")
def small_cluster(binaries: gobins.Binaries, workdir: Path) -> Iterator[MilvusCluster]:
    """Milvus distributed with one query node of 200 MiB, for the capacity guard: the other cluster's
    query nodes would offer their host-sized memory to every load. Started only by the tests that ask."""
    cluster = MilvusCluster(binaries, workdir / "milvus-small", query_nodes=1, query_node_memory=SMALL_NODE_MEMORY)
    try:
        cluster.start()
        FIGURES.record("small cluster (one 200 MiB query node) started in", f"{cluster.started_in:.1f} s")
        yield cluster
    finally:
        cluster.stop(grace=TEARDOWN_GRACE_SECONDS)


@pytest.fixture
def namespace(request: pytest.FixtureRequest, control_plane: ControlPlane) -> str:
    # fresh per test, never deleted: namespaces do go now, but only after finalizers of an operator stopped by then;
    # inside the pattern of tests/e2e's module operators when the test uses one, outside otherwise
    if "shared_prefix" in request.fixturenames:
        name = f"{request.getfixturevalue('shared_prefix')}-{uuid.uuid4().hex[:6]}"
    else:
        name = f"t-{uuid.uuid4().hex[:10]}"
    control_plane.kubectl("create", "namespace", name)
    return name


@pytest.fixture(scope="session")
def env_for_operator() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("MILVUSOPS_")}
