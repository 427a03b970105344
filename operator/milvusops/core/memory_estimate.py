"""Pure: what a partition costs in query-node memory once loaded, from what Milvus reports about it.

Inputs are Milvus's own answers (describe_collection's field types and dimensions, describe_index's
type and parameters, get_partition_stats' row count); the model is rows x bytes per row, where an
indexed vector field costs what its index holds in memory. Measured against real query nodes in
docs/design/capacity.md.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field as default

from milvusops.core.messages import listing

# every sealed row also carries its row id and timestamp (segcore's system fields)
SYSTEM_BYTES_PER_ROW = 16
# a JSON field's size cannot be read from the schema: a guess of a small document, documented
JSON_BYTES = 256
# VARCHAR: counted at half its max_length, plus its offset in the column
VARCHAR_OFFSET_BYTES = 8
_SCALAR_BYTES = {
    "BOOL": 1,
    "INT8": 1,
    "INT16": 2,
    "INT32": 4,
    "INT64": 8,
    "FLOAT": 4,
    "DOUBLE": 8,
}
_VECTOR_BYTES_PER_DIM = {"FLOAT_VECTOR": 4.0, "FLOAT16_VECTOR": 2.0, "BFLOAT16_VECTOR": 2.0, "BINARY_VECTOR": 1 / 8}
_DEFAULT_NLIST = 128
_DEFAULT_HNSW_M = 16  # Knowhere's default (AUTOINDEX on 2.3 builds HNSW)


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # pymilvus DataType name: INT64, VARCHAR, FLOAT_VECTOR ...
    dim: int = 0
    max_length: int = 0
    max_capacity: int = 0  # ARRAY
    element_type: str = ""  # ARRAY


@dataclass(frozen=True)
class Index:
    field: str
    index_type: str  # FLAT, IVF_FLAT, HNSW ...
    params: Mapping[str, str] = default(default_factory=dict)


@dataclass(frozen=True)
class Shape:
    """A collection's schema and indexes, and each partition's row count, as Milvus reports them."""

    fields: tuple[Field, ...]
    indexes: tuple[Index, ...] = ()
    rows: Mapping[str, int] = default(default_factory=dict)  # partition -> rows


def is_vector(field_type: str) -> bool:
    return field_type.endswith("_VECTOR")


def _param(index: Index, name: str, default: int) -> int:
    try:
        return int(index.params.get(name, default))
    except (TypeError, ValueError):
        return default


def scalar_bytes(item: Field) -> float:
    if item.type in _SCALAR_BYTES:
        return _SCALAR_BYTES[item.type]
    if item.type == "VARCHAR":
        return item.max_length / 2 + VARCHAR_OFFSET_BYTES
    if item.type == "JSON":
        return JSON_BYTES
    if item.type == "ARRAY":
        element = _SCALAR_BYTES.get(item.element_type, 8)
        return item.max_capacity * element / 2 + VARCHAR_OFFSET_BYTES
    return 8


def vector_bytes(item: Field, index: Index | None, rows: int) -> float:
    """An indexed vector field holds its index in memory (which, for these types, keeps the vectors too)."""
    raw = item.dim * _VECTOR_BYTES_PER_DIM.get(item.type, 4.0)
    if index is None:
        return raw * rows
    kind = index.index_type.upper()
    centroids = _param(index, "nlist", _DEFAULT_NLIST) * raw
    if kind in ("FLAT", "BIN_FLAT"):
        return raw * rows
    if kind in ("IVF_FLAT", "BIN_IVF_FLAT"):
        return (raw + 8) * rows + centroids  # vectors and their ids in the inverted lists
    if kind == "IVF_SQ8":
        return (item.dim + 8) * rows + centroids + raw * rows  # codes, plus the raw field Milvus loads beside
    if kind == "IVF_PQ":
        codes = _param(index, "m", max(item.dim // 4, 1)) * _param(index, "nbits", 8) / 8
        return (codes + 8) * rows + centroids + raw * rows
    if kind in ("HNSW", "AUTOINDEX"):
        links = 2 * _param(index, "M", _DEFAULT_HNSW_M) * 4 + 4  # level 0: up to 2M neighbour ids and a count
        return (raw + links + 8) * rows * 1.1  # upper levels and allocator slack
    if kind == "DISKANN":
        return raw * rows / 8  # only PQ codes and a cache stay in memory; the graph is on disk
    return raw * rows  # unknown index type: at least the vectors


def bytes_per_partition(shape: Shape, load_fields: tuple[str, ...] = ()) -> dict[str, int]:
    """Estimated bytes one replica of each partition holds in query-node memory once loaded."""
    indexes = {index.field: index for index in shape.indexes}
    fields = [f for f in shape.fields if not load_fields or f.name in load_fields]
    out: dict[str, int] = {}
    for partition, rows in shape.rows.items():
        total = float(SYSTEM_BYTES_PER_ROW * rows)
        for item in fields:
            if is_vector(item.type):
                total += vector_bytes(item, indexes.get(item.name), rows)
            else:
                total += scalar_bytes(item) * rows
        out[partition] = int(total)
    return out


@dataclass(frozen=True)
class NodeMemory:
    """One query node's memory as it reports it to Milvus (GetMetrics system_info, hardware_infos)."""

    node_id: int
    total: int
    used: int


