"""Per-test operator process and clients for the e2e suite."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import Figures
from tests.e2e.helpers import Kube, OperatorProcess
from tests.testenv import image, release
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import MilvusLiteServer, MilvusServer
from tests.testenv.milvus_cluster import MilvusCluster
from tests.testenv.registry import Registry


@pytest.fixture(scope="session")
def kube(control_plane: ControlPlane) -> Kube:
    return Kube(control_plane)


def _operators(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    server: MilvusServer | MilvusCluster,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OperatorProcess]]:
    """Start `python -m milvusops` watching the test's namespace; its log is shown if the test fails."""
    started: list[OperatorProcess] = []
    request.node.operators = started  # read by pytest_runtest_makereport to show logs of a failed test
    logdir = tmp_path_factory.mktemp("operator")

    def start(watch: str = "", **env: str) -> OperatorProcess:
        """`watch`: another namespace than the test's, for a second operator of its own."""
        operator = OperatorProcess(control_plane, server, watch or namespace, logdir, **env).start()
        started.append(operator)
        return operator

    yield start
    for operator in started:
        operator.stop()


@pytest.fixture
def start_operator(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    milvus: MilvusServer,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OperatorProcess]]:
    yield from _operators(request, control_plane, milvus, namespace, tmp_path_factory)


@pytest.fixture
def start_cluster_operator(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    milvus_cluster: MilvusCluster,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OperatorProcess]]:
    """The operator against the Milvus cluster instead of the standalone."""
    yield from _operators(request, control_plane, milvus_cluster, namespace, tmp_path_factory)


@pytest.fixture
def start_small_operator(
    request: pytest.FixtureRequest,
    control_plane: ControlPlane,
    small_cluster: MilvusCluster,
    namespace: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., OperatorProcess]]:
    """The operator against the small cluster (one 200 MiB query node)."""
    yield from _operators(request, control_plane, small_cluster, namespace, tmp_path_factory)


@pytest.fixture
def operator(start_operator: Callable[..., OperatorProcess]) -> OperatorProcess:
    return start_operator()


@pytest.fixture(scope="module")
def shared_prefix() -> str:
    """The namespaces of a module's tests that share `module_operator` start with this."""
    return f"m-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def module_operator(
    control_plane: ControlPlane, milvus: MilvusServer, shared_prefix: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator (default settings) for a module's tests that take it, each still in a fresh namespace:
    it watches them all through a namespace pattern, and saves each test an operator start and stop."""
    operator = OperatorProcess(control_plane, milvus, f"{shared_prefix}-*", tmp_path_factory.mktemp("operator"))
    yield operator.start()
    operator.stop()


@pytest.fixture(scope="module")
def module_cluster_operator(
    control_plane: ControlPlane,
    milvus_cluster: MilvusCluster,
    shared_prefix: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    """`module_operator` against the Milvus cluster (a module uses one of the two: both would watch its pattern)."""
    plane, logdir = control_plane, tmp_path_factory.mktemp("operator")
    operator = OperatorProcess(plane, milvus_cluster, f"{shared_prefix}-*", logdir)
    yield operator.start()
    operator.stop()


@pytest.fixture
def shared_operator(request: pytest.FixtureRequest, module_operator: OperatorProcess) -> OperatorProcess:
    """`module_operator` for one test; its log goes into the report of a failed test. A module opts in by
    overriding `operator` with it; tests that count the operator's calls or log lines start their own."""
    request.node.operators = [module_operator]
    return module_operator


@pytest.fixture(scope="session")
def milvus_lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusLiteServer]:
    server = MilvusLiteServer(tmp_path_factory.mktemp("milvus-lite"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def registry(workdir: Path) -> Iterator[Registry]:
    """A local OCI registry (crane), started only by the tests that ask for it."""
    server = Registry(workdir / "registry")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def released(registry: Registry, tmp_path_factory: pytest.TempPathFactory, figures: Figures) -> release.Release:
    """The same build and push as `make release REGISTRY=...`, from the session's image (podman's cache)."""
    built = release.build(tmp_path_factory.mktemp("dist"), tag=image.build_image())
    release.push(built, registry.address)
    for path in (built.archive, built.sbom, built.chart):
        figures.record(f"release artifact {path.name}", f"{path.stat().st_size} bytes")
    figures.record("release steps", ", ".join(f"{step} {s:.1f} s" for step, s in built.seconds.items()))
    return built
