"""The pure planner: (spec, observed Milvus state) -> load/release actions (SPEC §4 plan rules)."""

from __future__ import annotations

import itertools

import pytest

from milvusops.core.capabilities import capabilities
from milvusops.core.model import CollectionSpec, Desired, LoadState
from milvusops.core.observed import Observed, Replicas, StateReport
from milvusops.core.plan import (
    Action,
    LoadCollection,
    LoadPartitions,
    Plan,
    ReleaseCollection,
    ReleasePartitions,
    desired_partitions,
    loads,
    plan,
    started,
)

V2_3 = capabilities("v2.3.5")  # the server the cases below were first written against


def plan_2_3(spec: CollectionSpec, observed: Observed) -> Plan:
    return plan(spec, observed, V2_3)


NOT_LOAD, LOADING, LOADED = LoadState.NOT_LOAD, LoadState.LOADING, LoadState.LOADED
HELD = (LOADING, LOADED)


def make_spec(state: str = "Released", partitions: dict[str, str] | None = None) -> CollectionSpec:
    listed = [{"name": name, "state": want} for name, want in (partitions or {}).items()]
    return CollectionSpec.from_body({"metadata": {"name": "products"}, "spec": {"state": state, "partitions": listed}})


def make_observed(
    partitions: dict[str, LoadState], collection: LoadState = NOT_LOAD, replicas: int | None = None
) -> Observed:
    reports = {name: StateReport(state) for name, state in partitions.items()}
    return Observed(StateReport(collection), reports, None if replicas is None else Replicas(replicas))


