"""Cross-track split and training-only statistics."""

import shutil

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lume_v6_dagster import contract
from lume_v6_dagster.dataset import SplitRefused, build_split, split_tracks
from lume_v6_dagster.pairs import read_pairs, write_pairs

track_sets = st.dictionaries(
    st.from_regex(contract.TRACK_ID_RE, fullmatch=True), st.integers(0, len(contract.MODES) - 1), min_size=1, max_size=60
)


@settings(max_examples=200, deadline=None)
@given(track_sets)
def test_split_is_disjoint_trains_and_validates_every_mode_and_is_deterministic(track_modes):
    counts = np.bincount(list(track_modes.values()), minlength=len(contract.MODES))
    if (counts == 1).any():
        with pytest.raises(SplitRefused) as refused:
            split_tracks(track_modes)
        assert all(f"{contract.MODES[m]}: only " in str(refused.value) for m in np.nonzero(counts == 1)[0])
        return
    train, val = split_tracks(track_modes)
    assert not set(train) & set(val)
    assert set(train) | set(val) == set(track_modes)
    assert {track_modes[t] for t in val} == {track_modes[t] for t in train} == set(track_modes.values())
    assert len(val) / len(track_modes) >= 0.2
    reordered = dict(reversed(list(track_modes.items())))
    assert split_tracks(reordered) == (train, val)


def test_a_mode_with_a_single_track_is_refused_by_name_not_validated_untrained():
    """Before: the lone track went to validation, the model never trained on its mode, and every gate could pass."""
    tracks = {f"t{i:02d}": i % 5 for i in range(10)} | {"t10": 0}
    del tracks["t04"]  # aurora_veil keeps t09 only
    with pytest.raises(SplitRefused, match="aurora_veil: only t09"):
        split_tracks(tracks)


def test_adding_a_track_moves_no_existing_validation_track_to_training():
    base = {f"t{i:02d}": i % 5 for i in range(30)}
    _, val = split_tracks(base)
    _, val2 = split_tracks({**base, "t99": 0})
    assert set(val) - set(val2) <= {t for t in val if base[t] == 0}


def test_statistics_use_no_validation_frame(pairs_paths, tmp_path):
    split = build_split(pairs_paths)
    assert split.val and split.train
    changed = dict(pairs_paths)
    victim = split.val[0]
    p = read_pairs(pairs_paths[victim])
    p.conditioning[:, :128] += 50.0
    p.target_latent += 30.0
    changed[victim] = tmp_path / "pairs.npz"
    write_pairs(changed[victim], p)
    split2 = build_split(changed)
    assert split2.val == split.val
    assert split2.stats == split.stats  # a validation track cannot move the statistics
    assert split2.fingerprint != split.fingerprint  # but it is part of the dataset


def test_statistics_match_training_frames(pairs_paths):
    split = build_split(pairs_paths)
    lat = np.concatenate([read_pairs(pairs_paths[t]).target_latent for t in split.train])
    np.testing.assert_allclose(split.stats.latent_mean, lat.mean(0), rtol=1e-4, atol=1e-3)
    assert split.stats.n == len(lat)


def test_coverage_counts_minutes_per_cell(pairs_paths):
    cells = np.array(build_split(pairs_paths).coverage_minutes)
    assert cells.shape == (5, 5)
    total = sum(len(read_pairs(p).t) for p in pairs_paths.values()) / 30 / 60
    assert abs(cells.sum() - total) < 1e-2
