"""Benchmarks: llm-scheduler against the no-framework limit (``make bench``, docs/benchmarks.md)."""
