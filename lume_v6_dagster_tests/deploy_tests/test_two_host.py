"""The two-host deployment for real: PostgreSQL instance, Redis broker, a mac4 and a mac5 Celery worker.

Runs go through the Celery executor (never execute_in_process, which ignores it); where each
step ran is read back from the instance in PostgreSQL.
"""

import json
import os
import shutil
import shlex
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import torch
import yaml

from lume_v6_dagster import capacity, contract, runs
from lume_v6_dagster.assets.release import TRAIN_COMMAND, training_config
from lume_v6_dagster.dataset import DatasetSplit, load_arrays
from lume_v6_dagster.partitions import tracks
from lume_v6_dagster.training.flow_training import train_flow
from lume_v6_dagster.training.profiles import get_profile
from lume_v6_dagster_tests.conftest import overlapping
from lume_v6_dagster_tests.deploy_tests.conftest import TRACKS
from lume_v6_dagster_tests.ui_tests.dagster_dev import REPO

TRAINING = ("san_v6", "encoder_flow_v6", "v5_baseline")
INGEST = ("raw_capture", "validated_capture", "track_pairs")


@pytest.fixture
def on(two_host, monkeypatch):
    """This test process as a Mac4 client of the shared instance."""
    for key, value in two_host.env.items():
        monkeypatch.setenv(key, value)
    with dg.DagsterInstance.get() as instance:
        yield instance


def latest(instance, key: str, partition: str | None = None) -> dict:
    event = instance.get_latest_materialization_event(dg.AssetKey(key)) if partition is None else next(
        e for e in instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=dg.AssetKey(key), asset_partitions=[partition]), limit=1).records)
    entry = event if partition is None else event.event_log_entry
    return {k: v.value for k, v in entry.asset_materialization.metadata.items()}


def test_ingest_on_mac4_and_training_on_mac5_read_back_from_postgres(two_host, on):
    instance = on
    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    instance.add_dynamic_partitions(tracks.name, list(TRACKS))
    for track in TRACKS:
        run = runs.execute("ingest_track", instance, tags={"dagster/partition": track}, through_executor=True)
        assert run.status == dg.DagsterRunStatus.SUCCESS, run.run_id
    train = runs.execute("train", instance, through_executor=True)
    assert train.status == dg.DagsterRunStatus.SUCCESS, train.run_id
    for track in TRACKS:
        for key in INGEST:
            assert latest(instance, key, track)["worker"].startswith("mac4@"), (key, track)
    for key in TRAINING:
        assert latest(instance, key)["worker"].startswith("mac5@"), key
    for key in ("dataset_split", "coreml_packages", "acceptance_report", "release_bundle"):
        assert latest(instance, key)["worker"].startswith("mac4@"), key
    report = Path(latest(instance, "acceptance_report")["report_html"]).read_text()
    assert "trained on (encoder_flow_v6): <code>mac5@" in report
    # The reproduction command fixes profile and seed in run config, which reaches the worker.
    reproduce = json.loads(Path(latest(instance, "acceptance_report")["gates_json"]).read_text())["provenance"]["reproduce"]
    config = Path(shlex.split(reproduce.split(" -c ")[1])[0])
    assert reproduce.split(" -c ")[0].endswith(TRAIN_COMMAND) and yaml.safe_load(config.read_text()) == training_config("tiny", 0, "cpu", 1)
    # Mac5's worker sized the training pool from its host (two steps) and runs that many at once: two
    # models trained side by side, never the third beside them.
    assert capacity.pool_limit(instance, capacity.TRAINING_POOL) == 2
    assert "ready: queue mac5, 2 steps at once (pool training)" in two_host.log("mac5")
    stats = {s.step_key: s for s in instance.get_run_step_stats(train.run_id) if s.step_key in TRAINING}
    assert len(stats) == 3 and overlapping([(s.start_time, s.end_time) for s in stats.values()]) == 2, stats


