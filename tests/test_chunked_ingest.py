"""Extract and validate process a run's range in chunks of days: the chunks must give the
same rows as one pass, and a failure in a later chunk must roll back the earlier ones.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import polars as pl
import pytest

import cx_pipeline.ingest_assets as ingest_assets
from conftest import PipelineEnv
from cx_pipeline.cli import run_range
from cx_pipeline.ingest_assets import CHUNK_DAYS, day_chunks, replace_chunk

HEADER = "response_id,submitted_at,survey_type,score,channel\n"
# Three days that fall into three different chunks of one run.
DAYS = ["2025-01-03", "2025-02-14", "2025-03-30"]


def answers(day: str, prefix: str, count: int) -> str:
    rows = "".join(f"{prefix}{day}-{i},{day}T10:00:00Z,csat,{i % 5 + 1},web\n" for i in range(count))
    # One score outside the scale and one id repeated later in the same file.
    return HEADER + rows + f"{prefix}{day}-bad,{day}T11:00:00Z,csat,9,web\n" + f"{prefix}{day}-0,{day}T12:00:00Z,csat,4,web\n"


def day_counts(env: PipelineEnv, table: str) -> list[tuple[str, int]]:
    return env.query(
        f"SELECT _partition_date::VARCHAR AS day, count(*) AS n FROM {table} GROUP BY 1 ORDER BY 1"
    ).rows()


def test_day_chunks_cover_range_once() -> None:
    first, last = dt.date(2024, 1, 1), dt.date(2024, 12, 31)
    chunks = day_chunks(first, last)
    assert chunks[0][0] == first
    assert chunks[-1][1] == last
    for (_, end), (start, _) in zip(chunks, chunks[1:]):
        assert start == end + dt.timedelta(days=1)
    assert all((end - start).days + 1 <= CHUNK_DAYS for start, end in chunks)
    assert sum((end - start).days + 1 for start, end in chunks) == 366


def test_day_chunks_single_day() -> None:
    day = dt.date(2024, 5, 5)
    assert day_chunks(day, day) == [(day, day)]


def test_day_chunks_rejects_zero_size() -> None:
    with pytest.raises(ValueError, match="chunk_days"):
        day_chunks(dt.date(2024, 1, 1), dt.date(2024, 1, 2), chunk_days=0)


def test_range_over_chunks_keeps_every_row(pipeline_env: PipelineEnv) -> None:
    for day in DAYS:
        pipeline_env.land("feedback", day, "answers.csv", answers(day, "a", 40))
    pipeline_env.land("feedback", DAYS[1], "broken.xlsx", "not a supported file")

    pipeline_env.run(DAYS[0], DAYS[-1])

    assert day_counts(pipeline_env, "raw_feedback") == [(day, 42) for day in DAYS]
    assert day_counts(pipeline_env, "validated_feedback") == [(day, 40) for day in DAYS]
    quarantine = pipeline_env.query(
        "SELECT _partition_date::VARCHAR AS day, failure_reasons FROM quarantine_feedback ORDER BY 1, 2"
    )
    assert quarantine.height == 6
    for day in DAYS:
        reasons = quarantine.filter(pl.col("day") == day)["failure_reasons"].to_list()
        assert any("outside the row's scale" in reason for reason in reasons), reasons
        assert any("appears again at row" in reason for reason in reasons), reasons
    rejected = pipeline_env.query("SELECT _partition_date::VARCHAR AS day, error FROM rejected_files_feedback")
    assert rejected["day"].to_list() == [DAYS[1]]
    assert "unsupported file type" in rejected["error"][0]


def test_failed_validate_chunk_keeps_old_rows(
    pipeline_env: PipelineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in DAYS:
        pipeline_env.land("feedback", day, "answers.csv", answers(day, "a", 10))
    pipeline_env.run(DAYS[0], DAYS[-1])
    before = day_counts(pipeline_env, "validated_feedback")

    for day in DAYS:
        pipeline_env.land("feedback", day, "answers.csv", answers(day, "b", 30))
    validate_rows = ingest_assets.validate_rows
    last_day = dt.date.fromisoformat(DAYS[-1])

    def failing_validate(raw: pl.DataFrame, *args: object) -> object:
        if raw.height and raw["_partition_date"].max() == last_day:
            raise RuntimeError("validation failed in the last chunk")
        return validate_rows(raw, *args)

    monkeypatch.setattr(ingest_assets, "validate_rows", failing_validate)
    assert not run_range(dt.date.fromisoformat(DAYS[0]), last_day)

    # The raw step succeeded on its own; none of the validate step's chunks were kept.
    assert day_counts(pipeline_env, "raw_feedback") == [(day, 32) for day in DAYS]
    assert day_counts(pipeline_env, "validated_feedback") == before
    assert before == [(day, 10) for day in DAYS]


def test_failed_extract_chunk_keeps_old_rows(
    pipeline_env: PipelineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    for day in DAYS:
        pipeline_env.land("feedback", day, "answers.csv", answers(day, "a", 10))
    pipeline_env.run(DAYS[0], DAYS[-1])

    for day in DAYS:
        pipeline_env.land("feedback", day, "answers.csv", answers(day, "b", 30))
    extract_partition = ingest_assets.extract_partition
    last_day = dt.date.fromisoformat(DAYS[-1])

    def failing_extract(landing, contract, mappings, day):  # type: ignore[no-untyped-def]
        if contract.source == "feedback" and day == last_day:
            raise MemoryError("extract failed in the last chunk")
        return extract_partition(landing, contract, mappings, day)

    monkeypatch.setattr(ingest_assets, "extract_partition", failing_extract)
    assert not run_range(dt.date.fromisoformat(DAYS[0]), last_day)

    assert day_counts(pipeline_env, "raw_feedback") == [(day, 12) for day in DAYS]
    ids = pipeline_env.query("SELECT DISTINCT substr(response_id, 1, 1) AS prefix FROM raw_feedback")
    assert ids["prefix"].to_list() == ["a"]


def chunk_rows(day: dt.date, count: int) -> pl.DataFrame:
    return pl.DataFrame(
        {"_partition_date": [day] * count, "value": [f"{day}:{i}" for i in range(count)]},
        schema={"_partition_date": pl.Date, "value": pl.String},
    )


def test_replace_chunk_commits_with_transaction(tmp_path: Path) -> None:
    columns = {"_partition_date": "DATE", "value": "VARCHAR"}
    january, february = dt.date(2025, 1, 5), dt.date(2025, 2, 5)
    con = duckdb.connect(str(tmp_path / "chunks.duckdb"))
    try:
        replace_chunk(con, "chunked", columns, chunk_rows(january, 3), january, january)

        con.execute("BEGIN TRANSACTION")
        replace_chunk(con, "chunked", columns, chunk_rows(january, 5), january, january)
        replace_chunk(con, "chunked", columns, chunk_rows(february, 200_000), february, february)
        con.execute("ROLLBACK")
        rows = con.execute("SELECT _partition_date::VARCHAR, count(*) FROM chunked GROUP BY 1 ORDER BY 1").fetchall()
        assert rows == [("2025-01-05", 3)]

        con.execute("BEGIN TRANSACTION")
        replace_chunk(con, "chunked", columns, chunk_rows(january, 5), january, january)
        replace_chunk(con, "chunked", columns, chunk_rows(february, 200_000), february, february)
        con.execute("COMMIT")
        rows = con.execute("SELECT _partition_date::VARCHAR, count(*) FROM chunked GROUP BY 1 ORDER BY 1").fetchall()
        assert rows == [("2025-01-05", 5), ("2025-02-05", 200_000)]
        assert con.execute("SELECT count(DISTINCT value) FROM chunked").fetchone() == (200_005,)
    finally:
        con.close()


def test_replace_chunk_empty_rows_clear_range(tmp_path: Path) -> None:
    columns = {"_partition_date": "DATE", "value": "VARCHAR"}
    day = dt.date(2025, 1, 5)
    con = duckdb.connect(str(tmp_path / "chunks.duckdb"))
    try:
        replace_chunk(con, "chunked", columns, chunk_rows(day, 4), day, day)
        replace_chunk(con, "chunked", columns, chunk_rows(day, 0), day, day)
        assert con.execute("SELECT count(*) FROM chunked").fetchone() == (0,)
    finally:
        con.close()
