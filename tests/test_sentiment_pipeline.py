"""feedback_sentiment, sentiment_cache, kpi_sentiment_daily and feedback_themes_monthly
through real pipeline runs."""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path

import polars as pl
import pytest
from conftest import PipelineEnv

from cx_pipeline.contracts import load_contracts
from cx_pipeline.model_assets import KPI_RANGE_RULES
from cx_pipeline.sentiment_model import build_themes
from cx_pipeline.text import mask_pii, score_text

DAY = "2025-03-02"
NEXT_DAY = "2025-03-03"
HEADER = "response_id,customer_id,submitted_at,survey_type,score,comment,channel,segment\n"
ROWS = [
    'r01,c1,2025-03-01T09:00:00Z,csat,5,"I love it, great service! Write to jane.doe+cx@mail.example.com",web,pro',
    'r02,c2,2025-03-01T10:00:00Z,csat,1,"Terrible: the app keeps crashing. Call me on +44 20 7946 0958",web,pro',
    "r03,c3,2025-03-01T11:00:00Z,csat,2,,web,pro",
    'r04,c4,2025-03-01T12:00:00Z,csat,1,"The app keeps crashing after the update, call 555-123-4567",app,pro',
    'r05,c5,2025-03-01T13:00:00Z,ces,2,"Too many steps, the app keeps crashing",app,pro',
    "r06,c6,2025-03-01T14:00:00Z,nps,3,App keeps crashing and support never answered,web,pro",
    "r07,c7,2025-03-01T15:00:00Z,nps,10,Best support team,web,pro",
    'r08,c8,2025-03-01T16:00:00Z,csat,4,"   ",web,pro',
    "r09,c9,2025-03-01T17:00:00Z,review,2,The device is black.,web,pro",
    'r10,c10,2025-03-01T18:00:00Z,csat,5,"I love it, great service! Write to jane.doe+cx@mail.example.com",web,pro',
]
COMMENTS = {
    "r01": "I love it, great service! Write to jane.doe+cx@mail.example.com",
    "r02": "Terrible: the app keeps crashing. Call me on +44 20 7946 0958",
    "r04": "The app keeps crashing after the update, call 555-123-4567",
    "r05": "Too many steps, the app keeps crashing",
    "r06": "App keeps crashing and support never answered",
    "r07": "Best support team",
    "r09": "The device is black.",
    "r10": "I love it, great service! Write to jane.doe+cx@mail.example.com",
}


def land_feedback(env: PipelineEnv) -> None:
    env.land("feedback", DAY, "answers.csv", HEADER + "\n".join(ROWS) + "\n")


def sentiment_by_id(env: PipelineEnv) -> dict[str, dict]:
    rows = env.query("SELECT * FROM feedback_sentiment ORDER BY source, item_id").to_dicts()
    return {row["item_id"]: row for row in rows}


