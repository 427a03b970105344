"""Prometheus text format: the samples of one metric, as read from the operator and the API server."""

from __future__ import annotations

import re
from collections import Counter

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample of `name` (not of name_bucket, name_count...)."""
    found = []
    for line in text.splitlines():
        if line.startswith((name + "{", name + " ")):
            head, _, value = line.rpartition(" ")
            found.append((dict(_LABEL.findall(head[len(name) :])), float(value)))
    return found


def by_label(text: str, name: str, label: str) -> Counter[str]:
    """The samples of `name` summed per value of one label."""
    totals: Counter[str] = Counter()
    for labels, value in samples(text, name):
        totals[labels.get(label, "")] += int(value)  # counters and the gauges read here hold whole numbers
    return totals


def difference(before: Counter[str], after: Counter[str]) -> Counter[str]:
    """after - before per key, keeping only keys that moved (counters never go down)."""
    return Counter({key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)})
