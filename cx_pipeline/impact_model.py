"""The ``kpi_impact`` model: each KPI before and after every go-live in ``impact_go_lives``.

For a go-live on day D with a window of W days, the before period is [D - W, D) and the
after period is [D, D + W), in calendar days of the reporting time zone. A unit (an
answer, a ticket, a trial, a customer-month) belongs to a period when all of it lies
inside: a day-based unit by its day, a customer-month only when the whole month does.
Each KPI is compared with the interval that fits its kind (see ``cx_pipeline.impact``).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from cx_pipeline.impact import (
    Comparison,
    GoLive,
    bootstrap_median_difference,
    nps_difference,
    two_proportion_wald,
    welch,
)
from cx_pipeline.python_models import ModelContext, OutputTable, PythonModel, table_exists
from cx_pipeline.sentiment_model import FEEDBACK_SENTIMENT, defined_tables
from cx_pipeline.warehouse import table_columns

KPI_IMPACT = "kpi_impact"

# Values of kpi_impact.status.
STATUS_OK = "ok"
STATUS_INSUFFICIENT_DATA = "insufficient_data"
STATUS_NOT_AVAILABLE = "not_available"
STATUS_NOT_APPLICABLE = "not_applicable"

IMPACT_SCHEMA = {
    "go_live_name": pl.String,
    "go_live_date": pl.Date,
    "window_days": pl.Int64,
    "channel_filter": pl.String,
    "segment_filter": pl.String,
    "kpi": pl.String,
    "scale": pl.String,
    "method": pl.String,
    "unit": pl.String,
    "before_first_day": pl.Date,
    "before_last_day": pl.Date,
    "after_first_day": pl.Date,
    "after_last_day": pl.Date,
    "n_before": pl.Int64,
    "n_after": pl.Int64,
    "value_before": pl.Float64,
    "value_after": pl.Float64,
    "difference": pl.Float64,
    "ci_low": pl.Float64,
    "ci_high": pl.Float64,
    "is_significant": pl.Boolean,
    "degrees_of_freedom": pl.Float64,
    "after_window_complete": pl.Boolean,
    "status": pl.String,
    "reason": pl.String,
}


@dataclass(frozen=True)
class KpiSpec:
    """One KPI of kpi_impact: where its units come from and how two periods are compared.

    ``query`` returns one row per unit with first_day and last_day (DATE, reporting time
    zone), the filter columns in ``filters``, and the value column the method reads:
    ``success`` (BOOLEAN) for proportions, ``category`` for NPS, ``value`` otherwise.
    """

    kpi: str
    method: str
    unit: str
    table: str
    required_columns: frozenset[str]
    query: str
    filters: frozenset[str]
    compare: Callable[[pl.DataFrame, pl.DataFrame, ModelContext], Comparison]
    split_by_scale: bool = False


def _compare_proportions(
    before: pl.DataFrame, after: pl.DataFrame, context: ModelContext
) -> Comparison:
    return two_proportion_wald(
        int(before["success"].sum()), before.height, int(after["success"].sum()), after.height
    ).scaled(100)


def _compare_means(before: pl.DataFrame, after: pl.DataFrame, context: ModelContext) -> Comparison:
    return welch(before["value"].to_numpy(), after["value"].to_numpy())


def _compare_nps(before: pl.DataFrame, after: pl.DataFrame, context: ModelContext) -> Comparison:
    def counts(frame: pl.DataFrame) -> tuple[int, int, int]:
        promoters = int((frame["category"] == "promoter").sum())
        detractors = int((frame["category"] == "detractor").sum())
        return promoters, detractors, frame.height

    return nps_difference(*counts(before), *counts(after))


def _compare_medians(
    before: pl.DataFrame, after: pl.DataFrame, context: ModelContext
) -> Comparison:
    return bootstrap_median_difference(
        before["value"].to_numpy(),
        after["value"].to_numpy(),
        resamples=context.kpi.impact_bootstrap_resamples,
        seed=context.kpi.impact_bootstrap_seed,
    )


_FEEDBACK_FILTERS = frozenset({"channel", "segment"})

KPI_SPECS: tuple[KpiSpec, ...] = (
    KpiSpec(
        kpi="csat_pct",
        method="two_proportion_wald",
        unit="percent",
        table="stg_feedback",
        required_columns=frozenset(
            {"submitted_date", "channel", "segment", "survey_type", "is_satisfied"}
        ),
        query="""
            SELECT submitted_date AS first_day, submitted_date AS last_day, channel, segment,
                   is_satisfied AS success
            FROM stg_feedback
            WHERE survey_type IN ('csat', 'review') AND is_satisfied IS NOT NULL
        """,
        filters=_FEEDBACK_FILTERS,
        compare=_compare_proportions,
    ),
    KpiSpec(
        kpi="nps",
        method="nps_variance",
        unit="nps_points",
        table="stg_feedback",
        required_columns=frozenset(
            {"submitted_date", "channel", "segment", "survey_type", "nps_category"}
        ),
        query="""
            SELECT submitted_date AS first_day, submitted_date AS last_day, channel, segment,
                   nps_category AS category
            FROM stg_feedback
            WHERE survey_type = 'nps' AND nps_category IS NOT NULL
        """,
        filters=_FEEDBACK_FILTERS,
        compare=_compare_nps,
    ),
    KpiSpec(
        kpi="ces_mean",
        method="welch_t",
        unit="score",
        table="stg_feedback",
        required_columns=frozenset(
            {
                "submitted_date",
                "channel",
                "segment",
                "survey_type",
                "score_aligned",
                "scale_min",
                "scale_max",
            }
        ),
        query="""
            SELECT submitted_date AS first_day, submitted_date AS last_day, channel, segment,
                   CAST(score_aligned AS DOUBLE) AS value, scale_min || '-' || scale_max AS scale
            FROM stg_feedback
            WHERE survey_type = 'ces' AND score_aligned IS NOT NULL
        """,
        filters=_FEEDBACK_FILTERS,
        compare=_compare_means,
        split_by_scale=True,
    ),
    KpiSpec(
        kpi="sentiment_compound_mean",
        method="welch_t",
        unit="compound",
        table=FEEDBACK_SENTIMENT,
        required_columns=frozenset({"submitted_date", "channel", "segment", "compound"}),
        query=f"""
            SELECT submitted_date AS first_day, submitted_date AS last_day, channel, segment,
                   compound AS value
            FROM {FEEDBACK_SENTIMENT}
            WHERE compound IS NOT NULL
        """,
        filters=_FEEDBACK_FILTERS,
        compare=_compare_means,
    ),
    KpiSpec(
        kpi="fcr_pct",
        method="two_proportion_wald",
        unit="percent",
        table="ticket_metrics",
        required_columns=frozenset({"created_at", "channel", "is_fcr"}),
        query="""
            SELECT CAST(timezone($reporting_timezone, created_at) AS DATE) AS first_day,
                   CAST(timezone($reporting_timezone, created_at) AS DATE) AS last_day,
                   channel, is_fcr AS success
            FROM ticket_metrics
            WHERE is_fcr IS NOT NULL
        """,
        filters=frozenset({"channel"}),
        compare=_compare_proportions,
    ),
    KpiSpec(
        kpi="first_reply_minutes_median",
        method="bootstrap_percentile_median",
        unit="minutes",
        table="ticket_metrics",
        required_columns=frozenset({"created_at", "channel", "first_reply_minutes"}),
        query="""
            SELECT CAST(timezone($reporting_timezone, created_at) AS DATE) AS first_day,
                   CAST(timezone($reporting_timezone, created_at) AS DATE) AS last_day,
                   channel, CAST(first_reply_minutes AS DOUBLE) AS value
            FROM ticket_metrics
            WHERE first_reply_minutes IS NOT NULL
        """,
        filters=frozenset({"channel"}),
        compare=_compare_medians,
    ),
    # The kpi_conversion rule for trial_to_paid, by day of the trial start. Only trials
    # whose conversion window closed by the observation end count, so a recent after
    # period is not pulled down by trials that may still convert.
    KpiSpec(
        kpi="trial_conversion_pct",
        method="two_proportion_wald",
        unit="percent",
        table="stg_subscriptions",
        required_columns=frozenset({"started_at", "trial_ends_at", "ended_at"}),
        query="""
            WITH trials AS (
                SELECT
                    CAST(timezone($reporting_timezone, started_at) AS DATE) AS start_day,
                    CAST(timezone($reporting_timezone, trial_ends_at) AS DATE) AS trial_end_day,
                    trial_ends_at,
                    ended_at
                FROM stg_subscriptions
                WHERE trial_ends_at IS NOT NULL
            )
            SELECT start_day AS first_day, start_day AS last_day,
                   (ended_at IS NULL OR ended_at > trial_ends_at)
                       AND trial_end_day - start_day <= $conversion_window_days
                       AND trial_ends_at <= $observation_end AS success
            FROM trials
            WHERE timezone(
                $reporting_timezone, CAST(start_day + $conversion_window_days + 1 AS TIMESTAMP)
            ) <= $observation_end
        """,
        filters=frozenset(),
        compare=_compare_proportions,
    ),
    # Logo churn: each customer paying at the end of the previous month is a unit of the
    # month, and it is a success when the customer churned in that month.
    KpiSpec(
        kpi="logo_churn_pct",
        method="two_proportion_wald",
        unit="percent",
        table="mrr_monthly",
        required_columns=frozenset({"month", "previous_mrr", "movement", "is_fully_observed"}),
        query="""
            SELECT month AS first_day,
                   CAST(month + INTERVAL 1 MONTH - INTERVAL 1 DAY AS DATE) AS last_day,
                   movement = 'churn' AS success
            FROM mrr_monthly
            WHERE previous_mrr > 0 AND is_fully_observed
        """,
        filters=frozenset(),
        compare=_compare_proportions,
    ),
)


def _load_units(context: ModelContext, spec: KpiSpec) -> pl.DataFrame | str:
    """Return the units of a KPI, or the reason why its table cannot be read."""
    if not table_exists(context.con, spec.table):
        return f"{spec.table} does not exist in the warehouse"
    missing = sorted(spec.required_columns - table_columns(context.con, spec.table))
    if missing:
        return f"{spec.table} lacks the column(s) {', '.join(missing)}"
    available = {
        "reporting_timezone": context.kpi.reporting_timezone,
        "conversion_window_days": context.kpi.conversion_window_days,
        "observation_end": context.parameters["observation_end"],
    }
    parameters = {name: value for name, value in available.items() if f"${name}" in spec.query}
    return context.con.execute(spec.query, parameters).pl()


def _window_rows(units: pl.DataFrame, first_day: dt.date, last_day: dt.date) -> pl.DataFrame:
    return units.filter((pl.col("first_day") >= first_day) & (pl.col("last_day") <= last_day))


def _base_row(go_live: GoLive, spec: KpiSpec, after_window_complete: bool) -> dict[str, Any]:
    return {
        "go_live_name": go_live.name,
        "go_live_date": go_live.date,
        "window_days": go_live.window_days,
        "channel_filter": go_live.channel,
        "segment_filter": go_live.segment,
        "kpi": spec.kpi,
        "scale": None,
        "method": spec.method,
        "unit": spec.unit,
        "before_first_day": go_live.before_first_day,
        "before_last_day": go_live.before_last_day,
        "after_first_day": go_live.date,
        "after_last_day": go_live.after_last_day,
        "after_window_complete": after_window_complete,
    }


def _compare_row(
    row: dict[str, Any],
    spec: KpiSpec,
    before: pl.DataFrame,
    after: pl.DataFrame,
    context: ModelContext,
) -> dict[str, Any]:
    """Fill the counts, values and status of one kpi_impact row."""
    minimum = context.kpi.impact_min_sample_size
    row = row | {"n_before": before.height, "n_after": after.height}
    if before.height < minimum or after.height < minimum:
        return row | {
            "status": STATUS_INSUFFICIENT_DATA,
            "reason": (
                f"n_before = {before.height} and n_after = {after.height}; each period needs at "
                f"least impact_min_sample_size = {minimum}"
            ),
        }
    comparison = spec.compare(before, after, context)
    reason = None
    if not row["after_window_complete"]:
        reason = "the after period ends after the observation end, so it is not complete yet"
    return row | {
        "value_before": comparison.value_before,
        "value_after": comparison.value_after,
        "difference": comparison.difference,
        "ci_low": comparison.ci_low,
        "ci_high": comparison.ci_high,
        "is_significant": comparison.is_significant,
        "degrees_of_freedom": comparison.degrees_of_freedom,
        "status": STATUS_OK,
        "reason": reason,
    }


def _rows_for_kpi(
    context: ModelContext,
    go_live: GoLive,
    spec: KpiSpec,
    units: pl.DataFrame | str,
    after_window_complete: bool,
) -> list[dict[str, Any]]:
    """Return the kpi_impact rows of one go-live and KPI (one per scale for split KPIs)."""
    row = _base_row(go_live, spec, after_window_complete)
    if isinstance(units, str):
        return [row | {"status": STATUS_NOT_AVAILABLE, "reason": units}]
    requested = {"channel": go_live.channel, "segment": go_live.segment}
    unsupported = [
        name for name, value in requested.items() if value is not None and name not in spec.filters
    ]
    if unsupported:
        return [
            row
            | {
                "status": STATUS_NOT_APPLICABLE,
                "reason": f"{spec.table} has no {' or '.join(unsupported)} to filter on",
            }
        ]
    for name, value in requested.items():
        if value is not None:
            units = units.filter(pl.col(name) == value)
    before = _window_rows(units, go_live.before_first_day, go_live.before_last_day)
    after = _window_rows(units, go_live.date, go_live.after_last_day)
    if not spec.split_by_scale:
        return [_compare_row(row, spec, before, after, context)]

    # Means on different scales do not mix, so each scale gets its own row.
    scales = sorted(set(before["scale"].to_list()) | set(after["scale"].to_list()))
    if not scales:
        return [_compare_row(row, spec, before, after, context)]
    return [
        _compare_row(
            row | {"scale": scale},
            spec,
            before.filter(pl.col("scale") == scale),
            after.filter(pl.col("scale") == scale),
            context,
        )
        for scale in scales
    ]


def is_after_window_complete(go_live: GoLive, observation_end: dt.datetime, timezone: str) -> bool:
    """Return whether the after period ended no later than the observation end."""
    end_of_after = dt.datetime.combine(
        go_live.after_last_day + dt.timedelta(days=1), dt.time(), tzinfo=zoneinfo.ZoneInfo(timezone)
    )
    return end_of_after <= observation_end


def compute_kpi_impact(context: ModelContext) -> dict[str, pl.DataFrame]:
    """Compare every KPI before and after each configured go-live."""
    go_lives = context.kpi.go_lives()
    if not go_lives:
        context.log.info("impact: no impact_go_lives configured; kpi_impact is empty")
        return {KPI_IMPACT: pl.DataFrame(schema=IMPACT_SCHEMA)}

    units_by_kpi = {spec.kpi: _load_units(context, spec) for spec in KPI_SPECS}
    for spec in KPI_SPECS:
        if isinstance(units_by_kpi[spec.kpi], str):
            context.log.info("impact: %s is skipped because %s", spec.kpi, units_by_kpi[spec.kpi])

    observation_end = context.parameters["observation_end"]
    rows: list[dict[str, Any]] = []
    for go_live in go_lives:
        complete = is_after_window_complete(
            go_live, observation_end, context.kpi.reporting_timezone
        )
        for spec in KPI_SPECS:
            rows.extend(_rows_for_kpi(context, go_live, spec, units_by_kpi[spec.kpi], complete))
    context.log.info("impact: %d go-lives, %d comparison rows", len(go_lives), len(rows))
    return {KPI_IMPACT: pl.DataFrame(rows, schema=IMPACT_SCHEMA)}


KPI_IMPACT_MODEL = PythonModel(
    name=KPI_IMPACT,
    deps=(
        "stg_feedback",
        FEEDBACK_SENTIMENT,
        "stg_subscriptions",
        "mrr_monthly",
        *defined_tables(("ticket_metrics",)),
    ),
    compute=compute_kpi_impact,
    outputs=(
        OutputTable(
            KPI_IMPACT,
            "Each KPI before and after every configured go-live: both values, sample sizes, the "
            "difference with its 95% confidence interval and a significance flag, or a status "
            "and reason when a period has too little data.",
            "one row per go-live, KPI and scale (scale only for CES means)",
        ),
    ),
)