def run_and_count_scored(env: PipelineEnv, caplog: pytest.LogCaptureFixture, *days: str) -> int:
    """Run the pipeline and return how many texts the sentiment model scored, from its log."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        env.run(*days)
    counts = re.findall(
        r"sentiment: \d+ distinct texts, \d+ from sentiment_cache, (\d+) scored", caplog.text
    )
    assert len(counts) == 1, "expected one scoring log line per run"
    return int(counts[0])


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "cx.yaml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("CX_CONFIG", str(path))


def test_sentiment_scores_masks_and_nulls(
    pipeline_env: PipelineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    land_feedback(pipeline_env)
    assert run_and_count_scored(pipeline_env, caplog, DAY) == 7

    rows = sentiment_by_id(pipeline_env)
    assert set(rows) == {f"r{i:02d}" for i in range(1, 11)}
    for blank in ("r03", "r08"):
        assert rows[blank]["compound"] is None
        assert rows[blank]["sentiment_label"] is None
        assert rows[blank]["text_masked"] is None
        assert rows[blank]["text_hash"] is None
    for item_id, comment in COMMENTS.items():
        assert rows[item_id]["compound"] == score_text(mask_pii(comment))
        assert rows[item_id]["text_masked"] == mask_pii(comment)

    assert rows["r01"]["sentiment_label"] == "positive"
    assert rows["r02"]["sentiment_label"] == "negative"
    assert rows["r09"]["sentiment_label"] == "neutral"
    assert rows["r09"]["source"] == "review"
    assert rows["r01"]["source"] == "survey_comment"
    assert rows["r01"]["submitted_date"] == dt.date(2025, 3, 1)
    assert rows["r01"]["text_masked"] == "I love it, great service! Write to [email]"
    assert rows["r02"]["text_masked"] == "Terrible: the app keeps crashing. Call me on [phone]"
    published = pipeline_env.query(
        "SELECT string_agg(text_masked, ' ') AS t FROM feedback_sentiment"
    )["t"][0]
    assert "jane.doe" not in published
    assert "7946" not in published
    assert "4567" not in published

    # r01 and r10 share one text, so the cache has one row for both.
    assert rows["r01"]["text_hash"] == rows["r10"]["text_hash"]
    assert pipeline_env.query("SELECT count(*) AS n FROM sentiment_cache")["n"][0] == 7


def test_sentiment_cache_scores_only_new_texts(
    pipeline_env: PipelineEnv, caplog: pytest.LogCaptureFixture
) -> None:
    land_feedback(pipeline_env)
    assert run_and_count_scored(pipeline_env, caplog, DAY) == 7
    first_hashes = {
        table: pipeline_env.table_hash(table)
        for table in ("feedback_sentiment", "feedback_themes_monthly", "sentiment_cache")
    }

    assert run_and_count_scored(pipeline_env, caplog, DAY) == 0
    for table, first_hash in first_hashes.items():
        assert pipeline_env.table_hash(table) == first_hash, f"{table} changed on a rerun"

    # A cached score is used as stored: overwrite one and rerun.
    hash_r07 = sentiment_by_id(pipeline_env)["r07"]["text_hash"]
    pipeline_env.execute("UPDATE sentiment_cache SET compound = -0.9 WHERE text_hash = ?", [hash_r07])

    # A later version of r04 with a new text arrives.
    pipeline_env.land(
        "feedback",
        NEXT_DAY,
        "answers.csv",
        HEADER + 'r04,c4,2025-03-01T12:00:00Z,csat,1,"The app works fine now, thanks",app,pro\n',
    )
    assert run_and_count_scored(pipeline_env, caplog, DAY, NEXT_DAY) == 1
    rows = sentiment_by_id(pipeline_env)
    assert rows["r04"]["text_masked"] == "The app works fine now, thanks"
    assert rows["r04"]["compound"] == score_text("The app works fine now, thanks")
    assert rows["r07"]["compound"] == -0.9
    assert rows["r07"]["sentiment_label"] == "negative"
    # The old r04 text is no longer current, so it left the cache.
    assert pipeline_env.query("SELECT count(*) AS n FROM sentiment_cache")["n"][0] == 7


def test_sentiment_thresholds_from_config(
    pipeline_env: PipelineEnv,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Two workers from the first text on, so scoring runs in worker processes inside the run.
    write_config(
        tmp_path,
        monkeypatch,
        "sentiment_positive_threshold: 0.8\nsentiment_negative_threshold: -0.5\n"
        "sentiment_workers: 2\nsentiment_parallel_min_texts: 1\n",
    )
    land_feedback(pipeline_env)
    with caplog.at_level(logging.INFO):
        pipeline_env.run(DAY)

    rows = sentiment_by_id(pipeline_env)
    assert rows["r01"]["compound"] == 0.8622
    assert rows["r01"]["sentiment_label"] == "positive"
    assert rows["r07"]["compound"] == 0.7845
    assert rows["r07"]["sentiment_label"] == "neutral"
    assert rows["r02"]["compound"] == -0.4767
    assert rows["r02"]["sentiment_label"] == "neutral"
    assert rows["r03"]["sentiment_label"] is None
    assert "7 scored in 2 processes" in caplog.text


def test_kpi_sentiment_daily_reaggregates(pipeline_env: PipelineEnv) -> None:
    land_feedback(pipeline_env)
    pipeline_env.run(DAY)

    daily = pipeline_env.query("SELECT * FROM kpi_sentiment_daily ORDER BY channel, source")
    keys = [(row["channel"], row["source"]) for row in daily.to_dicts()]
    assert keys == [("app", "survey_comment"), ("web", "review"), ("web", "survey_comment")]
    assert daily["count_items"].sum() == 10
    assert daily["count_scored"].sum() == 8

    items = pipeline_env.query(
        "SELECT * FROM feedback_sentiment WHERE channel = 'web' AND source = 'survey_comment'"
    )
    web = daily.filter(
        (pl.col("channel") == "web") & (pl.col("source") == "survey_comment")
    ).to_dicts()[0]
    scored = items.filter(pl.col("compound").is_not_null())
    positive = scored.filter(pl.col("sentiment_label") == "positive").height
    negative = scored.filter(pl.col("sentiment_label") == "negative").height
    neutral = scored.filter(pl.col("sentiment_label") == "neutral").height
    assert web["submitted_date"] == dt.date(2025, 3, 1)
    assert web["count_items"] == items.height == 7
    assert web["count_scored"] == scored.height == 5
    assert (web["count_positive"], web["count_neutral"], web["count_negative"]) == (
        positive,
        neutral,
        negative,
    )
    assert web["net_sentiment"] == pytest.approx(100 * (positive - negative) / scored.height)
    assert web["sum_compound"] == pytest.approx(scored["compound"].sum())
    assert web["mean_compound"] == pytest.approx(scored["compound"].mean())

    rule = KPI_RANGE_RULES["kpi_sentiment_daily"]
    broken = pipeline_env.query(
        f"SELECT count(*) FILTER (WHERE NOT ({rule})) AS n FROM kpi_sentiment_daily"
    )
    assert broken["n"][0] == 0


def test_themes_of_low_scores(pipeline_env: PipelineEnv) -> None:
    land_feedback(pipeline_env)
    pipeline_env.run(DAY)

    themes = pipeline_env.query(
        "SELECT * FROM feedback_themes_monthly ORDER BY driver, term_type, rank"
    )
    low_csat = themes.filter(pl.col("driver") == "low_csat")
    terms = low_csat.filter(pl.col("term_type") == "term")
    phrases = low_csat.filter(pl.col("term_type") == "phrase")
    # Low CSAT: r02, r03 (blank), r04 and the 2-star review r09; three have text.
    assert terms["term"].to_list() == ["app", "call", "crashing", "keeps"]
    assert terms["rank"].to_list() == [1, 2, 3, 4]
    assert set(terms["comment_count"].to_list()) == {2}
    assert set(terms["comments_with_text"].to_list()) == {3}
    assert set(terms["answers"].to_list()) == {4}
    assert terms["share_of_comments"].to_list() == pytest.approx([2 / 3] * 4)
    assert phrases["term"].to_list() == ["app keeps", "keeps crashing"]
    assert set(themes["month"].to_list()) == {dt.date(2025, 3, 1)}
    # The low CES and detractor answers have one comment each, below themes_min_comments = 2.
    assert set(themes["driver"].to_list()) == {"low_csat"}
    for placeholder_word in ("phone", "email", "card", "the", "after"):
        assert placeholder_word not in themes["term"].to_list()


def test_build_themes_top_n_and_ties() -> None:
    answers = pl.DataFrame(
        {
            "submitted_date": [
                dt.date(2025, 1, 5),
                dt.date(2025, 1, 20),
                dt.date(2025, 1, 21),
                dt.date(2025, 2, 1),
            ],
            "driver": ["low_ces", "low_ces", "low_ces", "low_ces"],
            "text_masked": ["Slow checkout, slow page", "checkout failed, page slow", None, "slow"],
        }
    )
    themes = build_themes(answers, top_n=2, min_comments=1)
    january = themes.filter(
        (pl.col("month") == dt.date(2025, 1, 1)) & (pl.col("term_type") == "term")
    )
    # checkout, page and slow occur in both January comments; the tie is broken alphabetically.
    assert january["term"].to_list() == ["checkout", "page"]
    assert january["comment_count"].to_list() == [2, 2]
    assert january["comments_with_text"].to_list() == [2, 2]
    assert january["answers"].to_list() == [3, 3]
    february = themes.filter(pl.col("month") == dt.date(2025, 2, 1))
    assert february["term"].to_list() == ["slow"]
    assert february["share_of_comments"].to_list() == [1.0]


def test_support_messages_from_ticket_comments(pipeline_env: PipelineEnv) -> None:
    contracts = load_contracts()
    if (
        "ticket_comments" not in contracts
        or "body" not in contracts["ticket_comments"].column_names
    ):
        pytest.skip("the project has no ticket_comments contract with a body column")
    pipeline_env.land(
        "tickets",
        DAY,
        "tickets.csv",
        "ticket_id,customer_id,channel,priority,status,created_at,updated_at,solved_at\n"
        "t1,cust1,email,normal,solved,2025-03-01T08:00:00Z,2025-03-01T12:00:00Z,2025-03-01T12:00:00Z\n",
    )
    pipeline_env.land(
        "ticket_comments",
        DAY,
        "comments.csv",
        "comment_id,ticket_id,author_role,is_public,created_at,event,body\n"
        'm1,t1,end_user,true,2025-03-01T08:00:00Z,,"My card 4111 1111 1111 1111 was charged twice, this is awful"\n'
        "m2,t1,agent,true,2025-03-01T09:00:00Z,,Sorry about that. We refunded the second charge.\n"
        "m3,t1,end_user,true,2025-03-01T10:00:00Z,,\n"
        "m4,t1,system,false,2025-03-01T12:00:00Z,solved,\n",
    )
    land_feedback(pipeline_env)
    pipeline_env.run(DAY)

    support = pipeline_env.query(
        "SELECT * FROM feedback_sentiment WHERE source = 'support_message' ORDER BY item_id"
    ).to_dicts()
    assert [row["item_id"] for row in support] == ["m1", "m3"]
    message = support[0]
    assert message["text_masked"] == "My card [card] was charged twice, this is awful"
    assert message["compound"] == score_text(message["text_masked"])
    assert message["sentiment_label"] == "negative"
    assert (message["ticket_id"], message["customer_id"], message["channel"]) == (
        "t1",
        "cust1",
        "email",
    )
    assert support[1]["compound"] is None
    daily = pipeline_env.query(
        "SELECT count_items, count_scored, count_negative FROM kpi_sentiment_daily WHERE source = 'support_message'"
    ).to_dicts()
    assert daily == [{"count_items": 2, "count_scored": 1, "count_negative": 1}]
