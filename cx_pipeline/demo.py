"""Seeded demo input: a landing folder with every source over a stretch of days.

The data are synthetic but shaped like real exports: CSV for feedback, NDJSON for
subscriptions, Parquet for orders, late arrivals, cancellations landing as newer versions
of a subscription, returns, orders without a customer, and a few invalid rows that must
end up in quarantine.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import polars as pl

DEMO_START = dt.date(2025, 1, 1)
DEMO_DAYS = 90
HISTORY_DAYS = 365
PLANS = {"basic": 19.0, "pro": 49.0, "team": 199.0}
CHANNELS = ["email", "web", "app"]
SEGMENTS = ["smb", "mid_market", "enterprise"]
COMMENTS = {
    "good": ["Quick and friendly help.", "Easy to set up, love it.", "Great support team!", ""],
    "bad": ["Waited three days for an answer.", "Too hard to cancel.", "The app keeps crashing.", ""],
}


def _day_folder(landing: Path, source: str, day: dt.date) -> Path:
    folder = landing / source / day.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _feedback_day(rng: np.random.Generator, day: dt.date, count: int) -> pl.DataFrame:
    survey_types = rng.choice(["csat", "nps", "ces"], size=count, p=[0.45, 0.35, 0.20])
    rows = []
    for i, survey_type in enumerate(survey_types):
        if survey_type == "nps":
            score = int(rng.choice(11, p=[0.02, 0.02, 0.02, 0.03, 0.03, 0.05, 0.08, 0.1, 0.15, 0.25, 0.25]))
            happy = score >= 9
        elif survey_type == "csat":
            score = int(rng.choice([1, 2, 3, 4, 5], p=[0.05, 0.07, 0.13, 0.35, 0.40]))
            happy = score >= 4
        else:
            score = int(rng.choice(np.arange(1, 8), p=[0.04, 0.05, 0.08, 0.13, 0.25, 0.25, 0.20]))
            happy = score >= 5
        seconds = int(rng.integers(0, 86_400))
        submitted = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)
        comment_pool = COMMENTS["good" if happy else "bad"]
        rows.append(
            {
                "response_id": f"r-{day:%Y%m%d}-{i:05d}",
                "customer_id": f"c-{int(rng.integers(1, 2_000)):05d}",
                "submitted_at": submitted.isoformat(),
                "survey_type": str(survey_type),
                "score": str(score),
                "comment": comment_pool[int(rng.integers(0, len(comment_pool)))],
                "channel": CHANNELS[int(rng.integers(0, 3))],
                "segment": SEGMENTS[int(rng.integers(0, 3))],
            }
        )
    return pl.DataFrame(rows)


def _invalid_feedback(day: dt.date) -> pl.DataFrame:
    # Two rows that validation must quarantine: a score off its scale and a bad timestamp.
    return pl.DataFrame(
        [
            {"response_id": f"bad-{day:%Y%m%d}-1", "customer_id": "c-00001", "submitted_at": f"{day}T10:00:00Z",
             "survey_type": "nps", "score": "11", "comment": "", "channel": "email", "segment": "smb"},
            {"response_id": f"bad-{day:%Y%m%d}-2", "customer_id": "c-00002", "submitted_at": "yesterday",
             "survey_type": "csat", "score": "4", "comment": "", "channel": "web", "segment": "smb"},
        ]
    )


def _subscription_events(rng: np.random.Generator, start: dt.date, days: int) -> dict[dt.date, list[dict]]:
    """Return subscription versions keyed by the day they land."""
    events: dict[dt.date, list[dict]] = {}
    for number in range(400):
        customer = f"c-{number:05d}"
        start_day = start + dt.timedelta(days=int(rng.integers(-60, days - 1)))
        landing_day = max(start_day, start)
        plan = str(rng.choice(list(PLANS), p=[0.5, 0.35, 0.15]))
        yearly = bool(rng.random() < 0.15)
        has_trial = bool(rng.random() < 0.5)
        started_at = dt.datetime.combine(start_day, dt.time(9), tzinfo=dt.UTC)
        trial_ends_at = started_at + dt.timedelta(days=14) if has_trial else None
        version = {
            "subscription_id": f"s-{number:05d}",
            "customer_id": customer,
            "plan": plan,
            "status": "trialing" if has_trial else "active",
            "started_at": started_at.isoformat(),
            "trial_ends_at": trial_ends_at.isoformat() if trial_ends_at else None,
            "ended_at": None,
            "amount": PLANS[plan] * (10 if yearly else 1),
            "billing_interval": "year" if yearly else "month",
            "interval_count": 1,
            "currency": "USD",
        }
        events.setdefault(landing_day, []).append(version)

        if rng.random() < 0.3:  # cancels later; the cancellation lands as a newer version
            end_day = start_day + dt.timedelta(days=int(rng.integers(5, 120)))
            if start <= end_day < start + dt.timedelta(days=days):
                ended = dict(version, status="canceled")
                ended["ended_at"] = dt.datetime.combine(end_day, dt.time(17), tzinfo=dt.UTC).isoformat()
                day_versions = events.setdefault(end_day, [])
                if end_day == landing_day:  # an export contains one version per subscription
                    day_versions.remove(version)
                day_versions.append(ended)
    return events


def _orders(rng: np.random.Generator, start: dt.date, days: int, customers: int = 1_500) -> pl.DataFrame:
    """Buy-till-you-die style orders: each customer buys at their own rate until they drop out.

    Orders begin a year before ``start``; that history lands on the first day as an initial
    load, so the CLV models see enough repeat purchases to fit.
    """
    start = start - dt.timedelta(days=HISTORY_DAYS)
    days = days + HISTORY_DAYS
    rates = rng.gamma(0.6, 0.25, size=customers)  # purchases per week
    dropout = rng.beta(1.0, 4.0, size=customers)  # chance of leaving after each purchase
    first_day = rng.integers(0, days, size=customers)
    segments = rng.choice(SEGMENTS, size=customers, p=[0.6, 0.3, 0.1])
    base = dt.datetime.combine(start, dt.time(), tzinfo=dt.UTC)

    rows: list[dict] = []
    for customer in range(customers):
        day = float(first_day[customer])
        while day < days:
            ordered_at = base + dt.timedelta(days=day, seconds=int(rng.integers(0, 86_400)))
            amount = round(float(rng.gamma(2.0, 30.0)), 2)
            rows.append({"customer_id": f"c-{customer:05d}", "ordered_at": ordered_at, "amount": amount,
                         "segment": str(segments[customer])})
            if rng.random() < 0.05:  # a return of part of the order a few days later
                returned_at = ordered_at + dt.timedelta(days=int(rng.integers(1, 10)))
                rows.append({"customer_id": f"c-{customer:05d}", "ordered_at": returned_at,
                             "amount": -round(amount * float(rng.uniform(0.2, 1.0)), 2),
                             "segment": str(segments[customer])})
            if rng.random() < dropout[customer]:
                break
            day += 7.0 * float(rng.exponential(1.0 / rates[customer]))
    for guest in range(days * 2):  # guest checkouts without a customer id
        rows.append({"customer_id": None, "segment": None, "amount": round(float(rng.gamma(2.0, 20.0)), 2),
                     "ordered_at": base + dt.timedelta(days=guest // 2, seconds=int(rng.integers(0, 86_400)))})
    orders = pl.DataFrame(rows, schema={"customer_id": pl.String, "ordered_at": pl.Datetime("us", "UTC"),
                                        "amount": pl.Float64, "segment": pl.String})
    orders = orders.filter(pl.col("ordered_at") < base + dt.timedelta(days=days)).sort("ordered_at")
    return orders.with_row_index("number").select(
        pl.format("o-{}", pl.col("number")).alias("order_id"),
        "customer_id",
        "ordered_at",
        "amount",
        pl.lit("USD").alias("currency"),
        pl.when(pl.col("amount") < 0).then(-1).otherwise(1).alias("quantity"),
        "segment",
    )


def _sessions_day(rng: np.random.Generator, day: dt.date, count: int) -> pl.DataFrame:
    base = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    return pl.DataFrame(
        {
            "session_id": [f"v-{day:%Y%m%d}-{i:05d}" for i in range(count)],
            "started_at": [(base + dt.timedelta(seconds=int(s))).isoformat() for s in rng.integers(0, 86_400, count)],
            "converted": (rng.random(count) < 0.04).tolist(),
            "channel": [CHANNELS[int(c)] for c in rng.integers(0, 3, count)],
        }
    )


SUPPORT_CHANNELS = {"email": 0.45, "web": 0.30, "chat": 0.20, "phone": 0.05}
SUPPORT_PRIORITIES = {"low": 0.20, "normal": 0.55, "high": 0.20, "urgent": 0.05}
SUPPORT_TEXTS = {
    "end_user": [
        "I cannot log in since this morning.",
        "My invoice shows the wrong amount.",
        "Thanks, that worked!",
        "It is still broken, please help.",
    ],
    "agent": [
        "Thanks for reaching out, we are looking into it.",
        "Please try resetting your password.",
        "We corrected the invoice; you will get a new copy by email.",
    ],
    "note": ["Escalated to billing.", "Known issue, linked to the incident ticket."],
}


def _next_agent_time(moment: dt.datetime, rng: np.random.Generator) -> dt.datetime:
    """Move ``moment`` into the agents' shift (weekdays 08:00-18:00 UTC), a few minutes in."""
    while moment.weekday() >= 5 or not 8 <= moment.hour < 18:
        opening = dt.datetime.combine(moment.date(), dt.time(8), tzinfo=dt.UTC)
        moment = opening if moment < opening else opening + dt.timedelta(days=1)
        moment += dt.timedelta(minutes=int(rng.integers(5, 90)))
    return moment


