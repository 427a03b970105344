"""`make release`: the image as an OCI archive, its CycloneDX SBOM and the packaged chart in dist/; with a
registry, the archive and the chart pushed to it (`python -m tests.testenv release [--registry HOST:PORT]`).

The image pushed is the archive itself (crane pushes its OCI layout byte for byte), so the registry's digest is
the archive's by construction; `podman push` compresses every layer again (88 s against crane's 10 s here).
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import gobins, image
from .cache import cache_root, digest, locked

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
CHART = ROOT / "charts" / "milvusops"
NAME = "milvusops"
PUSHABLE = ("image", "chart")
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")
# runs inside the image with its own interpreter; cyclonedx-py asks that interpreter (without /sbom-tool) for its path
SBOM_LAUNCHER = (
    "import runpy, sys; sys.path.append('/sbom-tool');"
    " sys.argv = ['cyclonedx-py', 'environment', '--output-format', 'JSON', '--output-file', '-',"
    " '/opt/milvusops/bin/python']; runpy.run_module('cyclonedx_py', run_name='__main__')"
)


class ReleaseError(RuntimeError):
    """A release input is inconsistent (versions, chart contents): nothing is pushed."""


@dataclass(frozen=True)
class Release:
    """What `make release` wrote into dist/ (and, with a registry, where it pushed it)."""

    version: str
    chart_version: str
    archive: Path
    digest: str  # the image manifest's digest, as in the archive's index.json
    sbom: Path
    components: int  # in the SBOM
    chart: Path
    seconds: dict[str, float] = field(default_factory=dict)

    def image_ref(self, registry: str) -> str:
        return f"{registry}/{NAME}:{self.version}"

    def chart_ref(self, registry: str) -> str:
        return f"oci://{registry}/charts/{NAME}"


def versions(root: Path = ROOT) -> tuple[str, str]:
    """(image version, chart version): pyproject's version must be the chart's appVersion, the tag it deploys."""
    project = str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    chart = yaml.safe_load((root / "charts" / NAME / "Chart.yaml").read_text())
    if str(chart.get("appVersion")) != project:
        raise ReleaseError(
            f"pyproject.toml version {project!r} != charts/{NAME}/Chart.yaml appVersion {chart.get('appVersion')!r}:"
            " the chart would deploy another image tag than the one released; make them agree"
        )
    return project, str(chart["version"])


def is_loopback(registry: str) -> bool:
    host = registry.rsplit(":", 1)[0] if not registry.endswith("]") else registry
    return host in LOOPBACK_HOSTS


def archive_digest(archive: Path) -> str:
    """The digest of the one image manifest an OCI archive holds (what a registry reports after the push)."""
    with tarfile.open(archive) as tar:
        member = tar.extractfile("index.json")
        if member is None:
            raise ReleaseError(f"{archive}: no index.json, not an OCI archive")
        manifests = json.load(member)["manifests"]
    if len(manifests) != 1:
        raise ReleaseError(f"{archive}: {len(manifests)} manifests, expected one image")
    return str(manifests[0]["digest"])


def image_id(tag: str) -> str:
    inspect = ["podman", "image", "inspect", "--format", "{{.Id}}", tag]
    return subprocess.run(inspect, check=True, capture_output=True, text=True).stdout.strip()


def _cached(out: Path, key: str, make: Callable[[Path], object]) -> None:
    """out from the cache by key, made once per machine (saving and validating take a minute each here)."""
    cached = cache_root() / "release" / f"{key}-{out.name.rsplit('-', 1)[-1]}"  # e.g. <key>-0.1.0.oci.tar
    with locked("release-artifacts"):
        if not cached.exists():
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_name(f".{cached.name}.tmp")
            tmp.unlink(missing_ok=True)
            make(tmp)
            tmp.rename(cached)
    out.unlink(missing_ok=True)
    shutil.copyfile(cached, out)


def save_archive(tag: str, out: Path) -> str:
    """`podman save --format oci-archive`, cached by image id and tag (it compresses every layer)."""

    def save(path: Path) -> None:
        save = ["podman", "save", "--format", "oci-archive", "-o", str(path), tag]
        subprocess.run(save, check=True, capture_output=True, timeout=1200)

    _cached(out, digest(image_id(tag).encode(), tag.encode()), save)
    return archive_digest(out)


def write_sbom(tag: str, out: Path) -> int:
    """CycloneDX of the Python environment installed in the image, read by the image's own interpreter;
    cached by image id and cyclonedx-bom version. Returns the number of components."""
    key = digest(image_id(tag).encode(), importlib.metadata.version("cyclonedx-bom").encode())
    _cached(out, key, lambda path: path.write_text(_sbom_of(tag)))
    components = len(json.loads(out.read_text()).get("components", []))
    if components == 0:
        raise ReleaseError(f"the SBOM of {tag} lists no component: cyclonedx-py read the wrong environment")
    return components


def _sbom_of(tag: str) -> str:
    """The installed environment, not requirements.lock: it also lists milvusops itself and shows what pip put
    there. cyclonedx-bom comes from this venv, mounted read-only (the image has no pip); it validates its output."""
    tool = sysconfig.get_paths()["purelib"]
    run = ["podman", "run", "--rm", "--runtime", "runc", *image.ulimits(), "--network=none"]
    run += ["-v", f"{tool}:/sbom-tool:ro", "--entrypoint", "/opt/milvusops/bin/python", tag, "-c", SBOM_LAUNCHER]
    result = subprocess.run(run, check=False, capture_output=True, text=True, timeout=600)
    if result.returncode != 0:
        raise ReleaseError(f"cyclonedx-py in {tag} exited {result.returncode}: {result.stderr[-2000:]}")
    return json.dumps(json.loads(result.stdout), indent=2) + "\n"


def package_chart(chart_version: str, dist: Path) -> Path:
    """`helm package`; the chart's crds/ must be files in the archive (a symlink breaks a copied chart)."""
    helm = str(gobins.build("helm"))
    subprocess.run([helm, "package", str(CHART), "--destination", str(dist)], check=True, capture_output=True)
    packaged = dist / f"{NAME}-{chart_version}.tgz"
    wanted = {f"{NAME}/crds/{p.name}" for p in (ROOT / "crds").glob("*.yaml")}
    missing = wanted - set(chart_files(packaged))
    if missing:
        raise ReleaseError(f"{packaged} lacks the CRDs {sorted(missing)}: run `make manifests`")
    return packaged


