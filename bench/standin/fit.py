"""Pure: lognormal distributions fitted by median and p90 to latencies measured on the real Milvus 2.3.5."""

from __future__ import annotations

import json
import math
import random
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Z90 = 1.2815515655446004  # the standard normal's 90th percentile
MEASURED = Path(__file__).with_name("measured.json")


@dataclass(frozen=True)
class LogNormal:
    """exp(N(ln median, sigma)), with sigma chosen so that its p90 is the measured p90."""

    median: float
    p90: float

    @property
    def sigma(self) -> float:
        return max(0.0, math.log(self.p90 / self.median)) / Z90

    def sample(self, rng: random.Random) -> float:
        return math.exp(rng.gauss(math.log(self.median), self.sigma))


def percentile(values: list[float], fraction: float) -> float:
    """Linear interpolation between closest ranks (statistics.quantiles' "inclusive" method)."""
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def fit(values: list[float]) -> LogNormal:
    """A floor of 0.1 ms keeps the logarithm defined for timer-resolution samples."""
    floor = 1e-4
    return LogNormal(max(floor, statistics.median(values)), max(floor, percentile(values, 0.9)))


def fit_all(document: dict[str, Any]) -> dict[str, LogNormal]:
    """Every measured series of measured.json (RPC names, loading_collection, loading_partition)."""
    series: dict[str, list[float]] = document["seconds"]
    return {name: fit(values) for name, values in series.items() if name != "progress_while_loading"}


def load_fitted(path: Path = MEASURED) -> dict[str, LogNormal]:
    return fit_all(json.loads(path.read_text()))