def _support_ticket(
    rng: np.random.Generator, ticket_id: str, created: dt.datetime
) -> tuple[dict, list[dict]]:
    """Return a ticket's fixed fields and its comments and status events, in time order."""
    channel = str(rng.choice(list(SUPPORT_CHANNELS), p=list(SUPPORT_CHANNELS.values())))
    ticket = {
        "ticket_id": ticket_id,
        "customer_id": f"c-{int(rng.integers(0, 1_500)):05d}",
        "channel": channel,
        "priority": str(rng.choice(list(SUPPORT_PRIORITIES), p=list(SUPPORT_PRIORITIES.values()))),
        "created_at": created,
    }
    events: list[dict] = []

    def add(role: str, moment: dt.datetime, public: bool = True, event: str | None = None) -> None:
        body = None
        if role != "system":
            pool = SUPPORT_TEXTS["note"] if role == "agent" and not public else SUPPORT_TEXTS[role]
            body = str(pool[int(rng.integers(0, len(pool)))])
        events.append(
            {
                "comment_id": f"{ticket_id}-{len(events) + 1:02d}",
                "ticket_id": ticket_id,
                "author_role": role,
                "is_public": public,
                "created_at": moment.replace(microsecond=0),
                "event": event,
                "body": body,
            }
        )

    add("end_user", created)
    if rng.random() < 0.06:  # never answered
        return ticket, events

    # Chat gets a reply within minutes around the clock. Other channels wait for the shift.
    if channel == "chat":
        moment = created + dt.timedelta(minutes=float(rng.lognormal(1.5, 0.8)))
    else:
        moment = _next_agent_time(
            created + dt.timedelta(minutes=float(rng.lognormal(4.5, 1.2))), rng
        )
    if rng.random() < 0.3:  # an internal note before the first reply never counts as a reply
        add("agent", created + (moment - created) / 2, public=False)
    replies = int(rng.choice([1, 2, 3, 4, 5], p=[0.55, 0.25, 0.10, 0.06, 0.04]))
    for number in range(replies):
        add("agent", moment)
        if number < replies - 1:
            moment += dt.timedelta(hours=float(rng.exponential(10.0)))
            add("end_user", moment)
            moment = _next_agent_time(
                moment + dt.timedelta(minutes=float(rng.lognormal(4.0, 1.0))), rng
            )
    if rng.random() < 0.1:  # still waiting for the customer
        return ticket, events

    moment += dt.timedelta(hours=float(rng.exponential(6.0)))
    add("system", moment, public=False, event="solved")
    if rng.random() < 0.12:  # the customer writes back, which reopens the ticket
        moment += dt.timedelta(days=float(rng.exponential(5.0)))
        add("end_user", moment)
        add("system", moment, public=False, event="reopened")
        moment = _next_agent_time(
            moment + dt.timedelta(minutes=float(rng.lognormal(4.0, 1.0))), rng
        )
        add("agent", moment)
        if rng.random() < 0.85:
            add(
                "system",
                moment + dt.timedelta(hours=float(rng.exponential(4.0))),
                public=False,
                event="solved",
            )
    return ticket, events


