"""A real Milvus 2.3.5 cluster: its own etcd and Kafka, the coordinators, a proxy, query, data and index nodes.

Every role is the `milvus` binary that the PyPI package `milvus` ships, one process (and process group)
each, configured from the package's own template. Unlike the standalone it fixes no port, so it can run
beside one.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from pymilvus import DataType

from .gobins import Binaries
from .kafka import Kafka
from .kube import start_etcd
from .memcgroup import MemoryCgroup
from .milvus import MILVUS_VERSION, Server, ensure_server_python
from .processes import Process, descendants, free_port, wait_until

# seconds a role's etcd lease lives without a heartbeat (Milvus default 30); the node-loss tests wait for it
SESSION_TTL = 10
COORDINATORS = ["mixture", "-rootcoord", "-querycoord", "-datacoord", "-indexcoord"]
# (config section, port key) of every fixed port; query nodes get theirs one by one
PORTS = [
    ("rootCoord", "port"),
    ("proxy", "port"),
    ("proxy", "internalPort"),
    ("queryCoord", "port"),
    ("dataCoord", "port"),
    ("dataNode", "port"),
    ("indexNode", "port"),
]
_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)(?:\(\w+\))?(?::\s*([^}]*?))?\s*\}\}")


def ensure_dist() -> tuple[Path, Path]:
    """(folder of the unpacked `milvus` binary and its libraries, the package's config template), made once."""
    python = ensure_server_python()
    dist = python.parent.parent.parent / "dist"
    script = "import milvus, sys; milvus._initialize_data_files(sys.argv[1]); print(milvus.__file__)"
    package = subprocess.run([str(python), "-P", "-c", script, str(dist)], check=True, capture_output=True, text=True)
    template = Path(package.stdout.strip()).parent / "data" / "config.yaml.template"
    return dist / "bin", template


def render(template: str) -> dict[str, Any]:
    """The template with every `{{ name(type): default }}` at its default (we set what matters afterwards)."""
    return dict(yaml.safe_load(_PLACEHOLDER.sub(lambda m: m.group(2) or "", template)))


class MilvusCluster(Server):
    """Milvus 2.3.5 distributed on loopback, authentication on; ready when a collection really loads."""

    name = "milvus-cluster"
    authorization = True

    def __init__(
        self, binaries: Binaries, workdir: Path, query_nodes: int = 2, query_node_memory: int | None = None
    ) -> None:
        """`query_node_memory`: bytes; the first query nodes each run in a memory cgroup of that limit."""
        super().__init__(workdir)
        self.binaries = binaries
        self.initial_query_nodes = query_nodes
        self.query_node_memory = query_node_memory
        self.kafka = Kafka(workdir / "kafka")
        self.etcd: Process | None = None
        self.roles: dict[str, Process] = {}
        self.health: dict[str, int] = {}  # role -> its METRICS_PORT, where /healthz answers
        self.cgroups: dict[str, MemoryCgroup] = {}  # role -> the memory cgroup that limits it, if any
        self._query_nodes_started = 0
        self._bin = Path()
        self._config: dict[str, Any] = {}
        self._glog = Path()
        self.started_in = 0.0

    def start(self, timeout: float = 240) -> None:
        began = time.monotonic()
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._bin, template = ensure_dist()
        self._glog = template.with_name("glog.conf")
        self.etcd, etcd_url = start_etcd(self.binaries.etcd, self.workdir)
        self.kafka.start()
        self._config = self._base_config(render(template.read_text()), etcd_url.removeprefix("http://"))
        self._role("coordinators", COORDINATORS, timeout)
        for role in ("proxy", "datanode", "indexnode"):
            self._role(role, [role], timeout)
        for _ in range(self.initial_query_nodes):
            self.add_query_node(timeout, self.query_node_memory)
        wait_until(self._ready, timeout, self.name, interval=0.5)
        wait_until(self._loads, timeout, f"{self.name}: a collection loading", interval=2)
        self.started_in = time.monotonic() - began

    def _base_config(self, config: dict[str, Any], etcd: str) -> dict[str, Any]:
        config["etcd"].update(endpoints=etcd, use={"embed": False})
        config["mq"] = {"type": "kafka"}
        config["kafka"] = {"brokerList": self.kafka.broker}
        config["localStorage"] = {"path": str(self.workdir / "storage")}  # one folder: the nodes share a disk
        config["common"]["storageType"] = "local"
        config["common"]["security"]["authorizationEnabled"] = True
        config["common"]["session"]["ttl"] = SESSION_TTL
        config["log"]["file"]["rootPath"] = ""  # stdout, into each role's log file
        for section, key in PORTS:
            config[section][key] = self.port if (section, key) == ("proxy", "port") else free_port()
        for section in ("rootCoord", "proxy", "queryCoord", "queryNode", "dataCoord", "dataNode", "indexNode"):
            config[section]["ip"] = "127.0.0.1"
        return config

    def _role(
        self,
        name: str,
        args: list[str],
        timeout: float,
        config: dict[str, Any] | None = None,
        cgroup: MemoryCgroup | None = None,
    ) -> None:
        home = self.workdir / name
        (home / "configs").mkdir(parents=True, exist_ok=True)
        (home / "configs" / "milvus.yaml").write_text(yaml.safe_dump(config or self._config))
        (home / "configs" / "glog.conf").write_text(self._glog.read_text())
        metrics = free_port()
        env = {**os.environ, "LD_LIBRARY_PATH": str(self._bin), "METRICS_PORT": str(metrics)}
        env["MILVUS_RUN_DIR"] = str(home / "run")
        argv = [str(self._bin / "milvus"), "run", *args]
        if cgroup is not None:
            argv = cgroup.wrap(argv)
        self.roles[name] = Process(name, argv, home / f"{name}.log", cwd=home, env=env)
        self.health[name] = metrics
        wait_until(lambda: self._healthy(name), timeout, f"{self.name}: {name}", interval=0.5)

    def _healthy(self, name: str) -> bool:
        process = self.roles[name]
        if not process.alive():
            raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
        with urllib.request.urlopen(f"http://127.0.0.1:{self.health[name]}/healthz", timeout=3) as response:
            return b"OK" in response.read()

    def add_query_node(self, timeout: float = 120, memory_limit: int | None = None) -> str:
        """Start one more query node (its own port and process group); returns its role name.

        `memory_limit`: bytes; the node runs in a cgroup v1 memory cgroup of that limit, which Milvus
        reads as the node's memory (and the kernel enforces).
        """
        self._query_nodes_started += 1
        name = f"querynode-{self._query_nodes_started}"
        config = copy.deepcopy(self._config)
        config["queryNode"]["port"] = free_port()
        cgroup = MemoryCgroup(memory_limit, prefix=f"milvus-{name}") if memory_limit is not None else None
        if cgroup is not None:
            self.cgroups[name] = cgroup
        try:
            self._role(name, ["querynode"], timeout, config, cgroup)
        except BaseException:
            self._forget(name)
            raise
        return name

    def pid(self, role: str) -> int:
        """The pid of the role's `milvus` process itself (under a memory limit it runs below sh and unshare)."""
        process = self.roles[role]
        if role not in self.cgroups:
            return int(process.popen.pid)
        for pid in descendants(process.popen.pid):
            if Path(f"/proc/{pid}/exe").resolve() == self._bin / "milvus":
                return pid
        raise RuntimeError(f"{role}: no milvus process found")

    def query_nodes(self) -> list[str]:
        return [name for name in self.roles if name.startswith("querynode-")]

    def kill_role(self, name: str) -> None:
        """SIGKILL one role's process group at once, as a node that dies (fault injection)."""
        self.roles[name].kill()
        self._forget(name)

    def _forget(self, name: str) -> None:
        """Drop a role whose processes are gone (or never started), and remove its cgroup."""
        process = self.roles.pop(name, None)
        if process is not None and process.alive():
            process.kill()
        self.health.pop(name, None)
        cgroup = self.cgroups.pop(name, None)
        if cgroup is not None:
            cgroup.remove()

    def _loads(self) -> bool:
        """A real collection is created, indexed, loaded and dropped: every role answers its part."""
        client = self.client(timeout=30)
        name = "testenv_ready"
        try:
            if client.has_collection(name):
                client.drop_collection(name)
            schema = client.create_schema(auto_id=False)
            schema.add_field("id", DataType.INT64, is_primary=True)
            schema.add_field("vector", DataType.FLOAT_VECTOR, dim=4)
            index = client.prepare_index_params()
            index.add_index("vector", index_type="FLAT", metric_type="L2")
            client.create_collection(name, schema=schema, index_params=index)
            client.load_collection(name, timeout=60)
            client.drop_collection(name)
            return True
        finally:
            client.close()

    def stop(self, grace: float = 10) -> None:
        errors = []
        processes = [*reversed(self.roles.values()), self.kafka, self.etcd]
        for process in processes:
            try:
                if process is not None:
                    process.stop(grace=grace) if isinstance(process, Process) else process.stop(grace)
            except RuntimeError as exc:
                errors.append(str(exc))
        self.roles.clear()
        for cgroup in self.cgroups.values():
            try:
                cgroup.remove()
            except RuntimeError as exc:
                errors.append(str(exc))
        self.cgroups.clear()
        self.etcd = None
        if errors:
            raise RuntimeError("; ".join(errors))

    def describe(self) -> str:
        nodes = ", ".join(self.query_nodes())
        return f"Milvus {MILVUS_VERSION} cluster at {self.uri} (token {self.root_token}); query nodes: {nodes}"
