"""The release's pure parts: version agreement, loopback detection, an OCI archive's manifest digest."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.testenv import release


def _tree(tmp_path: Path, project: str, app: str) -> Path:
    (tmp_path / "charts" / "milvusops").mkdir(parents=True)
    (tmp_path / "pyproject.toml").write_text(f'[project]\nname = "milvusops"\nversion = "{project}"\n')
    chart = f"apiVersion: v2\nname: milvusops\nversion: 0.2.0\nappVersion: '{app}'\n"
    (tmp_path / "charts" / "milvusops" / "Chart.yaml").write_text(chart)
    return tmp_path


def test_the_repository_versions_agree() -> None:
    version, chart_version = release.versions()
    assert version and chart_version


def test_image_version_and_chart_version_may_differ(tmp_path: Path) -> None:
    assert release.versions(_tree(tmp_path, "1.2.3", "1.2.3")) == ("1.2.3", "0.2.0")


def test_a_chart_deploying_another_tag_than_the_project_is_refused(tmp_path: Path) -> None:
    with pytest.raises(release.ReleaseError, match=r"pyproject.toml version '1.2.3' != .*appVersion '1.2.2'"):
        release.versions(_tree(tmp_path, "1.2.3", "1.2.2"))


@pytest.mark.parametrize(
    ("registry", "loopback"),
    [
        ("127.0.0.1:5000", True),
        ("localhost:5000", True),
        ("localhost", True),
        ("[::1]:5000", True),
        ("ghcr.io", False),
        ("registry.example:5000", False),
        ("127.0.0.1.example:5000", False),
    ],
)
def test_plain_http_only_for_a_loopback_registry(registry: str, loopback: bool) -> None:
    assert release.is_loopback(registry) is loopback


def _archive(tmp_path: Path, manifests: list[dict[str, str]]) -> Path:
    path = tmp_path / "image.oci.tar"
    with tarfile.open(path, "w") as tar:
        for name, content in (
            ("oci-layout", {"imageLayoutVersion": "1.0.0"}),
            ("index.json", {"manifests": manifests}),
        ):
            data = json.dumps(content).encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_archive_digest_is_the_one_manifests(tmp_path: Path) -> None:
    archive = _archive(tmp_path, [{"digest": "sha256:abc", "mediaType": "application/vnd.oci.image.manifest.v1+json"}])
    assert release.archive_digest(archive) == "sha256:abc"


def test_an_archive_of_two_images_is_refused(tmp_path: Path) -> None:
    archive = _archive(tmp_path, [{"digest": "sha256:a"}, {"digest": "sha256:b"}])
    with pytest.raises(release.ReleaseError, match="2 manifests"):
        release.archive_digest(archive)


def test_the_chart_carries_its_crds_as_files_not_links() -> None:
    crds = release.CHART / "crds"
    assert not crds.is_symlink() and all(not p.is_symlink() for p in crds.iterdir())
    assert {p.name for p in crds.glob("*.yaml")} >= {p.name for p in (release.ROOT / "crds").glob("*.yaml")}


def test_an_unknown_push_selection_is_refused_before_building(capsys: pytest.CaptureFixture[str]) -> None:
    assert release.main(["--registry", "127.0.0.1:5000", "--push", "image sbom"]) == 2
    assert "--push takes image and/or chart" in capsys.readouterr().err
