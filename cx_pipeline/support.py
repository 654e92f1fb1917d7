"""Support-ticket KPIs: the ``ticket_metrics`` model and the Twitter conversation transform.

The transform threads a Twitter customer-support export into tickets and comments.
``ticket_metrics`` derives reply times, touches, solves and reopens from the comments and
status events in ``stg_ticket_comments``. The summary columns of ``stg_tickets``
(``first_reply_at``, ``agent_replies``, ``reopens``) are read only for tickets without any
comment row. Durations are given in calendar minutes and in business minutes of the
schedule set by ``business_hours`` in CX_CONFIG. Nothing depends on the wall clock, so a
rerun over the same rows gives the same table. docs/support_metrics.md states every rule.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import polars as pl

from cx_pipeline.business_hours import BusinessSchedule, business_minutes_many
from cx_pipeline.python_models import ModelContext, OutputTable, PythonModel

logger = logging.getLogger(__name__)

# --- Twitter conversations ------------------------------------------------------------

# Columns of the Kaggle "Customer Support on Twitter" export (twcs.csv).
TWITTER_COLUMNS = (
    "tweet_id",
    "author_id",
    "inbound",
    "created_at",
    "text",
    "in_response_to_tweet_id",
)
# Its timestamps look like "Tue Oct 31 22:10:47 +0000 2017".
TWITTER_TIMESTAMP_FORMAT = "%a %b %d %H:%M:%S %z %Y"
TWITTER_OUTPUTS = ("tickets", "comments")

# Pointer jumping halves the remaining path to the root in every round, so 64 rounds
# settle any thread shorter than 2**64 replies. Reply loops are found after the rounds.
_MAX_POINTER_ROUNDS = 64


def _id_text(column: str) -> pl.Expr:
    """Return an id column as text, with pandas' float suffix ("3.0") removed."""
    text = pl.col(column).str.strip_chars().str.replace(r"\.0+$", "")
    return pl.when(text != "").then(text)


