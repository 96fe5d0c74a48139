"""One checkpoint per epoch, written atomically; training resumes from the newest one."""

from __future__ import annotations

import re
from pathlib import Path

import torch

from lume_v6_dagster.atomic_files import save_torch

PATTERN = re.compile(r"^epoch_(\d{4})\.pt$")
KEEP = 2  # the newest and one before it, in case the newest is being written when the host dies


def save(ckpt_dir: Path, epoch: int, state: dict) -> Path:
    path = Path(ckpt_dir) / f"epoch_{epoch:04d}.pt"
    save_torch(path, state)
    for old in sorted(Path(ckpt_dir).glob("epoch_*.pt"))[:-KEEP]:
        old.unlink()
    return path


def latest(ckpt_dir: Path) -> tuple[int, dict] | None:
    """(epoch, state) of the newest complete checkpoint, or None for a fresh start."""
    found = sorted(int(m.group(1)) for p in Path(ckpt_dir).glob("epoch_*.pt") if (m := PATTERN.match(p.name)))
    if not found:
        return None
    epoch = found[-1]
    # weights_only: a checkpoint holds tensors and plain values; unpickling anything else could run code
    return epoch, torch.load(Path(ckpt_dir) / f"epoch_{epoch:04d}.pt", map_location="cpu", weights_only=True)
