"""`lume-v6`: simulate captures, validate a folder by hand, run the demo through Dagster, benchmark."""

import os
import subprocess
import sys
from pathlib import Path

import click
from tqdm import tqdm


@click.group()
def main():
    """LUME Music V6 retrain pipeline."""


@main.command()
@click.option("--tracks", "n_tracks", default=30, show_default=True, help="Capture sessions to write.")
@click.option("--minutes", default=15.0, show_default=True, help="Length of each session.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data/captures"), show_default=True)
@click.option("--seed", default=0, show_default=True)
def simulate(n_tracks, minutes, out, seed):
    """Write realistic synthetic capture folders and manifest.json."""
    from lume_v6_dagster.simulate import simulate as run

    paths = run(n_tracks, minutes, out, seed=seed, progress=lambda it, total: tqdm(it, total=total, desc="simulate", unit="track"))
    click.echo(f"wrote {len(paths)} capture folders to {out}")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, file_okay=False, path_type=Path))
def validate(paths):
    """Check capture folders against the contract; print every violation, exit 1 if any."""
    from lume_v6_dagster.capture.folder import validate_capture

    bad = 0
    for path in paths:
        violations = validate_capture(path)
        bad += bool(violations)
        click.echo(f"{path}: {'OK' if not violations else f'{len(violations)} violation(s)'}")
        for v in violations:
            click.echo(f"  {path / v.file if v.file != path.name else path}: {v.place}: {v.rule}")
    sys.exit(1 if bad else 0)


@main.command()
@click.option("--tracks", "n_tracks", default=30, show_default=True)
@click.option("--minutes", default=None, type=float, help="Session length (default: the profile's).")
@click.option("--profile", type=click.Choice(["full", "demo", "tiny"]), default="demo", show_default=True)
@click.option("--seed", default=0, show_default=True)
def demo(n_tracks, minutes, profile, seed):
    """Simulate captures (if absent) and run the whole chain through Dagster."""
    from lume_v6_dagster import demo as demo_mod

    os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster").resolve()))
    result = demo_mod.run(n_tracks, minutes, profile, seed, echo=click.echo)
    click.echo(result)


@main.command(context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Run the benchmarks in bench/ (a repository checkout): `lume-v6 bench --help` lists them."""
    repo = Path(__file__).resolve().parent.parent
    if not (repo / "bench" / "__main__.py").is_file():
        raise click.ClickException(f"no bench/ folder next to the package in {repo}: run from a repository checkout")
    sys.exit(subprocess.call([sys.executable, "-m", "bench", *args], cwd=repo))
