"""Each library on its own BLAS: MLX on OpenBLAS (not the wheel's reference BLAS), torch on its own MKL."""

import os
import subprocess
import sys

import pytest

from lume_v6_dagster import blas

PRODUCTS = """
import sys
if sys.argv[1] == "project":
    import lume_v6_dagster
import hashlib
import mlx.core as mx
import numpy as np
import torch

torch.set_num_threads(1)
a = np.random.default_rng(0).standard_normal((300, 700)).astype(np.float32)
t = torch.from_numpy(a)
print(hashlib.sha256((t @ t.T).numpy().tobytes()).hexdigest(), hashlib.sha256(np.array(mx.array(a) @ mx.array(a).T).tobytes()).hexdigest())
"""


def products(how: str, **env) -> tuple[str, str]:
    """Digests of the same float32 product by torch and by MLX, in a fresh process."""
    out = subprocess.run([sys.executable, "-c", PRODUCTS, how], env={**os.environ, **env}, capture_output=True, text=True, check=True)
    return tuple(out.stdout.split())


needs_openblas = pytest.mark.skipif(sys.platform != "linux" or not any(os.path.exists(p) for p in blas.OPENBLAS),
                                    reason="MLX uses Accelerate on macOS; scripts/setup.sh installs OpenBLAS on Linux")


@needs_openblas
def test_mlx_computes_on_openblas_and_torch_on_its_own_blas():
    openblas = next(p for p in blas.OPENBLAS if os.path.exists(p))
    torch_alone, mlx_reference = products("plain", LD_PRELOAD="")
    _, mlx_openblas = products("plain", LD_PRELOAD=openblas)
    assert mlx_openblas != mlx_reference  # the two BLAS differ in the last bits, so the check below can tell them apart
    torch_project, mlx_project = products("project")  # the project's own environment
    assert mlx_project == mlx_openblas
    assert torch_project == torch_alone  # a preloaded OpenBLAS took torch's GEMMs (one thread, 8% slower)


@needs_openblas
def test_mlx_imported_first_is_refused_with_the_reason():
    script = "import mlx.core\nimport lume_v6_dagster"
    out = subprocess.run([sys.executable, "-c", script], env={**os.environ, "LD_PRELOAD": ""}, capture_output=True, text=True)
    assert out.returncode != 0 and "import lume_v6_dagster first" in out.stderr
