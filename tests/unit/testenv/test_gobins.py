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
