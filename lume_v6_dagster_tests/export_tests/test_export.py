"""Core ML packages: contract, NumPy-MIL parity with PyTorch, the SAN twin, corruption caught."""

from dataclasses import asdict

import mlx.core as mx
import numpy as np
import pytest
import torch

from lume_v6_dagster import contract
from lume_v6_dagster.acceptance.gates import FAIL, export_parity
from lume_v6_dagster.acceptance.thresholds import Thresholds
from lume_v6_dagster.dataset import Stats
from lume_v6_dagster.export.bundle import write_bundle
from lume_v6_dagster.export.coreml import export
from lume_v6_dagster.export.verify import verify
from lume_v6_dagster.models.encoder import ConditioningEncoder, EncoderConfig
from lume_v6_dagster.models.flow import FlowConfig, FlowGenerator, OneStepGenerator
from lume_v6_dagster.models.san import SAN, SANConfig
from lume_v6_dagster.models.san_twin import SANTwin, from_mlx


def stats(rng) -> Stats:
    def pair(n):
        return rng.normal(0, 2, n).tolist(), rng.uniform(0.5, 3, n).tolist()

    (dm, ds), (lm, ls), (cm, cs) = pair(128), pair(64), pair(16)
    return Stats(dm, ds, [v - 40 for v in lm], ls, cm, cs, 1000)


def modules():
    torch.manual_seed(0)
    mx.random.seed(0)
    rng = np.random.default_rng(0)
    st = stats(rng)
    enc = ConditioningEncoder(EncoderConfig())
    enc.dyn_mean.copy_(torch.tensor(st.dynamics_mean)), enc.dyn_std.copy_(torch.tensor(st.dynamics_std))
    flow = FlowGenerator(FlowConfig())
    for block in flow.blocks:  # trained models have non-zero modulation
        torch.nn.init.normal_(block.mod.weight, std=0.02)
    flow.latent_mean.copy_(torch.tensor(st.latent_mean)), flow.latent_std.copy_(torch.tensor(st.latent_std))
    san = SAN(SANConfig())
    return {"ConditioningEncoderV6": enc.eval(), "FlowGenerator1StepV6": OneStepGenerator(flow.eval()), "SANV6": from_mlx(san, st)}, san, st


def feeds(name, n=8, seed=1):
    rng = np.random.default_rng(seed)
    return [{k: rng.normal(0, 1, shape).astype(np.float32) for k, shape in contract.PACKAGES[name][0]} for _ in range(n)]


def reference(module, name):
    names = [n for n, _ in contract.PACKAGES[name][0]]
    return lambda **kw: module(*[torch.from_numpy(kw[n]) for n in names]).detach().numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    mods, san, st = modules()
    out = tmp_path_factory.mktemp("packages")
    paths = {name: export(m, name, contract.PACKAGES[name], out, name) for name, m in mods.items()}
    return mods, paths


@pytest.mark.parametrize("name", list(contract.PACKAGES))
def test_package_matches_contract_and_pytorch_in_fp16(exported, name):
    mods, paths = exported
    report = verify(paths[name], contract.PACKAGES[name], reference(mods[name], name), feeds(name))
    assert report.ok, report.problems
    assert 0 < report.parity["mil_numpy"] <= 2e-2  # FP16 compute: close, and not bit-identical


def test_san_twin_matches_mlx():
    _, san, st = modules()
    twin = from_mlx(san, st)
    rng = np.random.default_rng(2)
    lat, dyn = rng.normal(0, 1, (32, 64)).astype(np.float32), rng.normal(0, 1, (32, 128)).astype(np.float32)
    ours = twin.forward_normalized(torch.from_numpy(lat), torch.from_numpy(dyn)).detach().numpy()
    np.testing.assert_allclose(ours, np.array(san(mx.array(lat), mx.array(dyn))), atol=1e-5)


def test_tampered_weights_fail_parity(exported, tmp_path):
    import shutil

    mods, paths = exported
    copy = shutil.copytree(paths["SANV6"], tmp_path / "SANV6.mlpackage")
    weights = next(copy.rglob("weight.bin"))
    data = bytearray(weights.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 4000):
        data[i] ^= 0x5A
    weights.write_bytes(bytes(data))
    report = verify(copy, contract.PACKAGES["SANV6"], reference(mods["SANV6"], "SANV6"), feeds("SANV6"))
    gate = export_parity([asdict(report)], Thresholds())
    assert gate.verdict == FAIL and "differs from the source model" in gate.measured


def test_corrupt_model_file_is_reported_not_raised(exported, tmp_path):
    import shutil

    mods, paths = exported
    copy = shutil.copytree(paths["SANV6"], tmp_path / "SANV6.mlpackage")
    next(copy.rglob("model.mlmodel")).write_bytes(b"\x00garbage" * 10)
    report = verify(copy, contract.PACKAGES["SANV6"], reference(mods["SANV6"], "SANV6"), feeds("SANV6"))
    assert not report.ok and "cannot be loaded" in report.problems[0]


def test_wrong_shape_model_is_caught(tmp_path):
    twin = SANTwin(SANConfig(out_dim=15))
    wrong_io = (contract.PACKAGES["SANV6"][0], (("controls", (1, 15)),))
    path = export(twin, "SANV6", wrong_io, tmp_path, "wrong")
    report = verify(path, contract.PACKAGES["SANV6"], lambda **kw: None, feeds("SANV6"))
    assert not report.ok and "contract (1, 16)" in report.problems[0]


def test_bundle_is_written_once_with_checksums(exported, tmp_path):
    _, paths = exported
    target = write_bundle(tmp_path / "bundle", list(paths.values()), [], {"useV6Models": False})
    manifest = __import__("json").loads((target / "manifest.json").read_text())
    assert manifest["useV6Models"] is False and any(k.startswith("v6/SANV6.mlpackage/") for k in manifest["sha256"])
    with pytest.raises(FileExistsError):
        write_bundle(tmp_path / "bundle", list(paths.values()), [], {"useV6Models": True})
