"""Load `dynamics.npz` safely: headers are read and checked before any array is read."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.capture.violations import Violation

FILE = "dynamics.npz"
MAX_FRAMES = 24 * 3600 * 240  # a day at 240 fps; larger is not a dance session
EXPECTED = {  # name -> (dtype, trailing shape)
    "t": (np.float64, ()),
    "dynamics": (np.float32, (contract.DYNAMICS_DIM,)),
    "confidence": (np.float32, ()),
}


@dataclass
class Arrays:
    t: np.ndarray  # (N,) float64 seconds
    dynamics: np.ndarray  # (N, 128) float32
    confidence: np.ndarray  # (N,) float32


def _header(zf: zipfile.ZipFile, member: str):
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        readers = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        if version not in readers:
            raise ValueError(f"unsupported .npy version {version}")
        return readers[version](f)  # (shape, fortran, dtype); numpy bounds the header size


def _check_header(name: str, shape, dtype, out: list[Violation]) -> bool:
    want_dtype, tail = EXPECTED[name]
    where = f"array '{name}'"
    if dtype != want_dtype:
        hint = " (dynamics must be float32)" if name == "dynamics" else ""
        out.append(Violation(FILE, where, f"dtype {dtype}, expected {np.dtype(want_dtype)}{hint}"))
        return False
    if len(shape) != 1 + len(tail) or tuple(shape[1:]) != tail:
        want = "(N, " + ", ".join(map(str, tail)) + ")" if tail else "(N,)"
        hint = ""
        if name == "dynamics" and len(shape) == 2 and shape[1] == contract.V5_DYNAMICS_DIM:
            hint = " (64-D dynamics are from the V5 era, which truncated the body vector)"
        out.append(Violation(FILE, where, f"shape {tuple(shape)}, expected {want}{hint}"))
        return False
    if shape[0] > MAX_FRAMES:
        out.append(Violation(FILE, where, f"{shape[0]} frames exceeds the limit of {MAX_FRAMES}; refused unread"))
        return False
    return True


def load_arrays(path: Path, out: list[Violation]) -> Arrays | None:
    """Read the three arrays after checking names, dtypes and shapes from their headers."""
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as e:
        out.append(Violation(FILE, "file", f"not a readable NPZ (zip) archive: {e}"))
        return None
    with zf:
        members = {Path(m).stem: m for m in zf.namelist() if m.endswith(".npy")}
        missing = [n for n in EXPECTED if n not in members]
        if missing:
            out.append(Violation(FILE, "archive", f"missing array(s) {', '.join(missing)} (needs t, dynamics, confidence)"))
            return None
        ok = True
        for name in EXPECTED:
            try:
                shape, _, dtype = _header(zf, members[name])
            except (ValueError, OSError, zipfile.BadZipFile) as e:
                out.append(Violation(FILE, f"array '{name}'", f"unreadable .npy header: {e}"))
                ok = False
                continue
            ok &= _check_header(name, shape, dtype, out)
        if not ok:
            return None
        try:
            arrays = {n: np.load(zf.open(members[n]), allow_pickle=False) for n in EXPECTED}
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
            out.append(Violation(FILE, "archive", f"array data unreadable: {e}"))
            return None
    n = {k: len(v) for k, v in arrays.items()}
    if len(set(n.values())) != 1:
        out.append(Violation(FILE, "archive", f"arrays differ in length {n}; all must have N rows"))
        return None
    return Arrays(**arrays)
