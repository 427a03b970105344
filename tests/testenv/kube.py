"""A real control plane: etcd, kube-apiserver and kube-controller-manager on free loopback ports.

RBAC on, static admin token. The controller-manager runs the namespace and garbage-collector controllers only,
so namespaces really finish deleting and ownerReferences are collected; no pod ever runs (no scheduler, no kubelet).
With `pods=True` it is the control plane of a real node (node.py): the API server listens on the machine's own
address (a pod cannot reach loopback), admits service accounts, and the controller-manager runs every controller.
"""

from __future__ import annotations

import base64
import secrets
import ssl
import subprocess
import urllib.request
from pathlib import Path

import yaml

from .gobins import Binaries
from .processes import Process, free_port, wait_until

ADMIN_USER = "admin"
NODE_NAME = "node-1"
SERVICE_RANGE = "10.96.0.0/24"


class ControlPlane:
    def __init__(self, binaries: Binaries, workdir: Path, address: str = "127.0.0.1", pods: bool = False) -> None:
        self.binaries = binaries
        self.workdir = workdir
        self.address = address
        self.pods = pods
        self.token = secrets.token_hex(16)
        self.node_token = secrets.token_hex(16)
        self.port = free_port()
        self.url = f"https://{address}:{self.port}"
        self.kubeconfig = workdir / "kubeconfig"
        self.etcd: Process | None = None
        self.apiserver: Process | None = None
        self.controller_manager: Process | None = None
        self.etcd_url = ""

    def start(self, timeout: float = 120) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.start_etcd(timeout)
        self.start_apiserver(timeout)
        self.start_controller_manager(timeout)

    def start_etcd(self, timeout: float = 60) -> None:
        self.etcd, self.etcd_url = start_etcd(self.binaries.etcd, self.workdir, timeout)

    def start_apiserver(self, timeout: float = 120) -> None:
        sa_key = self.workdir / "sa.key"
        if not sa_key.exists():
            subprocess.run(["openssl", "genrsa", "-out", str(sa_key), "2048"], check=True, capture_output=True)
        tokens = self.workdir / "tokens.csv"
        lines = [f'{self.token},{ADMIN_USER},{ADMIN_USER},"system:masters"']
        # the kubelet's identity: the Node authorizer and NodeRestriction admission scope it to its own node
        lines.append(f'{self.node_token},system:node:{NODE_NAME},{NODE_NAME},"system:nodes"')
        tokens.write_text("\n".join(lines) + "\n")
        if self.pods:
            node_flags = [
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--kubelet-preferred-address-types=InternalIP",  # no DNS name for the node here
            ]
        else:
            node_flags = ["--authorization-mode=RBAC", "--disable-admission-plugins=ServiceAccount"]
        self.apiserver = Process(
            "kube-apiserver",
            [
                str(self.binaries.kube_apiserver),
                f"--etcd-servers={self.etcd_url}",
                f"--cert-dir={self.workdir / 'pki'}",
                f"--secure-port={self.port}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--service-cluster-ip-range={SERVICE_RANGE if self.pods else '10.0.0.0/24'}",
                f"--service-account-issuer={self.url}",
                f"--service-account-key-file={sa_key}",
                f"--service-account-signing-key-file={sa_key}",
                f"--token-auth-file={tokens}",
                *node_flags,
            ],
            self.workdir / "kube-apiserver.log",
        )
        wait_until(self._ready, timeout, "kube-apiserver /readyz")
        self._write_kubeconfig()

    def start_controller_manager(self, timeout: float = 60) -> None:
        port = free_port()
        if self.pods:
            # Deployments, ReplicaSets, EndpointSlices, node taints, service accounts and their root CA; no pod CIDRs
            controllers = [
                "--controllers=*,-nodeipam",
                f"--service-account-private-key-file={self.workdir / 'sa.key'}",
                f"--root-ca-file={self._ca_file()}",
            ]
        else:
            # what a deleted namespace needs to go away, and ownerReferences collected; nothing needs nodes
            controllers = ["--controllers=namespace,garbagecollector"]
        self.controller_manager = Process(
            "kube-controller-manager",
            [
                str(self.binaries.kube_controller_manager),
                f"--kubeconfig={self.kubeconfig}",
                *controllers,
                "--leader-elect=false",
                "--use-service-account-credentials=false",
                f"--secure-port={port}",
                "--bind-address=127.0.0.1",
                f"--cert-dir={self.workdir / 'kcm-pki'}",
            ],
            self.workdir / "kube-controller-manager.log",
        )
        wait_until(lambda: self._controller_manager_healthy(port), timeout, "kube-controller-manager /healthz")

    def _controller_manager_healthy(self, port: int) -> bool:
        if self.controller_manager is not None and not self.controller_manager.alive():
            raise RuntimeError(f"kube-controller-manager exited:\n{self.controller_manager.log_tail()}")
        # its serving certificate is self-signed in cert-dir; /healthz needs no credentials
        context = ssl._create_unverified_context()  # noqa: S323
        with urllib.request.urlopen(f"https://127.0.0.1:{port}/healthz", context=context, timeout=5) as response:
            return bool(response.read().decode() == "ok")

    def _ca_file(self) -> Path:
        return self.workdir / "pki" / "apiserver.crt"

    def _ready(self) -> bool:
        if self.apiserver is not None and not self.apiserver.alive():
            raise RuntimeError(f"kube-apiserver exited:\n{self.apiserver.log_tail()}")
        context = ssl.create_default_context(cafile=str(self._ca_file()))
        headers = {"Authorization": f"Bearer {self.token}"}
        request = urllib.request.Request(f"{self.url}/readyz", headers=headers)  # noqa: S310
        with urllib.request.urlopen(request, context=context, timeout=5) as response:  # noqa: S310
            return bool(response.read().decode() == "ok")

    def _write_kubeconfig(self) -> None:
        self.kubeconfig.write_text(self.kubeconfig_for(ADMIN_USER, self.token))

    def kubeconfig_for(self, user: str, token: str) -> str:
        ca_data = base64.b64encode(self._ca_file().read_bytes()).decode()
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "testenv", "cluster": {"server": self.url, "certificate-authority-data": ca_data}}],
            "users": [{"name": user, "user": {"token": token}}],
            "contexts": [{"name": "testenv", "context": {"cluster": "testenv", "user": user}}],
            "current-context": "testenv",
        }
        return str(yaml.safe_dump(config))

    def stop_apiserver(self) -> None:
        if self.apiserver is not None:
            self.apiserver.stop()
            self.apiserver = None

    def stop(self) -> None:
        errors = []
        for proc in (self.controller_manager, self.apiserver, self.etcd):
            if proc is not None:
                try:
                    proc.stop()
                except RuntimeError as exc:
                    errors.append(str(exc))
        self.controller_manager = self.apiserver = self.etcd = None
        if errors:
            raise RuntimeError("; ".join(errors))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.binaries.kubectl), f"--kubeconfig={self.kubeconfig}", *args],
            input=input,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )


def start_etcd(binary: Path, workdir: Path, timeout: float = 60) -> tuple[Process, str]:
    """One etcd member on free loopback ports, its data in workdir/etcd; returns it and its client URL."""
    client_port, peer_port = free_port(), free_port()
    url = f"http://127.0.0.1:{client_port}"
    etcd = Process(
        "etcd",
        [
            str(binary),
            f"--data-dir={workdir / 'etcd'}",
            f"--listen-client-urls={url}",
            f"--advertise-client-urls={url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
            f"--initial-cluster=default=http://127.0.0.1:{peer_port}",
            "--unsafe-no-fsync=true",
        ],
        workdir / "etcd.log",
    )
    wait_until(lambda: _http_ok(f"{url}/health"), timeout, "etcd")
    return etcd, url


def _http_ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310
        return bool(response.status == 200)
