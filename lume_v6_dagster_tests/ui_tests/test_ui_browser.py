"""End to end in a real browser: the UI shows the asset graph, and the sensor ingests a new folder.

Debian's Chromium, driven by Playwright (never a downloaded browser); `dagster dev` runs on a
free loopback port with a temporary DAGSTER_HOME and is killed whatever happens.
"""

import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

from lume_v6_dagster_tests.ui_tests.dagster_dev import REPO, dagster_dev

CHROMIUM = "/usr/bin/chromium"
# --single-process: on this machine Chromium's separate GPU process dies at start (error 1002).
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-dev-shm-usage", "--single-process"]
SCREENSHOTS = REPO / ".cache" / "ui-test"


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    req = urllib.request.Request(f"{url}/graphql", data=body, headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=30).read())["data"]


PARTITIONS = """{ partitionSetsOrError(repositorySelector: {repositoryName: "__repository__", repositoryLocationName: "lume_v6_dagster"}, pipelineName: "ingest_track") {
  ... on PartitionSets { results { name partitionsOrError { ... on Partitions { results { name } } } } } } }"""
RUNS = """query($track: String!) { runsOrError(filter: {tags: [{key: "dagster/partition", value: $track}]}) {
  ... on Runs { results { runId status } } } }"""


def wait_for(what: str, fn, timeout: float):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = fn()
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def test_asset_graph_in_browser_and_sensor_ingests_a_new_folder(tmp_path, sim_root):
    from playwright.sync_api import sync_playwright

    home, captures, artifacts = tmp_path / "home", tmp_path / "captures", tmp_path / "artifacts"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    shutil.copytree(sim_root / "s01-sky-garden", captures / "s01-sky-garden")
    env = {**os.environ, "DAGSTER_HOME": str(home), "LUME_CAPTURE_ROOT": str(captures), "LUME_ARTIFACT_ROOT": str(artifacts),
           "LUME_SETTLE_SECONDS": "0"}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with dagster_dev(env, tmp_path / "dagster_dev.log") as url:
        first = "s01-sky-garden"
        wait_for("the sensor to add the first partition", lambda: first in _partitions(url), 240)

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1600, "height": 1000})
            try:
                _check_pages(page, url)
            finally:
                page.screenshot(path=str(SCREENSHOTS / "last_page.png"), full_page=True)
                print(f"screenshot: {SCREENSHOTS / 'last_page.png'}")
                browser.close()

        new = "s02-turquoise-alcove"  # a capture lands on the disk
        shutil.copytree(sim_root / new, captures / f".{new}.copying")
        os.rename(captures / f".{new}.copying", captures / new)
        wait_for("the sensor to add the new partition", lambda: new in _partitions(url), 240)
        status = wait_for("the new track's run to finish", lambda: _finished(url, new), 420)
        assert status == "SUCCESS", f"ingest run for {new} ended {status}"
        assert (artifacts / "tracks" / new / "pairs.npz").exists()


def _check_pages(page, url: str) -> None:
    """The lineage graph shows the three groups, the catalog the assets, the partitions view the track."""
    page.goto(f"{url}/asset-groups", wait_until="networkidle", timeout=120_000)
    skip = page.get_by_role("button", name="Skip")  # first-visit newsletter dialog
    if skip.count():
        skip.first.click()
    for group in ("capture", "training", "release"):
        page.get_by_text(group, exact=True).first.wait_for(timeout=60_000)
    shot = SCREENSHOTS / "asset_graph.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"screenshot: {shot}")
    page.goto(f"{url}/assets", wait_until="networkidle", timeout=120_000)
    for name in ("raw_capture", "validated_capture", "track_pairs", "encoder_flow_v6", "acceptance_report"):
        page.get_by_text(name, exact=True).first.wait_for(timeout=60_000)
    page.screenshot(path=str(SCREENSHOTS / "catalog.png"), full_page=True)
    page.goto(f"{url}/assets/raw_capture?view=partitions", wait_until="networkidle", timeout=120_000)
    page.get_by_text("1 partition", exact=False).first.wait_for(timeout=60_000)
    page.get_by_text("s01-sky-garden", exact=True).first.wait_for(timeout=60_000)


def _partitions(url: str) -> set[str]:
    sets = graphql(url, PARTITIONS)["partitionSetsOrError"].get("results", [])
    return {p["name"] for s in sets for p in s["partitionsOrError"].get("results", [])}


def _finished(url: str, track: str) -> str | None:
    runs = graphql(url, RUNS, {"track": track})["runsOrError"].get("results", [])
    done = [r["status"] for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
    return done[0] if done else None
