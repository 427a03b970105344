"""A real node for the tests that run pods: containerd, runc, a CNI bridge, kubelet, kube-proxy and kube-scheduler.

It joins a control plane of its own (`ControlPlane(pods=True)`), on the machine's own address, so a pod reaches
the API server through the `kubernetes` Service (kube-proxy) and Milvus on the host. One node per machine (the
kubelet's ports are fixed): its state lives in one folder that every start first cleans of what a killed session
left. What this machine needed, each met in the recipe below:
- cgroup v1 is mounted: the kubelet refuses it since 1.35 unless `failCgroupV1: false` (it then warns);
- root lacks CAP_SYS_RESOURCE, so no process may lower its oom_score_adj: the kubelet asks -998 for every
  sandbox, and containerd's `restrict_oom_score_adj` keeps it at the shim's own (Debian's runc 1.1.5 reported
  only "can't get final child's PID from pipe: EOF"; runc 1.5 says "failed to update /proc/self/oom_score_adj");
- a restricted pod asks for the RuntimeDefault seccomp profile: runc is built with libseccomp (Debian's headers).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import yaml

from . import gobins, image
from .cache import cache_root, locked
from .kube import NODE_NAME, SERVICE_RANGE, ControlPlane
from .processes import Process, free_port

POD_RANGE = "10.244.0.0/24"
BRIDGE = "milvusops0"
SANDBOX_IMAGE = "localhost/milvusops-pause:1"
NAMESPACE = "k8s.io"  # containerd's namespace for what the CRI plugin runs


def host_address() -> str:
    """The machine's own IPv4 address (the source of its default route): pods reach the host there, not at 127.0.0.1."""
    route = subprocess.run(["ip", "-4", "-o", "route", "get", "203.0.113.1"], capture_output=True, text=True)
    words = route.stdout.split()
    if route.returncode != 0 or "src" not in words:
        raise RuntimeError(f"no default route to find this machine's address: {route.stderr or route.stdout}")
    return words[words.index("src") + 1]


def build() -> dict[str, Path]:
    """Every binary the node runs, from the pinned modules (cached like the control plane's)."""
    return {name: gobins.build(name) for name in gobins.NODE}


