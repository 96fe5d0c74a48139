"""Verify a saved package: the I/O contract, then numerical parity with the source model.

Parity runs the Core ML runtime where it exists (macOS) and, everywhere, the package's MIL
program evaluated with NumPy. The smoke test is this, applied to every package of a bundle.
"""

import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import coremltools as ct
import numpy as np

from lume_v6_dagster.export import mil_numpy
from lume_v6_dagster.export.coreml import IOS17_SPEC_VERSION

FLOAT32 = ct.proto.FeatureTypes_pb2.ArrayFeatureType.FLOAT32


@dataclass
class PackageReport:
    name: str
    path: str
    size_bytes: int = 0
    problems: list[str] = field(default_factory=list)
    parity: dict[str, float] = field(default_factory=dict)  # runtime -> max |diff| relative to the output's scale

    @property
    def ok(self) -> bool:
        return not self.problems


def package_size(path: Path) -> int:
    return sum(p.stat().st_size for p in Path(path).rglob("*") if p.is_file())


def check_contract(path: Path, io) -> list[str]:
    """Names, shapes, dtypes (FP32) and the iOS 17 target, read from the saved spec."""
    spec = ct.models.MLModel(str(path), skip_model_load=True).get_spec()
    problems = []
    if spec.WhichOneof("Type") != "mlProgram":
        problems.append(f"{path.name}: not an mlprogram")
    if spec.specificationVersion < IOS17_SPEC_VERSION:
        problems.append(f"{path.name}: specification version {spec.specificationVersion} is below iOS 17 ({IOS17_SPEC_VERSION})")
    for kind, want, got in (("input", io[0], spec.description.input), ("output", io[1], spec.description.output)):
        have = {f.name: f.type.multiArrayType for f in got}
        if set(have) != {n for n, _ in want}:
            problems.append(f"{path.name}: {kind}s {sorted(have)} differ from the contract {[n for n, _ in want]}")
            continue
        for name, shape in want:
            arr = have[name]
            if arr.dataType != FLOAT32:
                problems.append(f"{path.name}: {kind} '{name}' is not FLOAT32")
            if list(arr.shape) and tuple(arr.shape) != tuple(shape):
                problems.append(f"{path.name}: {kind} '{name}' has shape {tuple(arr.shape)}, contract {shape}")
    return problems


def _relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / (np.abs(b).max() + 1e-6))


def _coreml_runtime(path: Path, feeds: dict, output: str) -> np.ndarray | None:
    if platform.system() != "Darwin":
        return None
    return np.asarray(ct.models.MLModel(str(path)).predict(feeds)[output])


def verify(path: Path, io, reference: Callable[..., np.ndarray], samples: list[dict[str, np.ndarray]]) -> PackageReport:
    """Contract + parity on `samples` (batch-1 feeds); every failure becomes a clear problem line.

    Parity is measured here and judged against `parity_tolerance` by gate 7, so the threshold
    in force is the one that decides.
    """
    path = Path(path)
    report = PackageReport(path.stem, str(path))
    try:
        report.size_bytes = package_size(path)
        report.problems += check_contract(path, io)
        if report.problems:
            return report
        function = mil_numpy.load_program(path)
        output = io[1][0][0]
        ref = np.concatenate([reference(**s) for s in samples])
        mil = np.concatenate([mil_numpy.run(function, s)[output] for s in samples]).astype(np.float32)
        report.parity["mil_numpy"] = _relative(mil, ref)
        runtime = [_coreml_runtime(path, s, output) for s in samples]
        if runtime[0] is not None:
            report.parity["coreml"] = _relative(np.concatenate(runtime), ref)
    except Exception as e:  # a corrupt package fails the smoke test with the reason, never a crash
        report.problems.append(f"{path.name}: cannot be loaded or evaluated ({type(e).__name__}: {e})")
    return report
