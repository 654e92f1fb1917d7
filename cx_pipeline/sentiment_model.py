"""The feedback text model: sentiment per feedback item and monthly themes of low scores.

Feedback items are the answers in ``stg_feedback`` and, when the support tables exist
and carry text, the messages customers wrote in ``stg_ticket_comments``. Every text is
masked with ``mask_pii`` before anything else happens, and only masked text is published
or hashed. A blank or missing text has no sentiment: its score and label are null.

Only texts that are new since the previous run are scored. ``sentiment_cache`` keeps the
compound score of every current text under the SHA-256 of its masked text and the scorer
version, and the model reads it back at the start of the next run.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass

import duckdb
import polars as pl

from cx_pipeline.contracts import SCHEMAS_DIR
from cx_pipeline.models import ASSETS_DIR
from cx_pipeline.python_models import ModelContext, OutputTable, PythonModel, table_exists
from cx_pipeline.text import (
    SCORER_VERSION,
    available_cpus,
    count_documents,
    has_text,
    mask_pii,
    score_texts,
    sentiment_label,
    text_hash,
    uses_process_pool,
)
from cx_pipeline.warehouse import quote_identifier, table_columns

FEEDBACK_SENTIMENT = "feedback_sentiment"
FEEDBACK_THEMES_MONTHLY = "feedback_themes_monthly"
SENTIMENT_CACHE = "sentiment_cache"

# Values of feedback_sentiment.source.
SOURCE_SURVEY_COMMENT = "survey_comment"
SOURCE_REVIEW = "review"
SOURCE_SUPPORT_MESSAGE = "support_message"

# Values of feedback_themes_monthly.driver, each a kind of low-score answer.
DRIVER_LOW_CSAT = "low_csat"
DRIVER_LOW_CES = "low_ces"
DRIVER_NPS_DETRACTOR = "nps_detractor"

SENTIMENT_SCHEMA = {
    "source": pl.String,
    "item_id": pl.String,
    "survey_type": pl.String,
    "ticket_id": pl.String,
    "customer_id": pl.String,
    "submitted_at": pl.Datetime("us", "UTC"),
    "submitted_date": pl.Date,
    "channel": pl.String,
    "segment": pl.String,
    "text_masked": pl.String,
    "text_hash": pl.String,
    "compound": pl.Float64,
    "sentiment_label": pl.String,
}
CACHE_SCHEMA = {
    "text_hash": pl.String,
    "scorer": pl.String,
    "compound": pl.Float64,
}
THEMES_SCHEMA = {
    "month": pl.Date,
    "driver": pl.String,
    "term_type": pl.String,
    "rank": pl.Int64,
    "term": pl.String,
    "comment_count": pl.Int64,
    "comments_with_text": pl.Int64,
    "answers": pl.Int64,
    "share_of_comments": pl.Float64,
}


def project_defines(table: str) -> bool:
    """Return whether the project's contracts or SQL files define ``table``.

    The support tables come from their own contracts and models. Depending on them only
    when they are defined keeps this model valid in a project without them.
    """
    for prefix in ("raw_", "validated_", "quarantine_"):
        if table.startswith(prefix):
            return (SCHEMAS_DIR / f"{table.removeprefix(prefix)}.yaml").is_file()
    if table == "ticket_metrics":
        return importlib.util.find_spec("cx_pipeline.support") is not None
    return any((ASSETS_DIR / layer / f"{table}.sql").is_file() for layer in ("staging", "marts"))


def defined_tables(tables: Iterable[str]) -> tuple[str, ...]:
    """Return the tables of ``tables`` that the project defines, in the given order."""
    return tuple(table for table in tables if project_defines(table))


def _utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Convert time-zone-aware columns to UTC (DuckDB returns its session time zone)."""
    return frame.with_columns(
        pl.col(name).dt.convert_time_zone("UTC")
        for name, dtype in frame.schema.items()
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None
    )


# --- Loading ------------------------------------------------------------------------------

