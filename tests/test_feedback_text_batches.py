"""feedback_text written one month at a time, and DuckDB's memory limit on warehouse
connections, on the local file and on DuckLake."""

from __future__ import annotations

import logging
import re

import duckdb
import polars as pl
import pytest
from conftest import PipelineEnv

from cx_pipeline.sentiment_model import DRIVER_LOW_CSAT, build_themes
from cx_pipeline.settings import DEFAULT_DUCKDB_MEMORY_LIMIT, ConfigError, Settings
from cx_pipeline.text import score_text
from cx_pipeline.warehouse import Warehouse, table_columns

HEADER = "response_id,customer_id,submitted_at,survey_type,score,comment,channel,segment\n"
CRASH = "The app keeps crashing after the update"
# Answers that arrive on one day but were given in three months, with texts repeated
# across months. csat 1 is a low CSAT answer, csat 5 is not.
ROWS = [
    ("r01", "2025-01-20T09:00:00Z", 1, CRASH),
    ("r02", "2025-01-21T09:00:00Z", 1, "The app keeps crashing on login"),
    ("r03", "2025-01-22T09:00:00Z", 5, "Great service"),
    ("r04", "2025-02-03T09:00:00Z", 1, CRASH),
    ("r05", "2025-02-04T09:00:00Z", 1, "Crashing again, the app keeps crashing"),
    ("r06", "2025-02-05T09:00:00Z", 5, "Great service"),
    ("r07", "2025-03-01T09:00:00Z", 1, CRASH),
    ("r08", "2025-03-01T10:00:00Z", 2, ""),
]
DAY = "2025-03-02"


def land_months(env: PipelineEnv) -> None:
    lines = [
        f'{item_id},c{index},{submitted_at},csat,{score},"{comment}",web,pro'
        for index, (item_id, submitted_at, score, comment) in enumerate(ROWS)
    ]
    env.land("feedback", DAY, "answers.csv", HEADER + "\n".join(lines) + "\n")


@pytest.mark.parametrize("backend", ["local", "ducklake"], indirect=True)
def test_feedback_text_across_months(
    pipeline_env: PipelineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    land_months(pipeline_env)
    with caplog.at_level(logging.INFO):
        pipeline_env.run(DAY)

    distinct_texts = {comment for _, _, _, comment in ROWS if comment}
    logged = re.findall(r"sentiment: (\d+) distinct texts, (\d+) from sentiment_cache, (\d+) scored", caplog.text)
    assert logged == [(str(len(distinct_texts)), "0", str(len(distinct_texts)))]

    items = pipeline_env.query("SELECT * FROM feedback_sentiment ORDER BY item_id")
    assert items["item_id"].to_list() == [item_id for item_id, *_ in ROWS]
    expected_compounds = [score_text(comment) if comment else None for *_, comment in ROWS]
    assert items["compound"].to_list() == expected_compounds

    cache = pipeline_env.query("SELECT * FROM sentiment_cache ORDER BY text_hash")
    assert cache.height == len(distinct_texts)
    assert cache["text_hash"].to_list() == sorted(items["text_hash"].drop_nulls().unique().to_list())

    low_answers = pl.DataFrame(
        {
            "submitted_date": items["submitted_date"],
            "driver": [DRIVER_LOW_CSAT if score < 4 else None for _, _, score, _ in ROWS],
            "text_masked": items["text_masked"],
        }
    ).filter(pl.col("driver").is_not_null())
    expected_themes = build_themes(low_answers, top_n=10, min_comments=2)
    themes = pipeline_env.query(
        "SELECT * FROM feedback_themes_monthly ORDER BY month, driver, term_type, rank"
    )
    assert themes.height > 0
    assert themes.equals(expected_themes)


@pytest.mark.parametrize("backend", ["local", "ducklake"], indirect=True)
def test_feedback_text_rerun_uses_cache(
    pipeline_env: PipelineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    land_months(pipeline_env)
    pipeline_env.run(DAY)
    first = pipeline_env.table_hash("feedback_sentiment")

    caplog.clear()
    with caplog.at_level(logging.INFO):
        pipeline_env.run(DAY)
    assert re.findall(r"sentiment: \d+ distinct texts, \d+ from sentiment_cache, (\d+) scored", caplog.text) == ["0"]
    assert pipeline_env.table_hash("feedback_sentiment") == first


def reference_setting(memory_limit: str) -> str:
    """Return how DuckDB reports ``memory_limit`` once set, in its own units."""
    con = duckdb.connect()
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    finally:
        con.close()


@pytest.mark.parametrize("backend", ["local", "ducklake"], indirect=True)
def test_warehouse_memory_limit_default(pipeline_env: PipelineEnv) -> None:
    with Warehouse().connect() as con:
        applied = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert applied == reference_setting(DEFAULT_DUCKDB_MEMORY_LIMIT)


@pytest.mark.parametrize("backend", ["local", "ducklake"], indirect=True)
def test_warehouse_memory_limit_from_env(
    pipeline_env: PipelineEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CX_DUCKDB_MEMORY_LIMIT", "512MB")
    with Warehouse().connect() as con:
        applied = con.execute("SELECT current_setting('memory_limit')").fetchone()[0]
    assert applied == reference_setting("512MB")
    assert applied != reference_setting(DEFAULT_DUCKDB_MEMORY_LIMIT)


@pytest.mark.parametrize("value", ["lots", "2 GB; DROP TABLE x", "-1GB", "80%"])
def test_memory_limit_rejects_invalid(value: str) -> None:
    with pytest.raises(ConfigError, match="CX_DUCKDB_MEMORY_LIMIT"):
        Settings.from_env({"CX_DUCKDB_MEMORY_LIMIT": value})


def test_table_columns_ignore_attached_catalogs(tmp_path) -> None:
    con = duckdb.connect(str(tmp_path / "cx.duckdb"))
    try:
        con.execute("CREATE TABLE stg_ticket_comments (comment_id VARCHAR, ticket_id VARCHAR)")
        con.execute(f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
        con.execute("CREATE TABLE other.stg_ticket_comments (comment_id VARCHAR, body VARCHAR)")
        columns = table_columns(con, "stg_ticket_comments")
        missing = table_columns(con, "no_such_table")
    finally:
        con.close()
    assert columns == {"comment_id", "ticket_id"}
    assert missing == set()
