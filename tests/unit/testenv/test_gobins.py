"""What a demo or a control plane builds: only the binaries it runs (helm and kstatus cost a cold demo minutes)."""

from __future__ import annotations

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