_RAW_SCHEMA = {
    "source": pl.String,
    "item_id": pl.String,
    "survey_type": pl.String,
    "ticket_id": pl.String,
    "customer_id": pl.String,
    "submitted_at": pl.Datetime("us", "UTC"),
    "submitted_date": pl.Date,
    "channel": pl.String,
    "segment": pl.String,
    "raw_text": pl.String,
    "driver": pl.String,
}
_FEEDBACK_QUERY = f"""
SELECT
    CASE WHEN survey_type = 'review' THEN '{SOURCE_REVIEW}' ELSE '{SOURCE_SURVEY_COMMENT}' END AS source,
    response_id AS item_id,
    survey_type,
    CAST(NULL AS VARCHAR) AS ticket_id,
    customer_id,
    submitted_at,
    submitted_date,
    channel,
    segment,
    comment AS raw_text,
    CASE
        WHEN survey_type IN ('csat', 'review') AND NOT is_satisfied THEN '{DRIVER_LOW_CSAT}'
        WHEN survey_type = 'ces' AND NOT is_easy THEN '{DRIVER_LOW_CES}'
        WHEN nps_category = 'detractor' THEN '{DRIVER_NPS_DETRACTOR}'
    END AS driver
FROM stg_feedback
"""


def _month_filter(date_expression: str, month: dt.date | None) -> tuple[str, dict[str, dt.date]]:
    """Return a WHERE condition that keeps the rows of one calendar month, and its parameters.

    ``month`` is the first day of the month, or None for rows without a date.
    """
    if month is None:
        return f"{date_expression} IS NULL", {}
    following = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    condition = f"{date_expression} >= $month_start AND {date_expression} < $next_month_start"
    return condition, {"month_start": month, "next_month_start": following}


def _load_feedback(context: ModelContext, month: dt.date | None) -> pl.DataFrame:
    """Return the stg_feedback answers submitted in ``month`` (see ``_month_filter``)."""
    condition, parameters = _month_filter("submitted_date", month)
    frame = context.con.execute(f"{_FEEDBACK_QUERY} WHERE {condition}", parameters).pl()
    return _utc(frame).cast(_RAW_SCHEMA)


_COMMENT_COLUMNS = {"comment_id", "ticket_id", "author_role", "created_at"}
_COMMENT_ROW_COLUMNS = {"arrival_date", "source_file", "source_row_number"}


def _support_text_source(context: ModelContext) -> tuple[str, str] | None:
    """Return the SQL expression and join that give the text of a ticket comment, or None.

    The text is read from ``stg_ticket_comments.body`` when that column exists, and
    otherwise from the comment's own row in ``validated_ticket_comments``.
    """
    con = context.con
    if not table_exists(con, "stg_ticket_comments"):
        context.log.info(
            "sentiment: stg_ticket_comments does not exist; support messages are skipped"
        )
        return None
    columns = table_columns(con, "stg_ticket_comments")
    if not _COMMENT_COLUMNS <= columns:
        context.log.warning(
            "sentiment: stg_ticket_comments lacks %s; support messages are skipped",
            sorted(_COMMENT_COLUMNS - columns),
        )
        return None
    if "body" in columns:
        return "comments.body", ""
    has_validated_body = table_exists(con, "validated_ticket_comments") and {
        "body",
        "comment_id",
        "_partition_date",
        "_source_file",
        "_row_number",
    } <= table_columns(con, "validated_ticket_comments")
    if has_validated_body and _COMMENT_ROW_COLUMNS <= columns:
        join = """
            LEFT JOIN validated_ticket_comments AS validated
                ON validated.comment_id = comments.comment_id
                AND validated._partition_date = comments.arrival_date
                AND validated._source_file = comments.source_file
                AND validated._row_number = comments.source_row_number
        """
        return "validated.body", join
    context.log.info("sentiment: ticket comments have no text column; support messages are skipped")
    return None


# The day a ticket comment counts for, in the reporting time zone.
_COMMENT_DATE = "CAST(timezone($reporting_timezone, comments.created_at) AS DATE)"


def _load_support_messages(
    context: ModelContext, source: tuple[str, str], month: dt.date | None
) -> pl.DataFrame:
    """Return the messages that customers (author_role end_user) wrote in tickets in ``month``.

    ``source`` is the text expression and join from ``_support_text_source``.
    """
    text_expression, text_join = source
    condition, parameters = _month_filter(_COMMENT_DATE, month)

    # Channel and customer come from the ticket; table_columns is empty without stg_tickets.
    has_tickets = {"ticket_id", "customer_id", "channel"} <= table_columns(
        context.con, "stg_tickets"
    )
    ticket_join = (
        "LEFT JOIN stg_tickets AS tickets ON tickets.ticket_id = comments.ticket_id"
        if has_tickets
        else ""
    )
    customer = "tickets.customer_id" if has_tickets else "CAST(NULL AS VARCHAR)"
    channel = "coalesce(tickets.channel, 'unspecified')" if has_tickets else "'unspecified'"

    query = f"""
        SELECT
            '{SOURCE_SUPPORT_MESSAGE}' AS source,
            comments.comment_id AS item_id,
            CAST(NULL AS VARCHAR) AS survey_type,
            comments.ticket_id,
            {customer} AS customer_id,
            comments.created_at AS submitted_at,
            {_COMMENT_DATE} AS submitted_date,
            {channel} AS channel,
            'unspecified' AS segment,
            {text_expression} AS raw_text,
            CAST(NULL AS VARCHAR) AS driver
        FROM stg_ticket_comments AS comments
        {text_join}
        {ticket_join}
        WHERE comments.author_role = 'end_user' AND {condition}
    """
    parameters["reporting_timezone"] = context.kpi.reporting_timezone
    frame = context.con.execute(query, parameters).pl()
    return _utc(frame).cast(_RAW_SCHEMA)


