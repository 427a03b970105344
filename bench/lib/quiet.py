"""Wait until Milvus is idle, so a timed run does not pay for the clean-up work of the one before."""

from __future__ import annotations

import time

from bench.lib.process import TICKS, cpu_ticks


def milvus_idle(threshold: float = 20.0, window: float = 5.0, timeout: float = 180.0) -> float:
    """Seconds until Milvus used under `threshold` % of one core over a whole `window`; gives up at `timeout`.

    Dropping loaded collections leaves Milvus releasing and garbage-collecting for a while (at
    100 % of a core and more on 2 cores): measured, that slowed the next run's loads up to 2.5 times.
    """
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        before = cpu_ticks()["milvus"]
        time.sleep(window)
        share = 100 * (cpu_ticks()["milvus"] - before) / TICKS / window
        if share < threshold:
            break
    return time.monotonic() - started
