"""The chart carries real copies of crds/ (ours and Kopf's peering CRDs): a symlink breaks a copied chart."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHART_CRDS = ROOT / "charts" / "milvusops" / "crds"


def test_the_chart_crds_are_files_equal_to_crds() -> None:
    assert not CHART_CRDS.is_symlink()
    for source in sorted((ROOT / "crds").glob("*.yaml")):
        copy = CHART_CRDS / source.name
        assert not copy.is_symlink(), copy
        assert copy.read_bytes() == source.read_bytes(), f"{copy} differs from {source}: run `make manifests`"


def test_the_chart_carries_exactly_crds() -> None:
    assert {p.name for p in CHART_CRDS.iterdir()} == {p.name for p in (ROOT / "crds").glob("*.yaml")}