def test_worker_killed_mid_training_resumes_from_its_checkpoint_with_identical_weights(two_host, on):
    """SIGKILL mac5 while encoder_flow_v6 trains; the step waits, then a new mac5 worker resumes it."""
    instance = on
    # Seed 7: a run folder of its own. Run config reaches the worker; the launcher's environment does not.
    config = json.dumps(training_config("tiny", 7))
    log = two_host.logs / "train-sigkill.log"
    with open(log, "w") as out:
        train = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "lume_v6_dagster.definitions",
                                  "--select", "encoder_flow_v6", "--config-json", config],
                                 cwd=REPO, env=two_host.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        folder = _wait_for_first_checkpoint(Path(two_host.env["LUME_ARTIFACT_ROOT"]), train, log)
        two_host.kill_worker("mac5")
        assert not (folder / "model.pt").exists(), "training finished before the kill: nothing was interrupted"
        time.sleep(3)
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.STARTED and train.poll() is None  # waiting for a mac5 worker
        two_host.start_worker("mac5")
        assert train.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if train.poll() is None:
            os.killpg(train.pid, 9)
    logs = [e.user_message for e in instance.all_logs(run.run_id) if e.step_key == "encoder_flow_v6"]
    assert any(m.startswith("resumed from epoch") for m in logs), logs
    split = DatasetSplit.load(Path(latest(instance, "dataset_split")["split_path"]))
    torch.set_num_threads(1)
    reference = train_flow(load_arrays(split, split.train), load_arrays(split, split.val), split.stats, get_profile("tiny"), 7,
                           two_host.root / "reference-ckpt", contract.CONDITIONING_DIM, log=lambda _: None)
    shipped = torch.load(folder / "model.pt", weights_only=True)
    for name, module in (("encoder", reference.encoder), ("flow", reference.flow)):
        assert all(torch.equal(shipped[name][k], v) for k, v in module.state_dict().items()), name


def _wait_for_first_checkpoint(artifacts: Path, proc, log: Path, timeout: float = 300) -> Path:
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list((artifacts / "training" / "encoder_flow_v6").glob("*-tiny-seed7-code*/checkpoints/epoch_0001.pt"))
        if found:
            return found[0].parent.parent
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.01)
    raise AssertionError(f"no first checkpoint of encoder_flow_v6 within {timeout:.0f} s; see {log}")


@pytest.mark.parametrize("change, names", [
    ({"LUME_BROKER_URL": "redis://127.0.0.1:1/0"}, "the broker (redis://127.0.0.1:1/0) cannot be reached"),
    ({"LUME_PG_PORT": "1"}, "the Dagster instance (PostgreSQL at 127.0.0.1:1) cannot be reached"),
    ({"LUME_PG_PASSWORD": "wrong"}, "password authentication failed"),
    ({"LUME_CAPTURE_ROOT": "/Volumes/HD1/not-mounted"}, "the capture root /Volumes/HD1/not-mounted does not exist here"),
])
def test_worker_refuses_to_start_naming_what_it_cannot_reach(two_host, change, names):
    start = time.time()
    done = subprocess.run([str(Path(sys.executable).parent / "lume-v6"), "worker", "--name", "mac9", "--queue", "mac9"],
                          cwd=REPO, env={**two_host.env, **change}, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and names in done.stderr + done.stdout, done.stderr[-2000:]
    assert time.time() - start < 60  # fails fast


def test_a_run_with_the_broker_down_fails_instead_of_hanging(two_host, on, monkeypatch):
    monkeypatch.setenv("LUME_BROKER_URL", "redis://127.0.0.1:1/0")
    start = time.time()
    run = runs.execute("ingest_track", on, tags={"dagster/partition": TRACKS[0]}, through_executor=True)
    assert run.status == dg.DagsterRunStatus.FAILURE and time.time() - start < 120


def test_launching_a_run_with_postgres_down_fails_fast_naming_it(tmp_path):
    """No instance, no run: the command stops within seconds, naming the database it tried."""
    env = {**os.environ, "LUME_DEPLOYMENT": "two-host", "DAGSTER_HOME": str(tmp_path), "LUME_PG_HOST": "127.0.0.1", "LUME_PG_PORT": "1",
           "LUME_PG_USER": "lume", "LUME_PG_PASSWORD": "x", "LUME_PG_DB": "lume_v6", "LUME_BROKER_URL": "redis://127.0.0.1:1/0"}
    shutil.copy(REPO / "dagster.two-host.yaml", tmp_path / "dagster.yaml")
    command = shlex.split(TRAIN_COMMAND)
    start = time.time()
    done = subprocess.run([str(Path(sys.executable).parent / command[0]), *command[1:]], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and 'connection to server at "127.0.0.1", port 1 failed' in done.stderr, done.stderr[-2000:]
    assert time.time() - start < 60
