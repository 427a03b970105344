"""Benchmarks: each scenario a module of bench/scenarios, run on demand, never inside the test suite."""

import os

# benchmarks start operators and servers with subprocess.Popen beside pymilvus clients: see tests/conftest.py
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
