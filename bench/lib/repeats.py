"""Pure parts of a fair comparison: the order in which repeated sides run, and their median and spread."""

from __future__ import annotations

import random
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

RANGE = "\u2013"  # an en dash between min and max, as docs/design/performance.md writes ranges


def new_seed() -> int:
    """A seed short enough to print and type back as `--seed`."""
    return random.SystemRandom().randrange(1_000_000)


def run_order(sides: Sequence[str], repeats: int, seed: int, last: str | None = None) -> list[str]:
    """Each side `repeats` times, shuffled by `seed`; with `last`, one run of that side is moved to the end
    (its results are kept for what follows, so nothing may run after it)."""
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, not {repeats}")
    order = [side for side in sides for _ in range(repeats)]
    random.Random(seed).shuffle(order)  # noqa: S311 - an order of runs, not a secret
    if last is not None:
        order.remove(last)
        order.append(last)
    return order


@dataclass(frozen=True)
class Spread:
    median: float
    low: float
    high: float

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        if not values:
            raise ValueError("no values")
        return cls(statistics.median(values), min(values), max(values))

    def seconds(self) -> str:
        return f"{self.median:.1f} s ({self.low:.1f}{RANGE}{self.high:.1f})"

    def ratio(self) -> str:
        return f"{self.median:.2f} ({self.low:.2f}{RANGE}{self.high:.2f})"


def paired_ratios(measured: Sequence[float], baseline: Sequence[float]) -> list[float]:
    """measured[i] / baseline[i]: the i-th run of one side against the i-th run of the other."""
    if len(measured) != len(baseline):
        raise ValueError(f"{len(measured)} runs against {len(baseline)}")
    return [value / base for value, base in zip(measured, baseline, strict=True)]
