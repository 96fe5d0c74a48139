"""Reading and validating capture folders (docs/capture.md). Raw files are opened read-only."""
