"""Kopf settings the operator's startup handler applies: API server retries that never give up."""

from __future__ import annotations

import itertools
from collections.abc import Sized

from milvusops.runtime.handlers import RetryForever


def test_the_retries_never_end() -> None:
    # Kopf counts a sized sequence's retries and escalates after the last one, which ends a watch stream for good
    assert not isinstance(RetryForever(), Sized)
    assert len(list(itertools.islice(RetryForever(), 10_000))) == 10_000


def test_kopf_s_first_steps_then_every_ceiling() -> None:
    assert list(itertools.islice(RetryForever(), 9)) == [1, 1, 2, 3, 5, 8, 10, 10, 10]


def test_a_lower_ceiling_caps_every_pause() -> None:
    assert list(itertools.islice(RetryForever(2.5), 8)) == [1, 1, 2, 2.5, 2.5, 2.5, 2.5, 2.5]