# --- Scoring ------------------------------------------------------------------------------


def _cache_is_readable(context: ModelContext) -> bool:
    """Return whether the previous run's sentiment_cache exists with every column it needs."""
    if not table_exists(context.con, SENTIMENT_CACHE):
        return False
    missing = set(CACHE_SCHEMA) - table_columns(context.con, SENTIMENT_CACHE)
    if missing:
        context.log.warning(
            "sentiment: %s lacks %s; every text is scored again", SENTIMENT_CACHE, sorted(missing)
        )
        return False
    return True


def _known_compounds(context: ModelContext, hashes: list[str], read_cache: bool) -> dict[str, float]:
    """Return the scores already known for ``hashes``, by text hash.

    A score is known when the previous run's sentiment_cache contains it for the current
    scorer version, or when an earlier batch of this run wrote it to feedback_sentiment.
    """
    parameters: dict[str, object] = {"hashes": hashes}
    queries = [
        f"""SELECT DISTINCT text_hash, compound FROM {FEEDBACK_SENTIMENT}
            WHERE compound IS NOT NULL AND text_hash IN (SELECT unnest(CAST($hashes AS VARCHAR[])))"""
    ]
    if read_cache:
        parameters["scorer"] = SCORER_VERSION
        queries.append(
            f"""SELECT text_hash, compound FROM {SENTIMENT_CACHE}
                WHERE scorer = $scorer AND compound IS NOT NULL
                AND text_hash IN (SELECT unnest(CAST($hashes AS VARCHAR[])))"""
        )
    rows = context.con.execute(" UNION ALL ".join(queries), parameters).fetchall()
    return dict(rows)


@dataclass
class _BatchScores:
    """Scores of one batch: a compound per distinct text, and how the new ones were scored."""

    compounds: dict[str, float | None]
    scored: int
    parallel: bool


def _score_new_texts(
    context: ModelContext, texts_by_hash: dict[str, str], read_cache: bool
) -> _BatchScores:
    """Return the compound score of every text, scoring only those not known yet."""
    known = _known_compounds(context, list(texts_by_hash), read_cache)
    new_hashes = sorted(hash_value for hash_value in texts_by_hash if hash_value not in known)
    workers = context.kpi.sentiment_workers or available_cpus()
    scores = score_texts(
        [texts_by_hash[hash_value] for hash_value in new_hashes],
        workers=workers,
        parallel_min_texts=context.kpi.sentiment_parallel_min_texts,
    )
    compounds: dict[str, float | None] = dict(known)
    compounds.update(zip(new_hashes, scores, strict=True))
    parallel = uses_process_pool(len(new_hashes), workers, context.kpi.sentiment_parallel_min_texts)
    return _BatchScores(compounds, len(new_hashes), parallel)


def _score_items(
    context: ModelContext, items: pl.DataFrame, read_cache: bool
) -> tuple[pl.DataFrame, _BatchScores]:
    """Mask, hash and score the texts of ``items``, returning their feedback_sentiment rows."""
    masked = [mask_pii(text) if has_text(text) else None for text in items["raw_text"].to_list()]
    hashes = [text_hash(text) if text is not None else None for text in masked]
    texts_by_hash = {
        hash_value: text for hash_value, text in zip(hashes, masked, strict=True) if hash_value
    }
    batch = _score_new_texts(context, texts_by_hash, read_cache)

    kpi = context.kpi
    item_compounds = [batch.compounds[hash_value] if hash_value else None for hash_value in hashes]
    labels = [
        sentiment_label(
            compound, kpi.sentiment_positive_threshold, kpi.sentiment_negative_threshold
        )
        for compound in item_compounds
    ]
    sentiment = (
        items.drop("raw_text", "driver")
        .with_columns(
            pl.Series("text_masked", masked, dtype=pl.String),
            pl.Series("text_hash", hashes, dtype=pl.String),
            pl.Series("compound", item_compounds, dtype=pl.Float64),
            pl.Series("sentiment_label", labels, dtype=pl.String),
        )
        .select(list(SENTIMENT_SCHEMA))
        .sort("source", "item_id")
    )
    return sentiment, batch


