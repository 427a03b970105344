"""How long loads on one connection took lately: the ends a re-check aims at when Milvus gives no progress."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

KEEP = 9  # the last few loads: one slow load does not move the median


@dataclass(frozen=True)
class Expected:
    """How long a load should take: `typical` (the median) first, and `longest`, when loads come at two speeds."""

    typical: float
    longest: float


@dataclass(frozen=True)
class LoadTimes:
    recent: tuple[float, ...] = ()

    def record(self, seconds: float) -> LoadTimes:
        return LoadTimes((*self.recent, seconds)[-KEEP:])

    def expected(self) -> Expected | None:
        return Expected(statistics.median(self.recent), max(self.recent)) if self.recent else None
