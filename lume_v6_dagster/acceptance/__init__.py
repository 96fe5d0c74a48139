"""Acceptance: measurements, the 9 hard gates (SPEC section 6) and the report."""
