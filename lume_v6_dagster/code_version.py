"""The version of the code that shapes a model: a digest of the source files it is built from.

It names a model's run folder and travels in its provenance, the report and the manifest, so
a change to the models, the training loop or loss, the pairs, the dataset or the contract
trains afresh instead of resuming old weights, and a release refuses models another code made.
"""

import functools
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SHAPING = ("contract.py", "pairs.py", "dataset.py", "noise.py", "temporal.py", "models", "training")  # what a model is made of


def sources(root: Path = PACKAGE) -> list[Path]:
    """The shaping source files under `root`, in a fixed order."""
    found = []
    for name in SHAPING:
        path = Path(root) / name
        found += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return found


def digest(root: Path = PACKAGE) -> str:
    """12 hex digits of sha256 over each shaping file's path and bytes."""
    h = hashlib.sha256()
    for path in sources(root):
        h.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    return h.hexdigest()[:12]


@functools.cache
def model_code_version() -> str:
    """This process's version: read once, when first asked, from the files it imported."""
    return digest()


if __name__ == "__main__":  # python -m lume_v6_dagster.code_version: the version this checkout trains with
    print(model_code_version())
