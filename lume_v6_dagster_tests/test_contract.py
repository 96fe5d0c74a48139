import numpy as np
import pytest

from lume_v6_dagster import contract


def test_dynamics_layout_is_eight_blocks_of_sixteen_in_order():
    assert contract.DYNAMICS_DIM == 128
    assert contract.DYNAMICS_BLOCKS[0] == "posture" and contract.DYNAMICS_BLOCKS[-1] == "temporal_closure"
    covered = np.concatenate([np.arange(128)[contract.block_slice(b)] for b in contract.DYNAMICS_BLOCKS])
    assert covered.tolist() == list(range(128))
    assert contract.block_slice("energy") == slice(64, 80)  # first block V5 never read


def test_conditioning_layout_141():
    assert contract.CONDITIONING_DIM == 141
    dyn = np.full((3, 128), 2.0, dtype=np.float32)
    c = contract.conditioning(dyn, np.array([0, 4, 2]), np.array([1, 1, 4]))
    assert c.shape == (3, 141) and c.dtype == np.float32
    assert np.all(c[:, :128] == 2.0)
    assert c[1, contract.MODE_SLICE].tolist() == [0, 0, 0, 0, 1, 0, 0, 0]
    assert c[2, contract.EMOTION_SLICE].tolist() == [0, 0, 0, 0, 1]
    assert np.all(c[:, contract.MODE_SLICE][:, 5:] == 0)


@pytest.mark.parametrize("value,expected", [(0, 0), (4, 4), ("aurora_veil", 4), ("Sky Garden", 0)])
def test_mode_ids_and_names(value, expected):
    assert contract.mode_id(value) == expected


@pytest.mark.parametrize("value,match", [(5, "reserved"), (7, "reserved"), (9, "unknown"), ("disco", "unknown"), (True, "not an id")])
def test_bad_modes_are_refused(value, match):
    with pytest.raises(ValueError, match=match):
        contract.mode_id(value)


def test_package_io_names_follow_spec():
    assert contract.PACKAGES["SANV6"][0] == (("music_latent", (1, 64)), ("dynamics", (1, 128)))
    assert contract.PACKAGES["FlowGenerator1StepV6"][1] == (("music_latent", (1, 64)),)
