"""Label selectors of shards: what the API server accepts starts the operator, anything else stops it at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from milvusops.kube.sharding import SHARD_KEY, SelectorError, check_selector
from milvusops.runtime.settings import Settings

# the API server's own verdicts on these are checked in tests/e2e/operator/test_sharding.py
VALID = [
    "",
    f"{SHARD_KEY}=shard1",
    f"!{SHARD_KEY}",
    f"{SHARD_KEY} in (shard1, shard2)",
    f"{SHARD_KEY} notin (shard1)",
    f"{SHARD_KEY}!=shard1,team=search",
    "team==search",
    "team=",  # an empty value: the label is set to ""
    "tier>2",
    "app.kubernetes.io/name",
    " team = search , !legacy ",
    "team in ()",  # the API server reads it as in (""): the label set to the empty value
]
INVALID = [
    "team=search,",
    "team=search team=docs",
    "team in search",
    "=search",
    "Example.com/team=search",  # a prefix is a DNS subdomain: lower case
    "team=-search",
    "tier>two",
    "team=search,,tier",
    "x" * 64,
    f"team={'v' * 64}",
    "team=sea rch",
    "!",
]


@pytest.mark.parametrize("selector", VALID)
def test_valid_selectors_are_kept(selector: str) -> None:
    assert check_selector(selector) == selector.strip()


@pytest.mark.parametrize("selector", INVALID)
def test_invalid_selectors_are_refused(selector: str) -> None:
    with pytest.raises(SelectorError):
        check_selector(selector)


def test_the_error_says_where_and_what_was_expected() -> None:
    with pytest.raises(SelectorError, match=r"at character 13 of 'team=search team=docs': expected ','"):
        check_selector("team=search team=docs")


def test_the_setting_is_checked_at_startup(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILVUSOPS_WATCH_LABEL_SELECTOR", f"{SHARD_KEY} in shard1")
    with pytest.raises(ValidationError, match="not a Kubernetes label selector"):
        Settings(_cli_parse_args=[])  # type: ignore[call-arg]


def test_by_default_one_process_serves_everything() -> None:
    settings = Settings(_cli_parse_args=[])  # type: ignore[call-arg]
    assert (settings.watch_label_selector, settings.serve_connections) == ("", True)
