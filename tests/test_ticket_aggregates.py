"""The per-ticket comment aggregates of ticket_metrics: the DuckDB query that the model
runs must give the same values as the Polars aggregation of the same comment rows.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from cx_pipeline.support import (
    _ORPHAN_COMMENTS_QUERY,
    _PER_TICKET_QUERY,
    _aggregate_comments,
    _utc,
)

UTC = dt.UTC


def at(day: int, hour: int) -> dt.datetime:
    return dt.datetime(2025, 3, day, hour, tzinfo=UTC)


COMMENTS = pl.DataFrame(
    {
        "ticket_id": ["t1", "t1", "t1", "t1", "t2", "t2", "t2", "t2", "t2", "t3", "t4", "t4", "t4", "t4", "t9"],
        "author_role": [
            "end_user", "agent", "agent", "system",
            "agent", "system", "system", "system", "system",
            "end_user",
            "agent", "system", "system", "system",
            "agent",
        ],
        "is_public": [True, False, True, True, True, True, True, True, True, True, True, True, True, True, True],
        "event": [None, None, None, "solved", None, "reopened", "solved", "solved", "solved", None, "solved", "reopened", "reopened", "solved", None],
        "created_at": [
            at(1, 9), at(1, 10), at(1, 11), at(1, 12),
            at(2, 9), at(2, 8), at(2, 12), at(2, 12), at(3, 9),
            at(4, 9),
            at(5, 9), at(5, 8), at(5, 10), at(5, 11),
            at(6, 9),
        ],
    },
    schema_overrides={"created_at": pl.Datetime("us", "UTC")},
)
TICKETS = pl.DataFrame({"ticket_id": ["t1", "t2", "t3", "t4"]})


def query_aggregates(comments: pl.DataFrame, tickets: pl.DataFrame) -> tuple[pl.DataFrame, int]:
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.register("comment_rows", comments.to_arrow())
        con.register("ticket_rows", tickets.to_arrow())
        con.execute("CREATE TABLE stg_ticket_comments AS SELECT * FROM comment_rows")
        con.execute("CREATE TABLE stg_tickets AS SELECT * FROM ticket_rows")
        per_ticket = _utc(con.execute(_PER_TICKET_QUERY.format(batch="true")).pl())
        orphans = con.execute(_ORPHAN_COMMENTS_QUERY).fetchone()
    finally:
        con.close()
    assert orphans is not None
    return per_ticket, int(orphans[0])


def comparable(frame: pl.DataFrame) -> list[dict[str, object]]:
    counts = ["_comment_rows", "_replies_from_comments", "_internal_notes", "_solve_events"]
    return (
        frame.with_columns(pl.col(counts).cast(pl.Int64))
        .select(sorted(frame.columns))
        .sort("ticket_id")
        .to_dicts()
    )


def test_query_matches_polars_aggregation() -> None:
    per_ticket, _ = query_aggregates(COMMENTS, TICKETS)
    expected = _aggregate_comments(COMMENTS)
    assert sorted(per_ticket.columns) == sorted(expected.columns)
    assert comparable(per_ticket) == comparable(expected)


def test_query_second_solve_counts_ties() -> None:
    per_ticket, _ = query_aggregates(COMMENTS, TICKETS)
    t2 = per_ticket.filter(pl.col("ticket_id") == "t2").to_dicts()[0]
    assert t2["_solve_events"] == 3
    assert t2["_second_solve_event"] == at(2, 12)
    # The reopen came before the first solve, so it does not count.
    assert t2["_first_reopen_event"] is None


def test_query_reopen_after_first_solve() -> None:
    per_ticket, _ = query_aggregates(COMMENTS, TICKETS)
    t4 = per_ticket.filter(pl.col("ticket_id") == "t4").to_dicts()[0]
    assert t4["_first_solve_event"] == at(5, 9)
    assert t4["_second_solve_event"] == at(5, 11)
    assert t4["_first_reopen_event"] == at(5, 10)


def test_query_ticket_without_solve() -> None:
    per_ticket, _ = query_aggregates(COMMENTS, TICKETS)
    t3 = per_ticket.filter(pl.col("ticket_id") == "t3").to_dicts()[0]
    assert t3["_comment_rows"] == 1
    assert t3["_solve_events"] == 0
    assert t3["_first_solve_event"] is None
    assert t3["_second_solve_event"] is None


def test_query_counts_orphan_comments() -> None:
    _, orphans = query_aggregates(COMMENTS, TICKETS)
    assert orphans == 1
