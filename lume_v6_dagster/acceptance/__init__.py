"""Acceptance: measurements, the 9 hard gates (docs/gates.md) and the report."""
