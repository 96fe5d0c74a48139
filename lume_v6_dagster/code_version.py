"""The versions of the code that shapes a model, and of the code that judges it: digests of their source files.

The model code version names a model's run folder and travels in its provenance, the report
and the manifest, so a change to the models, the training loop or loss, the pairs, the dataset
or the contract trains afresh instead of resuming old weights, and a release refuses models
another code made. The judging code version (the model code, the measurements and gates, the
export and the previews) travels in the report and the manifest, so a change to how V6 is
judged judges the same models again instead of shipping a verdict older code gave.
"""

import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHAPING = ("contract.py", "pairs.py", "dataset.py", "noise.py", "temporal.py", "models", "training")  # what a model is made of
JUDGING = SHAPING + ("acceptance", "export", "listening.py", "trained_models.py")  # what a verdict is made by


def sources(root: Path = PACKAGE, names: tuple[str, ...] = SHAPING) -> list[Path]:
    """The source files of `names` under `root`, in a fixed order."""
    found = []
    for name in names:
        path = Path(root) / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def digest(root: Path = PACKAGE, names: tuple[str, ...] = SHAPING) -> str:
    """12 hex digits of sha256 over the path and bytes of each source file of `names`."""
    h = hashlib.sha256()
    for path in sources(root, names):
        h.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


@functools.cache
def model_code_version() -> str:
    """This process's version: read once, when first asked, from the files it imported."""
    return digest()


@functools.cache
def judging_code_version() -> str:
    """The version of the code a verdict is made by, read once like `model_code_version`."""
    return digest(names=JUDGING)


if __name__ == "__main__":  # python -m lume_v6_dagster.code_version: the versions this checkout trains and judges with
    print(f"model code {model_code_version()}, judging code {judging_code_version()}")
