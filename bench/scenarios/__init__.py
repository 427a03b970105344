"""Runnable benchmarks, one per module, each with a `main`: `python -m bench.scenarios.<name> --help`."""