class Node:
    """One node, Ready, with the sandbox image in containerd; `stop` leaves no process, mount, link or rule."""

    def __init__(self, plane: ControlPlane, home: Path | None = None) -> None:
        self.plane = plane
        self.home = home or cache_root() / "node"
        self.bins: dict[str, Path] = {}
        self.processes: dict[str, Process] = {}
        self.socket = self.home / "run" / "containerd.sock"
        self.seconds: dict[str, float] = {}

    # -- start -----------------------------------------------------------------------------------------------
    def start(self, timeout: float = 120) -> None:
        started = time.monotonic()
        self.bins = build()
        self.seconds["build"] = time.monotonic() - started
        clean(self.home)
        for folder in ("run", "state", "root", "cni/net.d", "kubelet", "registries", "logs"):
            (self.home / folder).mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        self._start_containerd(timeout)
        self._load_sandbox_image()
        self._start("kube-scheduler", "--kubeconfig", str(self.plane.kubeconfig), "--leader-elect=false")
        self._start_kubelet()
        self._start_kube_proxy()
        self._wait(self._ready, timeout, f"node {NODE_NAME} Ready")
        self.seconds["start"] = time.monotonic() - started

    def _start(self, name: str, *args: str, **popen: Any) -> Process:
        process = Process(name, [str(self.bins[name]), *args], self.home / "logs" / f"{name}.log", **popen)
        self.processes[name] = process
        return process

    def _start_containerd(self, timeout: float) -> None:
        config = self.home / "containerd.toml"
        config.write_text(containerd_config(self.home, self.bins["runc"], self.bins["bridge"].parent))
        (self.home / "cni" / "net.d" / "10-bridge.conflist").write_text(json.dumps(cni_config(self.home)))
        path = f"{self.bins['containerd-shim-runc-v2'].parent}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        self._start("containerd", "--config", str(config), env={**os.environ, "PATH": path})
        self._wait(lambda: self.ctr("version").returncode == 0, timeout, "containerd")

    def _load_sandbox_image(self) -> None:
        """A pause program of ours, never pulled: no registry is named by the project."""
        image.ensure_podman()
        folder = self.home / "pause"
        folder.mkdir(exist_ok=True)
        shutil.copy2(self.bins["pause"], folder / "pause")
        containerfile = 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n'
        (folder / "Containerfile").write_text(containerfile)
        subprocess.run(["podman", "build", "-q", "-t", SANDBOX_IMAGE, str(folder)], check=True, capture_output=True)
        self.import_image(SANDBOX_IMAGE)

    def _start_kubelet(self) -> None:
        kubeconfig = self.home / "kubelet.kubeconfig"
        kubeconfig.write_text(self.plane.kubeconfig_for(f"system:node:{NODE_NAME}", self.plane.node_token))
        config = self.home / "kubelet.yaml"
        config.write_text(yaml.safe_dump(kubelet_config(self.socket)))
        self._start(
            "kubelet",
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={NODE_NAME}",
            f"--node-ip={self.plane.address}",
            f"--root-dir={self.home / 'kubelet'}",
            f"--cert-dir={self.home / 'kubelet' / 'pki'}",
        )

    def _start_kube_proxy(self) -> None:
        config = self.home / "kube-proxy.yaml"
        config.write_text(yaml.safe_dump(kube_proxy_config(self.plane.kubeconfig)))
        self._start("kube-proxy", f"--config={config}")

    def _wait(self, check: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll check; a part that exits meanwhile fails at once, with its log."""
        deadline = time.monotonic() + timeout
        while not check():
            for name, process in self.processes.items():
                if not process.alive():
                    raise RuntimeError(f"{name} exited:\n{process.log_tail()}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not after {timeout:.0f} s")
            time.sleep(0.5)

    def _ready(self) -> bool:
        out = self.plane.kubectl("get", "node", NODE_NAME, "-o", "json", check=False)
        if out.returncode != 0:
            return False
        node = json.loads(out.stdout)
        ready = [c for c in node["status"].get("conditions", []) if c["type"] == "Ready"]
        # the node lifecycle controller lifts the not-ready taint after Ready: until then nothing schedules
        tainted = any(t["key"].startswith("node.kubernetes.io/") for t in node["spec"].get("taints", []))
        return bool(ready and ready[0]["status"] == "True" and not tainted)

    # -- images and registries ----------------------------------------------------------------------------------
    def ctr(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        argv = [str(self.bins["ctr"]), "--address", str(self.socket), "--namespace", NAMESPACE, *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, timeout=300)

    def import_image(self, tag: str) -> None:
        """An image of podman's store, into containerd (for `imagePullPolicy: Never`)."""
        archive = self.home / "import.tar"
        subprocess.run(["podman", "save", "--format", "oci-archive", "-o", str(archive), tag], check=True)
        try:
            self.ctr("images", "import", str(archive), check=True)
        finally:
            archive.unlink(missing_ok=True)

    def trust_registry(self, address: str) -> None:
        """Let containerd pull from a plain-HTTP registry on this machine (hosts.toml, read at each pull)."""
        folder = self.home / "registries" / address
        folder.mkdir(parents=True, exist_ok=True)
        server = f"http://{address}"
        (folder / "hosts.toml").write_text(
            f'server = "{server}"\n[host."{server}"]\n  capabilities = ["pull", "resolve"]\n'
        )

    def images(self) -> dict[str, str]:
        """Reference -> digest of what containerd holds (what the kubelet pulled or was given)."""
        out = self.ctr("images", "ls", check=True).stdout.splitlines()[1:]
        return {line.split()[0]: line.split()[2] for line in out if line.strip()}

    # -- stop -------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        for name in ("kube-scheduler", "kube-proxy", "kubelet"):
            if name in self.processes:
                self.processes.pop(name).stop(grace=10)
        clean(self.home, containerd=self.processes.pop("containerd", None))
        self._cleanup_kube_proxy()

    def _cleanup_kube_proxy(self) -> None:
        if "kube-proxy" in self.bins:
            subprocess.run([str(self.bins["kube-proxy"]), "--cleanup"], capture_output=True, timeout=60)


def clean(home: Path, containerd: Process | None = None) -> None:
    """Kill what pods and shims a session left, unmount its folders, drop its bridge; then containerd."""
    for pid in _pod_processes() + _shims(home):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    if containerd is not None:
        containerd.stop(grace=10)
    for mount in sorted(_mounts_under(home), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True)
    # a pod's veth outlives it while anything still holds its network namespace
    links = subprocess.run(["ip", "-o", "link", "show", "master", BRIDGE], capture_output=True, text=True).stdout
    for line in links.splitlines():
        subprocess.run(["ip", "link", "delete", line.split(": ")[1].split("@")[0]], capture_output=True)
    subprocess.run(["ip", "link", "delete", BRIDGE], capture_output=True)
    if containerd is None and home.exists():
        shutil.rmtree(home, ignore_errors=True)


def _pod_processes() -> list[int]:
    pids: set[int] = set()
    for procs in Path("/sys/fs/cgroup/pids/kubepods").rglob("cgroup.procs"):
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in procs.read_text().split()}
    return sorted(pids)


