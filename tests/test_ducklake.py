"""The DuckLake backend: offline extension loading, secrets in messages, and concurrent
runs that write different partitions of one DuckLake at the same time."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from conftest import ObjectStore, PipelineEnv, PostgresServer
from cx_pipeline import ducklake

DAYS = ["2025-03-03", "2025-03-04", "2025-03-05", "2025-03-06"]
KPI_TABLES = [
    "stg_feedback",
    "kpi_csat_daily",
    "kpi_nps_daily",
    "kpi_ces_daily",
    "kpi_sentiment_daily",
    "quarantine_feedback",
]
ROWS_PER_DAY = int(os.environ.get("CX_TEST_ROWS_PER_DAY", "1000"))


def feedback_csv(day: str, rows: int, seed: int) -> str:
    rng = random.Random(seed)
    lines = ["response_id,customer_id,submitted_at,survey_type,score,comment,channel,segment"]
    scales = {"nps": 10, "csat": 5, "ces": 7}
    for number in range(rows):
        survey_type = rng.choice(list(scales))
        score = rng.randint(0 if survey_type == "nps" else 1, scales[survey_type])
        comment = rng.choice(["great service", "slow reply", "fine", "could be better"])
        hour = rng.randint(0, 23)
        lines.append(
            f"{day}-{number},c{rng.randint(1, 500)},{day}T{hour:02d}:15:00Z,{survey_type},{score},"
            f"{comment},{rng.choice(['email', 'web'])},{rng.choice(['smb', 'enterprise'])}"
        )
    return "\n".join(lines) + "\n"


def land_days(env: PipelineEnv) -> None:
    for index, day in enumerate(DAYS):
        env.land("feedback", day, "survey.csv", feedback_csv(day, ROWS_PER_DAY, seed=index))


def use_new_lake(env: PipelineEnv, server: PostgresServer, folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ducklake.URL_VARIABLE, server.ducklake_url(server.create_database()))
    monkeypatch.setenv(ducklake.DATA_PATH_VARIABLE, str(folder))
    monkeypatch.setenv("CX_WAREHOUSE_PATH", str(folder.parent / f"{folder.name}.duckdb"))
    env.lake = ducklake.target_from_env()


def test_extension_version_mismatch_names_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb, "__version__", "9.9.9")
    with pytest.raises(RuntimeError) as error:
        ducklake.extension_file("ducklake")
    message = str(error.value)
    assert "v9.9.9" in message
    assert "duckdb-extension-ducklake==9.9.9" in message


def test_password_redacted_from_url() -> None:
    target = ducklake.DuckLakeTarget(
        url="ducklake:postgres:dbname=cx host=127.0.0.1 user=cx password=s3cret", data_path="/tmp/lake/"
    )
    assert "s3cret" not in target.redacted_url()
    assert "password=***" in target.redacted_url()


def test_invalid_url_rejected() -> None:
    with pytest.raises(ValueError, match="must start with 'ducklake:'"):
        ducklake.DuckLakeTarget(url="postgres:dbname=cx password=s3cret", data_path="/tmp/lake/")
    with pytest.raises(ValueError, match="CX_DUCKLAKE_DATA_PATH is missing"):
        ducklake.DuckLakeTarget(url="ducklake:postgres:dbname=cx", data_path="")


def test_reader_sees_committed_snapshot(
    pipeline_env: PipelineEnv, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_new_lake(pipeline_env, postgres_server, tmp_path / "lake", monkeypatch)
    pipeline_env.land("feedback", DAYS[0], "survey.csv", feedback_csv(DAYS[0], 50, seed=1))
    pipeline_env.run(DAYS[0])

    assert pipeline_env.lake is not None
    writer = ducklake.attach(pipeline_env.lake)
    reader = ducklake.attach(pipeline_env.lake, read_only=True)
    try:
        committed = reader.execute("SELECT count(*) FROM kpi_csat_daily").fetchone()[0]
        assert committed > 0
        writer.execute("BEGIN TRANSACTION")
        writer.execute("DELETE FROM kpi_csat_daily")
        assert writer.execute("SELECT count(*) FROM kpi_csat_daily").fetchone()[0] == 0
        assert reader.execute("SELECT count(*) FROM kpi_csat_daily").fetchone()[0] == committed
        writer.execute("ROLLBACK")
        with pytest.raises(duckdb.Error):
            reader.execute("DELETE FROM kpi_csat_daily")
    finally:
        writer.close()
        reader.close()


def test_parallel_partitions_match_sequential(
    pipeline_env: PipelineEnv, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    land_days(pipeline_env)

    use_new_lake(pipeline_env, postgres_server, tmp_path / "sequential", monkeypatch)
    started = time.perf_counter()
    for day in DAYS:
        pipeline_env.run(day)
    sequential_seconds = time.perf_counter() - started
    sequential = {table: pipeline_env.table_hash(table) for table in KPI_TABLES}

    use_new_lake(pipeline_env, postgres_server, tmp_path / "parallel", monkeypatch)
    command = [sys.executable, "-m", "cx_pipeline.cli", "run"]
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [*command, "--start", day, "--end", day], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for day in DAYS
    ]
    outputs = [process.communicate(timeout=900) for process in processes]
    parallel_seconds = time.perf_counter() - started
    for day, process, (stdout, stderr) in zip(DAYS, processes, outputs, strict=True):
        assert process.returncode == 0, f"run of {day} failed:\n{stdout[-3000:]}\n{stderr[-3000:]}"
        assert "could not set lock" not in stderr
        assert "writer lock" not in stderr
    parallel = {table: pipeline_env.table_hash(table) for table in KPI_TABLES}
    replays = sum(stderr.count("event=ducklake_conflict") for _, stderr in outputs)

    rows = pipeline_env.query("SELECT count(*) AS n FROM raw_feedback")["n"][0]
    assert rows == ROWS_PER_DAY * len(DAYS)
    for table in KPI_TABLES:
        assert parallel[table] == sequential[table], table
    print(
        f"\nfour partitions, {rows} feedback rows: sequential {sequential_seconds:.1f} s, "
        f"parallel {parallel_seconds:.1f} s, speed-up {sequential_seconds / parallel_seconds:.2f}x, "
        f"{replays} conflicting commits retried"
    )


def test_multiprocess_executor_matches_in_process(
    pipeline_env: PipelineEnv, postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index, day in enumerate(DAYS[:2]):
        pipeline_env.land("feedback", day, "survey.csv", feedback_csv(day, 200, seed=index))

    use_new_lake(pipeline_env, postgres_server, tmp_path / "in_process", monkeypatch)
    started = time.perf_counter()
    pipeline_env.run(DAYS[0], DAYS[1])
    in_process_seconds = time.perf_counter() - started
    expected = {table: pipeline_env.table_hash(table) for table in KPI_TABLES}

    use_new_lake(pipeline_env, postgres_server, tmp_path / "multiprocess", monkeypatch)
    started = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "cx_pipeline.cli", "run", "--start", DAYS[0], "--end", DAYS[1]],
        env={**os.environ, "CX_EXECUTOR": "multiprocess"}, capture_output=True, text=True, timeout=900,
    )
    multiprocess_seconds = time.perf_counter() - started
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    # Each step ran in a worker process of its own.
    assert completed.stderr.count("STEP_WORKER_STARTED") >= len(KPI_TABLES)
    assert {table: pipeline_env.table_hash(table) for table in KPI_TABLES} == expected
    print(
        f"\ntwo days, 400 feedback rows: in-process {in_process_seconds:.1f} s, "
        f"multiprocess {multiprocess_seconds:.1f} s"
    )


def test_s3_secret_from_aws_variables() -> None:
    statement = ducklake.s3_secret_statement(
        "s3://cx-lake/prod/",
        {
            "AWS_ACCESS_KEY_ID": "key",
            "AWS_SECRET_ACCESS_KEY": "it's secret",
            "AWS_REGION": "eu-west-1",
            "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        },
    )
    assert statement is not None
    assert "KEY_ID 'key'" in statement
    assert "SECRET 'it''s secret'" in statement
    assert "SCOPE 's3://cx-lake'" in statement
    assert "ENDPOINT '127.0.0.1:9000'" in statement
    assert "USE_SSL false" in statement
    assert ducklake.s3_secret_statement("s3://cx-lake/", {"AWS_REGION": "eu-west-1"}) is None
    with pytest.raises(ValueError, match="use a local folder or an s3:// prefix"):
        ducklake.DuckLakeTarget(url="ducklake:postgres:dbname=cx", data_path="gs://bucket/lake/")


def test_object_storage_data_path_matches_local_folder(
    pipeline_env: PipelineEnv,
    postgres_server: PostgresServer,
    object_store: ObjectStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pipeline_env.land("feedback", DAYS[0], "survey.csv", feedback_csv(DAYS[0], 300, seed=3))
    use_new_lake(pipeline_env, postgres_server, tmp_path / "folder", monkeypatch)
    pipeline_env.run(DAYS[0])
    expected = {table: pipeline_env.table_hash(table) for table in KPI_TABLES}

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "cx-test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "cx-test-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", object_store.endpoint)
    bucket = object_store.create_bucket("cx-lake")
    monkeypatch.setenv(ducklake.URL_VARIABLE, postgres_server.ducklake_url(postgres_server.create_database()))
    monkeypatch.setenv(ducklake.DATA_PATH_VARIABLE, f"{bucket}lake/")
    pipeline_env.lake = ducklake.target_from_env()
    pipeline_env.run(DAYS[0])

    assert {table: pipeline_env.table_hash(table) for table in KPI_TABLES} == expected
    files = pipeline_env.query(f"SELECT count(*) AS n FROM glob('{bucket}lake/**/*.parquet')")["n"][0]
    assert files > 0
    assert not (tmp_path / "lake").exists()


def test_conflict_after_stream_is_not_replayed(postgres_server: PostgresServer, tmp_path: Path) -> None:
    lake = ducklake.DuckLakeTarget(
        url=postgres_server.ducklake_url(postgres_server.create_database()), data_path=f"{tmp_path / 'lake'}/"
    )
    setup = ducklake.attach(lake)
    setup.execute("CREATE TABLE answers (score INTEGER)")
    setup.close()
    writer = ducklake.RetryingConnection(ducklake.attach(lake))
    other = ducklake.attach(lake)
    try:
        rows = pa.table({"score": [1, 2, 3]})
        writer.execute("BEGIN TRANSACTION")
        writer.register("incoming", pa.RecordBatchReader.from_batches(rows.schema, rows.to_batches()))
        writer.execute("INSERT INTO answers SELECT * FROM incoming")
        other.execute("DROP TABLE answers")
        # A replay would read the consumed stream and insert nothing, so the conflict must surface.
        with pytest.raises(RuntimeError, match="cannot be replayed"):
            writer.execute("COMMIT")
    finally:
        writer.close()
        other.close()
