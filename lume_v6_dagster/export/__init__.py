"""Core ML export: trace -> convert -> save -> verify, one named step each, per package."""