# --- Themes -------------------------------------------------------------------------------


def build_themes(answers: pl.DataFrame, top_n: int, min_comments: int) -> pl.DataFrame:
    """Count the terms and phrases of low-score comments per month and driver.

    ``answers`` has one row per low-score answer with the columns submitted_date, driver
    and text_masked (null without text). A term's count is the number of comments that
    contain it, so a word repeated within one comment counts once. Ties in the top N
    are broken alphabetically.
    """
    rows: list[dict[str, object]] = []
    grouped = answers.with_columns(
        pl.col("submitted_date").dt.truncate("1mo").alias("month")
    ).group_by("month", "driver")
    for (month, driver), group in grouped:
        texts = group["text_masked"].drop_nulls().to_list()
        term_counts, phrase_counts, comments_with_text = count_documents(texts)
        for term_type, counts in (("term", term_counts), ("phrase", phrase_counts)):
            frequent = sorted(
                ((term, count) for term, count in counts.items() if count >= min_comments),
                key=lambda item: (-item[1], item[0]),
            )[:top_n]
            for rank, (term, count) in enumerate(frequent, 1):
                rows.append(
                    {
                        "month": month,
                        "driver": driver,
                        "term_type": term_type,
                        "rank": rank,
                        "term": term,
                        "comment_count": count,
                        "comments_with_text": comments_with_text,
                        "answers": group.height,
                        "share_of_comments": count / comments_with_text,
                    }
                )
    return pl.DataFrame(rows, schema=THEMES_SCHEMA).sort("month", "driver", "term_type", "rank")


# --- Model --------------------------------------------------------------------------------

_SQL_TYPES = {
    pl.String: "VARCHAR",
    pl.Date: "DATE",
    pl.Float64: "DOUBLE",
    pl.Int64: "BIGINT",
    pl.Datetime("us", "UTC"): "TIMESTAMPTZ",
}


def _create_empty_table(con: duckdb.DuckDBPyConnection, table: str, schema: dict[str, pl.DataType]) -> None:
    columns = ", ".join(f"{quote_identifier(name)} {_SQL_TYPES[dtype]}" for name, dtype in schema.items())
    con.execute(f"CREATE OR REPLACE TABLE {quote_identifier(table)} ({columns})")


def _append_rows(con: duckdb.DuckDBPyConnection, table: str, rows: pl.DataFrame) -> None:
    """Insert ``rows``, whose columns are in the table's order, in the open transaction.

    The rows go through a relation instead of ``register``, because a DuckLake connection
    keeps every frame registered in a transaction until it ends. Replaying the transaction
    after a conflict is left to ``rerun_on_conflict``, which runs the whole model again.
    """
    if rows.height:
        con.from_arrow(rows.to_arrow()).insert_into(table)


def _batch_months(
    context: ModelContext, has_feedback: bool, support_source: tuple[str, str] | None
) -> list[dt.date | None]:
    """Return the first day of every month with feedback items, and None for undated ones."""
    selects = []
    parameters: dict[str, object] = {}
    if has_feedback:
        selects.append("SELECT CAST(date_trunc('month', submitted_date) AS DATE) FROM stg_feedback")
    if support_source is not None:
        selects.append(
            f"""SELECT CAST(date_trunc('month', {_COMMENT_DATE}) AS DATE)
                FROM stg_ticket_comments AS comments WHERE comments.author_role = 'end_user'"""
        )
        parameters["reporting_timezone"] = context.kpi.reporting_timezone
    if not selects:
        return []
    rows = context.con.execute(" UNION ".join(selects), parameters).fetchall()
    return sorted((row[0] for row in rows), key=lambda month: (month is None, month))


