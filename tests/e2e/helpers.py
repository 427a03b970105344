"""Helpers for e2e tests: the operator as a process, Kubernetes and Milvus shortcuts, polling."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar, cast

import numpy
from kubernetes import client, config, watch
from pymilvus import DataType, MilvusClient

from tests.testenv.image import ulimits
from tests.testenv.kube import ControlPlane
from tests.testenv.milvus import Server
from tests.testenv.processes import Process, free_port

T = TypeVar("T")
GROUP, VERSION, PLURAL = "milvusops.dev", "v1alpha1", "milvuscollections"
# what Kopf logs when a replica pauses for a higher priority peer, and when it resumes
PAUSED, RESUMED = "Pausing operations in favour of", "Resuming operations after the pause"


# a poll is one GET or a metrics scrape (a few ms); at 0.25 s a wait ended ~0.12 s after its condition held
POLL_SECONDS = 0.1


def wait_for(
    check: Callable[[], T | None], timeout: float = 60, what: str = "condition", interval: float = POLL_SECONDS
) -> T:
    """Poll until check() returns something truthy; fail with the last value seen."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{what} not reached within {timeout}s; last value: {last!r}")


class OperatorProcess:
    """The operator run as in production: `python -m milvusops` against the test API server."""

    def __init__(
        self, plane: ControlPlane, milvus: Server, namespace: str, logdir: Path, image: str = "", **env: str
    ) -> None:
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.image = image
        self.container = ""
        self.logdir = logdir
        self.environment = {
            "KUBECONFIG": str(plane.kubeconfig),
            "MILVUSOPS_DEFAULT_URI": milvus.uri,
            "MILVUSOPS_DEFAULT_TOKEN": milvus.root_token,
            "MILVUSOPS_NAMESPACES": f'["{namespace}"]',
            "MILVUSOPS_STANDALONE": "true",
            "MILVUSOPS_RESYNC_SECONDS": "5",
            "MILVUSOPS_FULL_OBSERVATION_SECONDS": "15",  # two confirming passes, then a full one
            "MILVUSOPS_STEADY_CALLS_PER_SECOND": "0",  # always that 15 s, not as often as the call budget allows
            "MILVUSOPS_LOADING_RECHECK_SECONDS": "1",
            "MILVUSOPS_REPLICAS_SETTLE_SECONDS": "20",  # the test Milvus's session TTL (10 s) + two resyncs
            "MILVUSOPS_METRICS_PORT": str(self.metrics_port),
            "MILVUSOPS_LIVENESS_PORT": str(self.liveness_port),
            "MILVUSOPS_DELETION_TIMEOUT_SECONDS": "20",
            "PATH": "/usr/bin:/bin",
            **env,
        }
        self.log_path = logdir / f"operator-{uuid.uuid4().hex[:6]}.log"
        self.process: Process | None = None

    def start(self) -> OperatorProcess:
        argv = self._container_argv() if self.image else [sys.executable, "-m", "milvusops"]
        self.process = Process("operator", argv, self.log_path, env=self.environment)
        wait_for(self._metrics_up, 60, "operator metrics endpoint")
        return self

    def _container_argv(self) -> list[str]:
        """The image run as the chart runs it: non-root, read-only root, no capabilities, host network."""
        kubeconfig = self.logdir / f"kubeconfig-{uuid.uuid4().hex[:6]}"
        kubeconfig.write_bytes(Path(self.environment["KUBECONFIG"]).read_bytes())
        kubeconfig.chmod(0o644)  # read by uid 65532 inside the container
        env = {k: v for k, v in self.environment.items() if k.startswith("MILVUSOPS_")}
        env["KUBECONFIG"] = "/etc/milvusops/kubeconfig"
        self.container = f"milvusops-{uuid.uuid4().hex[:8]}"
        argv = ["podman", "run", "--rm", "--name", self.container, "--network=host"]
        argv += ["--runtime", "runc", *ulimits(), "--read-only", "--tmpfs", "/tmp", "--user", "65532:65532"]  # noqa: S108
        argv += [
            "--cap-drop=ALL",
            "--security-opt=no-new-privileges",
            "-v",
            f"{kubeconfig}:/etc/milvusops/kubeconfig:ro",
        ]
        for key, value in env.items():
            argv += ["-e", f"{key}={value}"]
        return [*argv, self.image]

    def liveness(self) -> int:
        url = f"http://127.0.0.1:{self.liveness_port}/healthz"
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)

    def _metrics_up(self) -> bool:
        if self.process is not None and not self.process.alive():
            raise AssertionError(f"operator exited:\n{self.log()}")
        try:
            self.metrics()
        except OSError:
            return False
        return True

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            return str(response.read().decode())

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of one metric whose labels include the given ones."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith(name + "{") and not line.startswith(name + " "):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def slow_callbacks(self) -> list[str]:
        """asyncio's "Executing <callback> took N seconds" lines: the operator must be started with
        MILVUSOPS_TEST_SLOW_CALLBACK_SECONDS (asyncio debug), e.g. "0.1" (STYLE 16: nothing blocks the loop)."""
        return [line for line in self.log().splitlines() if "Executing " in line and " took " in line]

    def threads_and_sockets(self) -> tuple[int, int]:
        """The operator process's threads and open sockets, from /proc (not for an image run)."""
        assert self.process is not None and not self.image
        proc = Path(f"/proc/{self.process.popen.pid}")
        sockets = 0
        for fd in (proc / "fd").iterdir():
            try:
                sockets += fd.readlink().name.startswith("socket:")
            except FileNotFoundError:  # closed while listed
                continue
        return len(list((proc / "task").iterdir())), sockets

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop(grace=15)
            self.process = None
        if self.container:
            # conmon keeps a container alive outside our process group if podman died before forwarding
            subprocess.run(
                ["podman", "rm", "--force", "--time", "10", self.container], capture_output=True, check=False
            )

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process = None


class Kube:
    """The official Python client against the test API server."""

    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.api = config.new_client_from_config(str(plane.kubeconfig))  # type: ignore[no-untyped-call]
        self.core = client.CoreV1Api(self.api)
        self.custom = client.CustomObjectsApi(self.api)

    def create(self, namespace: str, name: str, spec: dict[str, Any], **metadata: Any) -> dict[str, Any]:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MilvusCollection",
            "metadata": {"name": name, **metadata},
            "spec": spec,
        }
        return cast(
            dict[str, Any], self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
        )

    def create_alias(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        body = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "MilvusAlias", "metadata": {"name": name}, "spec": spec}
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "milvusaliases", body)

    def create_connection(self, namespace: str, name: str, spec: dict[str, Any]) -> None:
        body = {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "MilvusConnection",
            "metadata": {"name": name},
            "spec": spec,
        }
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "milvusconnections", body)

    def create_secret(self, namespace: str, name: str, data: dict[str, str]) -> None:
        secret = client.V1Secret(metadata=client.V1ObjectMeta(name=name), string_data=data)
        self.core.create_namespaced_secret(namespace, secret)

    def get(self, namespace: str, name: str, plural: str = PLURAL) -> dict[str, Any]:
        return cast(dict[str, Any], self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, plural, name))

    def patch(self, namespace: str, name: str, patch: dict[str, Any], plural: str = PLURAL) -> dict[str, Any]:
        return cast(
            dict[str, Any], self.custom.patch_namespaced_custom_object(GROUP, VERSION, namespace, plural, name, patch)
        )

    def delete(self, namespace: str, name: str, plural: str = PLURAL) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, plural, name)

    def exists(self, namespace: str, name: str, plural: str = PLURAL) -> bool:
        try:
            self.get(namespace, name, plural)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def namespace_exists(self, namespace: str) -> bool:
        try:
            self.core.read_namespace(namespace)
        except client.ApiException as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def condition(self, namespace: str, name: str, kind: str = "Ready", plural: str = PLURAL) -> dict[str, Any]:
        status = self.get(namespace, name, plural).get("status") or {}
        for item in status.get("conditions") or []:
            if item["type"] == kind:
                return dict(item)
        return {}

    def wait_reason(
        self, namespace: str, name: str, reason: str, timeout: float = 60, plural: str = PLURAL
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            ready = self.condition(namespace, name, plural=plural)
            return ready if ready.get("reason") == reason else None

        return wait_for(check, timeout, f"{name} Ready reason {reason}")

    def watch_for(
        self, namespace: str, name: str, since: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 60
    ) -> dict[str, Any]:
        """The first version after resourceVersion `since` that satisfies predicate (a watch misses none)."""
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + timeout
        for event in stream.stream(  # type: ignore[no-untyped-call]
            self.custom.list_namespaced_custom_object,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            field_selector=f"metadata.name={name}",
            resource_version=since,
            timeout_seconds=int(timeout),
        ):
            obj = cast(dict[str, Any], event["object"])
            if predicate(obj):
                stream.stop()  # type: ignore[no-untyped-call]
                return obj
            if time.monotonic() > deadline:
                break
        raise AssertionError(f"no version of {namespace}/{name} matched within {timeout}s")

    def wait_in_sync(self, namespace: str, name: str, generation: int, timeout: float = 90) -> dict[str, Any]:
        """Ready with reason InSync for the given generation: the spec of that generation is in effect."""

        def check() -> dict[str, Any] | None:
            ready = self.condition(namespace, name)
            return ready if (ready.get("observedGeneration"), ready.get("reason")) == (generation, "InSync") else None

        return wait_for(check, timeout, f"{name} InSync at generation {generation}")

    def events(self, namespace: str, name: str) -> list[Any]:
        items = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        return list(items)


def new_collection(
    milvus: Server, partitions: list[str], index: bool = True, rows: int = 200, name: str | None = None
) -> str:
    """A real collection with partitions, a vector index and some rows in each partition."""
    name = name or f"c_{uuid.uuid4().hex[:10]}"
    milvus_client = milvus.client()
    try:
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=8)
        milvus_client.create_collection(name, schema=schema)
        for partition in partitions:
            milvus_client.create_partition(name, partition)
            rows_data = [{"vector": [float((i + j) % 7) for j in range(8)]} for i in range(rows)]
            milvus_client.insert(name, rows_data, partition_name=partition)
        if index:
            flat_index(milvus_client, name)
    finally:
        milvus_client.close()
    return name


