"""One MilvusAlias pass against a fake Milvus: what is called, in which order, and what status says."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from milvusops.core.alias_model import AliasSpec, CollectionView
from milvusops.core.failures import Failure, FailureError, Reason
from milvusops.core.model import LoadState, ResourceRef
from milvusops.core.observed import Replicas, StateReport
from milvusops.runtime.alias_reconcile import AliasResult, reconcile_alias

NOW = datetime(2026, 12, 7, 14, 0, tzinfo=UTC)
REF = ResourceRef(namespace="team", name="search", generation=2)


class Server:
    """Collections with a load state and aliases, as one Milvus database holds them."""

    def __init__(self, states: dict[str, LoadState], aliases: dict[str, str]) -> None:
        self.states, self.aliases = states, aliases
        self.calls: list[tuple[str, ...]] = []
        self.unavailable = ""

    async def port(self, namespace: str, connection: str | None, database: str) -> Server:
        return self

    async def load_state(self, collection: str, partition: str | None = None) -> StateReport:
        return StateReport(self.states.get(collection, LoadState.NOT_EXIST), None)

    async def replicas(self, collection: str, collection_id: str | None = None) -> Replicas:
        return Replicas(1, unavailable=self.unavailable)

    async def release_collection(self, collection: str) -> None:
        self.calls.append(("release_collection", collection))
        self.states[collection] = LoadState.NOT_LOAD

    async def target_of(self, alias: str) -> str | None:
        return self.aliases.get(alias)

    async def aliases_of(self, collection: str) -> list[str]:
        return [a for a, c in self.aliases.items() if c == collection]

    async def create(self, collection: str, alias: str) -> None:
        self.calls.append(("create_alias", collection, alias))
        self.aliases[alias] = collection

    async def alter(self, collection: str, alias: str) -> None:
        self.calls.append(("alter_alias", collection, alias))
        self.aliases[alias] = collection

    async def drop(self, alias: str) -> None:
        self.aliases.pop(alias, None)


def _view(name: str, collection: str, ready: bool = True, reason: str = "InSync", wants: bool = True) -> CollectionView:
    return CollectionView("team", name, collection, "default", "", ready, reason, "m", wants)


def _run(
    server: Server,
    spec: dict[str, Any],
    status: dict[str, Any] | None = None,
    views: tuple[CollectionView, ...] = (),
    now: datetime = NOW,
    conflict_with: str | None = None,
) -> AliasResult:
    body = {"metadata": {"namespace": "team", "name": "search"}, "spec": {"alias": "live", **spec}}
    by_name = {(v.namespace, v.name): v for v in views}
    return asyncio.run(
        reconcile_alias(
            AliasSpec.from_body(body),
            REF,
            status or {},
            server,  # type: ignore[arg-type]
            lambda namespace, name: by_name.get((namespace, name)),
            lambda: views,
            now,
            conflict_with,
            alias_port=lambda port: port,
        )
    )


def _reason(result: AliasResult) -> str:
    return str(result.status["conditions"][0]["reason"])


def test_creates_a_missing_alias_to_a_loaded_bare_collection() -> None:
    server = Server({"blue": LoadState.LOADED}, {})
    result = _run(server, {"target": {"collectionName": "blue"}})
    assert server.calls == [("create_alias", "blue", "live")]
    assert (_reason(result), result.status["target"]) == ("InSync", "blue")
    assert [e[1] for e in result.events] == ["AliasCreated"]


@pytest.mark.parametrize(
    ("state", "unavailable", "reason"),
    [
        (LoadState.LOADING, "", "TargetNotReady"),
        (LoadState.NOT_EXIST, "", "CollectionNotFound"),
        (LoadState.LOADED, "replica not available", "TargetNotReady"),  # a replica without a query node
    ],
)
def test_never_switches_to_a_bare_collection_that_cannot_serve(state: LoadState, unavailable: str, reason: str) -> None:
    server = Server({"blue": LoadState.LOADED, "green": state}, {"live": "blue"})
    server.unavailable = unavailable
    result = _run(server, {"target": {"collectionName": "green"}})
    assert server.calls == [] and server.aliases == {"live": "blue"}
    assert (_reason(result), result.status["target"], result.status["desiredTarget"]) == (reason, "blue", "green")


def test_adopts_an_alias_that_already_points_at_the_target() -> None:
    server = Server({"green": LoadState.LOADED}, {"live": "green"})
    result = _run(server, {"target": {"collectionRef": {"name": "green"}}}, views=(_view("green", "green"),))
    assert server.calls == [] and _reason(result) == "InSync"
    assert result.events == ()


def test_switches_to_a_ready_collection_ref_and_releases_the_old_one_after_the_drain_window() -> None:
    server = Server({"blue": LoadState.LOADED, "green_v2": LoadState.LOADED}, {"live": "blue"})
    spec = {"target": {"collectionRef": {"name": "green"}}, "releasePrevious": {"afterSeconds": 3}}
    views = (_view("green", "green_v2"),)
    switched = _run(server, spec, views=views)
    assert server.calls == [("alter_alias", "green_v2", "live")]
    assert switched.status["previous"] == {"collection": "blue", "switchedAt": "2026-12-07T14:00:00.000Z"}
    assert switched.recheck_in == 3.0  # the pass that ends the drain window is due then
    early = _run(server, spec, switched.status, views, NOW + timedelta(seconds=2))
    assert len(server.calls) == 1 and early.recheck_in == pytest.approx(1.0)
    drained = _run(server, spec, switched.status, views, NOW + timedelta(seconds=3))
    assert server.calls[1:] == [("release_collection", "blue")]
    assert drained.status["previous"]["releasedAt"] == "2026-12-07T14:00:03.000Z"
    again = _run(server, spec, drained.status, views, NOW + timedelta(seconds=30))
    assert len(server.calls) == 2 and again.status == drained.status


def test_a_previous_target_still_wanted_is_kept_and_status_says_by_whom() -> None:
    server = Server({"blue": LoadState.LOADED, "green": LoadState.LOADED}, {"live": "green", "other": "blue"})
    status = {"previous": {"collection": "blue", "switchedAt": "2026-12-07T13:00:00Z"}}
    views = (_view("green", "green"), _view("blue", "blue"))
    result = _run(
        server, {"target": {"collectionRef": {"name": "green"}}, "releasePrevious": {"afterSeconds": 0}}, status, views
    )
    assert server.calls == []
    kept = result.status["previous"]["kept"]
    assert kept == "not released: still wanted by alias other, MilvusCollection team/blue (wants it Loaded)"


def test_waits_for_a_collection_ref_with_its_reason() -> None:
    server = Server({"blue": LoadState.LOADED}, {"live": "blue"})
    result = _run(
        server, {"target": {"collectionRef": {"name": "green"}}}, views=(_view("green", "g", False, "IndexNotFound"),)
    )
    assert server.calls == [] and _reason(result) == "IndexNotFound"
    assert result.verdict.stalled and result.events[0][:2] == ("Warning", "IndexNotFound")
    missing = _run(server, {"target": {"collectionRef": {"name": "nope"}}}, result.status)
    assert _reason(missing) == "TargetNotFound" and missing.status["target"] == "blue"


def test_a_collection_ref_on_another_connection_is_not_a_target() -> None:
    other = CollectionView("team", "green", "green", "default", "team/other", True, "InSync", "", True)
    result = _run(Server({}, {}), {"target": {"collectionRef": {"name": "green"}}}, views=(other,))
    assert _reason(result) == "TargetNotFound" and "another connection" in result.verdict.message


def test_the_younger_of_two_aliases_makes_no_call() -> None:
    server = Server({"blue": LoadState.LOADED}, {})
    result = _run(server, {"target": {"collectionName": "blue"}}, conflict_with="team/older")
    assert server.calls == [] and _reason(result) == "Conflict" and result.verdict.stalled


def test_milvus_down_keeps_what_status_knew() -> None:
    class Down(Server):
        async def target_of(self, alias: str) -> str | None:
            raise FailureError(Failure(Reason.MILVUS_UNAVAILABLE, "cannot reach Milvus"))

    status = {"target": "blue", "previous": {"collection": "red", "switchedAt": "2026-12-07T13:00:00Z"}}
    result = _run(Down({}, {}), {"target": {"collectionName": "blue"}}, status)
    assert _reason(result) == "MilvusUnavailable" and not result.observed
    assert result.status["target"] == "blue" and result.status["previous"]["collection"] == "red"


def test_a_second_switch_within_the_drain_window_still_releases_the_first_previous_target() -> None:
    """blue -> green, then green -> red 2 s later: once their windows end, both blue and green are released."""
    states = {"blue": LoadState.LOADED, "green": LoadState.LOADED, "red": LoadState.LOADED}
    server = Server(states, {"live": "blue"})
    release = {"releasePrevious": {"afterSeconds": 10}}
    views = (_view("green", "green", wants=False), _view("red", "red"))
    first = _run(server, {"target": {"collectionRef": {"name": "green"}}, **release}, views=views)
    spec = {"target": {"collectionRef": {"name": "red"}}, **release}
    second = _run(server, spec, first.status, views, NOW + timedelta(seconds=2))
    assert server.aliases == {"live": "red"}
    later = _run(server, spec, second.status, views, NOW + timedelta(seconds=12))
    assert sorted(server.calls[2:]) == [("release_collection", "blue"), ("release_collection", "green")]
    assert later.status["previous"]["collection"] == "green" and "releasedAt" in later.status["previous"]
    assert "draining" not in later.status  # nothing left to release
