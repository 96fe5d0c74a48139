"""pandera schemas for capture arrays and pairs files, and their errors as Violations.

pandera validates DataFrames, so arrays are viewed as frames (one column per dimension,
named by block) before validation: a failure then names the column, the rows and the rule.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pandera.pandas as pa

from lume_v6_dagster import contract
from lume_v6_dagster.capture.violations import Violation

MAX_ROWS_LISTED = 5

_increasing = pa.Check(lambda s: s.diff().fillna(np.inf) > 0, name="strictly_increasing")
_finite = pa.Check(lambda s: np.isfinite(s), name="finite")
_body_range = pa.Check.in_range(-contract.MAX_ABS_DYNAMICS, contract.MAX_ABS_DYNAMICS)
_one_or_zero = pa.Check.isin([0.0, 1.0])


def _columns(names, dtype, checks) -> dict[str, pa.Column]:
    return {n: pa.Column(dtype, checks=list(checks)) for n in names}


def _one_hot(width: int, name: str) -> pa.Check:
    """Exactly one slot set per row in a block of columns."""
    return pa.Check(lambda df: df.filter(like=f"{name}_").sum(axis=1) == 1, name=f"{name}_one_hot")


DYNAMICS_COLUMNS = contract.dynamics_column_names()
LATENT_COLUMNS = [f"mel_{i:02d}" for i in range(contract.LATENT_DIM)]
MODE_COLUMNS = [f"mode_{i}" for i in range(contract.MODE_SLOTS)]
EMOTION_COLUMNS = [f"emotion_{e}" for e in contract.EMOTIONS]

CAPTURE_SCHEMA = pa.DataFrameSchema(
    {
        "t": pa.Column("float64", [_increasing, pa.Check.ge(0)]),
        "confidence": pa.Column("float32", [pa.Check.in_range(0.0, 1.0)]),
        **_columns(DYNAMICS_COLUMNS, "float32", [_finite, _body_range]),
    },
    strict=True,
    name="capture dynamics",
)

PAIRS_SCHEMA = pa.DataFrameSchema(
    {
        "t": pa.Column("float64", [_increasing, pa.Check.ge(0)]),
        **_columns(DYNAMICS_COLUMNS, "float32", [_finite, _body_range]),
        **_columns(MODE_COLUMNS[: len(contract.MODES)], "float32", [_one_or_zero]),
        **_columns(MODE_COLUMNS[len(contract.MODES):], "float32", [pa.Check.eq(0.0)]),
        **_columns(EMOTION_COLUMNS, "float32", [_one_or_zero]),
        **_columns(LATENT_COLUMNS, "float32", [_finite, pa.Check.in_range(-400.0, 200.0)]),
        **_columns(contract.CONTROL_NAMES, "float32", [_finite]),
    },
    checks=[_one_hot(contract.MODE_SLOTS, "mode"), _one_hot(len(contract.EMOTIONS), "emotion")],
    strict=True,
    name="pairs",
)


def capture_frame(t, confidence, dynamics) -> pd.DataFrame:
    """View the capture arrays as one frame; row index = frame index."""
    frame = pd.DataFrame(dynamics, columns=DYNAMICS_COLUMNS, copy=False)
    frame.insert(0, "confidence", confidence)
    frame.insert(0, "t", t)
    return frame


def pairs_frame(t, conditioning, target_latent, target_controls) -> pd.DataFrame:
    """View a pairs file as one frame; row index = pair index."""
    cols = DYNAMICS_COLUMNS + MODE_COLUMNS + EMOTION_COLUMNS + LATENT_COLUMNS + list(contract.CONTROL_NAMES)
    frame = pd.DataFrame(np.hstack([conditioning, target_latent, target_controls]), columns=cols)
    frame.insert(0, "t", t)
    return frame


def violations(schema: pa.DataFrameSchema, frame: pd.DataFrame, file: str) -> list[Violation]:
    """Validate `frame`; one Violation per (column, rule) with the first failing rows."""
    try:
        schema.validate(frame, lazy=True, inplace=True)  # inplace: no copy of a 15-minute track's frame
    except pa.errors.SchemaErrors as err:
        return _grouped(err.failure_cases, file)
    finally:
        # pandera caches an accessor on the frame that points back at it; that cycle kept
        # every column alive until a rare full collection: 360 MB more held after 30 tracks
        # (bench/pairs.py, retained memory).
        frame.__dict__.pop("pandera", None)
    return []


def _grouped(cases: pd.DataFrame, file: str) -> list[Violation]:
    out = []
    cases = cases.assign(column=cases["column"].fillna("(row)"))
    for (column, check), group in cases.groupby(["column", "check"], sort=False):
        rows = [int(i) for i in group["index"].dropna().unique()]
        shown = ", ".join(map(str, rows[:MAX_ROWS_LISTED])) + (f" (+{len(rows) - MAX_ROWS_LISTED} more)" if len(rows) > MAX_ROWS_LISTED else "")
        example = group["failure_case"].iloc[0]
        example = example.item() if hasattr(example, "item") else example  # nan, not np.float32(nan)
        place = f"column {column}, rows {shown}" if rows else f"column {column}"
        out.append(Violation(file, place, f"fails {check} (e.g. {example!r})"))
    return out
