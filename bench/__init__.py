"""Benchmarks: each module prints one JSON object of per-unit rates and ratios (see README.md)."""
