"""The support slice end to end: the Twitter conversation transform, the Twitter export
through both bundled mappings, real Twitter data against an independent count, and the
demo tickets rolled up through kpi_support_daily.
"""

from __future__ import annotations

import csv
import datetime as dt
import shutil
import statistics
from pathlib import Path

import polars as pl
import pytest
from conftest import PipelineEnv

from cx_pipeline.demo import write_demo_support
from cx_pipeline.model_assets import KPI_RANGE_RULES
from cx_pipeline.support import thread_twitter_conversations

TWITTER_DAY = "2017-12-04"
TWITTER_HEADER = (
    "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id"
)

# Cases: a reply listed before its parent, a conversation the customer ends and one the
# company ends. Then a thread started by a company, a reply to a tweet missing from the
# file, a reply loop, and a root tweet with an unreadable timestamp.
SAMPLE_TWEETS = [
    '2,acme_help,False,Tue Oct 31 10:05:00 +0000 2017,"@101 Sorry, we will check.",3,1.0',
    "1,101,True,Tue Oct 31 10:00:00 +0000 2017,@acme_help my order is late,2,",
    "3,101,True,Tue Oct 31 10:20:00 +0000 2017,@acme_help still waiting,,2.0",
    "10,102,True,Tue Oct 31 11:00:00 +0000 2017,@acme_help login broken,11,",
    "11,acme_help,False,Tue Oct 31 11:30:00 +0000 2017,@102 Fixed now.,,10.0",
    "20,acme_help,False,Tue Oct 31 12:00:00 +0000 2017,We are hiring!,21,",
    "21,103,True,Tue Oct 31 12:10:00 +0000 2017,@acme_help cool,,20.0",
    "30,104,True,Tue Oct 31 13:00:00 +0000 2017,@acme_help same here,,999.0",
    "40,105,True,Tue Oct 31 14:00:00 +0000 2017,@acme_help loop a,41,41.0",
    "41,acme_help,False,Tue Oct 31 14:05:00 +0000 2017,@105 loop b,40,40.0",
    "50,106,True,yesterday,@acme_help when is it fixed,,",
]


def sample_frame() -> pl.DataFrame:
    lines = "\n".join([TWITTER_HEADER, *SAMPLE_TWEETS]) + "\n"
    return pl.read_csv(lines.encode("utf-8"), infer_schema=False)


def test_twitter_comments_threaded_by_root() -> None:
    comments = thread_twitter_conversations(sample_frame(), {"output": "comments"}, None)
    by_id = {row["comment_id"]: row for row in comments.to_dicts()}
    assert comments.height == len(SAMPLE_TWEETS)
    assert {k: by_id[k]["ticket_id"] for k in ("1", "2", "3", "10", "11", "50")} == {
        "1": "1",
        "2": "1",
        "3": "1",
        "10": "10",
        "11": "10",
        "50": "50",
    }
    for outside in ("20", "21", "30", "40", "41"):
        assert by_id[outside]["ticket_id"] is None, outside
    assert by_id["2"]["author_role"] == "agent"
    assert by_id["3"]["author_role"] == "end_user"
    assert by_id["2"]["is_public"] == "true"
    assert by_id["2"]["created_at"] == "2017-10-31T10:05:00+00:00"
    assert by_id["50"]["created_at"] == "yesterday"
    assert by_id["2"]["body"] == "@101 Sorry, we will check."


def test_twitter_tickets_status_from_last_tweet() -> None:
    tickets = thread_twitter_conversations(sample_frame(), {"output": "tickets"}, None)
    by_id = {row["ticket_id"]: row for row in tickets.to_dicts()}
    assert sorted(by_id) == ["1", "10", "50"]
    assert by_id["1"]["status"] == "open"
    assert by_id["1"]["solved_at"] is None
    assert by_id["1"]["updated_at"] == "2017-10-31T10:20:00+00:00"
    assert by_id["10"]["status"] == "solved"
    assert by_id["10"]["solved_at"] == "2017-10-31T11:30:00+00:00"
    assert by_id["10"]["customer_id"] == "102"
    assert by_id["50"]["created_at"] == "yesterday"


