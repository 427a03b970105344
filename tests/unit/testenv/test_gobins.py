"""What a demo or a control plane builds: only the binaries it runs (helm and kstatus cost a cold demo minutes)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.testenv import gobins


def test_a_control_plane_builds_only_what_it_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    built: list[str] = []

    def build(name: str) -> Path:
        built.append(name)
        return Path(name)

    monkeypatch.setattr(gobins, "build", build)
    gobins.ensure_all()
    assert sorted(built) == ["etcd", "kube-apiserver", "kube-controller-manager", "kubectl"]
    built.clear()
    gobins.build_every()
    assert sorted(built) == sorted(gobins.TARGETS)


def test_missing_names_what_a_cold_cache_must_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(gobins, "_module_dir", lambda module: tmp_path / module)
    assert gobins.missing() == list(gobins.CONTROL_PLANE)
    (tmp_path / "kube").mkdir()
    (tmp_path / "kube" / "etcd").write_text("")
    assert gobins.missing() == ["kube-apiserver", "kube-controller-manager", "kubectl"]


def test_a_cgo_build_installs_its_headers_first_whoever_asks_for_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make testenv` on a fresh machine built runc without libseccomp's headers: only a node's build installed them."""
    ran: list[str] = []
    monkeypatch.setattr(gobins, "_module_dir", lambda module: tmp_path / module)
    monkeypatch.setattr(gobins, "HEADERS", tmp_path / "seccomp.h")

    def run(argv: list[str], **_: object) -> None:
        ran.append(" ".join(argv[:2]))
        if argv[0] == "go":
            Path(argv[argv.index("-o") + 1]).write_text("")

    monkeypatch.setattr(subprocess, "run", run)
    gobins.build("etcd")
    assert ran == ["go build"]  # a pure-Go binary needs no system package
    ran.clear()
    gobins.build("runc")
    assert ran == ["apt-get update", "apt-get install", "go build"]
