"""Seeded synthetic landing data at benchmark scale for every source.

``generate_landing(out, scale)`` writes two years of daily landing folders (2023-01-01 to
2024-12-31) whose distributions follow the demo data: survey scores skewed to the top,
tickets answered within hours with internal notes and solves, subscriptions that churn,
repeat buyers with returns and guest orders, and a small share of invalid rows (0.5 %) that
validation must quarantine. The same scale and seed always give the same files.

Rows are generated month by month with NumPy and written per day with Polars, so memory
stays bounded by one month of one source even at scale L.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

logger = logging.getLogger(__name__)

START = dt.date(2023, 1, 1)
DAYS = 731  # 2023-01-01 .. 2024-12-31
INVALID_SHARE = 0.005
CHANNELS = np.array(["email", "web", "app", "chat"])
SEGMENTS = np.array(["smb", "mid_market", "enterprise"])
PLANS = np.array(["basic", "pro", "team"])
PLAN_PRICES = np.array([19.0, 49.0, 199.0])
COMMENTS = np.array(
    [
        "Quick and friendly help, thank you",
        "Easy to set up and works great",
        "Support solved my problem in minutes",
        "Waited three days for an answer",
        "Too hard to cancel my subscription",
        "The app keeps crashing after the update",
        "Billing page is confusing",
        "",
        "",
        "Good value for the price",
    ]
)


@dataclass(frozen=True)
class ScaleSize:
    """Row counts of one benchmark scale."""

    feedback: int
    tickets: int
    subscriptions: int
    orders: int
    sessions: int


SCALES: dict[str, ScaleSize] = {
    "S": ScaleSize(feedback=100_000, tickets=100_000, subscriptions=100_000, orders=100_000, sessions=100_000),
    "M": ScaleSize(feedback=1_000_000, tickets=1_000_000, subscriptions=1_000_000, orders=1_000_000, sessions=1_000_000),
    "L": ScaleSize(feedback=10_000_000, tickets=5_000_000, subscriptions=1_000_000, orders=5_000_000, sessions=10_000_000),
}


def _months(start: dt.date, days: int) -> list[tuple[int, int]]:
    """Return (first day offset, day count) per calendar month of the period."""
    months = []
    offset = 0
    while offset < days:
        day = start + dt.timedelta(days=offset)
        next_month = dt.date(day.year + (day.month == 12), day.month % 12 + 1, 1)
        length = min((next_month - day).days, days - offset)
        months.append((offset, length))
        offset += length
    return months


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def _timestamps(day_offsets: np.ndarray, rng: np.random.Generator, start: dt.date) -> pl.Series:
    seconds = day_offsets.astype(np.int64) * 86_400 + rng.integers(0, 86_400, size=day_offsets.size)
    base = np.datetime64(start.isoformat(), "s")
    return pl.Series((base + seconds.astype("timedelta64[s]")).astype("datetime64[us]"))


def _iso_expr(expr: pl.Expr) -> pl.Expr:
    return expr.dt.replace_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _iso(series: pl.Series) -> pl.Series:
    return pl.select(_iso_expr(pl.lit(series))).to_series()


def _write_days(frame: pl.DataFrame, out: Path, source: str, file_name: str, start: dt.date) -> int:
    """Write one file per arrival day offset in ``_day``; return the number of files."""
    files = 0
    for (offset,), part in frame.partition_by("_day", as_dict=True, maintain_order=True).items():
        day = start + dt.timedelta(days=int(offset))
        folder = out / source / day.isoformat()
        folder.mkdir(parents=True, exist_ok=True)
        data = part.drop("_day")
        path = folder / file_name
        if file_name.endswith(".parquet"):
            data.write_parquet(path)
        elif file_name.endswith(".ndjson"):
            data.write_ndjson(path)
        else:
            data.write_csv(path)
        files += 1
    return files


def _invalidate(frame: pl.DataFrame, rng: np.random.Generator, column: str, bad_value: str) -> pl.DataFrame:
    bad = rng.random(frame.height) < INVALID_SHARE
    return frame.with_columns(pl.when(pl.Series(bad)).then(pl.lit(bad_value)).otherwise(pl.col(column)).alias(column))


def _feedback(rng: np.random.Generator, count: int, first: int, days: int, id_start: int, start: dt.date) -> pl.DataFrame:
    offsets = first + rng.integers(0, days, size=count)
    types = rng.choice(np.array(["csat", "nps", "ces", "review"]), size=count, p=[0.4, 0.3, 0.2, 0.1])
    csat = rng.choice(np.arange(1, 6), size=count, p=[0.05, 0.07, 0.13, 0.35, 0.40])
    nps = rng.choice(np.arange(0, 11), size=count, p=[0.02, 0.02, 0.02, 0.03, 0.03, 0.05, 0.08, 0.1, 0.15, 0.25, 0.25])
    ces = rng.choice(np.arange(1, 8), size=count, p=[0.04, 0.05, 0.08, 0.13, 0.25, 0.25, 0.20])
    scores = np.where(types == "nps", nps, np.where(types == "ces", ces, csat))
    frame = pl.DataFrame(
        {
            "response_id": "f" + pl.Series(np.arange(id_start, id_start + count)).cast(pl.String),
            "customer_id": pl.Series(rng.integers(0, max(count // 4, 1), size=count)).cast(pl.String),
            "submitted_at": _iso(_timestamps(offsets, rng, start)),
            "survey_type": types,
            "score": scores.astype(str),
            "comment": COMMENTS[rng.integers(0, COMMENTS.size, size=count)],
            "channel": CHANNELS[rng.integers(0, 3, size=count)],
            "segment": SEGMENTS[rng.integers(0, 3, size=count)],
            "_day": offsets,
        }
    )
    frame = _invalidate(frame, rng, "score", "11")
    return _invalidate(frame, rng, "submitted_at", "not a date")


def _tickets(
    rng: np.random.Generator, count: int, first: int, days: int, id_start: int, start: dt.date
) -> tuple[pl.DataFrame, pl.DataFrame]:
    offsets = first + rng.integers(0, days, size=count)
    created = _timestamps(offsets, rng, start)
    ids = "t" + pl.Series(np.arange(id_start, id_start + count)).cast(pl.String)
    reply_minutes = rng.exponential(90.0, size=count)
    has_reply = rng.random(count) < 0.92
    solve_minutes = reply_minutes + rng.exponential(600.0, size=count)
    solved = has_reply & (rng.random(count) < 0.85)
    extra_replies = rng.poisson(0.6, size=count)
    note = rng.random(count) < 0.2

    base = pl.DataFrame(
        {"ticket_id": ids, "created": created, "reply_us": (reply_minutes * 60_000_000).astype(np.int64),
         "solve_us": (solve_minutes * 60_000_000).astype(np.int64), "has_reply": has_reply, "solved": solved,
         "extra": extra_replies, "note": note, "_day": offsets}
    ).with_columns(
        (pl.col("created") + pl.duration(microseconds=pl.col("reply_us"))).alias("first_reply"),
        (pl.col("created") + pl.duration(microseconds=pl.col("solve_us"))).alias("solved_at"),
    )
    tickets = base.select(
        "ticket_id",
        pl.Series("customer_id", rng.integers(0, max(count // 3, 1), size=count)).cast(pl.String),
        pl.Series("channel", CHANNELS[rng.integers(0, 4, size=count)]),
        pl.Series("priority", np.array(["low", "normal", "high", "urgent"])[
            rng.choice(4, size=count, p=[0.2, 0.55, 0.2, 0.05])]),
        pl.when("solved").then(pl.lit("solved")).otherwise(pl.lit("open")).alias("status"),
        _iso_expr(pl.col("created")).alias("created_at"),
        _iso_expr(pl.when("solved").then(pl.col("solved_at")).otherwise(pl.col("created"))).alias("updated_at"),
        pl.when("solved").then(_iso_expr(pl.col("solved_at"))).alias("solved_at"),
        "_day",
    )
    parts = [
        base.select("ticket_id", pl.lit("end_user").alias("author_role"), pl.lit(True).alias("is_public"),
                    pl.col("created").alias("at"), pl.lit(None, pl.String).alias("event"), pl.lit(0).alias("n"), "_day"),
        base.filter("has_reply").select("ticket_id", pl.lit("agent").alias("author_role"), pl.lit(True).alias("is_public"),
                                        pl.col("first_reply").alias("at"), pl.lit(None, pl.String).alias("event"),
                                        pl.lit(1).alias("n"), "_day"),
        base.filter("note").select("ticket_id", pl.lit("agent").alias("author_role"), pl.lit(False).alias("is_public"),
                                   (pl.col("created") + pl.duration(minutes=5)).alias("at"),
                                   pl.lit(None, pl.String).alias("event"), pl.lit(2).alias("n"), "_day"),
        base.filter(pl.col("has_reply") & (pl.col("extra") > 0)).select(
            "ticket_id", pl.lit("agent").alias("author_role"), pl.lit(True).alias("is_public"),
            (pl.col("first_reply") + pl.duration(minutes=30)).alias("at"), pl.lit(None, pl.String).alias("event"),
            pl.lit(3).alias("n"), "_day"),
        base.filter("solved").select("ticket_id", pl.lit("system").alias("author_role"), pl.lit(False).alias("is_public"),
                                     pl.col("solved_at").alias("at"), pl.lit("solved").alias("event"), pl.lit(4).alias("n"),
                                     "_day"),
    ]
    comments = (
        pl.concat(parts)
        .with_columns(
            (pl.col("ticket_id") + "-" + pl.col("n").cast(pl.String)).alias("comment_id"),
            _iso_expr(pl.col("at")).alias("created_at"),
        )
        .select("comment_id", "ticket_id", "author_role", pl.col("is_public").cast(pl.String), "created_at", "event", "_day")
    )
    return tickets, _invalidate(comments, rng, "author_role", "bot?")


def _subscriptions(rng: np.random.Generator, count: int, first: int, days: int, id_start: int, start: dt.date) -> pl.DataFrame:
    offsets = first + rng.integers(0, days, size=count)
    plan = rng.choice(3, size=count, p=[0.5, 0.35, 0.15])
    yearly = rng.random(count) < 0.15
    churn_days = rng.exponential(300.0, size=count)
    ids = pl.Series(np.arange(id_start, id_start + count)).cast(pl.String)
    frame = pl.DataFrame(
        {
            "subscription_id": "s" + ids,
            "customer_id": "c" + ids,
            "plan": PLANS[plan],
            "started": _timestamps(offsets, rng, start),
            "trial": rng.random(count) < 0.4,
            "ended": (rng.random(count) < 0.5) & (offsets + churn_days < DAYS),
            "churn_us": (churn_days * 86_400_000_000).astype(np.int64),
            "amount": PLAN_PRICES[plan] * np.where(yearly, 10, 1),
            "billing_interval": np.where(yearly, "year", "month"),
            # A subscription lands on the day it starts; its end is already known to this export.
            "_day": offsets,
        }
    )
    return frame.select(
        "subscription_id",
        "customer_id",
        "plan",
        pl.when("trial").then(pl.lit("trialing")).otherwise(pl.lit("active")).alias("status"),
        _iso_expr(pl.col("started")).alias("started_at"),
        pl.when("trial").then(_iso_expr(pl.col("started") + pl.duration(days=14))).alias("trial_ends_at"),
        pl.when("ended").then(_iso_expr(pl.col("started") + pl.duration(microseconds=pl.col("churn_us")))).alias("ended_at"),
        "amount",
        "billing_interval",
        pl.lit(1).alias("interval_count"),
        pl.lit("USD").alias("currency"),
        "_day",
    )


def _orders(rng: np.random.Generator, count: int, first: int, days: int, id_start: int, start: dt.date,
            customers: int) -> pl.DataFrame:
    offsets = first + rng.integers(0, days, size=count)
    # A few customers buy often: ranks drawn from a Zipf-like law.
    customer = np.minimum(rng.zipf(1.6, size=count), customers) - 1
    amount = np.round(rng.gamma(2.0, 30.0, size=count), 2)
    is_return = rng.random(count) < 0.05
    guest = rng.random(count) < 0.03
    return pl.DataFrame(
        {
            "order_id": "o" + pl.Series(np.arange(id_start, id_start + count)).cast(pl.String),
            # Built as a String series: from a NumPy object array with None, Polars can infer
            # the Object type, which Parquet cannot store.
            "customer_id": pl.Series(customer.astype(str), dtype=pl.String).scatter(np.flatnonzero(guest), None),
            "ordered_at": _timestamps(offsets, rng, start).dt.replace_time_zone("UTC"),
            "amount": np.where(is_return, -amount, amount),
            "currency": np.full(count, "USD"),
            "quantity": np.where(is_return, -1, 1),
            "segment": SEGMENTS[customer % 3],
            "_day": offsets,
        }
    )


def _sessions(rng: np.random.Generator, count: int, first: int, days: int, id_start: int, start: dt.date) -> pl.DataFrame:
    offsets = first + rng.integers(0, days, size=count)
    return pl.DataFrame(
        {
            "session_id": "v" + pl.Series(np.arange(id_start, id_start + count)).cast(pl.String),
            "started_at": _iso(_timestamps(offsets, rng, start)),
            "converted": np.where(rng.random(count) < 0.03, "true", "false"),
            "channel": CHANNELS[rng.integers(0, 3, size=count)],
            "_day": offsets,
        }
    )


def generate_landing(out: Path, scale: str, seed: int = 42, start: dt.date = START, days: int = DAYS) -> dict[str, int]:
    """Write the landing folders of ``scale`` (S, M or L) under ``out``; return rows per source."""
    if scale not in SCALES:
        raise ValueError(f"invalid scale {scale!r}: expected one of {sorted(SCALES)}")
    size = SCALES[scale]
    months = _months(start, days)
    totals = {"feedback": 0, "tickets": 0, "ticket_comments": 0, "subscriptions": 0, "orders": 0, "sessions": 0}

    plan = {
        "feedback": size.feedback,
        "tickets": size.tickets,
        "subscriptions": size.subscriptions,
        "orders": size.orders,
        "sessions": size.sessions,
    }
    for source, total in plan.items():
        rng = np.random.default_rng([seed, list(plan).index(source)])
        id_start = 0
        for (first, length), count in zip(months, _split(total, len(months)), strict=True):
            if source == "feedback":
                _write_days(_feedback(rng, count, first, length, id_start, start), out, "feedback", "survey_export.csv", start)
            elif source == "tickets":
                tickets, comments = _tickets(rng, count, first, length, id_start, start)
                _write_days(tickets, out, "tickets", "tickets.csv", start)
                _write_days(comments, out, "ticket_comments", "comments.csv", start)
                totals["ticket_comments"] += comments.height
            elif source == "subscriptions":
                _write_days(_subscriptions(rng, count, first, length, id_start, start), out, "subscriptions",
                            "subscriptions.ndjson", start)
            elif source == "orders":
                _write_days(_orders(rng, count, first, length, id_start, start, max(total // 5, 1)), out, "orders",
                            "orders.parquet", start)
            else:
                _write_days(_sessions(rng, count, first, length, id_start, start), out, "sessions", "sessions.csv", start)
            id_start += count
        totals[source] = total
        logger.info("generated %s: %d rows", source, total)
    return totals