def flat_index(client: MilvusClient, collection: str) -> None:
    params = MilvusClient.prepare_index_params()
    params.add_index("vector", index_type="FLAT", metric_type="L2")
    client.create_index(collection, params)


def big_collection(milvus: Server, rows: int, dim: int = 128) -> str:
    """The collection's first load (of `big`) takes seconds, `small` is tiny: room for a spec change meanwhile."""
    name = f"c_{uuid.uuid4().hex[:10]}"
    client = milvus.client(timeout=120)
    try:
        schema = MilvusClient.create_schema(auto_id=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        client.create_collection(name, schema=schema)
        generator = numpy.random.default_rng(7)
        for partition, count in (("big", rows), ("small", 100)):
            client.create_partition(name, partition)
            for start in range(0, count, 20_000):
                vectors = generator.random((min(20_000, count - start), dim), dtype=numpy.float32)
                client.insert(name, [{"vector": vector} for vector in vectors], partition_name=partition)
        client.flush(name)
        flat_index(client, name)
    finally:
        client.close()
    return name


def load_states(milvus: Server, collection: str) -> dict[str, str]:
    """Partition -> get_load_state name, asked directly of Milvus."""
    milvus_client = milvus.client()
    try:
        names = milvus_client.list_partitions(collection)
        return {name: milvus_client.get_load_state(collection, name)["state"].name for name in names}
    finally:
        milvus_client.close()