CASES = [
    # every partition desired Loaded (spec.state Loaded): collection-level load, only when something is NotLoad
    pytest.param("Loaded", {}, {"_default": NOT_LOAD, "a": NOT_LOAD}, (LoadCollection(),), id="all-loaded/none-loaded"),
    pytest.param("Loaded", {}, {"_default": LOADED, "a": NOT_LOAD}, (LoadCollection(),), id="all-loaded/one-notload"),
    pytest.param(
        "Loaded", {}, {"_default": LOADING, "a": NOT_LOAD}, (LoadCollection(),), id="all-loaded/loading+notload"
    ),
    pytest.param("Loaded", {}, {"_default": LOADED, "a": LOADED}, (), id="all-loaded/in-sync"),
    pytest.param("Loaded", {}, {"_default": LOADING, "a": LOADED}, (), id="all-loaded/loading-and-loaded"),
    pytest.param("Loaded", {}, {"_default": LOADING, "a": LOADING}, (), id="all-loaded/all-loading"),
    pytest.param(
        "Loaded", {"a": "Loaded"}, {"_default": NOT_LOAD, "a": NOT_LOAD}, (LoadCollection(),), id="all-loaded/listed"
    ),
    # every existing partition listed Loaded but spec.state Released: future partitions must stay released
    pytest.param(
        "Released",
        {"_default": "Loaded", "a": "Loaded"},
        {"_default": NOT_LOAD, "a": NOT_LOAD},
        (LoadPartitions(("_default", "a")),),
        id="all-listed-loaded/state-released",
    ),
    # nothing desired loaded: one collection-level release, only if something is held
    pytest.param("Released", {}, {"_default": NOT_LOAD, "a": NOT_LOAD}, (), id="none-wanted/in-sync"),
    pytest.param(
        "Released", {}, {"_default": NOT_LOAD, "a": LOADED}, (ReleaseCollection(),), id="none-wanted/one-loaded"
    ),
    pytest.param(
        "Released", {}, {"_default": LOADING, "a": NOT_LOAD}, (ReleaseCollection(),), id="none-wanted/one-loading"
    ),
    pytest.param(
        "Released", {}, {"_default": LOADED, "a": LOADED}, (ReleaseCollection(),), id="none-wanted/all-loaded"
    ),
    pytest.param(
        "Loaded",
        {"_default": "Released", "a": "Released"},
        {"_default": LOADED, "a": NOT_LOAD},
        (ReleaseCollection(),),
        id="none-wanted/state-loaded-all-listed-released",
    ),
    # mixed: release first (frees memory), then load
    pytest.param(
        "Released",
        {"hot": "Loaded"},
        {"_default": LOADED, "cold": LOADING, "hot": NOT_LOAD},
        (ReleasePartitions(("_default", "cold")), LoadPartitions(("hot",))),
        id="mixed/release-then-load",
    ),
    pytest.param(
        "Loaded",
        {"cold": "Released"},
        {"_default": NOT_LOAD, "cold": LOADED, "hot": NOT_LOAD},
        (ReleasePartitions(("cold",)), LoadPartitions(("_default", "hot"))),
        id="mixed/state-loaded-one-released",
    ),
    pytest.param(
        "Released",
        {"hot": "Loaded"},
        {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": NOT_LOAD},
        (LoadPartitions(("hot",)),),
        id="mixed/load-only",
    ),
    pytest.param(
        "Released",
        {"hot": "Loaded"},
        {"_default": LOADED, "cold": NOT_LOAD, "hot": LOADED},
        (ReleasePartitions(("_default",)),),
        id="mixed/release-only",
    ),
    pytest.param(
        "Released",
        {"hot": "Loaded"},
        {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADING},
        (),
        id="mixed/wanted-still-loading",
    ),
    pytest.param(
        "Released",
        {"hot": "Loaded"},
        {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADED},
        (),
        id="mixed/in-sync",
    ),
]


@pytest.mark.parametrize(("state", "listed", "states", "expected"), CASES)
def test_actions(
    state: str, listed: dict[str, str], states: dict[str, LoadState], expected: tuple[Action, ...]
) -> None:
    result = plan_2_3(
        make_spec(state, listed), make_observed(states, LOADED if any(s in HELD for s in states.values()) else NOT_LOAD)
    )
    assert result.actions == expected
    assert result.missing == ()


def test_desired_covers_milvus_and_spec_sorted() -> None:
    spec = make_spec("Released", {"zeta": "Loaded", "alpha": "Released"})
    observed = make_observed({"_default": NOT_LOAD, "zeta": NOT_LOAD, "beta": LOADED})
    assert list(desired_partitions(spec, observed).items()) == [
        ("_default", Desired.RELEASED),
        ("alpha", Desired.RELEASED),
        ("beta", Desired.RELEASED),
        ("zeta", Desired.LOADED),
    ]


def test_missing_partition_desired_released_blocks_collection_level_load() -> None:
    # load_collection would load "ghost" as soon as it is created, though it should stay released
    spec = make_spec("Loaded", {"ghost": "Released"})
    result = plan_2_3(spec, make_observed({"_default": NOT_LOAD, "a": NOT_LOAD}))
    assert result.missing == ("ghost",)
    assert result.actions == (LoadPartitions(("_default", "a")),)
    assert result.desired["ghost"] == Desired.RELEASED


def test_missing_partition_desired_loaded_keeps_collection_level_load() -> None:
    spec = make_spec("Loaded", {"ghost": "Loaded"})
    result = plan_2_3(spec, make_observed({"_default": NOT_LOAD, "a": LOADED}))
    assert result.missing == ("ghost",)
    assert result.actions == (LoadCollection(),)


def test_missing_partition_is_never_an_action_target() -> None:
    spec = make_spec("Released", {"ghost": "Loaded", "hot": "Loaded"})
    result = plan_2_3(spec, make_observed({"_default": LOADED, "hot": NOT_LOAD}))
    assert result.missing == ("ghost",)
    assert result.actions == (ReleasePartitions(("_default",)), LoadPartitions(("hot",)))


def test_missing_only_wanted_partition_releases_the_rest() -> None:
    spec = make_spec("Released", {"ghost": "Loaded"})
    result = plan_2_3(spec, make_observed({"_default": LOADED}))
    assert result.missing == ("ghost",)
    assert result.actions == (ReleaseCollection(),)


@pytest.mark.parametrize("state", ["Loaded", "Released"])
def test_collection_not_exist_plans_nothing(state: str) -> None:
    spec = make_spec(state, {"a": "Loaded", "b": "Released"})
    result = plan_2_3(spec, Observed(StateReport(LoadState.NOT_EXIST)))
    assert result.actions == ()
    assert result.missing == ("a", "b")
    assert result.desired == {"a": Desired.LOADED, "b": Desired.RELEASED}


@pytest.mark.parametrize(
    ("actions", "releasing"),
    [
        ((), False),
        ((LoadCollection(),), False),
        ((LoadPartitions(("a",)),), False),
        ((ReleaseCollection(),), True),
        ((ReleasePartitions(("a",)), LoadPartitions(("b",))), True),
    ],
)
def test_releasing(actions: tuple[Action, ...], releasing: bool) -> None:
    assert Plan({}, (), actions).releasing is releasing


REPLICA_CASES = [
    pytest.param(
        {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADED},
        1,
        (),
        (1, 2),
        id="loaded-with-other-replicas/blocks-load",
    ),
    pytest.param(
        {"_default": LOADED, "cold": NOT_LOAD, "hot": LOADED},
        1,
        (ReleasePartitions(("_default",)),),
        (1, 2),
        id="loaded-with-other-replicas/releases-still-done",
    ),
    pytest.param(
        {"_default": NOT_LOAD, "cold": LOADING, "hot": NOT_LOAD},
        None,
        (LoadPartitions(("hot",)),),
        None,
        id="only-loading/replicas-unknown",
    ),
    pytest.param(
        {"_default": LOADED, "cold": NOT_LOAD, "hot": NOT_LOAD},
        1,
        (ReleasePartitions(("_default",)), LoadPartitions(("cold", "hot"))),
        None,
        id="only-unwanted-loaded/released-first-so-replicas-can-change",
    ),
    pytest.param(
        {"_default": NOT_LOAD, "cold": NOT_LOAD, "hot": LOADED},
        2,
        (LoadPartitions(("cold",)),),
        None,
        id="same-replicas",
    ),
]


@pytest.mark.parametrize(("states", "replicas", "expected", "mismatch"), REPLICA_CASES)
def test_replica_change_of_kept_partitions(
    states: dict[str, LoadState], replicas: int | None, expected: tuple[Action, ...], mismatch: tuple[int, int] | None
) -> None:
    body = {
        "metadata": {"name": "products"},
        "spec": {
            "state": "Released",  # _default too: the releases of a plan still go when its loads cannot
            "partitions": [{"name": "hot", "state": "Loaded"}, {"name": "cold", "state": "Loaded"}],
            "load": {"replicas": 2},
        },
    }
    result = plan_2_3(CollectionSpec.from_body(body), make_observed(states, LOADED, replicas))
    assert result.actions == expected
    assert result.replica_mismatch == mismatch


# --- properties over every small case ---------------------------------------------------------

NAMES = ("_default", "a", "b")
LISTED_CHOICES = (None, "Loaded", "Released")  # None: not listed, follows spec.state
OBSERVED_CHOICES = (None, NOT_LOAD, LOADING, LOADED)  # None: does not exist in Milvus


def small_cases() -> list[tuple[CollectionSpec, Observed]]:
    cases = []
    for state in ("Loaded", "Released"):
        for listing in itertools.product(LISTED_CHOICES, repeat=len(NAMES)):
            for states in itertools.product(OBSERVED_CHOICES, repeat=len(NAMES)):
                if all(s is None for s in states):
                    continue  # every collection has at least _default; covered by NotExist tests otherwise
                listed = {name: want for name, want in zip(NAMES, listing, strict=True) if want is not None}
                present = {name: s for name, s in zip(NAMES, states, strict=True) if s is not None}
                cases.append((make_spec(state, listed), make_observed(present, LOADED)))
    return cases


def simulate(observed: Observed, actions: tuple[Action, ...]) -> dict[str, LoadState]:
    """What Milvus would hold after the actions (loads start as Loading)."""
    states = {name: report.state for name, report in observed.partitions.items()}
    for action in actions:
        match action:
            case LoadCollection():
                states = {name: LOADING if s == NOT_LOAD else s for name, s in states.items()}
            case LoadPartitions(partitions):
                states.update({name: LOADING for name in partitions if states[name] == NOT_LOAD})
            case ReleasePartitions(partitions):
                states.update({name: NOT_LOAD for name in partitions})
            case ReleaseCollection():
                states = dict.fromkeys(states, NOT_LOAD)
    return states


def test_small_cases_are_many() -> None:
    assert len(small_cases()) == 2 * 3**3 * (4**3 - 1)


def test_never_releases_a_partition_that_should_be_loaded() -> None:
    for spec, observed in small_cases():
        actions = plan_2_3(spec, observed).actions
        wanted = {name for name in observed.partitions if spec.desired_for(name) == Desired.LOADED}
        for action in actions:
            if isinstance(action, ReleasePartitions):
                assert not wanted & set(action.partitions), (spec, observed, actions)
            if isinstance(action, ReleaseCollection):
                assert not wanted, (spec, observed, actions)


def test_never_loads_a_partition_that_should_be_released() -> None:
    for spec, observed in small_cases():
        result = plan_2_3(spec, observed)
        unwanted = {name for name in result.desired if spec.desired_for(name) == Desired.RELEASED}
        for action in result.actions:
            if isinstance(action, LoadPartitions):
                assert not unwanted & set(action.partitions), (spec, observed, result.actions)
            if isinstance(action, LoadCollection):
                # covers partitions created later too, so also the missing ones
                assert not unwanted, (spec, observed, result.actions)
                assert spec.state == Desired.LOADED, (spec, observed, result.actions)


def test_actions_reach_the_desired_state_and_then_stop() -> None:
    for spec, observed in small_cases():
        result = plan_2_3(spec, observed)
        after = simulate(observed, result.actions)
        for name, state in after.items():
            if spec.desired_for(name) == Desired.LOADED:
                assert state in HELD, (spec, observed, result.actions)
            else:
                assert state == NOT_LOAD, (spec, observed, result.actions)
        settled = make_observed({name: LOADED if s == LOADING else s for name, s in after.items()}, LOADED)
        assert plan_2_3(spec, settled).actions == (), (spec, observed, result.actions)


def test_action_shape() -> None:
    for spec, observed in small_cases():
        result = plan_2_3(spec, observed)
        kinds = [type(action) for action in result.actions]
        assert len(kinds) == len(set(kinds)), result.actions
        if ReleaseCollection in kinds or LoadCollection in kinds:
            assert len(kinds) == 1, result.actions
        if ReleasePartitions in kinds and LoadPartitions in kinds:
            assert kinds.index(ReleasePartitions) < kinds.index(LoadPartitions), result.actions
        for action in result.actions:
            if isinstance(action, LoadPartitions | ReleasePartitions):
                assert action.partitions, result.actions
                assert set(action.partitions) <= set(observed.partitions), result.actions
        assert set(result.missing) == set(result.desired) - set(observed.partitions)
        assert set(result.desired) == set(observed.partitions) | set(spec.named_partitions)


def test_in_sync_needs_no_actions() -> None:
    for spec, observed in small_cases():
        in_sync = all(
            (report.state in HELD) == (spec.desired_for(name) == Desired.LOADED)
            for name, report in observed.partitions.items()
        )
        if in_sync:
            assert plan_2_3(spec, observed).actions == (), (spec, observed)


def test_collection_not_exist_never_acts() -> None:
    for spec, _ in small_cases()[:: len(OBSERVED_CHOICES) ** len(NAMES) - 1]:
        assert plan_2_3(spec, Observed(StateReport(LoadState.NOT_EXIST))).actions == ()


def test_replica_mismatch_only_ever_drops_loads() -> None:
    for unset, observed in small_cases():
        spec = unset.model_copy(update={"load": unset.load.model_copy(update={"replicas": 1})})
        baseline = plan_2_3(spec, observed)
        other = plan_2_3(spec, Observed(observed.collection, observed.partitions, Replicas(2)))
        kept = any(
            spec.desired_for(name) == Desired.LOADED and report.state in HELD
            for name, report in observed.partitions.items()
        )
        if kept:
            assert other.replica_mismatch == (2, 1)
            releases = tuple(a for a in baseline.actions if isinstance(a, ReleasePartitions | ReleaseCollection))
            assert other.actions == releases, (spec, observed)
        else:
            assert other == baseline, (spec, observed)
        assert (
            plan_2_3(spec, Observed(observed.collection, observed.partitions, Replicas(spec.load.replicas))) == baseline
        )


def test_a_collection_load_leaves_the_collection_and_every_partition_not_held_loading() -> None:
    before = Observed(StateReport(LoadState.NOT_LOAD), {"_default": StateReport(LoadState.NOT_LOAD),
                                                      "a": StateReport(LoadState.NOT_LOAD)})  # fmt: skip
    after = started(before, (LoadCollection(),))
    assert after is not None and after.partial and after.loading
    assert after.collection.state == LoadState.LOADING
    assert {name: report.state for name, report in after.partitions.items()} == dict.fromkeys(
        ["_default", "a"], LoadState.LOADING
    )


def test_a_partition_load_leaves_only_those_partitions_loading_and_a_release_leaves_no_guess() -> None:
    states = {"_default": LoadState.LOADED, "a": LoadState.NOT_LOAD, "b": LoadState.NOT_LOAD}
    before = Observed(StateReport(LoadState.LOADED), {name: StateReport(state) for name, state in states.items()})
    after = started(before, (LoadPartitions(("a",)),))
    assert after is not None and after.collection == before.collection
    assert {name: report.state for name, report in after.partitions.items()} == {**states, "a": LoadState.LOADING}
    assert started(before, (ReleasePartitions(("b",)), LoadPartitions(("a",)))) is None


# --- which actions load: one answer for the guard, the preview and the re-check schedule -----------------


@pytest.mark.parametrize(
    ("actions", "loads_any", "releasing"),
    [
        ((), False, False),
        ((LoadCollection(),), True, False),
        ((LoadPartitions(("a",)),), True, False),
        ((ReleasePartitions(("a",)),), False, True),
        ((ReleaseCollection(),), False, True),
        ((ReleasePartitions(("a",)), LoadPartitions(("b",))), True, True),
    ],
)
def test_a_plan_says_whether_it_loads_and_whether_it_releases(
    actions: tuple[Action, ...], loads_any: bool, releasing: bool
) -> None:
    planned = Plan({}, (), actions)
    assert (planned.loads, loads(actions), planned.releasing) == (loads_any, loads_any, releasing)
    assert not planned.without_loads().loads
    assert planned.without_loads().releasing == releasing


def test_unset_replicas_keep_what_milvus_has() -> None:
    """Adopting a collection loaded with 2 replicas by a spec that names no replica number: no change, no stall,
    and a partition loaded later uses the same number (Milvus refuses another one for loaded partitions)."""
    from milvusops.core.load_options import effective

    spec = make_spec("Loaded")
    assert spec.load.replicas is None
    observed = make_observed({"hot": LOADED, "cold": NOT_LOAD}, LOADED, replicas=2)
    kept = effective(spec, observed)
    result = plan_2_3(kept, observed)
    assert kept.load.replicas == 2 and result.replica_mismatch is None and result.replica_change is None
    assert result.actions == (LoadCollection(),)
    nothing_loaded = make_observed({"hot": NOT_LOAD}, NOT_LOAD)
    assert effective(spec, nothing_loaded).load.replicas is None  # a first load: the server decides
    two = make_spec("Loaded").model_copy(update={"load": spec.load.model_copy(update={"replicas": 1})})
    assert effective(two, observed) is two  # set in spec: the operator makes Milvus match it


@pytest.mark.parametrize(
    ("states", "listed", "others", "action", "handed"),
    [
        ({"_default": LOADED, "a": LOADED}, None, (), ReleaseCollection(), ()),  # all of it was ours
        ({"_default": NOT_LOAD, "a": LOADED, "b": LOADED}, {"a": "Loaded"}, (), ReleasePartitions(("a",)), ()),
        (
            {"a": LOADED, "b": LOADED},
            {"a": "Loaded", "b": "Loaded"},
            ({"b": "Loaded"},),
            ReleasePartitions(("a",)),
            ("b",),
        ),
        ({"a": NOT_LOAD}, {"a": "Loaded"}, (), None, ()),  # nothing held: nothing to release
        ({"a": LOADED}, {"a": "Released"}, (), None, ()),  # held, but not declared Loaded: not ours to release
    ],
)
def test_deletion_releases_only_what_the_resource_declared_loaded(
    states: dict[str, LoadState],
    listed: dict[str, str] | None,
    others: tuple[dict[str, str], ...],
    action: Action | None,
    handed: tuple[str, ...],
) -> None:
    from milvusops.core.plan import deletion_release

    spec = make_spec("Loaded") if listed is None else make_spec("Released", listed)
    specs = tuple(make_spec("Released", other) for other in others)
    assert deletion_release(spec, make_observed(states, LOADED), specs) == (action, handed)
