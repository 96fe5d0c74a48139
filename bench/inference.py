"""Inference: per-frame latency (batch 1) of encoder + one-step flow + SAN on this CPU,
against its floor: the larger of FLOPs at the measured GEMM peak and the weight bytes at the
measured matrix-vector bandwidth (at batch 1 every weight is read once per frame).
  python -m bench.inference
"""

import warnings

import click
import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.common import best_seconds, emit, gemm_peak_gflops


def _pipeline():
    from lume_v6_dagster.acceptance.measure import Pipeline
    from lume_v6_dagster.models.encoder import ConditioningEncoder, EncoderConfig
    from lume_v6_dagster.models.flow import FlowConfig, FlowGenerator, OneStepGenerator
    from lume_v6_dagster.models.san import SANConfig
    from lume_v6_dagster.models.san_twin import SANTwin

    torch.manual_seed(0)
    return Pipeline(ConditioningEncoder(EncoderConfig()).eval(), OneStepGenerator(FlowGenerator(FlowConfig())).eval(), SANTwin(SANConfig()).eval())


def _gemv_bytes_per_s(n_floats: int) -> float:
    """Bandwidth of one matrix-vector product over as many floats as the models hold."""
    w = torch.randn(n_floats // 1024, 1024)
    v = torch.randn(1024)
    return w.numel() * 4 / best_seconds(lambda: w @ v, repeats=50)


@click.command()
@click.option("--repeats", default=1000, show_default=True)
@click.option("--compile/--no-compile", "with_compile", default=False, help="Also time torch.compile (~20 s to compile).")
def main(repeats: int, with_compile: bool) -> None:
    from lume_v6_dagster import contract
    from lume_v6_dagster.acceptance.measure import ShippedFrame, latency_ms, median_ms

    torch.set_num_threads(1)
    pipe = _pipeline()
    frame = ShippedFrame(pipe).eval()
    c, z = torch.zeros(1, contract.CONDITIONING_DIM), torch.zeros(1, contract.LATENT_DIM)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        frame(c, z)
    flops = counter.get_total_flops()
    params = sum(p.numel() for p in frame.parameters())
    peak = gemm_peak_gflops()
    floor_ms = 1000 * max(flops / (peak * 1e9), params * 4 / _gemv_bytes_per_s(params))
    with torch.no_grad():
        eager_ms = median_ms(lambda: frame(c, z), repeats)
        compiled_ms = None
        if with_compile:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                compiled = torch.compile(frame, fullgraph=True)
                compiled(c, z)
            compiled_ms = median_ms(lambda: compiled(c, z), repeats)
    shipped_ms = latency_ms(pipe, repeats)  # what gate 8 measures: a frozen graph
    emit("inference", flops_per_frame=flops, params=params, gemm_peak_gflops=peak, floor_ms=floor_ms,
         eager_ms=eager_ms, frozen_graph_ms=shipped_ms, torch_compile_ms=compiled_ms,
         ratio_floor_to_measured=floor_ms / shipped_ms, goal_ms=0.3)


if __name__ == "__main__":
    main()
