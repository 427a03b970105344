"""`milvusops --version` and `--help`: the version, and the `plan` command named before the operator's flags."""

from __future__ import annotations

import pytest

from milvusops import __main__, version


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    __main__.main(["--version"])
    assert capsys.readouterr().out == f"milvusops {version()}\n"
    assert version() != "unknown"  # the test environment installs the package


def test_help_names_plan_then_the_operators_flags(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        __main__.main(["--help"])
    out = capsys.readouterr().out
    assert exited.value.code == 0
    assert out.index("milvusops plan [PATHS | --live]") < out.index("--resync-seconds")