@dataclass(frozen=True)
class Capacity:
    """The query nodes a load may use (all, or those of its resource groups when Milvus says which)."""

    nodes: tuple[NodeMemory, ...]
    scope: str = "all query nodes"

    def available(self, headroom_percent: float) -> int:
        """Bytes that may still be loaded, keeping `headroom_percent` of each node's memory free."""
        keep = headroom_percent / 100
        return sum(max(int(node.total * (1 - keep)) - node.used, 0) for node in self.nodes)


@dataclass(frozen=True)
class Refusal:
    """A load that does not fit: both numbers (exact here; the message bounds the free one), what could be released."""

    needed: int
    available: int
    message: str


def human(size: float) -> str:
    """Bytes in binary units, for messages: 1536 -> 1.5 KiB."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


# the bounds a free-memory figure is rounded up to in messages, in each binary unit: x1.25 to x2 apart
_COARSE_STEPS = tuple(step * 10**power for power in range(4) for step in (1, 1.5, 2, 3, 4, 5, 6, 8))


def coarse_free(available: int, needed: int) -> str:
    """Free memory on a coarse scale, so a figure that moves a little every pass reads the same: 409.8 MiB ->
    "less than 500 MiB"; "less than that" when the step would reach `needed` (the tighter bound); 0 -> "no memory"."""
    if available <= 0:
        return "no memory"
    value, scale = float(available), 1
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            bound = next((step for step in _COARSE_STEPS if step > value), value)
            return "less than that" if bound * scale >= needed else f"less than {bound:g} {unit}"
        value, scale = value / 1024, scale * 1024
    raise AssertionError("unreachable")


def admit(
    needed: int,
    capacity: Capacity,
    headroom_percent: float,
    ahead: int = 0,
    releasable: tuple[str, ...] = (),
    running: int = 0,
) -> Refusal | None:
    """None when `needed` bytes fit in what the query nodes have free, after `ahead` bytes of older waiting loads
    and `running` bytes of loads sent that Milvus does not count in full yet.

    `releasable`: partitions this resource keeps loaded, named in the message as what could make room. The message
    says free memory only coarsely (`coarse_free`): it must read the same while the situation is the same, or each
    resync would write status and post an event for a few KiB that a query node's use moved (issue 29 item 9).
    """
    available = capacity.available(headroom_percent) - ahead - running
    if needed <= available:
        return None
    reserved = [f"{human(ahead)} reserved for older loads waiting for memory"] if ahead else []
    reserved += [f"{human(running)} for loads still running"] if running else []
    waiting = f" after {' and '.join(reserved)}" if reserved else ""
    hint = (
        f"; releasing {listing(releasable)} would free memory"
        if releasable
        else "; release other collections or partitions, add query nodes or memory, or load fewer fields"
    )
    message = (
        f"the load needs an estimated {human(needed)} ({needed} B) of query-node memory but {capacity.scope} have "
        f"{coarse_free(available, needed)} free{waiting}, keeping {headroom_percent:g}% headroom{hint}; "
        "no load was sent to Milvus"
    )
    return Refusal(needed, max(available, 0), message)


@dataclass(frozen=True)
class GuardSettings:
    enabled: bool = True
    headroom_percent: float = 10.0


@dataclass(frozen=True)
class Memory:
    """What this pass learned about memory: per partition (all replicas), and the guard's verdict."""

    partitions: Mapping[str, int]
    refusal: Refusal | None = None
