"""How long loads on one connection took lately: the end a re-check aims at when Milvus gives no progress."""

from __future__ import annotations

import statistics
from dataclasses import dataclass

KEEP = 9  # the median of the last few loads: one slow load does not move it


@dataclass(frozen=True)
class LoadTimes:
    recent: tuple[float, ...] = ()

    def record(self, seconds: float) -> LoadTimes:
        return LoadTimes((*self.recent, seconds)[-KEEP:])

    def expected(self) -> float | None:
        return statistics.median(self.recent) if self.recent else None
