"""`lume-v6`: simulate captures, validate a folder by hand, run the demo through Dagster, benchmark."""

import os
import subprocess
import sys
from pathlib import Path

import click
from tqdm import tqdm

from lume_v6_dagster import contract, deployment


@click.group()
def main():
    """LUME Music V6 retrain pipeline."""


def _default_home() -> Path:
    """DAGSTER_HOME, set to the deployment's default when unset: every command reads the same instance."""
    return Path(os.environ.setdefault("DAGSTER_HOME", str(deployment.default_home())))


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
@click.option("--tracks", "n_tracks", default=30, show_default=True, type=click.IntRange(min=2 * len(contract.MODES)),
              help="Simulated sessions, modes in turn: at least two per mode (one to train on, one to validate).")
@click.option("--minutes", default=None, type=float, help="Session length (default: the profile's).")
@click.option("--profile", type=click.Choice(["full", "demo", "tiny"]), default="demo", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--deploy", type=click.Choice(["embedded", "two-host"]), default="embedded", show_default=True,
              help="two-host: local PostgreSQL and Redis, a mac4 and a mac5 worker; every step runs on a worker.")
@click.option("--serial", is_flag=True, help="Embedded: one track, then one step at a time, all in this process (to compare, or to debug).")
def demo(n_tracks, minutes, profile, seed, deploy, serial):
    """Simulate captures (if absent) and run the whole chain through Dagster, side by side as far as the host allows."""
    from lume_v6_dagster import demo as demo_mod

    if deploy == "two-host":
        os.environ["LUME_DEPLOYMENT"] = "two-host"
    _default_home()
    if deploy == "two-host":
        if serial:
            raise click.UsageError("--serial is for the embedded deployment: two hosts run what their workers hold")
        click.echo(demo_mod.run_two_host(n_tracks, minutes, profile, seed, echo=click.echo))
    else:
        click.echo(demo_mod.run(n_tracks, minutes, profile, seed, echo=click.echo, serial=serial))


@main.command("devset")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("data/devset"), show_default=True,
              help="Its captures/, artifacts/ and Dagster instance (.dagster/) go here, apart from the demo's.")
@click.option("--per-mode", default=2, show_default=True, type=click.IntRange(min=2), help="Sessions per mode.")
@click.option("--seconds", default=60.0, show_default=True, type=click.FloatRange(min=30.0), help="Length of each session.")
@click.option("--profile", type=click.Choice(["full", "demo", "tiny"]), default="demo", show_default=True)
@click.option("--seed", default=0, show_default=True)
@click.option("--build-only", is_flag=True, help="Write the capture folders and stop.")
def devset_command(out, per_mode, seconds, profile, seed, build_only):
    """Real music (Bach chorales, General MIDI) and real motion (mocap clips) from public packages, as capture
    folders: build the development set (if absent) and run the whole chain on it."""
    from lume_v6_dagster import demo as demo_mod

    click.echo(demo_mod.run_devset(out, per_mode, seconds, profile, seed, echo=click.echo, build_only=build_only))


@main.command()
@click.argument("action", type=click.Choice(["start", "stop", "status"]))
@click.option("--dir", "root", type=click.Path(file_okay=False, path_type=Path), default=Path(".services"), show_default=True)
@click.option("--pg-port", default=5433, show_default=True)
@click.option("--redis-port", default=6380, show_default=True)
@click.option("--host", default="127.0.0.1", show_default=True, help="The address clients reach them at (they also listen on loopback).")
def services(action, root, pg_port, redis_port, host):
    """Local PostgreSQL (the shared instance) and Redis (the broker), for development and tests; password: LUME_SERVICES_PASSWORD."""
    from lume_v6_dagster.services import DEFAULT_PASSWORD, ServiceError, Services

    local = Services(root=root, pg_port=pg_port, redis_port=redis_port, host=host)
    try:
        if action == "start":
            local.start()
            if "LUME_SERVICES_PASSWORD" not in os.environ:
                click.echo(f"password: the loopback-only default; export LUME_SERVICES_PASSWORD={DEFAULT_PASSWORD} (set your own before start)")
            click.echo("started; the UI, the daemon and every worker need:")
            click.echo("\n".join(f'export {k}="{v}"' for k, v in local.shown_env().items()))
        elif action == "stop":
            click.echo(f"stopped: {', '.join(local.stop()) or 'nothing was running'}")
        for name, state in local.status().items():
            click.echo(f"{name}: {state}")
    except ServiceError as e:
        raise click.ClickException(str(e)) from None


@main.command()
@click.option("--serial", is_flag=True, help="One step at a time in each pool.")
def pools(serial):
    """Size this instance's pools from this host (before `dagster dev`): ingest from its cores, training from the training host."""
    import dagster as dg

    from lume_v6_dagster import capacity
    from lume_v6_dagster.resources import default_resources

    _default_home()
    if os.environ.get("LUME_DEPLOYMENT") == "two-host":
        raise click.ClickException("two hosts: each `lume-v6 worker` sizes the pool of its own host when it starts")
    with dg.DagsterInstance.get() as instance:
        for pool, slots in capacity.size_host_pools(instance, default_resources()["training_host"].slots(), serial).items():
            click.echo(f"pool {pool}: {slots} at once")