def write_demo_support(
    landing: Path, start: dt.date = DEMO_START, days: int = DEMO_DAYS, seed: int = 7
) -> None:
    """Write seeded support tickets and ticket comments for ``days`` days from ``start``.

    A ticket lands as a new version on every day its status changes, comments land on the
    day they are written, and nothing after the last day is landed, so tickets open at the
    end stay unsolved. Phone tickets have no comments, only the summary columns of their
    ticket rows. Every 20th day adds a comment with an invalid author role for quarantine.
    """
    rng = np.random.default_rng([seed, 3])
    end = dt.datetime.combine(start + dt.timedelta(days=days), dt.time(), tzinfo=dt.UTC)
    # Requests arrive mostly in the working day, fewer at night and on weekends.
    hour_weights = np.array(
        [1, 1, 1, 1, 1, 2, 3, 5, 8, 9, 9, 9, 8, 9, 9, 8, 7, 6, 4, 3, 2, 2, 1, 1], dtype=float
    )
    ticket_rows: dict[dt.date, list[dict]] = {}
    comment_rows: dict[dt.date, list[dict]] = {}

    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        count = int(rng.integers(20, 35) if day.weekday() >= 5 else rng.integers(45, 70))
        for number in range(count):
            hour = int(rng.choice(24, p=hour_weights / hour_weights.sum()))
            created = dt.datetime.combine(day, dt.time(hour), tzinfo=dt.UTC) + dt.timedelta(
                seconds=int(rng.integers(0, 3_600))
            )
            ticket, events = _support_ticket(rng, f"t-{day:%Y%m%d}-{number:03d}", created)
            events = [e for e in events if e["created_at"] < end]
            is_phone = ticket["channel"] == "phone"

            # Replay the events to get the ticket's version at the end of each day.
            status, solved_at = "new", None
            summary: dict = {"first_reply_at": None, "agent_replies": 0, "reopens": 0}
            daily: dict[dt.date, dict] = {}
            for event in events:
                if event["event"] == "solved":
                    status, solved_at = "solved", event["created_at"]
                elif event["event"] == "reopened" or (
                    event["author_role"] == "end_user" and status == "pending"
                ):
                    status = "open"
                elif event["author_role"] == "agent" and event["is_public"]:
                    status = "pending"
                    summary["first_reply_at"] = summary["first_reply_at"] or event["created_at"]
                    summary["agent_replies"] += 1
                summary["reopens"] += event["event"] == "reopened"
                version = dict(
                    ticket, status=status, updated_at=event["created_at"], solved_at=solved_at
                )
                if is_phone:
                    # A phone log has no comments, only the summary columns of the ticket.
                    version.update(summary)
                else:
                    comment_rows.setdefault(event["created_at"].date(), []).append(event)
                daily[event["created_at"].date()] = version
            for when, version in daily.items():
                ticket_rows.setdefault(when, []).append(version)

        if offset % 20 == 7:
            comment_rows.setdefault(day, []).append(
                {
                    "comment_id": f"bad-{day:%Y%m%d}",
                    "ticket_id": f"t-{day:%Y%m%d}-000",
                    "author_role": "robot",
                    "is_public": True,
                    "created_at": dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC),
                    "event": None,
                    "body": None,
                }
            )

    ticket_schema = {
        "ticket_id": pl.String,
        "customer_id": pl.String,
        "channel": pl.String,
        "priority": pl.String,
        "status": pl.String,
        "created_at": pl.Datetime("us", "UTC"),
        "updated_at": pl.Datetime("us", "UTC"),
        "solved_at": pl.Datetime("us", "UTC"),
        "first_reply_at": pl.Datetime("us", "UTC"),
        "agent_replies": pl.Int64,
        "reopens": pl.Int64,
    }
    comment_schema = {
        "comment_id": pl.String,
        "ticket_id": pl.String,
        "author_role": pl.String,
        "is_public": pl.Boolean,
        "created_at": pl.Datetime("us", "UTC"),
        "event": pl.String,
        "body": pl.String,
    }
    for day, rows in sorted(ticket_rows.items()):
        frame = pl.DataFrame(rows, schema=ticket_schema)
        frame.write_csv(_day_folder(landing, "tickets", day) / "tickets.csv")
    for day, rows in sorted(comment_rows.items()):
        frame = pl.DataFrame(rows, schema=comment_schema)
        frame.write_ndjson(_day_folder(landing, "ticket_comments", day) / "ticket_comments.ndjson")
