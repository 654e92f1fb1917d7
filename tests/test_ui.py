"""Dagster UI: `dagster dev` on a loopback port, a headless Chromium screenshot of the asset
catalog, and one partition materialized through the webserver's GraphQL API."""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from cx_pipeline.demo import DEMO_START, generate_demo_landing

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PARTITION = (DEMO_START + dt.timedelta(days=2)).isoformat()

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
  }
}
"""

RUN_STATUS = """
query Status($runId: ID!) {
  runOrError(runId: $runId) { __typename ... on Run { status } }
}
"""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _graphql(url: str, query: str, variables: dict) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables}).encode("utf-8"),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, f"GraphQL error: {body['errors']}"
    return body["data"]


def _wait_until_up(url: str, server: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, f"dagster dev exited with code {server.returncode}"
        try:
            with urllib.request.urlopen(f"{url}/server_info", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"dagster dev did not answer on {url} within {timeout} s")


def _stop(process: subprocess.Popen) -> None:
    """Stop a process started in its own session, and every process it started."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("CX_TEST_ARTIFACTS") or tmp_path / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def webserver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    landing = tmp_path / "landing"
    warehouse = tmp_path / "cx.duckdb"
    generate_demo_landing(landing, days=5)
    home = tmp_path / "dagster_home"
    home.mkdir()
    # Without this, a fresh instance greets the first visit with a sign-up dialog over the catalog.
    (home / "dagster.yaml").write_text("nux:\n  enabled: false\ntelemetry:\n  enabled: false\n", encoding="utf-8")
    port = _free_port()
    env = os.environ | {
        "DAGSTER_HOME": str(home),
        "CX_LANDING_DIR": str(landing),
        "CX_WAREHOUSE_PATH": str(warehouse),
        "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    env.pop("CX_CONFIG", None)
    env.pop("CX_PUBLISH_PATH", None)
    log = (tmp_path / "dagster_dev.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster", "dev", "-w", str(REPO / "workspace.yaml"),
         "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, server)
        yield url, warehouse
    finally:
        _stop(server)
        log.close()


def _screenshot(url: str, path: Path, profile: Path) -> None:
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        f"--user-data-dir={profile}", "--virtual-time-budget=15000", f"--screenshot={path}",
        "--window-size=1400,900", url,
    ]
    browser = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        browser.wait(timeout=120)
    finally:
        _stop(browser)


def test_ui_catalog_and_partition_run(webserver: tuple[str, Path], artifacts: Path, tmp_path: Path) -> None:
    url, warehouse = webserver

    screenshot = artifacts / "asset_catalog.png"
    _screenshot(f"{url}/assets", screenshot, tmp_path / "chromium_profile")
    assert screenshot.is_file(), "chromium wrote no screenshot"
    assert screenshot.stat().st_size > 20_000, f"screenshot {screenshot} is nearly empty"

    params = {
        "selector": {
            "repositoryLocationName": "cx_pipeline",
            "repositoryName": "__repository__",
            "jobName": "cx_daily_job",
        },
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": PARTITION}]},
    }
    launched = _graphql(url, LAUNCH_RUN, {"params": params})["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", f"launchRun failed: {launched}"
    run_id = launched["run"]["runId"]

    deadline = time.monotonic() + 300
    status = "STARTING"
    while time.monotonic() < deadline and status not in {"SUCCESS", "FAILURE", "CANCELED"}:
        time.sleep(2)
        status = _graphql(url, RUN_STATUS, {"runId": run_id})["runOrError"]["status"]
    assert status == "SUCCESS", f"run {run_id} ended with status {status}"

    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        rows = con.execute(
            "SELECT count(*) FROM raw_feedback WHERE _partition_date = ?", [dt.date.fromisoformat(PARTITION)]
        ).fetchone()[0]
        days = con.execute("SELECT count(DISTINCT _partition_date) FROM raw_feedback").fetchone()[0]
    finally:
        con.close()
    assert rows > 0, f"raw_feedback has no rows of partition {PARTITION}"
    assert days == 1, "only the launched partition should be loaded"
