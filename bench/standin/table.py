"""The measured data and its fit as the markdown table of docs/design/performance.md ("The Milvus stand-in").

.venv/bin/python -m bench.standin.table
"""

from __future__ import annotations

import json
import statistics
import sys

from bench.standin.fit import MEASURED, fit, percentile


def main() -> int:
    document = json.loads(MEASURED.read_text())
    print(f"Measured on Milvus {document['milvus']}, {document['measured']}: {document['note']}.\n")
    print("| series | samples | min | median | p90 | max | fit: lognormal median, sigma |")
    print("|---|---|---|---|---|---|---|")
    for name, values in document["seconds"].items():
        if name == "progress_while_loading":
            print(f"| progress reported while Loading | {len(values)} | all {sorted(set(values))} | | | | — |")
            continue
        fitted = fit(values)
        ms = [value * 1000 for value in (min(values), statistics.median(values), percentile(values, 0.9), max(values))]
        cells = " | ".join(f"{value:.1f} ms" for value in ms)
        print(f"| {name} | {len(values)} | {cells} | {fitted.median * 1000:.1f} ms, {fitted.sigma:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
