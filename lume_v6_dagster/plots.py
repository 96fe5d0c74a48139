"""Plots for materialization metadata and the acceptance report (PNG, headless)."""

import base64
from pathlib import Path

import numpy as np

from lume_v6_dagster.atomic_files import atomic_path


def subplots(figsize: tuple[float, float]):
    """A figure and its axes without pyplot: headless, nothing global to close, and matplotlib
    is imported by the steps that plot, not by every process that loads the definitions."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def save(fig, path: Path) -> Path:
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=110, bbox_inches="tight", format="png")
    return path


def loss_curves(histories: dict[str, list[dict]], path: Path) -> Path:
    """Train (dashed) and validation (solid) loss per epoch, one colour per model."""
    fig, ax = subplots((6, 3.5))
    for i, (name, rows) in enumerate(histories.items()):
        epochs = [r["epoch"] for r in rows]
        ax.plot(epochs, [r["train_loss"] for r in rows], "--", color=f"C{i}", alpha=0.6)
        ax.plot(epochs, [r["val_loss"] for r in rows], "-", color=f"C{i}", label=f"{name} (val)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    ax.grid(alpha=0.3)
    return save(fig, path)


def coverage_heatmap(cells, modes, emotions, path: Path) -> Path:
    fig, ax = subplots((5.5, 3.5))
    im = ax.imshow(cells, cmap="viridis")
    ax.set_xticks(range(len(emotions)), emotions, rotation=30)
    ax.set_yticks(range(len(modes)), modes)
    for (i, j), v in np.ndenumerate(cells):
        ax.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=8)
    fig.colorbar(im, label="minutes of valid pairs")
    return save(fig, path)


def latent_distributions(generated: dict, modes, path: Path) -> Path:
    """Generated latents per mode, projected on their two main principal axes."""

    stacked = np.concatenate(list(generated.values()))
    mean = stacked.mean(0)
    _, _, vt = np.linalg.svd(stacked - mean, full_matrices=False)
    fig, ax = subplots((5, 4))
    for m, z in generated.items():
        p = (z - mean) @ vt[:2].T
        ax.scatter(p[:, 0], p[:, 1], s=4, alpha=0.4, label=modes[m])
    ax.set_xlabel("PC 1")
    ax.set_ylabel("PC 2")
    ax.legend(markerscale=3, fontsize=7)
    return save(fig, path)


def block_sensitivity(per_dim: dict, blocks, block_dim: int, path: Path) -> Path:

    fig, ax = subplots((6, 3))
    x = np.arange(len(blocks))
    for i, (name, values) in enumerate(per_dim.items()):
        ax.bar(x + i * 0.4, np.asarray(values).reshape(len(blocks), block_dim).mean(1), width=0.4, label=name)
    ax.axvline(3.7, color="k", ls=":", lw=1)
    ax.set_xticks(x + 0.2, blocks, rotation=30)
    ax.set_ylabel("mean |d out / d in|")
    ax.legend()
    return save(fig, path)


def spectrogram(mel_db: np.ndarray, sr: int, hop: int, title: str, path: Path) -> Path:
    """A clip's log-mel frames (F, 64) over time, as librosa draws them."""
    import librosa.display

    fig, ax = subplots((6, 2.4))
    img = librosa.display.specshow(mel_db.T, sr=sr, hop_length=hop, x_axis="time", y_axis="mel", ax=ax, cmap="magma")
    ax.set_title(title, fontsize=9)
    fig.colorbar(img, ax=ax, format="%+.0f dB")
    return save(fig, path)


def markdown_image(path: Path, alt: str) -> str:
    """A PNG as an inline Markdown image: the Dagster UI shows it in the metadata, not a link to it."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(Path(path).read_bytes()).decode()})"