def _shims(home: Path) -> list[int]:
    """containerd's shims outlive containerd by design (they hold the containers); ours name our socket."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv[0].endswith(b"containerd-shim-runc-v2") and str(home).encode() in b" ".join(argv):
                    found.append(int(entry.name))
    return found


def _mounts_under(home: Path) -> Iterator[str]:
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount = line.split()[4].replace("\\040", " ")
        if mount.startswith(str(home) + "/"):
            yield mount


def containerd_config(home: Path, runc: Path, cni_bin: Path) -> str:
    cri = "plugins.'io.containerd.cri.v1.runtime'"
    return f"""version = 3
root = "{home / "root"}"
state = "{home / "state"}"
[grpc]
  address = "{home / "run" / "containerd.sock"}"
[ttrpc]
  address = "{home / "run" / "containerd.sock.ttrpc"}"
[{cri}]
  # root here lacks CAP_SYS_RESOURCE: no negative oom_score_adj (the kubelet asks -998 for sandboxes)
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [{cri}.containerd]
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        BinaryName = "{runc}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dirs = ["{cni_bin}"]
    conf_dir = "{home / "cni" / "net.d"}"
[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{SANDBOX_IMAGE}"
  [plugins.'io.containerd.cri.v1.images'.registry]
    config_path = "{home / "registries"}"
"""


def cni_config(home: Path) -> dict[str, Any]:
    """A bridge with host-local addresses; no masquerade: pods only talk to this machine (API server, Milvus)."""
    ipam = {
        "type": "host-local",
        "ranges": [[{"subnet": POD_RANGE}]],
        "routes": [{"dst": "0.0.0.0/0"}],  # Service addresses too: kube-proxy rewrites them on the host
        "dataDir": str(home / "state" / "ipam"),
    }
    bridge = {"type": "bridge", "bridge": BRIDGE, "isGateway": True, "ipMasq": False, "ipam": ipam}
    return {"cniVersion": "1.0.0", "name": "milvusops-testenv", "plugins": [bridge]}


def kubelet_config(socket: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # this machine mounts cgroup v1
        "cgroupDriver": "cgroupfs",
        "failSwapOn": False,
        "containerRuntimeEndpoint": f"unix://{socket}",
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": False}},
        "authorization": {"mode": "AlwaysAllow"},
        "readOnlyPort": 0,
        # the machine's disk and memory are shared with the rest of the suite: no eviction, no image GC
        "evictionHard": {"memory.available": "100Mi"},
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
    }


def kube_proxy_config(kubeconfig: Path) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "mode": "iptables",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": NODE_NAME,
        "clusterCIDR": POD_RANGE,
        "conntrack": {"maxPerCore": 0},  # leave the machine's conntrack table size alone
        "nodePortAddresses": ["primary"],
        "metricsBindAddress": f"127.0.0.1:{free_port()}",
        "healthzBindAddress": f"127.0.0.1:{free_port()}",
    }


@contextlib.contextmanager
def running(plane: ControlPlane) -> Iterator[Node]:
    """One node per machine at a time (fixed kubelet ports), stopped and cleaned however the block ends."""
    with locked("node"):
        node = Node(plane)
        try:
            node.start()
            yield node
        finally:
            node.stop()


__all__ = ["SERVICE_RANGE", "Node", "host_address", "running"]
