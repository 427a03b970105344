"""The Debian mirror for the image's base comes from the machine's apt sources, in either format."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.testenv import image
from tests.testenv.image import apt_source_uris, debian_mirror

DEB822 = """\
Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (DEB822, ["http://mirror.example/debian"]),
        (DEB822.replace("Types: deb\n#", "Types: deb-src\n#"), []),
        (DEB822.replace("Components: main\nSigned", "Components: main\nEnabled: no\nSigned"), []),
        ("deb http://one.example/debian bookworm main\n", ["http://one.example/debian"]),
        ("deb [arch=amd64 signed-by=/k.gpg] http://two.example/debian bookworm main\n", ["http://two.example/debian"]),
        ("# deb http://off.example/debian bookworm main\ndeb-src http://src.example/debian bookworm main\n", []),
        ("deb http://security.example/debian-security bookworm-security main\n", []),
    ],
)
def test_apt_source_uris(text: str, expected: list[str]) -> None:
    assert apt_source_uris(text, "bookworm") == expected


def test_debian_mirror_reads_sources_list_d_and_skips_disabled_files(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list.d" / "a.list.disabled").write_text("deb http://off.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    assert debian_mirror("bookworm", tmp_path) == "http://mirror.example/debian"


def test_debian_mirror_names_no_fallback_host(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="no apt source for Debian bookworm"):
        debian_mirror("bookworm", tmp_path)


def test_a_named_base_image_needs_no_debootstrap(monkeypatch: pytest.MonkeyPatch) -> None:
    """A public CI runner has podman but no debootstrap (and no root for apt-get): the pulled base is used."""
    monkeypatch.setenv("MILVUSOPS_BASE_IMAGE", "docker.io/library/debian:bookworm-slim")
    monkeypatch.setattr("shutil.which", lambda name: None)
    monkeypatch.setattr(image, "_run", lambda *a, **k: pytest.fail(f"ran {a}"))
    assert image.ensure_base_image() == "docker.io/library/debian:bookworm-slim"