def test_twitter_transform_rejects_unknown_output() -> None:
    with pytest.raises(ValueError, match="output must be one of"):
        thread_twitter_conversations(sample_frame(), {"output": "tweets"}, None)
    with pytest.raises(
        ValueError, match=r"export has no column\(s\) \['in_response_to_tweet_id'\]"
    ):
        thread_twitter_conversations(
            sample_frame().drop("in_response_to_tweet_id"), {"output": "tickets"}, None
        )


def land_twice(env: PipelineEnv, source_file: Path) -> None:
    """Land one Twitter export for both sources, as the mappings expect."""
    for source in ("tickets", "ticket_comments"):
        folder = env.landing / source / TWITTER_DAY
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source_file, folder / source_file.name)


def test_twitter_sample_through_pipeline(pipeline_env: PipelineEnv, tmp_path: Path) -> None:
    export = tmp_path / "twcs_sample.csv"
    export.write_text("\n".join([TWITTER_HEADER, *SAMPLE_TWEETS]) + "\n", encoding="utf-8")
    land_twice(pipeline_env, export)
    pipeline_env.run(TWITTER_DAY)

    rows = pipeline_env.query(
        "SELECT ticket_id, channel, status, first_reply_minutes, public_agent_replies, "
        "touch_class, is_fcr FROM ticket_metrics ORDER BY ticket_id"
    ).rows()
    assert rows == [
        ("1", "twitter", "open", 5.0, 1, None, None),
        ("10", "twitter", "solved", 30.0, 1, "one_touch", True),
    ]
    quarantined = pipeline_env.query(
        "SELECT _source_file, failed_checks FROM quarantine_tickets"
    ).to_dicts()
    assert quarantined == [
        {
            "_source_file": f"tickets/{TWITTER_DAY}/twcs_sample.csv",
            "failed_checks": ["created_at:parse"],
        }
    ]
    # Five tweets have no customer conversation and one has an unreadable timestamp.
    assert pipeline_env.query("SELECT count(*) AS n FROM quarantine_ticket_comments")["n"][0] == 6
    assert pipeline_env.query("SELECT count(*) AS n FROM stg_ticket_comments")["n"][0] == 5


def independent_first_replies(path: Path) -> tuple[int, dict[str, float]]:
    """Count customer-started conversations and the minutes from each one's first tweet to
    the first company tweet anywhere in its reply tree, with the csv module only.
    """
    with path.open(encoding="utf-8", newline="") as handle:
        tweets = list(csv.DictReader(handle))
    parent_of = {}
    for tweet in tweets:
        raw_parent = tweet["in_response_to_tweet_id"].strip()
        parent_of[tweet["tweet_id"]] = str(int(float(raw_parent))) if raw_parent else None
    by_id = {tweet["tweet_id"]: tweet for tweet in tweets}

    def root_of(tweet_id: str) -> str | None:
        seen = set()
        while parent_of[tweet_id] is not None:
            if tweet_id in seen or parent_of[tweet_id] not in by_id:
                return None
            seen.add(tweet_id)
            tweet_id = parent_of[tweet_id]
        return tweet_id

    def created(tweet: dict) -> dt.datetime:
        return dt.datetime.strptime(tweet["created_at"], "%a %b %d %H:%M:%S %z %Y")

    roots = {
        t["tweet_id"] for t in tweets if parent_of[t["tweet_id"]] is None and t["inbound"] == "True"
    }
    first_reply: dict[str, dt.datetime] = {}
    for tweet in tweets:
        root = root_of(tweet["tweet_id"])
        if root in roots and tweet["inbound"] == "False":
            first_reply[root] = min(first_reply.get(root, created(tweet)), created(tweet))
    minutes = {
        root: (at - created(by_id[root])).total_seconds() / 60 for root, at in first_reply.items()
    }
    return len(roots), minutes


