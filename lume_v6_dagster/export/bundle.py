"""The release bundle: V6 packages, V5 fallback packages and manifest.json, written once."""

import hashlib
import json
import shutil
from pathlib import Path

from lume_v6_dagster.atomic_files import atomic_dir
from lume_v6_dagster.checksums import sha256_file


def _sha256_tree(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}


def package_digest(path: Path) -> str:
    """sha256 of a package folder (every file's relative path and content): what was judged, shipped, signed."""
    lines = "".join(f"{rel}:{digest}\n" for rel, digest in _sha256_tree(Path(path)).items())
    return hashlib.sha256(lines.encode()).hexdigest()


def write_bundle(target: Path, v6_packages: list[Path], v5_packages: list[Path], manifest: dict) -> Path:
    """Copy the packages into a new folder, add manifest.json with every file's sha256.

    The folder must not exist: a bundle is never overwritten.
    """
    with atomic_dir(target, overwrite=False) as tmp:
        for sub, packages in (("v6", v6_packages), ("v5", v5_packages)):
            for p in packages:
                shutil.copytree(p, tmp / sub / Path(p).name)
        manifest = {**manifest, "sha256": _sha256_tree(tmp)}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return target
