"""End to end in a real browser, the way the user works: the sensor ingests, a click materializes.

Debian's Chromium, driven by Playwright (never a downloaded browser), on `dagster dev` on a
free loopback port with a temporary DAGSTER_HOME, killed whatever happens. The capture
sensor ingests the folders; the Automation page shows the sensor and the schedule running;
one track is rebuilt from its Materialize dialog and `train` (tiny profile) is launched from
its job page; the acceptance report's plots show inline in the UI; in the report itself every
clip plays and every image renders.
"""

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg

from lume_v6_dagster import capacity
from lume_v6_dagster_tests.ui_tests.dagster_dev import REPO, dagster_dev

CHROMIUM = "/usr/bin/chromium"
# --single-process: on this machine Chromium's separate GPU process dies at start (error 1002).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage", "--single-process",
                 "--autoplay-policy=no-user-gesture-required"]
SCREENSHOTS = REPO / ".cache" / "ui-test"
# Two modes, two tracks each (one to train on, one to validate: the split refuses a mode with one); s06 lands while the UI runs.
FIRST = ["s01-sky-garden", "s02-turquoise-alcove", "s07-turquoise-alcove"]
LATE = "s06-sky-garden"
REBUILT = "s01-sky-garden"


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())["data"]


PARTITIONS = """{ partitionSetsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "lume_v6_dagster"}, pipelineName: "ingest_track") {
  ... on PartitionSets { results { name partitionsOrError { ... on Partitions { results { name } } } } } } }"""
RUNS = """query($tags: [ExecutionTag!]) { runsOrError(filter: {tags: $tags}) { ... on Runs { results { runId status jobName } } } }"""
TRAIN_RUNS = """{ runsOrError(filter: {pipelineName: "train"}) { ... on Runs { results { runId status } } } }"""
DONE = ("SUCCESS", "FAILURE", "CANCELED")


def wait_for(what: str, fn, timeout: float):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _partitions(url: str) -> set[str]:
    sets = graphql(url, PARTITIONS)["partitionSetsOrError"].get("results", [])
    return {p["name"] for s in sets for p in s["partitionsOrError"].get("results", [])}


def _runs(url: str, track: str) -> list[dict]:
    return graphql(url, RUNS, {"tags": [{"key": "dagster/partition", "value": track}]})["runsOrError"].get("results", [])


def _all_ingested(url: str, tracks: list[str]) -> bool:
    statuses = [[r["status"] for r in _runs(url, t)] for t in tracks]
    failed = [t for t, s in zip(tracks, statuses) if "FAILURE" in s]
    assert not failed, f"ingest failed for {failed}"
    return all("SUCCESS" in s for s in statuses)


def test_the_user_works_in_the_ui(tmp_path, sim_root):
    from playwright.sync_api import sync_playwright

    home, captures, artifacts = tmp_path / "home", tmp_path / "captures", tmp_path / "artifacts"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    for track in FIRST:
        shutil.copytree(sim_root / track, captures / track)
    env = {**os.environ, "DAGSTER_HOME": str(home), "LUME_CAPTURE_ROOT": str(captures), "LUME_ARTIFACT_ROOT": str(artifacts),
           "LUME_SETTLE_SECONDS": "0", "LUME_TRAINING_PROFILE": "tiny", "LUME_TRAINING_THREADS": "1",
           "LUME_INGEST_PARALLEL": "3"}  # a host of three cores: more than the two runs the instance once allowed
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    pools = subprocess.run([str(Path(sys.executable).parent / "lume-v6"), "pools"], cwd=REPO, env=env, capture_output=True, text=True)
    assert pools.returncode == 0 and "pool ingest: 3 at once" in pools.stdout, pools.stdout + pools.stderr  # what `make ui` does first
    with dagster_dev(env, tmp_path / "dagster_dev.log") as url:
        wait_for("the sensor to add the first partitions", lambda: set(FIRST) <= _partitions(url), 240)
        shutil.copytree(sim_root / LATE, captures / f".{LATE}.copying")  # a capture lands on the disk
        os.rename(captures / f".{LATE}.copying", captures / LATE)
        wait_for("the sensor's ingest runs", lambda: _all_ingested(url, [*FIRST, LATE]), 600)
        with dg.DagsterInstance.from_config(str(home)) as instance:  # the pools whose slots the daemon's runs claim
            assert capacity.pool_limit(instance, capacity.INGEST_POOL) == 3
            assert capacity.pool_limit(instance, capacity.TRAINING_POOL) == capacity.training_slots(0, 1, "cpu", capacity.cores())

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            try:
                _check_graph_and_catalog(page, url)
                _check_automation_is_running(page, url)
                _materialize_one_track(page, url)
                _launch_train(page, url)
                _check_inline_plots(page, url)
                _check_report_media(page, url)
            finally:
                page.screenshot(path=str(SCREENSHOTS / "last_page.png"), full_page=True)
                print(f"screenshots: {SCREENSHOTS}")
                browser.close()


