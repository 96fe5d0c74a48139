"""The V6 models (and the V5 recipe), one per file. Training lives in `lume_v6_dagster.training`."""
