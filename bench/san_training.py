"""SAN V6 (MLX) training throughput in samples/s, printed as JSON.

Run it twice to see the fast-BLAS effect on Linux:
  . scripts/env.sh && python bench/san_training.py                  # OpenBLAS preloaded
  LD_PRELOAD= .venv/bin/python bench/san_training.py               # MLX's bundled BLAS
"""

import json
import os
import time

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
import numpy as np

from lume_v6_dagster import contract
from lume_v6_dagster.models.san import SAN, SANConfig

BATCH, STEPS = 256, 300


def main() -> None:
    rng = np.random.default_rng(0)
    lat = mx.array(rng.standard_normal((BATCH, contract.LATENT_DIM)).astype(np.float32))
    dyn = mx.array(rng.standard_normal((BATCH, contract.DYNAMICS_DIM)).astype(np.float32))
    y = mx.array(rng.standard_normal((BATCH, contract.CONTROLS_DIM)).astype(np.float32))
    model, opt = SAN(SANConfig()), optim.Adam(learning_rate=1e-3)
    step = nn.value_and_grad(model, lambda m, a, b, t: nn.losses.mse_loss(m(a, b), t))
    for i in range(STEPS + 20):
        if i == 20:
            start = time.perf_counter()
        loss, grads = step(model, lat, dyn, y)
        opt.update(model, grads)
        mx.eval(model.parameters(), opt.state, loss)
    seconds = time.perf_counter() - start
    print(json.dumps({"bench": "san_training", "batch": BATCH, "steps": STEPS, "samples_per_s": round(STEPS * BATCH / seconds),
                      "ld_preload": os.environ.get("LD_PRELOAD", "")}))


if __name__ == "__main__":
    main()