def _open(page, url: str, path: str) -> None:
    page.goto(f"{url}{path}", wait_until="networkidle", timeout=120_000)
    skip = page.get_by_role("button", name="Skip")  # first-visit newsletter dialog
    if skip.count():
        skip.first.click()


def _check_graph_and_catalog(page, url: str) -> None:
    _open(page, url, "/asset-groups")
    for group in ("capture", "training", "release"):
        page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "asset_graph.png"), full_page=True)
    _open(page, url, "/assets")
    for name in ("raw_capture", "track_pairs", "encoder_flow_v6", "listening_previews", "acceptance_report"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)


def _check_automation_is_running(page, url: str) -> None:
    _open(page, url, "/automation")
    for name in ("capture_sensor", "overnight_training"):
        row = page.locator("div[data-index]").filter(has=page.get_by_role("link", name=re.compile(name)))
        row.first.wait_for(timeout=60_000)
        assert row.locator("input[type=checkbox]").last.is_checked(), f"{name} is not running"
    page.screenshot(path=str(SCREENSHOTS / "automation.png"), full_page=True)


def _materialize_one_track(page, url: str) -> None:
    """Asset page -> Materialize... -> pick one partition -> launch; the run must succeed."""
    before = {r["runId"] for r in _runs(url, REBUILT)}
    _open(page, url, "/assets/track_pairs")
    page.get_by_role("button", name="Materialize…").first.click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("Select a partition or create one").click()
    page.keyboard.type(REBUILT)
    page.get_by_role("menuitem", name=REBUILT).first.click()
    page.screenshot(path=str(SCREENSHOTS / "materialize_dialog.png"), full_page=True)
    dialog.get_by_role("button", name=re.compile(r"^Launch")).click()
    run = wait_for("the rebuild to finish", lambda: next((r for r in _runs(url, REBUILT) if r["runId"] not in before and r["status"] in DONE), None), 300)
    assert run["status"] == "SUCCESS", run


def _launch_train(page, url: str) -> None:
    _open(page, url, "/locations/lume_v6_dagster/jobs/train")
    page.get_by_role("button", name="Materialize all").click()
    run = wait_for("train to finish", lambda: next((r for r in graphql(url, TRAIN_RUNS)["runsOrError"]["results"] if r["status"] in DONE), None), 900)
    assert run["status"] == "SUCCESS", run


def _check_inline_plots(page, url: str) -> None:
    """The report's plots sit in acceptance_report's metadata as images, not as links to files."""
    _open(page, url, "/assets/acceptance_report")
    row = page.get_by_role("row").filter(has=page.get_by_text("plots", exact=True))
    row.get_by_text("[Show Markdown]").click()
    image = page.get_by_role("dialog").locator("img").first
    image.wait_for(timeout=60_000)
    assert image.evaluate("img => img.complete && img.naturalWidth > 0")
    page.screenshot(path=str(SCREENSHOTS / "acceptance_report_plots.png"), full_page=True)


def _check_report_media(page, url: str) -> None:
    """In report.html, every clip loads (duration > 1 s) and every image renders."""
    event = graphql(url, """{ assetOrError(assetKey: {path: ["acceptance_report"]}) { ... on Asset { assetMaterializations(limit: 1) {
        metadataEntries { label ... on PathMetadataEntry { path } } } } } }""")["assetOrError"]["assetMaterializations"][0]
    report = Path(next(e["path"] for e in event["metadataEntries"] if e["label"] == "report_html"))
    page.goto(report.as_uri(), wait_until="load")
    audio = page.locator("audio")
    assert audio.count() == 12  # 5 modes, 5 emotions, V5, the reference
    durations = page.evaluate("""() => Promise.all([...document.querySelectorAll('audio')].map(a => new Promise(done => {
        if (a.readyState >= 1) return done(a.duration);
        a.addEventListener('loadedmetadata', () => done(a.duration)); a.addEventListener('error', () => done(-1)); a.load(); })))""")
    assert all(d > 1 for d in durations), durations
    images = page.evaluate("() => [...document.images].map(i => [i.getAttribute('src'), i.complete && i.naturalWidth > 0])")
    assert len(images) >= 15 and all(ok for _, ok in images), [src for src, ok in images if not ok]
    page.screenshot(path=str(SCREENSHOTS / "report.png"), full_page=True)
