"""Shared fixtures: small simulated captures, made once per test session."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lume_v6_dagster.simulate import simulate


@pytest.fixture(scope="session")
def sim_root(tmp_path_factory) -> Path:
    """Ten 30-second sessions, two per mode (s01..s05 then s06..s10)."""
    root = tmp_path_factory.mktemp("captures")
    simulate(10, 0.5, root, seed=7, workers=2)
    return root


@pytest.fixture(scope="session")
def pairs_paths(sim_root, tmp_path_factory) -> dict[str, Path]:
    """Pairs files for every simulated track."""
    from lume_v6_dagster.capture.folder import load_capture
    from lume_v6_dagster.pairs import build_pairs, write_pairs

    out = tmp_path_factory.mktemp("pairs")
    paths = {}
    for folder in sorted(p for p in sim_root.iterdir() if p.is_dir()):
        paths[folder.name] = out / folder.name / "pairs.npz"
        write_pairs(paths[folder.name], build_pairs(load_capture(folder)))
    return paths


@pytest.fixture
def track(sim_root, tmp_path) -> Path:
    """A private copy of one valid capture folder, free to break."""
    return Path(shutil.copytree(sim_root / "s03-radiant-underground-chamber", tmp_path / "s03-radiant-underground-chamber"))


def rewrite_npz(folder: Path, **changes) -> None:
    """Replace arrays in dynamics.npz (None drops one)."""
    with np.load(folder / "dynamics.npz") as z:
        arrays = dict(z)
    for k, v in changes.items():
        if v is None:
            arrays.pop(k)
        else:
            arrays[k] = v
    np.savez(folder / "dynamics.npz", **arrays)


def read_events(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "session.jsonl").read_text().splitlines()]


def write_events(folder: Path, events: list[dict]) -> None:
    (folder / "session.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))


def overlapping(spans: list[tuple[float, float]]) -> int:
    """The most spans in progress at one instant."""
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    now = most = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


# The longest files first (pytest-xdist hands whole files to idle workers in collection order,
# `make test` keeps that order), so the suite does not end waiting on one long file started last.
LONGEST_FIRST = ("deploy_tests/test_two_host.py", "test_bench.py", "test_demo.py", "assets_tests/test_training_assets.py",
                 "ui_tests/test_ui_browser.py")


def pytest_collection_modifyitems(items):
    rank = {path: i for i, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0].removeprefix("lume_v6_dagster_tests/"), len(rank)))
