"""One dynamic partition per capture session; the key is the folder name (track id)."""

import dagster as dg

tracks = dg.DynamicPartitionsDefinition(name="tracks")
