"""The two-host deployment for real: PostgreSQL instance, Redis broker, a mac4 and a mac5 Celery worker.

Mac4 and Mac5 are network namespaces with their own hostnames, homes and working directories
(conftest.py). Runs go through the Celery executor (never execute_in_process, which ignores
it); where each step ran is read back from the instance in PostgreSQL.
"""

import json
import os
import shutil
import shlex
import signal
import stat
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
from lume_v6_dagster_tests.ui_tests.dagster_dev import REPO, kill_session

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
    assert type(instance.run_storage).__name__ == "PatientRunStorage"  # PostgreSQL, waiting out a restart
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
    _mac5_output_is_readable_from_mac4(two_host, instance, train.run_id)
    _no_password_printed_or_stored(two_host, instance)


def _mac5_output_is_readable_from_mac4(two_host, instance, run_id: str) -> None:
    """Files keep the umask (0644, not tempfile's 0600); Mac4's instance reads Mac5's captured stdout/stderr."""
    model = Path(latest(instance, "encoder_flow_v6")["run_dir"]) / "model.pt"
    assert stat.S_IMODE(model.stat().st_mode) == 0o644, oct(model.stat().st_mode)
    captured = [e.dagster_event.logs_captured_data for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.LOGS_CAPTURED)
                if "encoder_flow_v6" in (e.dagster_event.logs_captured_data.step_keys or [])]
    assert captured, "no captured logs for encoder_flow_v6"
    key = instance.compute_log_manager.build_log_key_for_run(run_id, captured[0].file_key)
    assert instance.compute_log_manager.is_capture_complete(key), f"Mac4 cannot read what encoder_flow_v6 printed on Mac5 ({key})"
    assert list((Path(two_host.env["LUME_COMPUTE_LOG_DIR"]) / run_id).rglob("*.err")), "no stderr of the run on the shared root"
    assert not list((two_host.root / "mac5" / "home").rglob("*.err")), "Mac5 kept compute logs on its own disk"


def _no_password_printed_or_stored(two_host, instance) -> None:
    """The services' password is in no file of either host, no log, no stored run config."""
    secret = two_host.services.password.encode()
    places = [two_host.root / "mac4", two_host.root / "mac5", two_host.root / "artifacts", two_host.logs]
    leaks = [str(f) for place in places for f in place.rglob("*") if f.is_file() and secret in f.read_bytes()]
    assert not leaks, leaks
    assert all(secret.decode() not in json.dumps(r.run_config) for r in instance.get_runs(limit=50))


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
        folder = _wait_for_first_checkpoint(two_host, train, log)
        two_host.kill_worker("mac5")
        assert not (folder / "model.pt").exists(), "training finished before the kill: nothing was interrupted"
        time.sleep(3)
        run = instance.get_runs(limit=1)[0]
        assert run.status == dg.DagsterRunStatus.STARTED and train.poll() is None  # waiting for a mac5 worker
        two_host.start_worker("mac5")
        back = time.time()
        assert train.wait(timeout=300) == 0, log.read_text()[-3000:]
        finished = time.time() - back
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
    print(f"worker killed: the run ended {finished:.1f} s after a new mac5 worker started, resumed, weights identical")


def _wait_for_first_checkpoint(two_host, proc, log: Path, timeout: float = 300, seed: int = 7, profile: str = "tiny") -> Path:
    runs_root = Path(two_host.env["LUME_ARTIFACT_ROOT"]) / "training" / "encoder_flow_v6"
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = list(runs_root.glob(f"*-{profile}-seed{seed}-code*/checkpoints/epoch_0001.pt"))
        if found:
            return found[0].parent.parent
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.01)
    raise AssertionError(f"no first checkpoint of encoder_flow_v6 within {timeout:.0f} s; see {log}\n{_where_the_step_is(two_host)}")


def _where_the_step_is(two_host) -> str:
    """What to read when a step never starts: the training queue, unacknowledged messages, Mac5's last log lines."""
    import redis

    try:
        broker = _broker(two_host)
        queue = f"queue mac5: {broker.llen('mac5')} waiting, {broker.hlen('unacked')} unacknowledged in all"
    except redis.RedisError as exc:
        queue = f"the broker: {exc}"
    worker_log = two_host.log_file("mac5")
    return f"{queue}\nmac5 worker ({worker_log}):\n{worker_log.read_text()[-3000:]}"


