"""Reliability: idempotent reruns, schema evolution, concurrent runs, SIGKILL in the middle
of a write, and the BI file staying readable while a run replaces it.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from conftest import PipelineEnv
from cx_pipeline.demo import generate_demo_landing
from cx_pipeline.partitions import parse_partition_key

HEADER = "response_id,submitted_at,survey_type,score,channel\n"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cx_pipeline.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def published_hashes(path: Path) -> dict[str, str]:
    """Hash every published table in a fixed row order, except the manifest's timestamps."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        tables = [row[0] for row in con.execute("SELECT table_name FROM duckdb_tables() ORDER BY 1").fetchall()]
        hashes = {}
        for table in tables:
            if table == "publish_manifest":
                continue
            frame = con.execute(f'SELECT * FROM "{table}" ORDER BY ALL').pl()
            hashes[table] = hashlib.sha256(frame.write_ndjson().encode("utf-8")).hexdigest()
        return hashes
    finally:
        con.close()


def test_reruns_give_byte_identical_tables(pipeline_env: PipelineEnv) -> None:
    generate_demo_landing(pipeline_env.landing, start=dt.date(2025, 1, 1), days=12, seed=3)
    published = pipeline_env.warehouse.with_name("cx_published.duckdb")

    pipeline_env.run("2025-01-01", "2025-01-12")
    first = published_hashes(published)
    assert {"kpi_csat_daily", "kpi_nps_daily", "mrr_monthly", "clv_customers"} <= set(first)

    pipeline_env.run("2025-01-06")
    assert published_hashes(published) == first

    pipeline_env.run("2025-01-01", "2025-01-12")
    assert published_hashes(published) == first


def test_source_gaining_and_losing_columns(pipeline_env: PipelineEnv) -> None:
    pipeline_env.land("feedback", "2025-05-01", "a.csv", "response_id,submitted_at,survey_type,score\ng1,2025-05-01T10:00:00Z,csat,5\n")
    pipeline_env.run("2025-05-01")
    # The export gains a column, and the table of an older release lacks one of ours.
    pipeline_env.land("feedback", "2025-05-02", "a.csv", HEADER.strip() + ",device\ng2,2025-05-02T10:00:00Z,csat,2,web,ios\n")
    con = duckdb.connect(str(pipeline_env.warehouse))
    con.execute("ALTER TABLE validated_feedback DROP COLUMN segment")
    con.close()

    pipeline_env.run("2025-05-02")
    pipeline_env.run("2025-05-01")

    rows = pipeline_env.query("SELECT response_id, score, channel FROM stg_feedback ORDER BY 1").rows()
    assert rows == [("g1", 5.0, "unspecified"), ("g2", 2.0, "web")]
    extra = pipeline_env.query("SELECT _extra_columns FROM raw_feedback WHERE response_id = 'g2'")["_extra_columns"][0]
    assert json.loads(extra) == {"device": "ios"}


def test_two_runs_started_together_both_succeed(pipeline_env: PipelineEnv) -> None:
    for day in ("2025-06-01", "2025-06-02"):
        rows = "".join(f"{day}-{i},{day}T10:00:00Z,nps,{i % 11},web\n" for i in range(200))
        pipeline_env.land("feedback", day, "answers.csv", HEADER + rows)

    runs = [cli("run", "--start", day, "--end", day) for day in ("2025-06-01", "2025-06-02")]
    results = [run.communicate(timeout=300) for run in runs]
    for run, (_, stderr) in zip(runs, results, strict=True):
        assert run.returncode == 0, stderr[-3000:]
        assert "could not set lock" not in stderr

    counts = pipeline_env.query(
        "SELECT _partition_date::VARCHAR AS day, count(*) AS n FROM validated_feedback GROUP BY 1 ORDER BY 1"
    ).rows()
    assert counts == [("2025-06-01", 200), ("2025-06-02", 200)]


