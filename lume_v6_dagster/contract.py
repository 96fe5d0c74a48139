"""The V6 data contract: vocabularies, the 128-D body layout, the 141-D conditioning layout.

Everything else imports these names; nothing else spells them out again.
"""

from __future__ import annotations

import re

import numpy as np

CAPTURE_SCHEMA = "lume.capture/1"
PAIRS_SCHEMA_VERSION = "lume.pairs/1"

# Visual worlds. The one-hot has 8 slots; ids 5-7 are reserved for V7+ and always 0 in V6.
MODES = (
    "sky_garden",
    "turquoise_alcove",
    "radiant_underground_chamber",
    "iridescent_beauty",
    "aurora_veil",
)
MODE_TITLES = (
    "Sky Garden",
    "Turquoise Alcove",
    "Radiant Underground Chamber",
    "Iridescent Beauty",
    "Aurora Veil",
)
# The music each mode must produce: what a listener checks before signing off (gate 9).
MODE_MUSIC = (
    "airy ambient, slow-attack pads",
    "liquid texture, reverb-heavy, mid-tempo",
    "warm sub bass, organic percussion",
    "bright, harmonically rich, evolving",
    "sustained drones, sparse high bells",
)
MODE_SLOTS = 8
RESERVED_MODE_IDS = (5, 6, 7)

EMOTIONS = ("still", "open", "inward", "energetic", "release")

# 128-D dynamics: 8 named blocks of 16 dims, in this order. V5 read blocks 0-3 only.
DYNAMICS_BLOCKS = (
    "posture",
    "velocity",
    "acceleration",
    "jerk",
    "energy",
    "periodicity",
    "spatial_extent",
    "temporal_closure",
)
BLOCK_DIM = 16
DYNAMICS_DIM = len(DYNAMICS_BLOCKS) * BLOCK_DIM  # 128
V5_DYNAMICS_DIM = 64
MAX_ABS_DYNAMICS = 100.0  # larger means a broken sensor pipeline, not a dancer

# 141-D conditioning = dynamics_128 | mode_8 | emotion_5
CONDITIONING_DIM = DYNAMICS_DIM + MODE_SLOTS + len(EMOTIONS)  # 141
DYNAMICS_SLICE = slice(0, DYNAMICS_DIM)
MODE_SLICE = slice(DYNAMICS_DIM, DYNAMICS_DIM + MODE_SLOTS)
EMOTION_SLICE = slice(DYNAMICS_DIM + MODE_SLOTS, CONDITIONING_DIM)

# Targets.
SAMPLE_RATE = 22_050  # audio is analysed at this rate, mono
MIN_AUDIO_RATE = 16_000
LATENT_DIM = 64  # 64-band log-mel frame (dB)
CONTROL_NAMES = (
    "loudness_db",
    "brightness_hz",
    "flatness",
    "onset_strength",
    *(f"chroma_{p}" for p in ("C", "Cs", "D", "Ds", "E", "F", "Fs", "G", "Gs", "A", "As", "B")),
)
CONTROLS_DIM = len(CONTROL_NAMES)  # 16

# Model sizes fixed by the app.
EMBEDDING_DIM = 768
NOISE_DIM = LATENT_DIM

# Core ML package I/O contract: name -> (inputs, outputs), each a tuple of (name, shape).
PACKAGES = {
    "ConditioningEncoderV6": (
        (("conditioning", (1, CONDITIONING_DIM)),),
        (("embedding", (1, EMBEDDING_DIM)),),
    ),
    "FlowGenerator1StepV6": (
        (("embedding", (1, EMBEDDING_DIM)), ("noise", (1, NOISE_DIM))),
        (("music_latent", (1, LATENT_DIM)),),
    ),
    "SANV6": (
        (("music_latent", (1, LATENT_DIM)), ("dynamics", (1, DYNAMICS_DIM))),
        (("controls", (1, CONTROLS_DIM)),),
    ),
}

# The V5 fallback the bundle carries: the V5 recipe read only the first 64 body dims.
V5_PACKAGES = {
    "ConditioningEncoderV5": ((("conditioning", (1, V5_DYNAMICS_DIM)),), (("embedding", (1, EMBEDDING_DIM)),)),
    "FlowGenerator1StepV5": PACKAGES["FlowGenerator1StepV6"],
}

TRACK_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
CAPTURE_FILES = ("session.jsonl", "dynamics.npz", "audio.wav")


def block_slice(name: str) -> slice:
    """Dims of one named dynamics block."""
    i = DYNAMICS_BLOCKS.index(name)
    return slice(i * BLOCK_DIM, (i + 1) * BLOCK_DIM)


def dynamics_column_names() -> list[str]:
    """One name per dynamics dim, e.g. 'energy_03', so errors name the block and dim."""
    return [f"{b}_{j:02d}" for b in DYNAMICS_BLOCKS for j in range(BLOCK_DIM)]


def mode_id(value: int | str) -> int:
    """Mode id from an id (0-4) or a name/title; reserved and unknown values raise ValueError."""
    if isinstance(value, bool):
        raise ValueError(f"mode {value!r} is not an id or a name")
    if isinstance(value, int):
        if value in RESERVED_MODE_IDS:
            raise ValueError(f"mode id {value} is reserved for V7+ (V6 uses 0-{len(MODES) - 1})")
        if not 0 <= value < len(MODES):
            raise ValueError(f"mode id {value} is unknown (V6 uses 0-{len(MODES) - 1})")
        return value
    key = str(value).strip().lower().replace(" ", "_")
    if key in MODES:
        return MODES.index(key)
    raise ValueError(f"mode {value!r} is unknown (one of {', '.join(MODES)})")


def emotion_id(name: str) -> int:
    """Emotion index from its name; unknown names raise ValueError."""
    if name not in EMOTIONS:
        raise ValueError(f"emotion {name!r} is unknown (one of {', '.join(EMOTIONS)})")
    return EMOTIONS.index(name)


def conditioning(dynamics: np.ndarray, mode: np.ndarray, emotion: np.ndarray) -> np.ndarray:
    """Build (M, 141) conditioning from (M, 128) dynamics and per-row mode/emotion ids."""
    m = dynamics.shape[0]
    out = np.zeros((m, CONDITIONING_DIM), dtype=np.float32)
    out[:, DYNAMICS_SLICE] = dynamics
    out[np.arange(m), MODE_SLICE.start + np.asarray(mode)] = 1.0
    out[np.arange(m), EMOTION_SLICE.start + np.asarray(emotion)] = 1.0
    return out


def modes_of(conditioning: np.ndarray) -> np.ndarray:
    """Each (M, 141) conditioning row's mode id, from its one-hot."""
    return conditioning[:, MODE_SLICE].argmax(1)
