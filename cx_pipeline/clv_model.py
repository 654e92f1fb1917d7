"""The customer lifetime value model: historical value per customer and segment, and a
predictive CLV from BG/NBD (purchase count) with Gamma-Gamma (spend per purchase).

Historical value is the net revenue of a customer's orders (returns subtract). The
predictive models see only purchases: orders with a positive amount and a customer id,
on or before the fit's observation end, bucketed by day so several orders on one day are
one purchase.
"""

from __future__ import annotations

import datetime as dt
import warnings
import zoneinfo

import polars as pl

from cx_pipeline.clv import (
    BgNbdFit,
    ClvFitWarning,
    GammaGammaFit,
    build_transaction_summary,
    fit_bgnbd,
    fit_gamma_gamma,
    score_customers,
)
from cx_pipeline.python_models import ModelContext, OutputTable, PythonModel, table_exists


def fit_observation_end(context: ModelContext) -> dt.date:
    """Return the last day the fit observes: the configured calibration end, or the last
    observed day of the data in the reporting time zone.
    """
    if context.kpi.clv_calibration_end:
        return dt.date.fromisoformat(context.kpi.clv_calibration_end)
    zone = zoneinfo.ZoneInfo(context.kpi.reporting_timezone)
    end: dt.datetime = context.parameters["observation_end"]
    return (end.astimezone(zone) - dt.timedelta(microseconds=1)).date()


def _load_orders(context: ModelContext) -> pl.DataFrame:
    if not table_exists(context.con, "stg_orders"):
        return pl.DataFrame(
            schema={"customer_id": pl.String, "ordered_at": pl.Date, "amount": pl.Float64, "segment": pl.String}
        )
    return context.con.execute(
        """
        SELECT customer_id, CAST(timezone($reporting_timezone, ordered_at) AS DATE) AS ordered_at,
               amount, segment
        FROM stg_orders
        WHERE customer_id IS NOT NULL
        """,
        {"reporting_timezone": context.kpi.reporting_timezone},
    ).pl()


def _historical(orders: pl.DataFrame) -> pl.DataFrame:
    """Sum each customer's orders: net revenue to date, with purchases and returns apart."""
    purchases = orders.filter(pl.col("amount") > 0)
    first_purchase = purchases.group_by("customer_id").agg(
        pl.col("ordered_at").min().alias("first_purchase_date"),
        pl.col("ordered_at").max().alias("last_purchase_date"),
        pl.col("ordered_at").n_unique().cast(pl.Int64).alias("purchase_days"),
    )
    # The segment of a customer is the one on their latest order.
    latest_segment = (
        orders.sort("ordered_at")
        .group_by("customer_id")
        .agg(pl.col("segment").drop_nulls().last().alias("segment"))
    )
    totals = orders.group_by("customer_id").agg(
        pl.col("amount").filter(pl.col("amount") > 0).sum().alias("gross_revenue"),
        (-pl.col("amount").filter(pl.col("amount") < 0).sum()).alias("returned_revenue"),
        pl.col("amount").sum().alias("historical_clv"),
        pl.len().cast(pl.Int64).alias("order_count"),
    )
    return (
        totals.join(first_purchase, on="customer_id", how="left")
        .join(latest_segment, on="customer_id", how="left")
        .with_columns(
            pl.col("segment").fill_null("unspecified"),
            pl.col("first_purchase_date").dt.truncate("1mo").alias("cohort_month"),
        )
    )


def _params_table(bgnbd: BgNbdFit, gamma_gamma: GammaGammaFit, end: dt.date, n_returns: int) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "model": "bg_nbd",
                "r": bgnbd.r, "alpha": bgnbd.alpha, "a": bgnbd.a, "b": bgnbd.b,
                "p": None, "q": None, "gamma": None,
                "log_likelihood": bgnbd.log_likelihood, "converged": bgnbd.converged,
                "n_customers": bgnbd.n_customers, "n_excluded": n_returns,
                "message": bgnbd.message, "observation_end": end, "time_unit": "week",
            },
            {
                "model": "gamma_gamma",
                "r": None, "alpha": None, "a": None, "b": None,
                "p": gamma_gamma.p, "q": gamma_gamma.q, "gamma": gamma_gamma.gamma,
                "log_likelihood": gamma_gamma.log_likelihood, "converged": gamma_gamma.converged,
                "n_customers": gamma_gamma.n_customers, "n_excluded": gamma_gamma.n_excluded,
                "message": gamma_gamma.message, "observation_end": end, "time_unit": "week",
            },
        ],
        schema={
            "model": pl.String, "r": pl.Float64, "alpha": pl.Float64, "a": pl.Float64, "b": pl.Float64,
            "p": pl.Float64, "q": pl.Float64, "gamma": pl.Float64, "log_likelihood": pl.Float64,
            "converged": pl.Boolean, "n_customers": pl.Int64, "n_excluded": pl.Int64, "message": pl.String,
            "observation_end": pl.Date, "time_unit": pl.String,
        },
    )


