"""The operator runs without pandas: the stand-in refuses every use, and pymilvus uses pandas only where audited."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pymilvus
import pytest

from milvusops import pandas_standin

# every pymilvus function (outside bulk_writer) that touches pandas, audited for pymilvus 3.0.2: all are
# about data the operator never sends (inserts, upserts, DataFrames, expression templates, ORM default values)
AUDITED = {
    "orm/collection.py:construct_from_dataframe",
    "orm/prepare.py:prepare_data",
    "orm/schema.py:_check_data_schema_cnt",
    "orm/schema.py:_check_insert_data",
    "orm/schema.py:check_insert_schema",
    "orm/schema.py:check_is_row_based",
    "orm/schema.py:check_upsert_schema",
    "orm/schema.py:infer_default_value_bydata",
    "orm/schema.py:is_valid_insert_data",
    "orm/types.py:infer_dtype_by_scalar_data",
    "orm/types.py:infer_dtype_bydata",
}


def pandas_users(root: Path) -> set[str]:
    """`path:function` for each function whose body (not its annotations) names something imported from pandas."""
    found: set[str] = set()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if relative.startswith("bulk_writer/"):
            continue  # never imported by `import pymilvus` (checked below)
        tree = ast.parse(path.read_text())
        bound = _names_from_pandas(tree)
        if not bound:
            continue
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                hints = [arg.annotation for arg in ast.walk(function.args) if isinstance(arg, ast.arg)]
                skipped = {id(node) for hint in [*hints, function.returns] if hint for node in ast.walk(hint)}
                named = (n for n in ast.walk(function) if isinstance(n, ast.Name) and id(n) not in skipped)
                if any(node.id in bound for node in named):
                    found.add(f"{relative}:{function.name}")
    return found


def _names_from_pandas(tree: ast.Module) -> set[str]:
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            bound |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "pandas"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "pandas":
            bound |= {a.asname or a.name for a in node.names}
    return bound


def test_pymilvus_uses_pandas_only_where_audited() -> None:
    """A pymilvus upgrade that uses pandas somewhere new fails here: audit it before trusting the stand-in."""
    assert pandas_users(Path(pymilvus.__file__).parent) == AUDITED


def test_every_use_of_the_stand_in_is_refused() -> None:
    modules = pandas_standin.modules()
    pandas, types = modules["pandas"], modules["pandas.api.types"]
    for name in pandas_standin.API_TYPES_FUNCTIONS:
        with pytest.raises(pandas_standin.PandasNotLoadedError, match=name):
            getattr(types, name)(1)
    with pytest.raises(pandas_standin.PandasNotLoadedError):
        pandas.DataFrame({"a": [1]})
    with pytest.raises(pandas_standin.PandasNotLoadedError, match="Series"):
        _ = pandas.Series
    with pytest.raises(AttributeError):
        _ = pandas.__version__  # what probes for an optional pandas read: absent, not refused
    assert not isinstance([], pandas.DataFrame)  # no DataFrame exists, so pymilvus's isinstance checks stay true


def test_install_never_replaces_a_pandas_already_imported() -> None:
    pandas = importlib.import_module("pandas")  # the real one (pymilvus has imported it in this process anyway)
    assert not pandas_standin.install()
    assert sys.modules["pandas"] is pandas


OPERATOR_WITHOUT_PANDAS = """
import sys
from milvusops import pandas_standin
assert pandas_standin.install()
from milvusops.runtime import launch  # every module of the operator, as `milvusops` runs it
from milvusops.preview import cli  # and of the plan command
from pymilvus import MilvusClient
assert sys.modules["pandas"].__milvusops_stand_in__
assert not [name for name in sys.modules if name.startswith("pymilvus.bulk_writer")]
print("ok")
"""


def test_the_operator_imports_with_the_stand_in() -> None:
    run = subprocess.run([sys.executable, "-c", OPERATOR_WITHOUT_PANDAS], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "ok"
