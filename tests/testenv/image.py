"""The operator's container image, built and run for real with podman (no Docker engine here)."""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .cache import cache_root

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/debian:bookworm-slim"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["podman", "buildah", "runc", "fuse-overlayfs", "uidmap", "slirp4netns", "containers-storage", "debootstrap"]


def _run(*argv: str, timeout: float = 1800, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        list(argv), check=True, text=True, timeout=timeout, **kwargs
    )
    return result


def ensure_podman() -> None:
    """Debian's podman and friends; installed by the suite itself when missing (needs root)."""
    if shutil.which("podman") and shutil.which("debootstrap") and shutil.which("runc"):
        return
    print("testenv: installing podman from Debian packages", file=sys.stderr)
    _run("apt-get", "update", "-qq")
    _run(
        "apt-get",
        "install",
        "-y",
        "-qq",
        "--no-install-recommends",
        *PACKAGES,
        env={"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
    )


def ulimits() -> list[str]:
    """Podman's default ulimits exceed what root may set here: ask for no more than the host's hard limits."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    nofile = 1048576 if nofile == resource.RLIM_INFINITY else nofile
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def ensure_base_image() -> str:
    """A Debian bookworm minbase made with debootstrap and imported, trusting what the host trusts."""
    ensure_podman()
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return BASE_IMAGE
    rootfs = cache_root() / "rootfs-bookworm"
    shutil.rmtree(rootfs, ignore_errors=True)
    started = time.monotonic()
    print("testenv: debootstrap bookworm minbase (a few minutes, once per machine)", file=sys.stderr)
    _run("debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR, capture_output=True)
    # the host may reach registries through a proxy with its own CA: the image trusts what the host trusts
    extra_cas = Path("/usr/local/share/ca-certificates")
    if extra_cas.is_dir():
        shutil.copytree(extra_cas, rootfs / "usr/local/share/ca-certificates", dirs_exist_ok=True)
    for sources in (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d")):
        if sources.is_file():
            shutil.copy(sources, rootfs / "etc/apt/sources.list")
        elif sources.is_dir():
            shutil.copytree(sources, rootfs / "etc/apt/sources.list.d", dirs_exist_ok=True)
    shutil.rmtree(rootfs / "var/cache/apt/archives", ignore_errors=True)
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
    _run("podman", "import", "-", BASE_IMAGE, stdin=tar.stdout, capture_output=True)
    tar.wait()
    shutil.rmtree(rootfs, ignore_errors=True)
    print(f"testenv: base image ready in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return BASE_IMAGE


def build_image(tag: str = "localhost/milvusops:test") -> str:
    """`podman build` of the project's Dockerfile on the cached base image."""
    base = ensure_base_image()
    started = time.monotonic()
    _run(
        "podman",
        "build",
        "--pull=never",
        "--network=host",
        "--runtime",
        "runc",
        *ulimits(),
        "--build-arg",
        f"BASE={base}",
        "-t",
        tag,
        str(ROOT),
        capture_output=True,
    )
    print(f"testenv: image {tag} built in {time.monotonic() - started:.0f}s", file=sys.stderr)
    return tag


def image_size(tag: str) -> int:
    out = _run("podman", "image", "inspect", "--format", "{{.Size}}", tag, capture_output=True).stdout
    return int(out.strip())
