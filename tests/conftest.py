"""Shared fixtures: an isolated landing folder and warehouse per test, and pipeline runs.

``pipeline_env`` uses the local DuckDB file unless the test's ``backend`` is "ducklake":
then the warehouse is a DuckLake whose catalog is a fresh database on a PostgreSQL server
that this session starts on 127.0.0.1. Tests in ``BOTH_BACKEND_MODULES`` run on both.
"""

from __future__ import annotations

import datetime as dt
import getpass
import glob
import hashlib
import importlib.util
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cx_pipeline import ducklake
from cx_pipeline.cli import run_range

BACKENDS = ("local", "ducklake")
# Modules whose tests using pipeline_env run once per backend.
BOTH_BACKEND_MODULES = {
    "test_survey_pipeline",
    "test_real_feedback",
    "test_real_revenue",
    "test_revenue_marts",
    "test_support_pipeline",
    "test_sentiment_pipeline",
    "test_impact_pipeline",
    "test_clv_pipeline",
}


@dataclass
class PipelineEnv:
    """Paths of one test's landing folder and warehouse, with helpers to run and read."""

    landing: Path
    warehouse: Path
    lake: ducklake.DuckLakeTarget | None = None

    def land(self, source: str, day: str, file_name: str, content: str | bytes) -> Path:
        folder = self.landing / source / day
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / file_name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path

    def run(self, first: str, last: str | None = None) -> None:
        ok = run_range(dt.date.fromisoformat(first), dt.date.fromisoformat(last or first))
        assert ok, "the Dagster run failed; see the log above"

    def query(self, sql: str, parameters: list | None = None) -> pl.DataFrame:
        """Run a read query on the warehouse: the DuckDB file, or a read-only DuckLake session."""
        if self.lake is not None:
            con = ducklake.attach(self.lake, read_only=True)
        else:
            con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, parameters or []).pl()
        finally:
            con.close()

    def execute(self, sql: str, parameters: list | None = None) -> None:
        """Run one writing statement on the warehouse, as an operator would between runs."""
        con = ducklake.attach(self.lake) if self.lake is not None else duckdb.connect(str(self.warehouse))
        try:
            con.execute(sql, parameters or [])
        finally:
            con.close()

    def table_hash(self, table: str) -> str:
        """Hash a table's full content in a fixed row and column order."""
        frame = self.query(f'SELECT * FROM "{table}" ORDER BY ALL')
        return hashlib.sha256(frame.write_ndjson().encode("utf-8")).hexdigest()


class PostgresServer:
    """A throwaway PostgreSQL server on 127.0.0.1 with trust authentication."""

    def __init__(self, bin_dir: Path, run_as: str | None) -> None:
        self.bin_dir = bin_dir
        self.run_as = run_as
        self.user = "cx"
        self.port = 0
        self.folder = Path(tempfile.mkdtemp(prefix="cx-postgres-"))
        self._names = itertools.count(1)
        self._started = False

    def _command(self, program: str, *arguments: str) -> list[str]:
        command = [str(self.bin_dir / program), *arguments]
        return ["runuser", "-u", self.run_as, "--", *command] if self.run_as else command

    def start(self) -> None:
        if self.run_as:
            # initdb refuses to run as root, so the server's files belong to run_as.
            shutil.chown(self.folder, user=self.run_as)
        data = self.folder / "data"
        subprocess.run(
            self._command("initdb", "-D", str(data), "-U", self.user, "--auth=trust", "-E", "UTF8", "--no-sync"),
            check=True, capture_output=True, text=True,
        )
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        options = f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off -c max_connections=200"
        subprocess.run(
            self._command("pg_ctl", "-D", str(data), "-o", options, "-l", str(self.folder / "server.log"), "-w", "start"),
            check=True, capture_output=True, text=True,
        )
        self._started = True

    def stop(self) -> None:
        if self._started:
            subprocess.run(
                self._command("pg_ctl", "-D", str(self.folder / "data"), "-m", "fast", "-w", "stop"),
                check=False, capture_output=True,
            )
            self._started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def create_database(self) -> str:
        """Create an empty database and return its name."""
        name = f"cx_test_{next(self._names)}"
        subprocess.run(
            [str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name],
            check=True, capture_output=True, text=True,
        )
        return name

    def ducklake_url(self, database: str) -> str:
        return f"ducklake:postgres:dbname={database} host=127.0.0.1 port={self.port} user={self.user}"



