"""`milvusops plan` for MilvusAlias against a fake Milvus: switch now or wait (and why), the release it causes."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from milvusops.core.model import LoadState
from milvusops.core.observed import Replicas, StateReport
from milvusops.preview import planview
from milvusops.preview.aliases import preview_alias, views_of
from milvusops.preview.readonly import ReadOnlyAliases, ReadOnlyViolation
from milvusops.preview.rows import CHANGES, ERRORS, NOTHING, PartitionPreview, Report, ResourcePreview

NOW = datetime(2026, 12, 7, 15, 0, tzinfo=UTC)


class Milvus:
    """Collections with a load state and aliases in one database; records every call that would change Milvus."""

    def __init__(self, states: dict[str, LoadState], aliases: dict[str, str]) -> None:
        self.states, self.aliases = states, aliases
        self.changes: list[str] = []

    async def load_state(self, collection: str, partition: str | None = None) -> StateReport:
        return StateReport(self.states.get(collection, LoadState.NOT_EXIST), None)

    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas:
        return Replicas(1)

    async def target_of(self, alias: str) -> str | None:
        return self.aliases.get(alias)

    async def aliases_of(self, collection: str) -> list[str]:
        return [a for a, c in self.aliases.items() if c == collection]

    async def create(self, collection: str, alias: str) -> None:
        self.changes.append("create_alias")

    async def alter(self, collection: str, alias: str) -> None:
        self.changes.append("alter_alias")

    async def drop(self, alias: str) -> None:
        self.changes.append("drop_alias")


def _collection(name: str, calls: tuple[str, ...] = (), reason: str = "InSync", wants: str = "Loaded") -> Any:
    body = {"metadata": {"namespace": "shop", "name": name}, "spec": {"collectionName": name, "state": wants}}
    current = "Loaded" if not calls and reason == "InSync" else "NotLoad"
    item = ResourcePreview(
        "c.yaml",
        "shop",
        name,
        f"default.{name}",
        calls=calls,
        reason=reason,
        failed=reason not in ("InSync", "Loading"),
        partitions=(PartitionPreview("_default", current, wants, "load" if calls else ""),),
    )
    return (("shop", name), (body, item))


def _alias(
    milvus: Milvus,
    target: dict[str, Any],
    planned: tuple[Any, ...] = (),
    after: int | None = 300,
    status: dict[str, Any] | None = None,
) -> Any:
    spec: dict[str, Any] = {"alias": "live", "target": target}
    if after is not None:
        spec["releasePrevious"] = {"afterSeconds": after}
    body = {"metadata": {"namespace": "shop", "name": "search"}, "spec": spec, "status": status or {}}
    views = views_of(dict(planned))
    port: Any = milvus
    return asyncio.run(preview_alias("a.yaml", body, views, port, ReadOnlyAliases(milvus), "the default", NOW))


def test_switch_to_an_in_sync_target_now_and_release_the_old_one_after_the_drain() -> None:
    milvus = Milvus({"blue": LoadState.LOADED, "green": LoadState.LOADED}, {"live": "blue"})
    item = _alias(milvus, {"collectionRef": {"name": "green"}}, (_collection("green"),))
    assert item.calls == ("alter_alias(green, live)", "release_collection(blue) after the 300 s drain window")
    assert item.destructive == ("releases the whole collection blue (after the 300 s drain window)",)
    assert item.alias is not None and (item.alias.current, item.alias.desired, item.alias.switch) == (
        "blue",
        "green",
        "now",
    )
    assert milvus.changes == [] and item.status == "change"
    assert Report([item]).exit_code == CHANGES
    assert Report([item], fail_on_destructive=True).exit_code == ERRORS


@pytest.mark.parametrize(
    ("planned", "switch", "says"),
    [
        ((_collection("green", ("load_collection",), "Loading"),), "waits (TargetNotReady)", "planned load_collection"),
        ((_collection("green", (), "IndexNotFound"),), "waits (IndexNotFound)", "IndexNotFound"),
        ((_collection("green", wants="Released"),), "waits (TargetNotReady)", "NotLoaded"),
    ],
)
def test_waits_for_a_target_that_would_not_be_serviceable(planned: tuple[Any, ...], switch: str, says: str) -> None:
    milvus = Milvus({"blue": LoadState.LOADED}, {"live": "blue"})
    item = _alias(milvus, {"collectionRef": {"name": "green"}}, planned)
    assert item.calls == () and item.alias is not None and item.alias.switch == switch
    assert says in item.message and "the alias stays on blue" in item.message


def test_a_target_not_in_the_input_is_an_error() -> None:
    item = _alias(Milvus({}, {"live": "blue"}), {"collectionRef": {"name": "green"}})
    assert (item.reason, item.status) == ("TargetNotFound", "error")


@pytest.mark.parametrize(
    ("state", "aliases", "calls", "code"),
    [
        (LoadState.LOADED, {}, ("create_alias(blue, live)",), CHANGES),  # nothing left behind: no release
        (LoadState.LOADING, {}, (), NOTHING),  # waits for get_load_state Loaded
        (LoadState.LOADED, {"live": "blue"}, (), NOTHING),  # already there
    ],
)
def test_a_bare_collection_target_follows_get_load_state(
    state: LoadState, aliases: dict[str, str], calls: tuple[str, ...], code: int
) -> None:
    milvus = Milvus({"blue": state}, aliases)
    item = _alias(milvus, {"collectionName": "blue"})
    assert item.calls == calls and Report([item]).exit_code == code and item.destructive == ()


def test_a_previous_target_still_wanted_is_shown_kept_not_released() -> None:
    milvus = Milvus({"blue": LoadState.LOADED, "green": LoadState.LOADED}, {"live": "blue", "other": "blue"})
    item = _alias(milvus, {"collectionRef": {"name": "green"}}, (_collection("green"),))
    assert item.calls == ("alter_alias(green, live)",) and item.destructive == ()
    assert (
        item.alias is not None and item.alias.release == "blue kept after the drain window: still wanted by alias other"
    )
    unreleased = _alias(milvus, {"collectionRef": {"name": "green"}}, (_collection("green"),), after=None)
    assert unreleased.alias is not None and unreleased.alias.release == "blue stays loaded (no releasePrevious)"


def test_a_manifest_with_status_past_its_drain_window_shows_the_release_due_now() -> None:
    milvus = Milvus({"blue": LoadState.LOADED, "green": LoadState.LOADED}, {"live": "green"})
    status = {"previous": {"collection": "blue", "switchedAt": "2026-12-07T14:00:00Z"}}  # an hour before NOW
    item = _alias(milvus, {"collectionName": "green"}, status=status)
    assert item.calls == ("release_collection(blue)",) and item.alias is not None and item.alias.switch == "none"
    assert item.destructive == ("releases the whole collection blue (now)",) and milvus.changes == []


def test_every_output_shows_the_alias() -> None:
    milvus = Milvus({"blue": LoadState.LOADED, "green": LoadState.LOADED}, {"live": "blue"})
    report = Report([_alias(milvus, {"collectionRef": {"name": "green"}}, (_collection("green"),))])
    table = planview.table(report)
    assert "points at blue; spec wants green; switch: now" in table
    assert "destructive: releases the whole collection blue" in table and "1 MilvusAlias(s): 1 to change" in table
    assert "points at blue; spec wants green; switch: now" in planview.markdown(report)
    [resource] = json.loads(planview.as_json(report))["resources"]
    assert resource["kind"] == "MilvusAlias" and resource["schedule"] is None  # schemaVersion 2's fields stay
    assert resource["alias"] == {
        "alias": "live",
        "current": "blue",
        "desired": "green",
        "switch": "now",
        "release": "release_collection(blue) after the 300 s drain window",
    }


def test_the_read_only_alias_port_refuses_every_change() -> None:
    milvus = Milvus({}, {})
    reads = ReadOnlyAliases(milvus)
    for change in (reads.create("c", "a"), reads.alter("c", "a"), reads.drop("a")):
        with pytest.raises(ReadOnlyViolation):
            asyncio.run(change)
    assert milvus.changes == []
