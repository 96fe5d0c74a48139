"""Plots for materialization metadata and the acceptance report (PNG, headless)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lume_v6_dagster.atomic_files import atomic_path  # noqa: E402


def save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    plt.close(fig)
    return path


def loss_curves(histories: dict[str, list[dict]], path: Path) -> Path:
    """Train (dashed) and validation (solid) loss per epoch, one colour per model."""
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for i, (name, rows) in enumerate(histories.items()):
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [r["train_loss"] for r in rows], "--", color=f"C{i}", alpha=0.6)
        ax.plot(epochs, [r["val_loss"] for r in rows], "-", color=f"C{i}", label=f"{name} (val)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)
