"""Shared fixtures: an isolated landing folder and warehouse per test, and pipeline runs."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import polars as pl
import pytest

from cx_pipeline.cli import run_range


@dataclass
class PipelineEnv:
    """Paths of one test's landing folder and warehouse, with helpers to run and read."""

    landing: Path
    warehouse: Path

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
        con = duckdb.connect(str(self.warehouse), read_only=True)
        try:
            return con.execute(sql, parameters or []).pl()
        finally:
            con.close()

    def table_hash(self, table: str) -> str:
        """Hash a table's full content in a fixed row and column order."""
        frame = self.query(f'SELECT * FROM "{table}" ORDER BY ALL')
        return hashlib.sha256(frame.write_ndjson().encode("utf-8")).hexdigest()


@pytest.fixture
def pipeline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PipelineEnv]:
    env = PipelineEnv(landing=tmp_path / "landing", warehouse=tmp_path / "cx.duckdb")
    monkeypatch.setenv("CX_LANDING_DIR", str(env.landing))
    monkeypatch.setenv("CX_WAREHOUSE_PATH", str(env.warehouse))
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
