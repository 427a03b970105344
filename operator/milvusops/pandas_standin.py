"""A stand-in for pandas in the operator process: pymilvus imports it (33 MB resident) and the operator never uses it.

pymilvus 3.0.2 imports pandas at import time in its ORM modules (`orm/schema.py`, `orm/types.py`,
`orm/collection.py`, `orm/partition.py`, `orm/prepare.py`) and uses it only for data the operator never
sends: DataFrame inserts and upserts, inferring field types from rows, and default values of ORM
`FieldSchema`s built by hand. The operator only loads, releases and describes through `MilvusClient`.
`tests/unit/test_pandas_standin.py` checks that pymilvus's uses of pandas are still exactly those, so an
upgrade that adds one fails the tests instead of reaching this stand-in.

In the stand-in, `DataFrame` is a class that cannot be instantiated (no DataFrame exists in the process,
so `isinstance(x, pd.DataFrame)` is truthfully False) and every function raises `PandasNotLoadedError`,
so an unforeseen use fails loudly instead of answering wrongly.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import Any, NoReturn

# what pymilvus imports by name from pandas.api.types
API_TYPES_FUNCTIONS = ("infer_dtype", "is_array_like", "is_float", "is_list_like", "is_scalar")


class PandasNotLoadedError(RuntimeError):
    pass


class DataFrame:
    """Never instantiated: nothing in the operator builds DataFrames."""

    def __new__(cls, *args: Any, **kwargs: Any) -> DataFrame:
        _refuse("DataFrame")


def _refuse(what: str) -> NoReturn:
    raise PandasNotLoadedError(
        f"pandas.{what} was called, but the operator runs without pandas (milvusops.pandas_standin)"
    )


def _refusing(name: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        _refuse(f"api.types.{name}")

    refuse.__name__ = name
    return refuse


class _StandIn(ModuleType):
    def __getattr__(self, name: str) -> NoReturn:
        if name.startswith("__"):  # import machinery and introspection probe dunders: say "absent", not "refused"
            raise AttributeError(name)
        _refuse(name)


def modules() -> dict[str, ModuleType]:
    """The stand-in modules, by the names pymilvus imports."""
    pandas, api, types = _StandIn("pandas"), _StandIn("pandas.api"), _StandIn("pandas.api.types")
    pandas.__dict__["DataFrame"] = DataFrame
    pandas.__dict__["api"] = api
    api.__dict__["types"] = types
    for name in API_TYPES_FUNCTIONS:
        types.__dict__[name] = _refusing(name)
    for module in (pandas, api, types):
        module.__dict__["__path__"] = []  # a package, so `from pandas.api.types import ...` resolves
        module.__dict__["__milvusops_stand_in__"] = True
    return {module.__name__: module for module in (pandas, api, types)}


def install() -> bool:
    """Before pymilvus is first imported; True if installed. Never replaces a pandas already imported."""
    if "pandas" in sys.modules or "pymilvus" in sys.modules:
        return False
    sys.modules.update(modules())
    return True