def lock_is_held(lock_path: Path) -> bool:
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@pytest.mark.parametrize("delay_seconds", [0.0, 0.4, 1.2])
def test_sigkill_during_write_loses_nothing(pipeline_env: PipelineEnv, delay_seconds: float) -> None:
    day = "2025-07-01"
    pipeline_env.land("feedback", day, "answers.csv", HEADER + "old1,2025-07-01T10:00:00Z,csat,5,web\n")
    pipeline_env.run(day)

    big = pl.DataFrame(
        {
            "response_id": [f"k{i}" for i in range(300_000)],
            "submitted_at": ["2025-07-01T10:00:00Z"] * 300_000,
            "survey_type": ["csat"] * 300_000,
            "score": [str(i % 5 + 1) for i in range(300_000)],
            "channel": ["web"] * 300_000,
        }
    )
    big.write_csv(pipeline_env.landing / "feedback" / day / "answers.csv")

    run = cli("run", "--start", day, "--end", day)
    lock_path = pipeline_env.warehouse.with_name(pipeline_env.warehouse.name + ".lock")
    deadline = time.monotonic() + 120
    while not (lock_path.exists() and lock_is_held(lock_path)):
        assert run.poll() is None, "the run ended before it started writing"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    time.sleep(delay_seconds)
    os.kill(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    # The warehouse opens (DuckDB replays its write-ahead log) and holds either the old
    # partition or the whole new one, never a part of it.
    raw = pipeline_env.query("SELECT count(*) AS n FROM raw_feedback WHERE _partition_date = ?", [parse_partition_key(day)])
    assert raw["n"][0] in (1, 300_000)

    pipeline_env.run(day)
    landed = pipeline_env.query("SELECT count(*) AS n, count(DISTINCT _row_number) AS rows FROM raw_feedback").to_dicts()[0]
    assert landed == {"n": 300_000, "rows": 300_000}
    valid = pipeline_env.query("SELECT count(*) AS n FROM validated_feedback")["n"][0]
    quarantined = pipeline_env.query("SELECT count(*) AS n FROM quarantine_feedback")["n"][0]
    assert valid + quarantined == 300_000
    assert pipeline_env.query("SELECT sum(count_responses)::BIGINT AS n FROM kpi_csat_daily")["n"][0] == 300_000


READER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
snapshot = con.execute("SELECT count(*), sum(count_responses) FROM kpi_csat_daily").fetchone()
print("ready", flush=True)
seen = set()
deadline = time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    seen.add(con.execute("SELECT count(*), sum(count_responses) FROM kpi_csat_daily").fetchone())
    time.sleep(0.02)
print(repr((snapshot, sorted(seen))), flush=True)
"""


def test_bi_reader_neither_blocks_nor_sees_partial_tables(pipeline_env: PipelineEnv) -> None:
    rows = "".join(f"a{i},2025-08-01T10:00:00Z,csat,{i % 5 + 1},web\n" for i in range(100))
    pipeline_env.land("feedback", "2025-08-01", "answers.csv", HEADER + rows)
    pipeline_env.run("2025-08-01")
    published = pipeline_env.warehouse.with_name("cx_published.duckdb")

    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(published), "20"], stdout=subprocess.PIPE, text=True
    )
    assert reader.stdout is not None
    assert reader.stdout.readline().strip() == "ready"

    more = "".join(f"b{i},2025-08-02T10:00:00Z,csat,{i % 5 + 1},app\n" for i in range(50))
    pipeline_env.land("feedback", "2025-08-02", "answers.csv", HEADER + more)
    started = time.monotonic()
    pipeline_env.run("2025-08-02")
    assert time.monotonic() - started < 20, "the run waited for the reader"
    assert reader.poll() is None, "the reader finished before the run did"

    output, _ = reader.communicate(timeout=60)
    snapshot, seen = eval(output.strip())  # noqa: S307 - our own reader's repr output
    assert seen == [snapshot]
    assert snapshot[1] == 100

    con = duckdb.connect(str(published), read_only=True)
    try:
        assert con.execute("SELECT sum(count_responses) FROM kpi_csat_daily").fetchone()[0] == 150
        manifest = dict(con.execute("SELECT table_name, row_count FROM publish_manifest").fetchall())
    finally:
        con.close()
    assert manifest["kpi_csat_daily"] == 2


@pytest.mark.parametrize(
    "key",
    ["../2025-01-01", "2025-01-01'; DROP TABLE raw_feedback; --", "2025/01/01", "2025-13-01", "20250101", ""],
)
def test_crafted_partition_keys_rejected(key: str) -> None:
    with pytest.raises(ValueError, match="invalid partition key"):
        parse_partition_key(key)


def test_run_waits_for_reader_holding_the_warehouse(pipeline_env: PipelineEnv) -> None:
    pipeline_env.land("feedback", "2025-09-01", "a.csv", HEADER + "w1,2025-09-01T10:00:00Z,csat,5,web\n")
    pipeline_env.run("2025-09-01")
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time, duckdb; c = duckdb.connect(sys.argv[1], read_only=True); "
         "print('open', flush=True); time.sleep(4); c.close()",
         str(pipeline_env.warehouse)],
        stdout=subprocess.PIPE, text=True,
    )
    assert holder.stdout is not None
    assert holder.stdout.readline().strip() == "open"
    pipeline_env.land("feedback", "2025-09-02", "a.csv", HEADER + "w2,2025-09-02T10:00:00Z,csat,4,web\n")
    pipeline_env.run("2025-09-02")
    holder.wait(timeout=30)
    assert pipeline_env.query("SELECT count(*) AS n FROM stg_feedback")["n"][0] == 2
