"""The operator's container image, built and run for real with podman (no Docker engine here)."""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from .cache import cache_root

ROOT = Path(__file__).resolve().parents[2]
BASE_IMAGE = "localhost/debian:bookworm-slim"
SUITE = "bookworm"
APT_SOURCES = Path("/etc/apt")
PACKAGES = ["podman", "buildah", "runc", "fuse-overlayfs", "uidmap", "slirp4netns", "containers-storage", "debootstrap"]


def _run(*argv: str, timeout: float = 1800, **kwargs: object) -> subprocess.CompletedProcess[str]:
    result: subprocess.CompletedProcess[str] = subprocess.run(  # type: ignore[call-overload]
        list(argv), check=True, text=True, timeout=timeout, **kwargs
    )
    return result


def apt_source_uris(text: str, suite: str) -> list[str]:
    """The `deb` URIs that serve suite, from a sources.list (one-line) or a deb822 .sources text."""
    uris: list[str] = []
    if any(line.split(":", 1)[0].strip() == "Types" for line in text.splitlines()):
        for stanza in text.split("\n\n"):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.strip() and not line.lstrip().startswith("#") and ":" in line and not line[0].isspace():
                    key, value = line.split(":", 1)
                    fields[key.strip()] = value.strip()
            enabled = fields.get("Enabled", "yes").lower() != "no"
            if enabled and "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                uris += fields.get("URIs", "").split()
        return uris
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words[:1] != ["deb"]:
            continue
        words = words[1:]
        if words and words[0].startswith("["):  # options, e.g. [arch=amd64 signed-by=...]
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2 and words[1] == suite:
            uris.append(words[0])
    return uris


def debian_mirror(suite: str = SUITE, root: Path = APT_SOURCES) -> str:
    """The Debian mirror this machine's apt uses for suite: the project names no package host of its own."""
    files = [root / "sources.list"] if (root / "sources.list").is_file() else []
    if (root / "sources.list.d").is_dir():
        # apt reads only these two extensions; others (".disabled", ".save") are switched off
        files += sorted(p for p in (root / "sources.list.d").iterdir() if p.suffix in (".list", ".sources"))
    for path in files:
        uris = apt_source_uris(path.read_text(errors="replace"), suite)
        if uris:
            return uris[0]
    raise RuntimeError(f"no apt source for Debian {suite} in {root}/sources.list(.d): debootstrap needs a mirror")


def pip_index_args() -> list[str]:
    """--build-arg for the index pip uses on this machine (config or environment), when it names one."""
    pip = [sys.executable, "-m", "pip", "config", "list"]
    listed = subprocess.run(pip, capture_output=True, text=True, check=False).stdout.splitlines()
    args: list[str] = []
    for name in ("index-url", "extra-index-url", "trusted-host"):
        values = [line.split("=", 1)[1].strip("'\"") for line in listed if line.split("=", 1)[0].endswith(f".{name}")]
        if values:
            args += ["--build-arg", f"PIP_{name.upper().replace('-', '_')}={values[-1]}"]
    return args


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
    """A Debian bookworm minbase made with debootstrap and imported, trusting what the host trusts; or the image
    MILVUSOPS_BASE_IMAGE names, already pulled (a public CI pulls debian:bookworm-slim instead of debootstrapping)."""
    if os.environ.get("MILVUSOPS_BASE_IMAGE"):  # before ensure_podman: a CI runner has podman but no debootstrap
        return os.environ["MILVUSOPS_BASE_IMAGE"]
    ensure_podman()
    if subprocess.run(["podman", "image", "exists", BASE_IMAGE], check=False).returncode == 0:
        return BASE_IMAGE
    rootfs = cache_root() / "rootfs-bookworm"
    shutil.rmtree(rootfs, ignore_errors=True)
    started = time.monotonic()
    print("testenv: debootstrap bookworm minbase (a few minutes, once per machine)", file=sys.stderr)
    _run("debootstrap", "--variant=minbase", SUITE, str(rootfs), debian_mirror(), capture_output=True)
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
        *pip_index_args(),
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
