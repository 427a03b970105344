"""What each Milvus server version allows: one table, read from Milvus's source (docs/compatibility.md).

Part of the Milvus adapter, without pymilvus, so the pure planner can take a `Capabilities` too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

Version = tuple[int, int, int]


@dataclass(frozen=True)
class Capabilities:
    """How one server behaves where versions differ; `version` is what the server reported."""

    version: str
    known: bool  # the version could be parsed and is not newer than the table knows
    replica_change_in_place: bool
    load_fields: bool
    load_priority: bool
    refresh_load: bool
    failed_load_raised_by_get_load_state: bool
    partition_key_refusal_code: int
    ddl_one_at_a_time: bool


@dataclass(frozen=True)
class Row:
    """A capability that takes `before` on servers older than `since`, and `since_value` from `since` on."""

    capability: str
    since: Version
    before: bool | int
    since_value: bool | int
    source: str  # the Milvus source that decides it


ROWS: tuple[Row, ...] = (
    # querycoordv2/services.go LoadCollection: a changed replica number switches to UpdateLoadConfigJob (PR #36417)
    Row(
        "replica_change_in_place",
        (2, 4, 13),
        False,
        True,
        "internal/querycoordv2/services.go LoadCollection -> job.NewUpdateLoadConfigJob (PR #36417, of #35822)",
    ),
    # proxy loadCollectionTask.Execute: GetLoadFieldIDs(load_fields, skip_load_dynamic_field); 2.4.10 per issue 15
    Row(
        "load_fields",
        (2, 4, 10),
        False,
        True,
        "internal/proxy/task.go loadCollectionTask.Execute: GetLoadFieldIDs(load_fields, skip_load_dynamic_field)",
    ),
    # proxy loadCollectionTask.GetLoadPriority reads load_params["load_priority"]; absent before 2.6.0
    Row(
        "load_priority",
        (2, 6, 0),
        False,
        True,
        'internal/proxy/task.go GetLoadPriority: load_params["load_priority"]',
    ),
    # querycoordv2/services.go Load*: req.GetRefresh() -> refreshCollection, since 2.2.3 (issue #21091)
    Row(
        "refresh_load",
        (2, 2, 3),
        False,
        True,
        "internal/querycoordv2/services.go LoadCollection/LoadPartitions: GetRefresh() -> refreshCollection "
        "(PR #21776, 2.2 backport #21811)",
    ),
    # querycoordv2/services.go ShowLoadCollections returned GlobalFailedLoadCache's error until #49493/#49497
    Row(
        "failed_load_raised_by_get_load_state",
        (2, 6, 16),
        True,
        False,
        "internal/querycoordv2/meta/failed_load_cache.go + services.go ShowLoadCollections (fixed by #49493, #49497)",
    ),
    # proxy loadPartitionsTask.PreExecute: errors.New (65535); merr.ParameterInvalid (1100) after 2.6.18 per issue 15
    Row(
        "partition_key_refusal_code",
        (2, 6, 19),
        65535,
        1100,
        'internal/proxy/task.go loadPartitionsTask.PreExecute: "disable load partitions if partition key mode is used"',
    ),
    # proxy definitionLoop ran each DDL task inline until a pool of proxy.ddlConcurrency (default 16) in 2.5.0
    Row(
        "ddl_one_at_a_time",
        (2, 5, 0),
        True,
        False,
        "internal/proxy/task_scheduler.go definitionLoop: processTask inline; from 2.5.0 a proxy.ddlConcurrency pool",
    ),
)

# the newest version whose behaviour the table was written from; newer or unreadable versions behave like it
NEWEST_KNOWN: Version = (3, 0, 0)

_VERSION = re.compile(r"^\s*v?(\d+)\.(\d+)(?:\.(\d+))?")


def parse(version: str) -> Version | None:
    """'v2.3.5', '2.6.6', 'v2.5.4-gpu' -> (2, 3, 5) ...; None when it is not a version."""
    match = _VERSION.match(version)
    if match is None:
        return None
    major, minor, patch = match.groups()
    return int(major), int(minor), int(patch or 0)


def capabilities(version: str) -> Capabilities:
    """The behaviour of `version`; an unknown, unparsable or newer one gets the most recent known behaviour."""
    parsed = parse(version)
    known = parsed is not None and parsed <= NEWEST_KNOWN
    effective = parsed if parsed is not None and known else NEWEST_KNOWN
    values = {row.capability: row.since_value if effective >= row.since else row.before for row in ROWS}
    return Capabilities(version=version, known=known, **values)  # type: ignore[arg-type]


def describe(caps: Capabilities) -> str:
    """Milvus <version>, and which behaviour it gets when the table does not know it."""
    if caps.known:
        return f"Milvus {caps.version}"
    label = caps.version or "of unknown version"
    return f"Milvus {label} (treated as {'.'.join(map(str, NEWEST_KNOWN))})"


def minimum(capability: str) -> str:
    """The first version that has `capability`, e.g. '2.4.10'."""
    row = next(row for row in ROWS if row.capability == capability)
    return ".".join(map(str, row.since))
