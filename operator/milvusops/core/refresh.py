"""Pure: when to refresh a loaded collection (the refresh annotation, handled once like `kubectl rollout restart`)."""

from __future__ import annotations

from dataclasses import dataclass

from milvusops import REFRESH_ANNOTATION
from milvusops.core.capabilities import Capabilities, describe, minimum
from milvusops.core.model import CollectionSpec, LoadState
from milvusops.core.observed import Observed
from milvusops.core.plan import Plan, whole_collection


@dataclass(frozen=True)
class Refresh:
    """load_collection / load_partitions with refresh=True: Milvus re-pulls the target of what is loaded."""

    partitions: tuple[str, ...] | None  # None: the collection as a whole


@dataclass(frozen=True)
class RefreshStep:
    action: Refresh | None = None  # the call to make in this pass
    handled: bool = False  # record the annotation's value as status.lastRefresh (once the call, if any, succeeded)
    note: str = ""  # why it was handled without a call
    unsupported: str | None = None  # the server lacks refresh: a Stalled reason


def decide(
    requested: str, last: str, spec: CollectionSpec, observed: Observed, planned: Plan, caps: Capabilities
) -> RefreshStep | None:
    """None when no refresh is asked for (no annotation, or its value is already recorded in status)."""
    if not requested or requested == last:
        return None
    if not caps.refresh_load:
        message = f"{describe(caps)} has no refresh (needs Milvus {minimum('refresh_load')} or later)"
        return RefreshStep(unsupported=f"{message}: remove the {REFRESH_ANNOTATION} annotation or upgrade Milvus")
    if observed.partial or observed.loading or planned.actions:
        # a load or release is under way: refresh once the collection has settled (Milvus refuses it while loading)
        return RefreshStep()
    loaded = tuple(name for name, report in observed.partitions.items() if report.state == LoadState.LOADED)
    if not loaded:
        return RefreshStep(handled=True, note="nothing is loaded, so there was nothing to refresh")
    # a partition-key collection takes no partition-level call, not even a refresh (proxy loadPartitionsTask)
    keyed = observed.partition_key is not None
    unmanaged = any(name not in planned.desired for name in observed.partitions)
    whole = (
        keyed or whole_collection(spec, planned.desired, planned.missing, observed.partition_key, unmanaged) is not None
    )
    return RefreshStep(Refresh(None if whole else loaded), handled=True)
