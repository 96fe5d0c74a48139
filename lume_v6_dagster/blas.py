"""OpenBLAS for MLX on Linux, while torch keeps the MKL it ships with.

The `mlx[cpu]` wheel links a bundled reference BLAS (SAN trained ~26x slower on it). Preloading
OpenBLAS for the whole process (`LD_PRELOAD`) also took torch's GEMMs: one OpenBLAS thread, 8%
slower than MKL's, and no second core (bench/README.md). Opened with RTLD_GLOBAL after torch
has bound its own BLAS and before MLX loads, OpenBLAS serves MLX alone. On macOS MLX uses
Accelerate and nothing is loaded.
"""

import ctypes
import os
import sys

OPENBLAS = ("/usr/lib/x86_64-linux-gnu/openblas-pthread/libopenblas.so.0",  # Debian's libopenblas0-pthread (scripts/setup.sh)
            "/usr/lib/aarch64-linux-gnu/openblas-pthread/libopenblas.so.0")


def load_for_mlx() -> str | None:
    """Make OpenBLAS the BLAS that MLX will bind to; returns its path (None: MLX keeps its own).

    `LUME_MLX_BLAS=bundled` keeps the wheel's (bench/training.py compares them). One OpenBLAS thread:
    on 2 cores a second one cost SAN more in sync than it gave.
    """
    found = next((path for path in OPENBLAS if os.path.exists(path)), None)
    if sys.platform != "linux" or found is None or os.environ.get("LUME_MLX_BLAS") == "bundled":
        return None
    if "mlx.core" in sys.modules:
        raise ImportError("mlx was imported before lume_v6_dagster: it is bound to the wheel's reference BLAS "
                          "(SAN trains ~26x slower, to other weights); import lume_v6_dagster first")
    import torch  # noqa: F401  binds torch's GEMMs to its own MKL before OpenBLAS joins the global scope

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    ctypes.CDLL(found, mode=os.RTLD_GLOBAL)
    return found