def chart_files(packaged: Path) -> list[str]:
    """The regular files in a packaged chart (links and folders left out)."""
    with tarfile.open(packaged) as tar:
        return [member.name for member in tar.getmembers() if member.isfile()]


def build(dist: Path = DIST, tag: str | None = None) -> Release:
    """Every artifact into dist/; `tag`: an image already built from this tree (tests reuse theirs)."""
    version, chart_version = versions()
    dist.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    started = time.monotonic()
    release_tag = f"localhost/{NAME}:{version}"
    if tag is None:
        image.build_image(release_tag)
    elif tag != release_tag:  # the archive names the image by the release's tag, whoever built it
        subprocess.run(["podman", "tag", tag, release_tag], check=True, capture_output=True)
    tag = release_tag
    seconds["image build"] = time.monotonic() - started
    archive = dist / f"{NAME}-{version}.oci.tar"
    started = time.monotonic()
    manifest_digest = save_archive(tag, archive)
    seconds["OCI archive"] = time.monotonic() - started
    sbom = dist / f"{NAME}-{version}.cdx.json"
    started = time.monotonic()
    components = write_sbom(tag, sbom)
    seconds["SBOM"] = time.monotonic() - started
    started = time.monotonic()
    chart = package_chart(chart_version, dist)
    seconds["chart package"] = time.monotonic() - started
    return Release(version, chart_version, archive, manifest_digest, sbom, components, chart, seconds)


def push(release: Release, registry: str, what: tuple[str, ...] = PUSHABLE) -> None:
    """The archive with crane (bytes unchanged), the chart with `helm push`; plain HTTP only on loopback.
    what: both, or only the chart where a multi-arch image is pushed by buildx (the public CI)."""
    insecure = is_loopback(registry)
    if "image" in what:
        _push_image(release, registry, insecure)
    if "chart" in what:
        started = time.monotonic()
        helm = [str(gobins.build("helm")), "push", str(release.chart), f"oci://{registry}/charts"]
        subprocess.run([*helm, *(["--plain-http"] if insecure else [])], check=True, capture_output=True)
        release.seconds["chart push"] = time.monotonic() - started


def _push_image(release: Release, registry: str, insecure: bool) -> None:
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="milvusops-release-") as layout:
        with tarfile.open(release.archive) as tar:
            tar.extractall(layout, filter="data")
        crane = [str(gobins.build("crane")), "push", layout, release.image_ref(registry)]
        subprocess.run([*crane, *(["--insecure"] if insecure else [])], check=True, capture_output=True)
    release.seconds["image push"] = time.monotonic() - started


def main(argv: list[str]) -> int:
    registry = argv[argv.index("--registry") + 1] if "--registry" in argv else ""
    what = tuple(argv[argv.index("--push") + 1].split()) if "--push" in argv else PUSHABLE
    if not set(what) <= set(PUSHABLE):
        print(f"release: --push takes {' and/or '.join(PUSHABLE)}, not {what}", file=sys.stderr)
        return 2
    try:
        release = build()
        if registry:
            push(release, registry, what)
    except (ReleaseError, subprocess.CalledProcessError) as error:
        stderr = getattr(error, "stderr", None) or b""
        detail = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        print(f"release failed: {error}\n{detail}", file=sys.stderr)
        return 1
    for path in (release.archive, release.sbom, release.chart):
        print(f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: {path.stat().st_size} bytes")
    print(f"image digest: {release.digest}; SBOM components: {release.components}")
    if registry:
        chart = f"{release.chart_ref(registry)}:{release.chart_version}"
        pushed = {"image": release.image_ref(registry), "chart": chart}
        print("pushed " + ", ".join(pushed[name] for name in what))
    print(", ".join(f"{step} {s:.1f} s" for step, s in release.seconds.items()))
    return 0