@pytest.mark.parametrize("change, names", [
    ({"LUME_BROKER_URL": "redis://127.0.0.1:1/0"}, "the broker (redis://127.0.0.1:1/0) cannot be reached"),
    ({"LUME_PG_PORT": "1"}, ":1) cannot be reached: connection to server at"),  # the instance, on Mac4's address
    ({"LUME_PG_PASSWORD": "wrong"}, "password authentication failed"),
    ({"LUME_CAPTURE_ROOT": "/Volumes/HD1/not-mounted"}, "the capture root /Volumes/HD1/not-mounted does not exist here"),
    ({"LUME_ARTIFACT_ROOT": "data/artifacts"}, "LUME_ARTIFACT_ROOT=data/artifacts: two hosts need an absolute path"),
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


def _materialize(two_host, select: str, seed: int, log_name: str, profile: str = "tiny", on_mac4: bool = False,
                 env: dict | None = None) -> subprocess.Popen:
    """`dagster asset materialize` on the Mac4 client (or on Mac4 itself): a run through the Celery executor, with its own seed."""
    log = two_host.logs / log_name
    prefix = two_host.network.on("mac4") if on_mac4 else ()
    with open(log, "w") as out:
        return subprocess.Popen([*prefix, str(Path(sys.executable).parent / "dagster"), "asset", "materialize", "-m", "lume_v6_dagster.definitions",
                                 "--select", select, "--config-json", json.dumps(training_config(profile, seed))],
                                cwd=REPO, env={**two_host.env, **(env or {})}, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def _started_run(instance, proc, log: Path) -> dg.DagsterRun:
    return _wait(lambda: next((r for r in instance.get_runs(limit=1) if r.status == dg.DagsterRunStatus.STARTED), None),
                 proc, log, 120, "no run started")


def _deliveries(instance, run_id: str, step: str) -> list[str]:
    """The workers that started `step` of the run, in order ("Executing steps" engine events)."""
    return [e.dagster_event.engine_event_data.metadata["Celery worker"].value
            for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
            if e.step_key == step and "Executing steps" in (e.dagster_event.message or "")]


def _wait(predicate, proc, log: Path, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if value := predicate():
            return value
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.1)
    raise AssertionError(f"{what} within {timeout:.0f} s; see {log}")


def test_a_step_that_kills_its_worker_process_every_time_fails_the_run_naming_it(two_host, on):
    """Each delivery of encoder_flow_v6 loses its process (as to the OOM killer); after LUME_MAX_DELIVERIES=2 the run fails."""
    import psutil

    instance = on
    train = _materialize(two_host, "encoder_flow_v6", 9, "train-oom.log")
    log = two_host.logs / "train-oom.log"
    try:
        run_id = _started_run(instance, train, log).run_id
        for delivery in (1, 2):
            _wait(lambda: len(_deliveries(instance, run_id, "encoder_flow_v6")) >= delivery, train, log, 120, f"no delivery {delivery}")
            for child in psutil.Process(two_host.celery_pid("mac5")).children():
                child.kill()
        assert train.wait(timeout=180) != 0
    finally:
        if train.poll() is None:
            os.killpg(train.pid, 9)
    run = instance.get_run_by_id(run_id)
    failure = "\n".join(str(e.dagster_event.event_specific_data) for e in instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE))
    failure += "\n".join(e.user_message + str(getattr(e.dagster_event, "event_specific_data", "")) for e in instance.all_logs(run_id))
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert "step encoder_flow_v6: its worker process died in each of its 2 deliveries" in failure, failure[-3000:]
    assert len(_deliveries(instance, run_id, "encoder_flow_v6")) == 2  # the third delivery refused itself before running the step
    assert instance.event_log_storage.get_concurrency_info(capacity.TRAINING_POOL).active_slot_count == 0


def test_a_second_worker_starting_while_a_paused_one_trains_never_runs_its_step_again(two_host, on):
    """mac5's Celery stopped (SIGSTOP) mid-step answers nobody; mac5b starting on the same queue must leave its step alone."""
    instance = on
    train = _materialize(two_host, "encoder_flow_v6", 8, "train-paused.log")
    log = two_host.logs / "train-paused.log"
    celery = two_host.celery_pid("mac5")
    try:
        folder = _wait_for_first_checkpoint(two_host, train, log, seed=8)
        os.kill(celery, signal.SIGSTOP)
        try:
            two_host.start_worker("mac5b")
            time.sleep(5)  # time for a wrongly re-queued step to reach mac5b
        finally:
            os.kill(celery, signal.SIGCONT)
        assert train.wait(timeout=300) == 0, log.read_text()[-3000:]
    finally:
        if train.poll() is None:
            os.killpg(train.pid, 9)
        if "mac5b" in two_host.workers:
            two_host.kill_worker("mac5b")
    run = instance.get_runs(limit=1)[0]
    assert _deliveries(instance, run.run_id, "encoder_flow_v6") == ["mac5@mac5"], "the step ran twice"
    assert (folder / "model.pt").exists()


def _training_slots_held(instance) -> int:
    return instance.event_log_storage.get_concurrency_info(capacity.TRAINING_POOL).active_slot_count


def test_terminating_a_run_ends_its_training_step_on_mac5_within_seconds(two_host, on):
    """As the UI's Terminate does (the launcher marks the run CANCELING and interrupts its process): Mac5 stops training."""
    instance = on
    train = _materialize(two_host, "encoder_flow_v6", 12, "train-terminate.log", profile="full")
    log = two_host.logs / "train-terminate.log"
    try:
        run = _started_run(instance, train, log)
        folder = _wait_for_first_checkpoint(two_host, train, log, seed=12, profile="full")
        instance.report_run_canceling(run)
        os.kill(train.pid, signal.SIGINT)
        start = time.time()
        train.wait(timeout=30)
        ended = time.time() - start
    finally:
        if train.poll() is None:
            os.killpg(train.pid, 9)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.CANCELED
    assert ended < 20, f"the run took {ended:.0f} s to end after Terminate"
    checkpoints = sorted((folder / "checkpoints").glob("*.pt"))
    time.sleep(5)
    assert sorted((folder / "checkpoints").glob("*.pt")) == checkpoints and not (folder / "model.pt").exists(), "Mac5 kept training"
    assert _training_slots_held(instance) == 0
    assert len(_deliveries(instance, run.run_id, "encoder_flow_v6")) == 1  # terminated, not handed out again
    print(f"terminate: the run ended {ended:.1f} s after Terminate; Mac5 stopped training")


RESTART_SEED = 15  # both restarts train this seed, so one undisturbed reference serves both


@pytest.fixture(scope="module")
def undisturbed(two_host):
    """The restarts' reference, started by whichever restart test runs first, trained once; killed with the module."""
    started = []

    def start(instance) -> tuple[subprocess.Popen, Path]:
        out = two_host.root / "reference-restart"
        if not started:
            started.append(_train_reference(instance, two_host, RESTART_SEED, "full", out))
        return started[0], out
    yield start
    for proc in started:
        proc.kill()


@pytest.mark.parametrize("service", ["redis", "postgres"])
def test_a_30_second_restart_of_the_broker_or_the_database_mid_training_is_survived(two_host, on, service, undisturbed):
    """Crash Redis (SIGKILL) or PostgreSQL (immediate shutdown) while encoder_flow_v6 trains on Mac5 and start it again
    30 s later: the step trains on, the run succeeds, the weights are an undisturbed run's, nothing runs twice or goes missing."""
    instance, seed = on, RESTART_SEED
    artifacts = Path(two_host.env["LUME_ARTIFACT_ROOT"])
    for earlier in (artifacts / "training" / "encoder_flow_v6").glob(f"*-full-seed{seed}-code*"):
        shutil.rmtree(earlier)  # the other restart's run: this one must train from its first epoch, not reuse it
    log = two_host.logs / f"train-{service}-restart.log"
    reference, reference_dir = undisturbed(instance)
    train = _materialize(two_host, "encoder_flow_v6", seed, log.name, profile="full")
    try:
        run = _started_run(instance, train, log)
        folder = _wait_for_first_checkpoint(two_host, train, log, seed=seed, profile="full")
        two_host.crash(service)
        down = time.time()
        try:
            assert not (folder / "model.pt").exists(), "training ended before the crash"
            time.sleep(30)
        finally:
            two_host.restart_services()
        back = time.time()
        assert train.wait(timeout=600) == 0, log.read_text()[-3000:]
        finished = time.time()
    finally:
        if train.poll() is None:
            os.killpg(train.pid, 9)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert _deliveries(instance, run.run_id, "encoder_flow_v6") == ["mac5@mac5"], "the step ran twice"
    messages = [e.user_message for e in instance.all_logs(run.run_id) if e.step_key == "encoder_flow_v6"]
    epochs = [int(m.split()[1].split("/")[0]) for m in messages if m.startswith("epoch ")]
    assert epochs == list(range(1, get_profile("full").flow_epochs + 1)), epochs  # each epoch once: none lost, none again
    assert not any(m.startswith("resumed from epoch") for m in messages)
    assert len(instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records) == 1
    assert _training_slots_held(instance) == 0
    assert two_host.workers["mac5"].poll() is None, two_host.log("mac5")[-3000:]  # the worker lives on ...
    # ... and acknowledges the step once it is back on the broker (a step that ended while Redis was down: its reconnect
    # backs off up to ~10 s, after the run, which reads its result from the backend, has ended)
    _wait(lambda: not _unacknowledged(two_host), two_host.workers["mac5"], two_host.log_file("mac5"), 30,
          "a message of the run stayed unacknowledged")
    assert "Error on restarting" not in two_host.log("mac5"), two_host.log("mac5")[-3000:]  # its consumer restarted whole
    assert reference.wait(timeout=600) == 0
    shipped, expected = (torch.load(f, weights_only=True) for f in (folder / "model.pt", reference_dir / "model.pt"))
    assert all(torch.equal(shipped[n][k], v) for n in ("encoder", "flow") for k, v in expected[n].items()), "weights differ"
    print(f"{service} restart: down {back - down:.1f} s, run ended {finished - back:.1f} s after it came back")


def test_a_broker_down_for_longer_than_the_patience_fails_the_run_naming_it_and_mac5_stops(two_host, on):
    """The run's process waits LUME_SERVICE_PATIENCE (here 5 s) for a crashed Redis, then fails; Mac5 stops training."""
    from lume_v6_dagster.celery_app import WATCH_SECONDS  # builds the workers' app: needs the two-host environment

    instance = on
    log = two_host.logs / "train-broker-gone.log"
    train = _materialize(two_host, "encoder_flow_v6", 17, log.name, profile="full", env={"LUME_SERVICE_PATIENCE": "5"})
    try:
        run = _started_run(instance, train, log)
        folder = _wait_for_first_checkpoint(two_host, train, log, seed=17, profile="full")
        two_host.crash("redis")
        try:
            assert train.wait(timeout=60) != 0
        finally:
            two_host.restart_services()
    finally:
        if train.poll() is None:
            os.killpg(train.pid, 9)
    assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
    failure = "\n".join(str(e.dagster_event.event_specific_data) for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))
    assert "the broker stayed unreachable for 5 s (LUME_SERVICE_PATIENCE)" in failure, failure[-3000:]
    _wait(lambda: _training_slots_held(instance) == 0, two_host.workers["mac5"], log, 30, "the failed run's training slot was never freed")
    stopped = _until_training_stops(folder, quiet=WATCH_SECONDS * 3)  # once its worker is back on the broker, the step is ended
    assert not (folder / "model.pt").exists(), "Mac5 trained to the end"
    assert two_host.workers["mac5"].poll() is None, two_host.log("mac5")[-3000:]
    print(f"broker gone: run failed after the patience; Mac5's step ended {stopped:.1f} s after the slot was freed")


def _until_training_stops(folder: Path, quiet: float, within: float = 90.0) -> float:
    """Seconds until the run folder's checkpoints stop growing (none new for `quiet` s)."""
    start = since = time.time()
    last = None
    while time.time() - start < within:
        now = sorted((folder / "checkpoints").glob("*.pt"))
        if now != last:
            last, since = now, time.time()
        elif time.time() - since >= quiet:
            return since - start
        time.sleep(0.5)
    raise AssertionError(f"Mac5 kept training for {within:.0f} s after its run failed")


# encoder_flow_v6's training, as the step runs it on Mac5 (one thread, CPU), in a process of its own: the reference.
REFERENCE = """import sys
from pathlib import Path
import torch
from lume_v6_dagster import contract
from lume_v6_dagster.dataset import DatasetSplit, load_arrays
from lume_v6_dagster.training.flow_training import train_flow
from lume_v6_dagster.training.profiles import get_profile
torch.set_num_threads(1)
split, out = DatasetSplit.load(Path(sys.argv[1])), Path(sys.argv[4])
done = train_flow(load_arrays(split, split.train), load_arrays(split, split.val), split.stats, get_profile(sys.argv[2]), int(sys.argv[3]),
                  out / "checkpoints", contract.CONDITIONING_DIM, log=lambda _: None)
torch.save({"encoder": done.encoder.state_dict(), "flow": done.flow.state_dict()}, out / "model.pt")
"""


def _train_reference(instance, two_host, seed: int, profile: str, out: Path) -> subprocess.Popen:
    out.mkdir(parents=True)
    split = latest(instance, "dataset_split")["split_path"]
    return subprocess.Popen([sys.executable, "-c", REFERENCE, split, profile, str(seed), str(out)], cwd=REPO, env=two_host.env)


def _broker(two_host):
    import redis

    return redis.Redis.from_url(two_host.env["LUME_BROKER_URL"])


def _unacknowledged(two_host) -> dict:
    return _broker(two_host).hgetall("unacked")


# A `train` run of encoder_flow_v6 alone, orchestrated by a process of its own on Mac4 (as the daemon's run worker is).
TRAIN_ONE = """import json, sys
import dagster as dg
from lume_v6_dagster.runs import reconstructable
job = reconstructable("train")
with dg.DagsterInstance.get() as instance:
    result = dg.execute_job(job, instance, run_config=json.loads(sys.argv[1]), asset_selection=[dg.AssetKey(sys.argv[2])])
sys.exit(0 if result.success else 1)
"""


def _train_on_mac4(two_host, seed: int, log: Path, asset: str = "encoder_flow_v6") -> subprocess.Popen:
    config = {**runs.QUIET, **training_config("full", seed)}
    with open(log, "w") as out:
        return subprocess.Popen([*two_host.network.on("mac4"), sys.executable, "-c", TRAIN_ONE, json.dumps(config), asset], cwd=REPO,
                                env=two_host.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


def test_a_run_whose_orchestrator_died_is_failed_by_run_monitoring_then_retried_from_its_checkpoint(two_host, on):
    """SIGKILL a `train` run's own process on Mac4 mid-training: the daemon's run monitoring fails it, frees its slot,
    Mac5 stops its step, and the schedule's retry resumes from the checkpoint."""
    from lume_v6_dagster.schedules import training_decision

    instance = on
    home = Path(two_host.env["DAGSTER_HOME"]) / "dagster.yaml"
    settings = yaml.safe_load(home.read_text())
    settings["run_monitoring"].update(poll_interval_seconds=2, free_slots_after_run_end_seconds=2)  # 60 and 60 in production
    home.write_text(yaml.safe_dump(settings))
    log, daemon_log = two_host.logs / "train-orphaned.log", two_host.logs / "daemon.log"
    with open(daemon_log, "w") as out:
        daemon = subprocess.Popen([*two_host.network.on("mac4"), str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", "workspace.yaml"],
                                  cwd=REPO, env=two_host.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    train = None
    try:
        _wait(lambda: "MonitoringDaemon" in daemon_log.read_text(), daemon,
              daemon_log, 120, "the daemon did not start run monitoring")
        split = _train_on_mac4(two_host, 13, two_host.logs / "train-split.log", asset="dataset_split")
        assert split.wait(timeout=120) == 0  # a new split: the models are now due, so the schedule would train tonight
        train = _train_on_mac4(two_host, 13, log)
        run = _started_run(instance, train, log)
        _wait_for_first_checkpoint(two_host, train, log, seed=13, profile="full")
        stuck = training_decision(instance)
        assert isinstance(stuck, dg.SkipReason) and "still STARTED" in stuck.skip_message, stuck
        os.killpg(train.pid, signal.SIGKILL)  # Mac4 restarts, or its run process is killed
        killed = time.time()
        _wait(lambda: instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE, daemon, daemon_log, 120,
              "run monitoring did not fail the dead run")
        failed_after = time.time() - killed
        _wait(lambda: _training_slots_held(instance) == 0, daemon, daemon_log, 60, "the dead run's training slot was never freed")
        freed_after = time.time() - killed
    finally:
        for proc in (train, daemon):
            if proc is not None and proc.poll() is None:
                kill_session(proc.pid)
    failure = " ".join(e.dagster_event.message or "" for e in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE))
    assert f"the run's process (pid {train.pid} on mac4) is gone" in failure, failure
    print(f"dead orchestrator: run failed {failed_after:.1f} s and its slot freed {freed_after:.1f} s after the kill")
    retry = training_decision(instance)
    assert isinstance(retry, dg.RunRequest) and retry.tags["lume/attempt"] == "2 of 3", retry
    again = _train_on_mac4(two_host, 13, two_host.logs / "train-retry.log")
    assert again.wait(timeout=300) == 0, (two_host.logs / "train-retry.log").read_text()[-3000:]
    newest = instance.get_runs(limit=1)[0]
    logs = [e.user_message for e in instance.all_logs(newest.run_id) if e.step_key == "encoder_flow_v6"]
    assert any(m.startswith("resumed from epoch") for m in logs), logs
