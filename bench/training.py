"""Training throughput. Encoder + flow (MeanFlow) samples/s on 1 and 2 torch threads, and on 1 with
the step's helper thread; model FLOPs/s as a fraction of this machine's fp32 GEMM peak measured in
the same run; SAN V6 in MLX against its identical PyTorch twin, on OpenBLAS (lume_v6_dagster/blas.py)
and on the wheel's own BLAS.
  python -m bench.training
"""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import Executor

import click
import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import emit, gemm_peak_gflops
from lume_v6_dagster import blas  # before MLX: its BLAS (lume_v6_dagster/blas.py)
from lume_v6_dagster.training.flow_training import helper_thread, swap_bodies, train_step


def _flow_step(batch: int, helper: Executor | None = None):
    """One full optimisation step of encoder + flow (MeanFlow, with distillation) on a fixed random batch;
    `helper`: a thread for its no-gradient targets, as training uses by default."""
    from lume_v6_dagster.models.encoder import ConditioningEncoder, EncoderConfig
    from lume_v6_dagster.models.flow import FlowConfig, FlowGenerator

    torch.manual_seed(0)
    enc, flow = ConditioningEncoder(EncoderConfig()), FlowGenerator(FlowConfig())
    params = list(enc.parameters()) + list(flow.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3)
    gen = torch.Generator().manual_seed(0)
    c, x = torch.randn(batch, enc.cfg.in_dim), torch.randn(batch, flow.cfg.latent_dim)

    return lambda: train_step(enc, flow, opt, params, swap_bodies(c, gen), x, gen, helper=helper)


def _rate(step, batch: int, steps: int) -> float:
    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - start)


def _torch_san_rate(batch: int, steps: int) -> float:
    """The PyTorch twin of SAN V6, trained exactly as the MLX model is (Adam, MSE)."""
    from lume_v6_dagster.models.san import SANConfig
    from lume_v6_dagster.models.san_twin import SANTwin

    twin = SANTwin(SANConfig())
    opt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    lat, dyn, y = torch.randn(batch, 64), torch.randn(batch, 128), torch.randn(batch, 16)

    def step():
        loss = torch.nn.functional.mse_loss(twin.forward_normalized(lat, dyn), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return _rate(step, batch, steps)


def _mlx_san_rate(batch: int, steps: int) -> float:
    """SAN V6 in MLX with the pipeline's own (compiled) training step, on frames alone (the twin's step above)."""
    import mlx.core as mx
    import mlx.optimizers as optim

    from lume_v6_dagster.models.san import SAN, SANConfig
    from lume_v6_dagster.training.san_training import compiled_step

    rng = np.random.default_rng(0)
    lat, dyn, y = (mx.array(rng.standard_normal((batch, n)).astype(np.float32)) for n in (64, 128, 16))
    model, opt = SAN(SANConfig()), optim.Adam(learning_rate=1e-3)
    opt.init(model.trainable_parameters())
    train = compiled_step(model, opt)

    def step():
        mx.eval(model.parameters(), opt.state, train(lat, dyn, y))  # every step: MLX is lazy
    return _rate(step, batch, steps)


def _mlx_without_fast_blas(batch: int, steps: int) -> float:
    env = {**os.environ, "LUME_MLX_BLAS": "bundled"}
    out = subprocess.run([sys.executable, "-m", "bench.training", "--mlx-only", "--batch", str(batch), "--steps", str(steps)],
                         env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])["mlx_samples_per_s"]


def _loaded_openblas() -> str:
    """The OpenBLAS this process has mapped (what MLX's GEMMs run on), or "" for the wheel's own BLAS."""
    maps = open("/proc/self/maps").read() if os.path.exists("/proc/self/maps") else ""
    return next((path for path in blas.OPENBLAS if path in maps), "")


@click.command()
@click.option("--batch", default=512, show_default=True, help="The full profile's batch.")
@click.option("--steps", default=30, show_default=True)
@click.option("--mlx-only", is_flag=True, hidden=True)
def main(batch: int, steps: int, mlx_only: bool) -> None:
    if mlx_only:
        print(json.dumps({"mlx_samples_per_s": _mlx_san_rate(batch, steps * 10)}))
        return
    step = _flow_step(batch)
    with FlopCounterMode(display=False) as counter:
        step()
    flops_per_sample = counter.get_total_flops() / batch
    rates, peaks = {}, {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        peaks[threads] = gemm_peak_gflops()
        rates[threads] = _rate(step, batch, steps)
    best = max(rates, key=rates.get)
    torch.set_num_threads(1)
    with helper_thread() as helper:
        overlapped = _rate(_flow_step(batch, helper), batch, steps)
    torch.set_num_threads(best)
    twin = _torch_san_rate(batch, steps * 10)
    mlx_fast = _mlx_san_rate(batch, steps * 10)
    emit("training", batch=batch, flow_flops_per_sample=flops_per_sample,
         flow_samples_per_s_by_threads={t: round(r) for t, r in rates.items()},
         gemm_peak_gflops_by_threads={t: round(p, 1) for t, p in peaks.items()},
         flow_samples_per_s_1_thread_and_helper=round(overlapped),
         flow_fraction_of_gemm_peak=rates[best] * flops_per_sample / 1e9 / max(peaks.values()), goal_fraction=0.5,
         san_mlx_samples_per_s=mlx_fast, san_mlx_no_fast_blas_samples_per_s=_mlx_without_fast_blas(batch, steps),
         san_torch_twin_samples_per_s=twin, san_mlx_to_torch_ratio=mlx_fast / twin, goal_mlx_ratio=0.8,
         mlx_blas=_loaded_openblas())


if __name__ == "__main__":
    main()