def _iso_or_raw(parsed: str, raw: str) -> pl.Expr:
    """Return ISO 8601 text of a parsed timestamp, or the raw text when it did not parse.

    Raw text reaches validation unchanged, so the row is quarantined with its value.
    """
    return (
        pl.when(pl.col(parsed).is_not_null())
        .then(pl.col(parsed).dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
        .otherwise(pl.col(raw))
    )


def _thread_roots(tweets: pl.DataFrame) -> pl.DataFrame:
    """Return ``_tweet_id`` and ``_root_id``: the tweet at the top of its reply chain.

    ``_root_id`` is null when the chain reaches a parent that is not in the file, or
    loops back on itself.
    """
    nodes = (
        tweets.select("_tweet_id", "_parent_id")
        .filter(pl.col("_tweet_id").is_not_null())
        .unique("_tweet_id", keep="first", maintain_order=True)
    )
    known_ids = nodes["_tweet_id"].implode()
    # A tweet without a parent points at itself. One whose parent is missing points nowhere.
    state = nodes.select(
        "_tweet_id",
        pl.when(pl.col("_parent_id").is_null())
        .then(pl.col("_tweet_id"))
        .when(pl.col("_parent_id").is_in(known_ids))
        .then(pl.col("_parent_id"))
        .alias("_pointer"),
    )
    for _ in range(_MAX_POINTER_ROUNDS):
        pointer_of_pointer = state.select(
            pl.col("_tweet_id").alias("_pointer"), pl.col("_pointer").alias("_next")
        )
        stepped = state.join(pointer_of_pointer, on="_pointer", how="left", maintain_order="left")
        if stepped["_next"].equals(stepped["_pointer"]):
            break
        state = stepped.select("_tweet_id", pl.col("_next").alias("_pointer"))

    # Only a tweet without a parent is a root. A pointer that ends on a tweet with a
    # parent belongs to a reply loop.
    parents = nodes.select(
        pl.col("_tweet_id").alias("_pointer"), pl.col("_parent_id").alias("_pointer_parent")
    )
    resolved = state.join(parents, on="_pointer", how="left", maintain_order="left")
    return resolved.select(
        "_tweet_id",
        pl.when(pl.col("_pointer").is_not_null() & pl.col("_pointer_parent").is_null())
        .then(pl.col("_pointer"))
        .alias("_root_id"),
    )


def _prepare_tweets(frame: pl.DataFrame, timestamp_format: str) -> pl.DataFrame:
    """Parse the export's text columns and attach each tweet's ticket id."""
    inbound_text = pl.col("inbound").str.strip_chars()
    tweets = frame.select(
        _id_text("tweet_id").alias("_tweet_id"),
        _id_text("in_response_to_tweet_id").alias("_parent_id"),
        pl.col("author_id").str.strip_chars().alias("_author_id"),
        inbound_text.alias("_inbound_text"),
        inbound_text.str.to_lowercase()
        .replace_strict({"true": True, "false": False}, default=None, return_dtype=pl.Boolean)
        .alias("_inbound"),
        pl.col("created_at").alias("_created_text"),
        pl.col("created_at")
        .str.strip_chars()
        .str.to_datetime(timestamp_format, strict=False, time_zone="UTC", time_unit="us")
        .alias("_created_at"),
        pl.col("text").alias("_text"),
    )
    tweets = tweets.join(_thread_roots(tweets), on="_tweet_id", how="left", maintain_order="left")

    # A conversation is a ticket only when its root is a customer's tweet.
    root_is_inbound = (
        tweets.filter(pl.col("_parent_id").is_null() & pl.col("_tweet_id").is_not_null())
        .unique("_tweet_id", keep="first", maintain_order=True)
        .select(pl.col("_tweet_id").alias("_root_id"), pl.col("_inbound").alias("_root_inbound"))
    )
    tweets = tweets.join(root_is_inbound, on="_root_id", how="left", maintain_order="left")
    return tweets.with_columns(
        pl.when(pl.col("_root_inbound")).then(pl.col("_root_id")).alias("_ticket_id")
    )


def _twitter_comments(tweets: pl.DataFrame) -> pl.DataFrame:
    """Return one ticket_comments row per tweet, each a public comment.

    Tweets outside a customer-started conversation keep an empty ticket_id, so
    validation quarantines them instead of dropping them silently.
    """
    return tweets.select(
        pl.col("_tweet_id").alias("comment_id"),
        pl.col("_ticket_id").alias("ticket_id"),
        pl.when(pl.col("_inbound"))
        .then(pl.lit("end_user"))
        .when(pl.col("_inbound").not_())
        .then(pl.lit("agent"))
        .otherwise(pl.col("_inbound_text"))
        .alias("author_role"),
        pl.lit("true").alias("is_public"),
        _iso_or_raw("_created_at", "_created_text").alias("created_at"),
        pl.lit(None, pl.String).alias("event"),
        pl.col("_text").alias("body"),
    )


def _twitter_tickets(tweets: pl.DataFrame) -> pl.DataFrame:
    """Return one tickets row per customer-started conversation.

    Twitter has no ticket status. A conversation whose last tweet is the company's
    counts as solved at that tweet, because the customer did not write again. Any other
    conversation is open.
    """
    conversations = tweets.filter(pl.col("_ticket_id").is_not_null())
    # On equal timestamps the customer's tweet sorts last, so a tie leaves the ticket open.
    last_tweet = conversations.group_by("_ticket_id", maintain_order=True).agg(
        pl.col("_created_at").max().alias("_last_at"),
        pl.col("_inbound")
        .sort_by(["_created_at", "_inbound"], nulls_last=False)
        .last()
        .alias("_last_inbound"),
    )
    roots = conversations.filter(pl.col("_tweet_id") == pl.col("_ticket_id")).unique(
        "_tweet_id", keep="first", maintain_order=True
    )
    tickets = roots.join(last_tweet, on="_ticket_id", how="left", maintain_order="left")
    is_solved = pl.col("_last_inbound").not_() & pl.col("_last_at").is_not_null()
    return tickets.select(
        pl.col("_ticket_id").alias("ticket_id"),
        pl.col("_author_id").alias("customer_id"),
        pl.when(is_solved).then(pl.lit("solved")).otherwise(pl.lit("open")).alias("status"),
        _iso_or_raw("_created_at", "_created_text").alias("created_at"),
        pl.col("_last_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z").alias("updated_at"),
        pl.when(is_solved)
        .then(pl.col("_last_at").dt.strftime("%Y-%m-%dT%H:%M:%S%:z"))
        .alias("solved_at"),
    )


def thread_twitter_conversations(
    frame: pl.DataFrame, options: dict[str, Any], lookup: pl.DataFrame | None
) -> pl.DataFrame:
    """Thread a Twitter customer-support export into tickets or ticket comments.

    A conversation is the reply tree under a customer tweet that replies to nothing, and
    its ticket_id is that tweet's id. Options: ``output`` is ``tickets`` (one row per
    conversation) or ``comments`` (one row per tweet). ``timestamp_format`` is the
    strftime format of ``created_at`` (default ``TWITTER_TIMESTAMP_FORMAT``).
    Timestamps come out as ISO 8601 text. Threads are built within one file only.

    Raises ValueError for an unknown ``output`` or missing export columns, so the
    extraction lists the file as rejected.
    """
    output = str(options["output"])
    if output not in TWITTER_OUTPUTS:
        raise ValueError(
            f"transform twitter_conversations: output must be one of {TWITTER_OUTPUTS}, "
            f"got {output!r}"
        )
    missing = [column for column in TWITTER_COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"transform twitter_conversations: export has no column(s) {missing}")
    timestamp_format = str(options.get("timestamp_format", TWITTER_TIMESTAMP_FORMAT))

    tweets = _prepare_tweets(frame, timestamp_format)
    outside = tweets.filter(pl.col("_ticket_id").is_null()).height
    if outside:
        logger.info(
            "%d of %d tweets are outside a customer-started conversation in this file (their "
            "thread starts with a company tweet, loops, or replies to a tweet not in the file)",
            outside,
            tweets.height,
        )
    if output == "comments":
        return _twitter_comments(tweets)
    return _twitter_tickets(tweets)


# --- ticket_metrics -------------------------------------------------------------------

TICKET_METRICS = "ticket_metrics"

# Tickets are processed in batches of consecutive ticket_id values, so memory grows with
# the batch instead of the whole table. Every query below keeps the rows of one batch:
# ticket_id >= $batch_start and, unless the batch is the last one, ticket_id < $batch_end.
TICKET_BATCH_ROWS = 250_000

_TICKETS_QUERY = """
select
    ticket_id, customer_id, channel, priority, status, is_solved, created_at, created_date,
    solved_at, first_reply_at, agent_replies, reopens
from stg_tickets
where {batch}
"""

# Aggregates the comments per ticket in DuckDB, so only one row per ticket reaches Polars
# instead of every comment. _aggregate_comments computes the same columns from a frame.
_PER_TICKET_QUERY = """
with per_ticket as (
    select
        ticket_id,
        count(*) as _comment_rows,
        min(created_at) filter (where author_role = 'agent' and is_public)
            as _first_reply_from_comments,
        count(*) filter (where author_role = 'agent' and is_public) as _replies_from_comments,
        count(*) filter (where author_role = 'agent' and not is_public) as _internal_notes,
        count(*) filter (where event = 'solved') as _solve_events,
        min(created_at) filter (where event = 'solved') as _first_solve_event,
        max(created_at) filter (where event = 'solved') as _last_solve_event,
        list(created_at order by created_at nulls first) filter (where event = 'solved')
            as _solve_times
    from stg_ticket_comments
    where {batch}
    group by ticket_id
),
reopen_events as (
    select c.ticket_id, min(c.created_at) as _first_reopen_event
    from stg_ticket_comments as c
    join per_ticket as p on p.ticket_id = c.ticket_id
    where c.event = 'reopened' and c.created_at >= p._first_solve_event
    group by c.ticket_id
)
select
    p.* exclude (_solve_times),
    p._solve_times[2] as _second_solve_event,
    r._first_reopen_event
from per_ticket as p
left join reopen_events as r on r.ticket_id = p.ticket_id
"""

_ORPHAN_COMMENTS_QUERY = """
select count(*)
from stg_ticket_comments as c
where c.ticket_id is not null
    and not exists (select 1 from stg_tickets as t where t.ticket_id = c.ticket_id)
"""

# The first ticket_id of every batch: every TICKET_BATCH_ROWS-th id in sorted order.
_BATCH_STARTS_QUERY = """
select ticket_id
from (select ticket_id, row_number() over (order by ticket_id) as position from stg_tickets)
where position % $batch_rows = 1
order by ticket_id
"""

_MICROSECONDS_PER_MINUTE = 60_000_000


def _aggregate_comments(comments: pl.DataFrame) -> pl.DataFrame:
    """Aggregate comments per ticket: replies, internal notes, solve and reopen events."""
    is_agent = pl.col("author_role") == "agent"
    is_reply = is_agent & pl.col("is_public")
    per_ticket = comments.group_by("ticket_id").agg(
        pl.len().alias("_comment_rows"),
        pl.col("created_at").filter(is_reply).min().alias("_first_reply_from_comments"),
        is_reply.sum().cast(pl.Int64).alias("_replies_from_comments"),
        (is_agent & pl.col("is_public").not_()).sum().cast(pl.Int64).alias("_internal_notes"),
        (pl.col("event") == "solved").sum().cast(pl.Int64).alias("_solve_events"),
        pl.col("created_at").filter(pl.col("event") == "solved").min().alias("_first_solve_event"),
        pl.col("created_at").filter(pl.col("event") == "solved").max().alias("_last_solve_event"),
        pl.col("created_at")
        .filter(pl.col("event") == "solved")
        .sort()
        .slice(1, 1)
        .first()
        .alias("_second_solve_event"),
    )
    # Only a reopen event at or after the first solve can follow a solve.
    reopen_events = (
        comments.filter(pl.col("event") == "reopened")
        .join(per_ticket.select("ticket_id", "_first_solve_event"), on="ticket_id")
        .filter(pl.col("created_at") >= pl.col("_first_solve_event"))
        .group_by("ticket_id")
        .agg(pl.col("created_at").min().alias("_first_reopen_event"))
    )
    return per_ticket.join(reopen_events, on="ticket_id", how="left")


def _choose_sources(tickets: pl.DataFrame, per_ticket: pl.DataFrame) -> pl.DataFrame:
    """Take each ticket's replies, solves and reopens from its comments, or from its summary.

    The summary columns are read only for a ticket without any comment row.
    """
    frame = tickets.join(per_ticket, on="ticket_id", how="left", maintain_order="left")
    has_comments = pl.col("_comment_rows").fill_null(0) > 0
    has_solve_events = pl.col("_solve_events").fill_null(0) > 0
    # Reopens that a source does not record count as 0.
    summary_reopens = pl.col("reopens").fill_null(0)
    summary_solves = (
        pl.when(pl.col("solved_at").is_not_null())
        .then(summary_reopens + 1)
        .otherwise(summary_reopens)
    )

    solves = (
        pl.when(has_solve_events)
        .then(pl.col("_solve_events"))
        .when(has_comments)
        .then(pl.col("solved_at").is_not_null().cast(pl.Int64))
        .otherwise(summary_solves)
    )
    # Without solve events the ticket's solved_at is the only solve we can place in time,
    # and it is the first one only when the ticket was never reopened.
    first_solved_at = (
        pl.when(has_solve_events)
        .then(pl.col("_first_solve_event"))
        .when(has_comments | (summary_reopens == 0))
        .then(pl.col("solved_at"))
    )
    # A reopen is timed by its event. Without one, the second solve is the latest
    # instant it can have happened.
    first_reopened_at = pl.coalesce("_first_reopen_event", "_second_solve_event")

    return frame.select(
        "ticket_id",
        "customer_id",
        "channel",
        "priority",
        "status",
        "is_solved",
        "created_at",
        "created_date",
        pl.when(has_comments)
        .then(pl.lit("comments"))
        .otherwise(pl.lit("ticket_summary"))
        .alias("derived_from"),
        pl.when(has_comments)
        .then(pl.col("_first_reply_from_comments"))
        .otherwise(pl.col("first_reply_at"))
        .alias("first_reply_at"),
        pl.when(has_comments)
        .then(pl.col("_replies_from_comments"))
        .otherwise(pl.col("agent_replies"))
        .alias("public_agent_replies"),
        pl.col("_internal_notes").alias("internal_notes"),
        solves.alias("solves"),
        pl.max_horizontal(solves - 1, pl.lit(0)).alias("reopens"),
        first_solved_at.alias("first_solved_at"),
        pl.when(pl.col("is_solved"))
        .then(pl.max_horizontal("solved_at", "_last_solve_event"))
        .alias("final_solved_at"),
        first_reopened_at.alias("first_reopened_at"),
    )


def _add_durations(frame: pl.DataFrame, schedule: BusinessSchedule) -> tuple[pl.DataFrame, int]:
    """Add calendar and business minutes from creation to first reply, first and final solve.

    An end before the ticket's creation is a data error. Its duration stays null, the row
    gets ``has_time_before_creation``, and the number of such rows is returned.
    """
    ends = {
        "first_reply": "first_reply_at",
        "first_resolution": "first_solved_at",
        "final_resolution": "final_solved_at",
    }
    is_reversed = {
        prefix: (pl.col(column) < pl.col("created_at")).fill_null(False)
        for prefix, column in ends.items()
    }
    frame = frame.with_columns(
        *[
            pl.when(is_reversed[prefix].not_()).then(pl.col(column)).alias(f"_end_{prefix}")
            for prefix, column in ends.items()
        ],
        pl.any_horizontal(*is_reversed.values()).alias("has_time_before_creation"),
    )

    durations = []
    for prefix in ends:
        end = pl.col(f"_end_{prefix}")
        durations.append(
            ((end - pl.col("created_at")).dt.total_microseconds() / _MICROSECONDS_PER_MINUTE).alias(
                f"{prefix}_minutes"
            )
        )
        business = business_minutes_many(schedule, frame["created_at"], frame[f"_end_{prefix}"])
        durations.append(pl.lit(business).alias(f"{prefix}_business_minutes"))
    frame = frame.with_columns(durations).drop(f"_end_{prefix}" for prefix in ends)
    return frame, int(frame["has_time_before_creation"].sum())


def _add_touch_and_fcr(
    frame: pl.DataFrame, reopen_window_days: int, observation_end: dt.datetime
) -> pl.DataFrame:
    """Add touch_class, is_fcr and is_fcr_strict, each null where it is not defined."""
    replies = pl.col("public_agent_replies")
    counts_for_fcr = pl.col("is_solved") & (replies.fill_null(0) > 0)
    touch_class = (
        pl.when(counts_for_fcr & (replies == 1))
        .then(pl.lit("one_touch"))
        .when(counts_for_fcr & (replies == 2))
        .then(pl.lit("two_touch"))
        .when(counts_for_fcr)
        .then(pl.lit("multi_touch"))
    )
    is_fcr = pl.when(counts_for_fcr).then(replies == 1)

    window = dt.timedelta(days=reopen_window_days)
    reopened_in_window = (pl.col("first_reopened_at") - pl.col("first_solved_at")) <= window
    # Strict FCR stays null until the window after the first solve has passed
    # observation_end, because a reopen may still arrive.
    # NOTE: observation_end ignores ticket timestamps, so when survey, order, subscription
    # or session events end before the tickets do, more recent tickets stay null here.
    is_fcr_strict = (
        pl.when(is_fcr.is_null())
        .then(None)
        .when(is_fcr.not_())
        .then(False)
        .when(reopened_in_window.fill_null(False))
        .then(False)
        .when(pl.col("first_reopened_at").is_not_null())
        .then(True)
        .when((pl.col("reopens") > 0) | pl.col("first_solved_at").is_null())
        .then(None)
        .when(pl.col("first_solved_at") + window > pl.lit(observation_end))
        .then(None)
        .otherwise(True)
    )
    return frame.with_columns(
        touch_class.alias("touch_class"),
        is_fcr.alias("is_fcr"),
        is_fcr_strict.alias("is_fcr_strict"),
    )


def build_ticket_metrics(
    tickets: pl.DataFrame,
    comments: pl.DataFrame,
    schedule: BusinessSchedule,
    reopen_window_days: int,
    observation_end: dt.datetime,
) -> pl.DataFrame:
    """Compute one row of support metrics per ticket of ``tickets``, sorted by ticket_id.

    ``tickets`` and ``comments`` have the columns of ``stg_tickets`` and
    ``stg_ticket_comments`` that the model queries. Timestamps must be time-zone aware.
    """
    known_tickets = tickets["ticket_id"].implode()
    orphans = comments.filter(pl.col("ticket_id").is_in(known_tickets).not_()).height
    return metrics_from_comment_aggregates(
        tickets, _aggregate_comments(comments), orphans, schedule, reopen_window_days, observation_end
    )


def metrics_from_comment_aggregates(
    tickets: pl.DataFrame,
    per_ticket: pl.DataFrame,
    orphan_comments: int,
    schedule: BusinessSchedule,
    reopen_window_days: int,
    observation_end: dt.datetime,
) -> pl.DataFrame:
    """Compute one row of support metrics per ticket from comments already aggregated per ticket.

    ``per_ticket`` has the columns of ``_aggregate_comments``. ``orphan_comments`` is the
    number of comment rows whose ticket is not in ``tickets``, only logged.
    """
    _log_orphans(orphan_comments)
    frame, reversed_rows = _metrics_and_reversed_rows(
        tickets, per_ticket, schedule, reopen_window_days, observation_end
    )
    _log_reversed_rows(reversed_rows)
    return frame


def _metrics_and_reversed_rows(
    tickets: pl.DataFrame,
    per_ticket: pl.DataFrame,
    schedule: BusinessSchedule,
    reopen_window_days: int,
    observation_end: dt.datetime,
) -> tuple[pl.DataFrame, int]:
    """Return the metrics sorted by ticket_id, and the number of rows with a time before creation."""
    frame = _choose_sources(tickets, per_ticket)
    frame, reversed_rows = _add_durations(frame, schedule)
    frame = _add_touch_and_fcr(frame, reopen_window_days, observation_end)
    return frame.select(TICKET_METRICS_COLUMNS).sort("ticket_id"), reversed_rows


def _log_orphans(orphan_comments: int) -> None:
    if orphan_comments:
        logger.warning(
            "%d comment rows belong to no ticket in stg_tickets and are ignored", orphan_comments
        )


def _log_reversed_rows(reversed_rows: int) -> None:
    if reversed_rows:
        logger.warning(
            "%d tickets have a reply or solve before their created_at, so those durations are null",
            reversed_rows,
        )


TICKET_METRICS_COLUMNS = [
    "ticket_id",
    "customer_id",
    "channel",
    "priority",
    "status",
    "is_solved",
    "created_at",
    "created_date",
    "derived_from",
    "first_reply_at",
    "first_reply_minutes",
    "first_reply_business_minutes",
    "public_agent_replies",
    "internal_notes",
    "solves",
    "reopens",
    "first_solved_at",
    "first_resolution_minutes",
    "first_resolution_business_minutes",
    "final_solved_at",
    "final_resolution_minutes",
    "final_resolution_business_minutes",
    "first_reopened_at",
    "touch_class",
    "is_fcr",
    "is_fcr_strict",
    "has_time_before_creation",
]


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Convert every time-zone-aware column to UTC (DuckDB returns its session zone)."""
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )


def _batch_condition(start: str, end: str | None) -> tuple[str, dict[str, str]]:
    """Return the WHERE condition of the batch from ``start`` up to ``end`` (None: no end)."""
    if end is None:
        return "ticket_id >= $batch_start", {"batch_start": start}
    return "ticket_id >= $batch_start and ticket_id < $batch_end", {
        "batch_start": start,
        "batch_end": end,
    }


def write_ticket_metrics(context: ModelContext) -> dict[str, int]:
    """Replace ``ticket_metrics`` with one row per staged ticket and return its row count.

    Tickets are read, measured and written TICKET_BATCH_ROWS at a time in ticket_id order,
    with the comments of the same tickets aggregated in DuckDB, so the table comes out
    sorted by ticket_id. Must run inside the caller's transaction, which
    ``compute_and_write`` opens and commits.
    """
    con = context.con
    start_rows = con.execute(_BATCH_STARTS_QUERY, {"batch_rows": TICKET_BATCH_ROWS}).fetchall()
    starts = [row[0] for row in start_rows]
    # An empty stg_tickets still gets one (empty) batch, which gives the table its columns.
    bounds = list(zip(starts, [*starts[1:], None])) if starts else [("", None)]
    orphans = con.execute(_ORPHAN_COMMENTS_QUERY).fetchone()
    _log_orphans(int(orphans[0]) if orphans else 0)

    schedule = context.kpi.business_schedule()
    rows = reversed_rows = 0
    con.execute(f"drop table if exists {TICKET_METRICS}")
    for position, (start, end) in enumerate(bounds):
        condition, parameters = _batch_condition(start, end)
        tickets = _utc(con.execute(_TICKETS_QUERY.format(batch=condition), parameters).pl())
        per_ticket = _utc(con.execute(_PER_TICKET_QUERY.format(batch=condition), parameters).pl())
        metrics, batch_reversed = _metrics_and_reversed_rows(
            tickets,
            per_ticket,
            schedule,
            context.kpi.fcr_reopen_window_days,
            context.parameters["observation_end"],
        )
        batch = con.from_arrow(metrics.to_arrow())
        if position == 0:
            batch.create(TICKET_METRICS)
        else:
            batch.insert_into(TICKET_METRICS)
        rows += metrics.height
        reversed_rows += batch_reversed
    _log_reversed_rows(reversed_rows)
    return {TICKET_METRICS: rows}


TICKET_METRICS_MODEL = PythonModel(
    name=TICKET_METRICS,
    outputs=(
        OutputTable(
            name=TICKET_METRICS,
            description=(
                "Per support ticket: first reply and resolution times in calendar and business "
                "minutes, public agent replies, solves, reopens, touch class and first-contact "
                "resolution."
            ),
            grain="one row per ticket_id",
        ),
    ),
    deps=("stg_tickets", "stg_ticket_comments"),
    write=write_ticket_metrics,
)