@pytest.mark.real_data
def test_twitter_median_first_reply_matches_count(
    pipeline_env: PipelineEnv, real_data_dir: Path
) -> None:
    export = real_data_dir / "twcs_customer_support_on_twitter" / "twcs_first5000_clean.csv"
    if not export.is_file():
        pytest.skip(f"{export} is missing from CX_REAL_DATA_DIR")
    land_twice(pipeline_env, export)
    pipeline_env.run(TWITTER_DAY)

    conversations, expected = independent_first_replies(export)
    assert conversations == 1285
    summary = pipeline_env.query(
        "SELECT count(*) AS tickets, count(first_reply_minutes) AS answered, "
        "median(first_reply_minutes) AS median_minutes FROM ticket_metrics"
    ).to_dicts()[0]
    assert summary["tickets"] == conversations
    assert summary["answered"] == len(expected)
    assert summary["median_minutes"] == pytest.approx(statistics.median(expected.values()))
    assert summary["median_minutes"] == pytest.approx(13.55)

    measured = dict(
        pipeline_env.query("SELECT ticket_id, first_reply_minutes FROM ticket_metrics").rows()
    )
    assert measured.keys() == expected.keys()
    mismatched = [k for k in expected if measured[k] != pytest.approx(expected[k])]
    assert mismatched == []

    # Every comment that is not staged was quarantined for lacking a conversation.
    reasons = pipeline_env.query(
        "SELECT failed_checks, count(*) AS n FROM quarantine_ticket_comments GROUP BY ALL"
    ).rows()
    assert reasons == [(["ticket_id:not_nullable"], 148)]
    assert pipeline_env.query("SELECT count(*) AS n FROM quarantine_tickets")["n"][0] == 0
    rolled_up = pipeline_env.query(
        "SELECT sum(tickets_created)::BIGINT AS n FROM kpi_support_daily"
    )["n"][0]
    assert rolled_up == conversations


def test_demo_tickets_roll_up(pipeline_env: PipelineEnv) -> None:
    write_demo_support(pipeline_env.landing)
    pipeline_env.run("2025-01-01", "2025-03-31")

    metrics = pipeline_env.query(
        """
        SELECT
            count(*) AS tickets,
            count(*) FILTER (WHERE NOT is_solved) AS unsolved,
            count(*) FILTER (WHERE reopens > 0) AS reopened,
            count(*) FILTER (WHERE internal_notes > 0) AS with_notes,
            count(*) FILTER (WHERE derived_from = 'ticket_summary') AS from_summary,
            count(*) FILTER (WHERE first_reply_minutes IS NULL) AS unanswered
        FROM ticket_metrics
        """
    ).to_dicts()[0]
    for name, count in metrics.items():
        assert count > 0, name

    for numerator, condition in [
        ("tickets_solved", "is_solved"),
        ("count_fcr", "is_fcr"),
        ("count_fcr_strict", "is_fcr_strict"),
        ("count_one_touch", "touch_class = 'one_touch'"),
    ]:
        direct = pipeline_env.query(
            f"SELECT count(*) FILTER (WHERE {condition}) AS n FROM ticket_metrics"
        )["n"][0]
        rolled_up = pipeline_env.query(
            f"SELECT sum({numerator})::BIGINT AS n FROM kpi_support_daily"
        )["n"][0]
        assert rolled_up == direct, numerator
    for denominator, column in [
        ("count_fcr_eligible", "is_fcr"),
        ("count_fcr_strict_eligible", "is_fcr_strict"),
    ]:
        direct = pipeline_env.query(f"SELECT count({column}) AS n FROM ticket_metrics")["n"][0]
        rolled_up = pipeline_env.query(
            f"SELECT sum({denominator})::BIGINT AS n FROM kpi_support_daily"
        )["n"][0]
        assert rolled_up == direct, denominator
    for total, column in [
        ("sum_first_reply_minutes", "first_reply_minutes"),
        ("sum_first_reply_business_minutes", "first_reply_business_minutes"),
    ]:
        direct = pipeline_env.query(f"SELECT sum({column}) AS s FROM ticket_metrics")["s"][0]
        rolled_up = pipeline_env.query(f"SELECT sum({total}) AS s FROM kpi_support_daily")["s"][0]
        assert rolled_up == pytest.approx(direct), total

    rule = KPI_RANGE_RULES["kpi_support_daily"]
    broken = pipeline_env.query(f"SELECT count(*) AS n FROM kpi_support_daily WHERE NOT ({rule})")[
        "n"
    ][0]
    assert broken == 0
    assert pipeline_env.query("SELECT count(*) AS n FROM quarantine_ticket_comments")["n"][0] > 0
