"""Prometheus metrics of a node (GET /metrics)."""
