"""The layout stays documented and mirrored: docs/design/architecture.md names every module, tests/unit
follows the package."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "milvusops"
LAYERS = ("core", "milvus", "kube", "telemetry", "runtime", "preview")
# test folders for code outside the package: the benchmarks (runner and stand-in, scenarios, helpers) and the harness
OUTSIDE = {
    "bench": ROOT / "bench",
    "bench/scenarios": ROOT / "bench" / "scenarios",
    "bench/lib": ROOT / "bench" / "lib",
    "testenv": ROOT / "tests" / "testenv",
}


def modules() -> set[str]:
    """Every module, as a path under operator/milvusops/ (a layer's __init__ holds only its docstring)."""
    found = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.rglob("*.py")}
    return {name for name in found if not (name.endswith("/__init__.py") and name.split("/")[0] in LAYERS)}


def documented() -> set[str]:
    """The modules the module map's tables name in their first column."""
    text = (ROOT / "docs" / "design" / "architecture.md").read_text()
    section = text[text.index("## Module map") : text.index("## Choices, and why")]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`([\w/]+\.py)`", row)}


def test_the_module_map_names_every_module() -> None:
    assert sorted(modules() - documented()) == []


def test_the_module_map_names_no_module_that_is_gone() -> None:
    assert sorted(documented() - modules()) == []


def test_the_layers_are_the_packages() -> None:
    packages = {path.parent.name for path in PACKAGE.glob("*/__init__.py")}
    assert packages == set(LAYERS)


def _module_names(folder: Path) -> list[str]:
    """The modules and sub-packages (bench/standin) in a folder."""
    return [path.stem for path in folder.glob("*.py") if path.stem != "__init__"] + [
        path.parent.name for path in folder.glob("*/__init__.py")
    ]


@pytest.mark.parametrize("folder", [*LAYERS, *OUTSIDE])
def test_each_unit_test_file_names_the_module_it_tests(folder: str) -> None:
    """tests/unit/<folder>/test_<module>[_<aspect>].py, so a module's tests are found by its name."""
    source = OUTSIDE.get(folder, PACKAGE / folder)
    names = _module_names(source)
    tests = sorted((ROOT / "tests" / "unit" / folder).glob("test_*.py"))
    assert tests, f"no unit tests in tests/unit/{folder}"
    unmatched = [
        path.name
        for path in tests
        if not any(path.stem[len("test_") :] == name or path.stem.startswith(f"test_{name}_") for name in names)
    ]
    assert unmatched == []
