"""Build the control plane (etcd, kube-apiserver, kube-controller-manager), kubectl, helm, crane and a node's
parts (kubelet, kube-scheduler, kube-proxy, containerd, runc, CNI plugins, a pause program); cached by inputs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .cache import cache_root, digest

GOTOOLS = Path(__file__).parent / "gotools"

# binary name -> (module folder, package)
TARGETS: dict[str, tuple[str, str]] = {
    "etcd": ("kube", "go.etcd.io/etcd/server/v3"),
    "kube-apiserver": ("kube", "k8s.io/kubernetes/cmd/kube-apiserver"),
    "kube-controller-manager": ("kube", "k8s.io/kubernetes/cmd/kube-controller-manager"),
    "kubectl": ("kube", "k8s.io/kubernetes/cmd/kubectl"),
    "helm": ("helm", "helm.sh/helm/v3/cmd/helm"),
    "kstatus": ("kstatus", "milvus-operator.testenv/kstatus"),
    "crane": ("crane", "github.com/google/go-containerregistry/cmd/crane"),
    # a node: the same pinned Kubernetes as the control plane, in a module of its own (its cache stays apart)
    "kubelet": ("kubenode", "k8s.io/kubernetes/cmd/kubelet"),
    "kube-scheduler": ("kubenode", "k8s.io/kubernetes/cmd/kube-scheduler"),
    "kube-proxy": ("kubenode", "k8s.io/kubernetes/cmd/kube-proxy"),
    "containerd": ("noderuntime", "github.com/containerd/containerd/v2/cmd/containerd"),
    "containerd-shim-runc-v2": ("noderuntime", "github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2"),
    "ctr": ("noderuntime", "github.com/containerd/containerd/v2/cmd/ctr"),
    "runc": ("noderuntime", "github.com/opencontainers/runc"),
    "bridge": ("noderuntime", "github.com/containernetworking/plugins/plugins/main/bridge"),
    "host-local": ("noderuntime", "github.com/containernetworking/plugins/plugins/ipam/host-local"),
    "loopback": ("noderuntime", "github.com/containernetworking/plugins/plugins/main/loopback"),
    "portmap": ("noderuntime", "github.com/containernetworking/plugins/plugins/meta/portmap"),
    "pause": ("pause", "milvus-operator.testenv/pause"),
}
# runc's nsexec is C, and a pod under the restricted Pod Security level asks for the RuntimeDefault seccomp profile
CGO_TAGS: dict[str, str] = {"runc": "seccomp"}
HEADERS = Path("/usr/include/seccomp.h")  # libseccomp-dev's, which the seccomp tag compiles against


@dataclass(frozen=True)
class Binaries:
    """What a control plane runs; helm, kstatus and crane are built when a test first asks for them (`build`)."""

    etcd: Path
    kube_apiserver: Path
    kube_controller_manager: Path
    kubectl: Path


def _go_version() -> bytes:
    return subprocess.run(["go", "env", "GOVERSION"], check=True, capture_output=True).stdout


def required_version(module: str, path: str) -> str:
    """The version of `path` that the pinned go.mod of `module` requires."""
    for line in (GOTOOLS / module / "go.mod").read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] in (path, "require") and path in words:
            return words[words.index(path) + 1]
    raise LookupError(f"{path} not required in {module}/go.mod")


def _ldflags(name: str) -> str:
    """Stamp the real version into the binary, as release builds do (kubectl refuses v0.0.0-master)."""
    flags = ["-s", "-w"]
    if name in ("kube-apiserver", "kube-controller-manager", "kubectl", "kubelet", "kube-scheduler", "kube-proxy"):
        version = required_version("kube", "k8s.io/kubernetes")
        major, minor = version.lstrip("v").split(".")[:2]
        for package in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
            flags += [
                f"-X {package}.gitVersion={version}",
                f"-X {package}.gitMajor={major}",
                f"-X {package}.gitMinor={minor}",
                f"-X {package}.gitTreeState=clean",
                f"-X {package}.buildDate=1970-01-01T00:00:00Z",
            ]
    elif name == "helm":
        version = required_version("helm", "helm.sh/helm/v3")
        flags += [f"-X helm.sh/helm/v3/internal/version.version={version}"]
        # the Kubernetes version helm assumes without a cluster (template, lint), as its release builds set it
        k8s_minor = required_version("helm", "k8s.io/client-go").lstrip("v").split(".")[1]
        for package in ("helm.sh/helm/v3/pkg/chartutil", "helm.sh/helm/v3/pkg/lint/rules"):
            flags += [f"-X {package}.k8sVersionMajor=1", f"-X {package}.k8sVersionMinor={k8s_minor}"]
    return " ".join(flags)


def _module_dir(module: str) -> Path:
    folder = cache_root() / "bin" / module
    folder_inputs = sorted((GOTOOLS / module).glob("*.go")) + [GOTOOLS / module / n for n in ("go.mod", "go.sum")]
    inputs = [path.read_bytes() for path in folder_inputs]
    recipe = "".join(_ldflags(n) + CGO_TAGS.get(n, "") for n, (m, _) in sorted(TARGETS.items()) if m == module).encode()
    return folder / digest(_go_version(), recipe, *inputs)


def ensure_build_packages() -> None:
    """libseccomp's headers for runc's seccomp support; installed by the suite itself when missing (needs root)."""
    if HEADERS.exists():
        return
    print("testenv: installing libseccomp-dev from Debian packages", file=sys.stderr)
    env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    argv = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "libseccomp-dev", "pkg-config"]
    subprocess.run(argv, check=True, env=env)


def build(name: str) -> Path:
    """Return the cached binary, building it first when its module inputs changed."""
    module, package = TARGETS[name]
    out_dir = _module_dir(module)
    binary = out_dir / name
    if binary.exists():
        return binary
    out_dir.mkdir(parents=True, exist_ok=True)
    if name in CGO_TAGS:
        ensure_build_packages()
    env = dict(os.environ, CGO_ENABLED="1" if name in CGO_TAGS else "0")
    tags = [f"-tags={CGO_TAGS[name]}"] if name in CGO_TAGS else []
    started = time.monotonic()
    print(f"testenv: building {name} from {package} (cold builds take minutes)", file=sys.stderr)
    tmp = out_dir / f".{name}.tmp"
    subprocess.run(
        ["go", "build", "-buildvcs=false", "-trimpath", *tags, f"-ldflags={_ldflags(name)}", "-o", str(tmp), package],
        cwd=GOTOOLS / module,
        env=env,
        check=True,
    )
    tmp.rename(binary)
    print(f"testenv: built {name} in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return binary


CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kubectl")


def missing(names: tuple[str, ...] = CONTROL_PLANE) -> list[str]:
    """The binaries not built yet for the current module inputs (a cold cache builds them first)."""
    return [name for name in names if not (_module_dir(TARGETS[name][0]) / name).exists()]


def ensure_all() -> Binaries:
    """The control plane's binaries (a demo needs no more: helm and kstatus took 2 of its cold minutes)."""
    return Binaries(
        etcd=build("etcd"),
        kube_apiserver=build("kube-apiserver"),
        kube_controller_manager=build("kube-controller-manager"),
        kubectl=build("kubectl"),
    )


NODE = (
    "kubelet", "kube-scheduler", "kube-proxy", "containerd", "containerd-shim-runc-v2", "ctr", "runc",
    "bridge", "host-local", "loopback", "portmap", "pause",
)  # fmt: skip


def build_every() -> dict[str, Path]:
    """Every target, e.g. to warm the cache before a test run."""
    return {name: build(name) for name in TARGETS}


def prune() -> None:
    """Drop cached builds of module inputs that are no longer current."""
    for module in {m for m, _ in TARGETS.values()}:
        current = _module_dir(module)
        for old in current.parent.glob("*"):
            if old != current:
                shutil.rmtree(old, ignore_errors=True)