def write_feedback_text(context: ModelContext) -> dict[str, int]:
    """Replace feedback_sentiment, feedback_themes_monthly and sentiment_cache, and return
    their row counts.

    Items are read, scored and written one calendar month of submitted_date at a time, so
    memory grows with the largest month instead of the whole history. Themes are counted
    per month, so each batch contains every comment its theme rows need. Must run inside the
    caller's transaction, which ``compute_and_write`` opens and commits.
    """
    con = context.con
    read_cache = _cache_is_readable(context)
    has_feedback = table_exists(con, "stg_feedback")
    if not has_feedback:
        context.log.info("sentiment: stg_feedback does not exist yet; no survey or review texts")
    support_source = _support_text_source(context)
    _create_empty_table(con, FEEDBACK_SENTIMENT, SENTIMENT_SCHEMA)
    _create_empty_table(con, FEEDBACK_THEMES_MONTHLY, THEMES_SCHEMA)

    counts = {FEEDBACK_SENTIMENT: 0, FEEDBACK_THEMES_MONTHLY: 0}
    answers = support_messages = with_text = scored = 0
    parallel = False
    empty = pl.DataFrame(schema=_RAW_SCHEMA)
    for month in _batch_months(context, has_feedback, support_source):
        feedback = _load_feedback(context, month) if has_feedback else empty
        support = (
            _load_support_messages(context, support_source, month)
            if support_source is not None
            else empty
        )
        sentiment, batch = _score_items(context, pl.concat([feedback, support], how="vertical"), read_cache)
        low_answers = (
            feedback.select("source", "item_id", "submitted_date", "driver")
            .filter(pl.col("driver").is_not_null())
            .join(
                sentiment.select("source", "item_id", "text_masked"),
                on=["source", "item_id"],
                how="left",
            )
        )
        themes = build_themes(low_answers, context.kpi.themes_top_n, context.kpi.themes_min_comments)
        _append_rows(con, FEEDBACK_SENTIMENT, sentiment)
        _append_rows(con, FEEDBACK_THEMES_MONTHLY, themes)

        counts[FEEDBACK_SENTIMENT] += sentiment.height
        counts[FEEDBACK_THEMES_MONTHLY] += themes.height
        answers += feedback.height
        support_messages += support.height
        with_text += sentiment["text_hash"].count()
        scored += batch.scored
        parallel = parallel or batch.parallel

    # Every item with the same text hash has the same score, whether cached or new.
    con.execute(
        f"""CREATE OR REPLACE TABLE {SENTIMENT_CACHE} AS
            SELECT text_hash, CAST($scorer AS VARCHAR) AS scorer, any_value(compound) AS compound
            FROM {FEEDBACK_SENTIMENT} WHERE text_hash IS NOT NULL
            GROUP BY text_hash ORDER BY text_hash""",
        {"scorer": SCORER_VERSION},
    )
    row = con.execute(f"SELECT count(*) FROM {SENTIMENT_CACHE}").fetchone()
    counts[SENTIMENT_CACHE] = int(row[0]) if row else 0

    workers = context.kpi.sentiment_workers or available_cpus()
    context.log.info(
        "sentiment: %d distinct texts, %d from %s, %d scored %s",
        counts[SENTIMENT_CACHE],
        counts[SENTIMENT_CACHE] - scored,
        SENTIMENT_CACHE,
        scored,
        f"in {workers} processes" if parallel else "in one process",
    )
    context.log.info(
        "sentiment: %d feedback items (%d survey or review answers, %d support messages), %d with text",
        counts[FEEDBACK_SENTIMENT],
        answers,
        support_messages,
        with_text,
    )
    return counts


FEEDBACK_TEXT_MODEL = PythonModel(
    name="feedback_text",
    deps=(
        "stg_feedback",
        *defined_tables(("stg_ticket_comments", "validated_ticket_comments", "stg_tickets")),
    ),
    write=write_feedback_text,
    outputs=(
        OutputTable(
            FEEDBACK_SENTIMENT,
            "VADER sentiment (compound score and label) of survey comments, review texts and "
            "customer messages in support tickets, with the text PII-masked.",
            "one row per source and item_id: every stg_feedback answer and every end-user "
            "ticket comment, with null score and label when the text is blank",
        ),
        OutputTable(
            FEEDBACK_THEMES_MONTHLY,
            "Most frequent terms and two-word phrases in the comments of low CSAT, low CES and "
            "NPS detractor answers, with the share of comments that contain them.",
            "one row per month (reporting time zone), driver, term_type and rank",
        ),
        OutputTable(
            SENTIMENT_CACHE,
            "Compound sentiment score per distinct masked text, read back by the next run so "
            "that only new or changed texts are scored.",
            "one row per text_hash",
        ),
    ),
)