@main.command("worker")
@click.option("--name", required=True, help="Worker name, e.g. mac4 or mac5 (the host name is appended).")
@click.option("--queue", required=True, help="Queue it serves: 'dagster' (ingest, release: Mac4) or 'mac5' (training).")
def worker_command(name, queue):
    """A dagster-celery worker bound to one queue; refuses to start if it cannot reach what its steps need."""
    from lume_v6_dagster import worker

    os.environ["LUME_DEPLOYMENT"] = "two-host"
    try:
        deployment.prepare_instance_home(_default_home())
        problems = deployment.unreachable(*deployment.roots())
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    if problems:
        raise click.ClickException(f"worker {name} not started:\n  - " + "\n  - ".join(problems))
    sys.exit(worker.start(name, queue, echo=click.echo))


def _record(kind, by: str, items: list[str], report: str | None, comment: str) -> None:
    """Bind a record to the report the person judged, append it to the history, then judge again."""
    import dagster as dg

    from lume_v6_dagster import contract, runs
    from lume_v6_dagster.acceptance import signoff as records

    _default_home()
    try:
        artifacts = Path(deployment.roots()[1])
        records.parse_input(kind, by, items, comment)  # the input first: a bad one writes nothing
        instance = dg.DagsterInstance.get()
        chosen = records.choose_report(runs.reports(instance), report, records.last_signed_at(artifacts))
        v6 = {n: d for n, d in chosen.verdict()["packages_sha256"].items() if n in contract.PACKAGES}
        path = records.append(artifacts, records.make_record(kind, by, items, chosen.run_id, v6, comment))
    except (records.SignoffError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"report {chosen.run_id} ({chosen.page}), made {chosen.made_at.isoformat(timespec='seconds')}")
    click.echo("V6 packages: " + ", ".join(f"{n} {d[:12]}" for n, d in sorted(v6.items())))
    click.echo(f"appended to {path}: {kind.what} by {by.strip()}")
    judged = {"acceptance_report": {"config": {"packages_run_id": chosen.verdict().get("packages_run_id", "")}}}
    run = runs.execute("judge", instance, ops=judged)  # the packages that report judged, even if newer ones were exported since
    if run.status != dg.DagsterRunStatus.SUCCESS:
        raise click.ClickException(f"judging again failed: see run {run.run_id} in the Dagster UI")
    page, verdict = runs.latest_report(instance)
    click.echo(f"status: {verdict['status']}")
    click.echo(str(page))


REPORT_OPTION = click.option("--report", default=None, metavar="RUN_ID",
                             help="Run id (or its first characters) of the report you judged; needed when several are new.")


@main.command()
@click.option("--by", "by", required=True, help="Who listened (or verified on the iPhone).")
@REPORT_OPTION
@click.option("--comment", default="", help="Anything the next person should know.")
@click.option("--on-device", is_flag=True, help="Record the on-device verification (v5_chain1=, v6_swap=) instead of the listening test.")
@click.argument("results", nargs=-1)
def signoff(by, report, comment, on_device, results):
    """Sign the V6 packages of the report you listened to, then judge again; prints the new report's path.

    \b
    Listening test, every mode:  lume-v6 signoff --by NAME --report RUN_ID sky_garden=pass turquoise_alcove=pass ...
    On the iPhone:               lume-v6 signoff --on-device --by NAME v5_chain1=pass v6_swap=pass
    """
    from lume_v6_dagster.acceptance import signoff as records

    _record(records.ON_DEVICE if on_device else records.LISTENING, by, list(results), report, comment)


@main.command()
@click.option("--by", "by", required=True, help="Who decides to ship the challenger.")
@click.option("--why", required=True, help="Why it ships although it did worse than the champion.")
@REPORT_OPTION
def promote(by, why, report):
    """Promote the report's V6 over the champion it lost to: a recorded override (who, when, why), then judge again."""
    from lume_v6_dagster.acceptance import signoff as records

    _record(records.OVERRIDE, by, ["promote=pass"], report, why)


@main.command()
@click.option("--keep", default=5, show_default=True, help="Bundles to keep (newest first), with everything they name.")
@click.option("--apply", "really", is_flag=True, help="Remove what the dry run lists (refused while a run is in flight).")
def retention(keep, really):
    """List (or, with --apply, remove) artifacts no kept bundle and no latest materialization refers to; never captures."""
    import dagster as dg

    from lume_v6_dagster import retention as retention_mod

    _default_home()
    try:
        captures, artifacts = map(Path, deployment.roots())
        plan = retention_mod.plan(dg.DagsterInstance.get(), artifacts, keep, captures)
    except ValueError as e:
        raise click.ClickException(str(e)) from None
    for bundle in plan.keep_bundles:
        click.echo(f"keep  {bundle}")
    for path in plan.remove:
        click.echo(f"{'remove' if really else 'would remove'}  {path}")
    if not really:
        click.echo(f"dry run: {len(plan.remove)} path(s), {plan.bytes_freed / 1e6:.1f} MB would be freed; --apply removes them")
        return
    try:
        freed = retention_mod.apply(plan)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    click.echo(f"removed {len(plan.remove)} path(s), freed {freed / 1e6:.1f} MB")


@main.command(context_settings={"ignore_unknown_options": True}, add_help_option=False)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def bench(args):
    """Run the benchmarks in bench/ (a repository checkout): `lume-v6 bench --help` lists them."""
    repo = Path(__file__).resolve().parent.parent
    if not (repo / "bench" / "__main__.py").is_file():
        raise click.ClickException(f"no bench/ folder next to the package in {repo}: run from a repository checkout")
    sys.exit(subprocess.call([sys.executable, "-m", "bench", *args], cwd=repo))
