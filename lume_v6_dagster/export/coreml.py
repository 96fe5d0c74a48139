"""Trace a PyTorch module, convert it to an mlprogram package and save it atomically.

Contract (docs/pairs_and_models.md): iOS 17 target, FP16 compute, FP32 inputs and outputs, the I/O
names and shapes of `contract.PACKAGES`.
"""

import contextlib
import functools
from pathlib import Path
from unittest import mock

import coremltools as ct
import numpy as np
import torch
from coremltools.converters.mil.frontend.torch import ops as torch_ops
from coremltools.converters.mil.mil.passes import pass_pipeline
from tqdm import tqdm

from lume_v6_dagster.atomic_files import atomic_dir

DEPLOYMENT_TARGET = ct.target.iOS17
IOS17_SPEC_VERSION = 8


def trace(module: torch.nn.Module, inputs: tuple[tuple[str, tuple[int, ...]], ...]) -> torch.jit.ScriptModule:
    examples = tuple(torch.zeros(shape) for _, shape in inputs)
    with torch.no_grad():
        return torch.jit.trace(module.eval(), examples)


@contextlib.contextmanager
def _no_progress_bars():
    """coremltools 9.0 (pinned) draws a tqdm bar per conversion stage, four per package; run logs
    and the demo are better without them. Only these module-level bars are replaced."""
    quiet = functools.partial(tqdm, disable=True)
    with mock.patch.object(torch_ops, "_tqdm", quiet), mock.patch.object(pass_pipeline, "tqdm", quiet):
        yield


def convert(traced, inputs, outputs) -> ct.models.MLModel:
    with _no_progress_bars():
        return _convert(traced, inputs, outputs)


def _convert(traced, inputs, outputs) -> ct.models.MLModel:
    return ct.convert(
        traced,
        inputs=[ct.TensorType(name=n, shape=s, dtype=np.float32) for n, s in inputs],
        outputs=[ct.TensorType(name=n, dtype=np.float32) for n, _ in outputs],
        convert_to="mlprogram",
        minimum_deployment_target=DEPLOYMENT_TARGET,
        compute_precision=ct.precision.FLOAT16,
    )


def save(model: ct.models.MLModel, path: Path, description: str) -> Path:
    model.short_description = description
    with atomic_dir(path, overwrite=True, suffix=".mlpackage") as tmp:  # coremltools insists on the suffix
        model.save(str(tmp))
    return path


def export(module, name: str, io, out_dir: Path, description: str) -> Path:
    """trace -> convert -> save; verification is `export.verify` (the smoke test reuses it)."""
    inputs, outputs = io
    return save(convert(trace(module, inputs), inputs, outputs), Path(out_dir) / f"{name}.mlpackage", description)
