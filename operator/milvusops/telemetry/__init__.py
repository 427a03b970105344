"""Prometheus metrics and log formatting, shared by the adapters and the runtime."""