def generate_demo_landing(landing: Path, start: dt.date = DEMO_START, days: int = DEMO_DAYS, seed: int = 7) -> None:
    """Write the demo landing folder; the same seed always gives the same files."""
    rng = np.random.default_rng(seed)
    subscription_events = _subscription_events(rng, start, days)
    orders = _orders(rng, start, days).with_columns(pl.col("ordered_at").dt.date().alias("_day"))
    for offset in range(days):
        day = start + dt.timedelta(days=offset)
        feedback = _feedback_day(rng, day, int(rng.integers(80, 160)))
        if offset % 15 == 3:
            feedback = pl.concat([feedback, _invalid_feedback(day)])
        feedback.write_csv(_day_folder(landing, "feedback", day) / "survey_export.csv")

        versions = subscription_events.get(day, [])
        if versions:
            path = _day_folder(landing, "subscriptions", day) / "subscriptions.ndjson"
            path.write_text("".join(json.dumps(v) + "\n" for v in versions), encoding="utf-8")

        orders.filter(pl.col("_day") == day).drop("_day").write_parquet(
            _day_folder(landing, "orders", day) / "orders.parquet"
        )
        if offset == 0:
            orders.filter(pl.col("_day") < day).drop("_day").write_parquet(
                _day_folder(landing, "orders", day) / "orders_history.parquet"
            )
        _sessions_day(rng, day, int(rng.integers(800, 1_200))).write_csv(
            _day_folder(landing, "sessions", day) / "sessions.csv"
        )
    write_demo_support(landing, start, days, seed)