PREDICTIVE_COLUMNS = ["probability_alive", "expected_purchases", "expected_spend", "predicted_clv"]


def _null_non_finite(scored: pl.DataFrame, context: ModelContext) -> pl.DataFrame:
    """Turn NaN or infinite predictions into nulls, so BI tools never sum a NaN.

    A fit can converge to extreme parameters (for example no visible dropout in a short
    history) where the closed forms overflow for some customers.
    """
    bad = scored.select(
        pl.any_horizontal(~pl.col(c).is_finite() for c in PREDICTIVE_COLUMNS).fill_null(False).sum()
    ).item()
    if bad:
        context.log.warning("CLV: %d customers had non-finite predictions; left null", bad)
    return scored.with_columns(
        pl.when(pl.col(c).is_finite()).then(pl.col(c)).alias(c) for c in PREDICTIVE_COLUMNS
    )


def compute_clv(context: ModelContext) -> dict[str, pl.DataFrame]:
    """Fit both models and score every customer; see the module docstring for the rules."""
    kpi = context.kpi
    end = fit_observation_end(context)
    orders = _load_orders(context)
    historical = _historical(orders)

    purchases = orders.filter(pl.col("amount") >= 0)
    n_returns = orders.height - purchases.height
    summary = build_transaction_summary(purchases, end, "W").customers

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClvFitWarning)
        bgnbd = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
        gamma_gamma = fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    for warning in caught:
        context.log.warning("CLV fit: %s", warning.message)

    scored = score_customers(
        summary,
        bgnbd,
        gamma_gamma,
        horizon_months=kpi.clv_horizon_months,
        monthly_discount_rate=kpi.clv_monthly_discount_rate,
        period="W",
    ).rename({"clv": "predicted_clv", "T": "age"})
    scored = _null_non_finite(scored, context)

    customers = (
        historical.join(scored, on="customer_id", how="left")
        .with_columns(pl.lit(end).alias("observation_end"))
        .select(
            "customer_id", "segment", "cohort_month", "first_purchase_date", "last_purchase_date",
            "order_count", "purchase_days", "gross_revenue", "returned_revenue", "historical_clv",
            "frequency", "recency", "age", "monetary_value",
            "probability_alive", "expected_purchases", "expected_spend", "predicted_clv", "observation_end",
        )
        .sort("customer_id")
    )
    segments = (
        customers.group_by("segment")
        .agg(
            pl.len().cast(pl.Int64).alias("customers"),
            pl.col("historical_clv").sum().alias("historical_clv_total"),
            pl.col("historical_clv").mean().alias("historical_clv_mean"),
            pl.col("predicted_clv").count().cast(pl.Int64).alias("customers_with_prediction"),
            pl.col("predicted_clv").sum().alias("predicted_clv_total"),
            pl.col("predicted_clv").mean().alias("predicted_clv_mean"),
        )
        .with_columns(
            pl.when(pl.col("customers_with_prediction") == 0).then(None).otherwise(pl.col("predicted_clv_total"))
            .alias("predicted_clv_total"),
            pl.lit(end).alias("observation_end"),
        )
        .sort("segment")
    )
    return {
        "clv_customers": customers,
        "clv_segments": segments,
        "clv_model_params": _params_table(bgnbd, gamma_gamma, end, n_returns),
    }


CLV_MODEL = PythonModel(
    name="clv",
    deps=("stg_orders",),
    compute=compute_clv,
    outputs=(
        OutputTable(
            "clv_customers",
            "Historical and predicted customer lifetime value (BG/NBD with Gamma-Gamma), per customer.",
            "one row per customer with at least one order",
        ),
        OutputTable(
            "clv_segments",
            "Historical and predicted customer lifetime value summed and averaged per customer segment.",
            "one row per segment",
        ),
        OutputTable(
            "clv_model_params",
            "Fitted BG/NBD and Gamma-Gamma parameters, log-likelihood and the fit's observation end.",
            "one row per model",
        ),
    ),
)