@dataclass(frozen=True)
class ObjectStore:
    """An S3-compatible server on 127.0.0.1 (moto's), for DuckLake data paths in a bucket."""

    endpoint: str

    def create_bucket(self, name: str) -> str:
        """Create a bucket and return its s3:// prefix."""
        request = urllib.request.Request(f"{self.endpoint}/{name}", method="PUT")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200, f"could not create bucket {name}: HTTP {response.status}"
        return f"s3://{name}/"


@pytest.fixture(scope="session")
def object_store() -> Iterator[ObjectStore]:
    """Start moto's S3-compatible server on 127.0.0.1 for the session; skips when moto is missing."""
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto is not installed (pip install 'moto[server]'); it serves the S3 API on loopback")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.skip(f"moto's S3 server did not start on 127.0.0.1:{port}")
                time.sleep(0.1)
        yield ObjectStore(endpoint=f"http://127.0.0.1:{port}")
    finally:
        process.terminate()
        process.wait(timeout=30)


def _postgres_user() -> str | None:
    """Return the account to run initdb and pg_ctl as: None for a non-root user, else postgres."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        created = subprocess.run(["useradd", "--system", "--no-create-home", "postgres"], capture_output=True)
        # Another test process may have created it at the same time.
        if created.returncode != 0:
            pwd.getpwnam("postgres")
    return "postgres"


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """Start PostgreSQL from the system package for the whole session; skips when unavailable."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        pytest.skip("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); apt-get install postgresql")
    try:
        ducklake.extension_file("ducklake")
        ducklake.extension_file("postgres_scanner")
    except RuntimeError as exc:
        pytest.skip(str(exc))
    try:
        run_as = _postgres_user()
    except (OSError, KeyError) as exc:
        pytest.skip(f"running as root ({getpass.getuser()}) but could not create the postgres user: {exc}")
    server = PostgresServer(Path(found[-1]).parent, run_as)
    try:
        server.start()
    except (OSError, subprocess.CalledProcessError) as exc:
        output = getattr(exc, "stderr", "") or ""
        server.stop()
        pytest.skip(f"could not start PostgreSQL from {server.bin_dir}: {exc} {output.strip()}")
    try:
        yield server
    finally:
        server.stop()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Run every pipeline_env test of BOTH_BACKEND_MODULES on the local file and on DuckLake."""
    module = metafunc.module.__name__.rsplit(".", 1)[-1]
    if module in BOTH_BACKEND_MODULES and "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """The warehouse backend of pipeline_env: "local" unless a test parametrizes it."""
    return getattr(request, "param", "local")


@pytest.fixture
def pipeline_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, request: pytest.FixtureRequest
) -> Iterator[PipelineEnv]:
    env = PipelineEnv(landing=tmp_path / "landing", warehouse=tmp_path / "cx.duckdb")
    monkeypatch.setenv("CX_LANDING_DIR", str(env.landing))
    monkeypatch.setenv("CX_WAREHOUSE_PATH", str(env.warehouse))
    monkeypatch.delenv(ducklake.URL_VARIABLE, raising=False)
    monkeypatch.delenv(ducklake.DATA_PATH_VARIABLE, raising=False)
    if backend == "ducklake":
        server: PostgresServer = request.getfixturevalue("postgres_server")
        url = server.ducklake_url(server.create_database())
        monkeypatch.setenv(ducklake.URL_VARIABLE, url)
        monkeypatch.setenv(ducklake.DATA_PATH_VARIABLE, str(tmp_path / "lake"))
        env.lake = ducklake.target_from_env()
    elif backend != "local":
        raise ValueError(f"unknown backend {backend!r}; use one of {BACKENDS}")
    monkeypatch.delenv("CX_CONFIG", raising=False)
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    yield env


@pytest.fixture
def real_data_dir() -> Path:
    """The folder of public data sets, from CX_REAL_DATA_DIR; skips the test when absent."""
    value = os.environ.get("CX_REAL_DATA_DIR")
    if not value:
        pytest.skip("CX_REAL_DATA_DIR is not set; it points at the folder of public data sets")
    path = Path(value)
    if not path.is_dir():
        pytest.skip(f"CX_REAL_DATA_DIR={value} is not a folder")
    return path
