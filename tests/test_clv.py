"""Tests for cx_pipeline.clv on hand-made orders and on the CDNOW sample.

The CDNOW tests read the data folder from the CX_REAL_DATA_DIR environment variable
and expect the layout <CX_REAL_DATA_DIR>/cdnow/CDNOW_sample.txt plus the two summary
CSV files of the 39-week calibration period.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from scipy import optimize

from cx_pipeline import clv

END = dt.date(1997, 9, 30)


def make_orders(rows: list[tuple]) -> pl.DataFrame:
    return pl.DataFrame(
        rows,
        schema={"customer_id": pl.String, "ordered_at": pl.Date, "amount": pl.Float64},
        orient="row",
    )


def customer_row(summary: pl.DataFrame, customer_id: str) -> dict:
    rows = summary.filter(pl.col("customer_id") == customer_id).to_dicts()
    assert len(rows) == 1, f"expected one row for {customer_id}, got {rows}"
    return rows[0]


def assert_no_nan(frame: pl.DataFrame) -> None:
    for name in frame.columns:
        if frame.schema[name].is_float():
            assert frame[name].is_nan().sum() == 0, f"column {name} contains NaN"


def simulate_gamma_gamma(n_customers: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Draw (x, mean spend) from a Gamma-Gamma population with p=6, q=4, gamma=15."""
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 8, n_customers).astype(float)
    nu = rng.gamma(shape=4.0, scale=1 / 15.0, size=n_customers)
    mean_spend = rng.gamma(shape=6.0 * x, scale=1 / nu) / x
    return x, mean_spend


# ---------------------------------------------------------------------------
# summarize_transactions
# ---------------------------------------------------------------------------


def test_summary_same_day_orders_count_once():
    orders = make_orders(
        [
            ("a", dt.date(1997, 1, 1), 10.0),
            ("a", dt.date(1997, 1, 1), 5.0),
            ("a", dt.date(1997, 1, 8), 20.0),
            ("a", dt.date(1997, 1, 8), 4.0),
            ("b", dt.date(1997, 3, 1), 7.0),
            ("b", dt.date(1997, 3, 1), 8.0),
        ]
    )
    summary = clv.summarize_transactions(orders, END, "W")

    a = customer_row(summary, "a")
    assert a["frequency"] == 1
    assert a["recency"] == pytest.approx(1.0)
    # Same-day amounts are summed into one purchase before the mean.
    assert a["monetary_value"] == pytest.approx(24.0)
    b = customer_row(summary, "b")
    assert b["frequency"] == 0


def test_summary_one_time_buyer():
    orders = make_orders([("solo", dt.date(1997, 1, 1), 12.5)])
    summary = clv.summarize_transactions(orders, END, "W")

    row = customer_row(summary, "solo")
    assert row["frequency"] == 0
    assert row["recency"] == 0.0
    assert row["T"] == pytest.approx(272 / 7)
    assert row["monetary_value"] == 0.0


def test_summary_recency_equal_to_T():
    orders = make_orders(
        [
            ("late", dt.date(1997, 9, 1), 10.0),
            ("late", END, 30.0),
        ]
    )
    summary = clv.summarize_transactions(orders, END, "W")

    row = customer_row(summary, "late")
    assert row["frequency"] == 1
    assert row["recency"] == pytest.approx(29 / 7)
    assert row["recency"] == row["T"]
    assert row["monetary_value"] == pytest.approx(30.0)


def test_summary_monetary_value_excludes_first_purchase():
    orders = make_orders(
        [
            ("c", dt.date(1997, 1, 1), 1000.0),
            ("c", dt.date(1997, 2, 1), 10.0),
            ("c", dt.date(1997, 3, 1), 30.0),
        ]
    )
    summary = clv.summarize_transactions(orders, END, "W")

    row = customer_row(summary, "c")
    assert row["frequency"] == 2
    assert row["monetary_value"] == pytest.approx(20.0)


def test_summary_daily_period():
    orders = make_orders(
        [
            ("d", dt.date(1997, 1, 1), 10.0),
            ("d", dt.date(1997, 1, 11), 10.0),
        ]
    )
    summary = clv.summarize_transactions(orders, dt.date(1997, 1, 31), "D")

    row = customer_row(summary, "d")
    assert row["recency"] == 10.0
    assert row["T"] == 30.0


def test_summary_ignores_orders_after_end():
    orders = make_orders(
        [
            ("e", dt.date(1997, 1, 1), 10.0),
            ("e", dt.date(1997, 10, 1), 99.0),
            ("late_only", dt.date(1997, 10, 2), 5.0),
        ]
    )
    result = clv.build_transaction_summary(orders, END, "W")

    assert result.n_after_observation_end == 2
    assert result.customers["customer_id"].to_list() == ["e"]
    row = customer_row(result.customers, "e")
    assert row["frequency"] == 0


def test_summary_null_customer_id_dropped_and_counted():
    orders = make_orders(
        [
            (None, dt.date(1997, 1, 1), 10.0),
            (None, dt.date(1997, 1, 2), 11.0),
            ("f", dt.date(1997, 1, 1), 10.0),
        ]
    )
    result = clv.build_transaction_summary(orders, END, "W")

    assert result.n_null_customer_id == 2
    assert result.customers.height == 1
    assert result.customers["customer_id"].null_count() == 0


def test_summary_null_amount_counted():
    orders = make_orders(
        [
            ("g", dt.date(1997, 1, 1), 10.0),
            ("g", dt.date(1997, 2, 1), None),
            ("h", dt.date(1997, 1, 1), 10.0),
            ("h", dt.date(1997, 2, 1), None),
            ("h", dt.date(1997, 3, 1), 40.0),
        ]
    )
    result = clv.build_transaction_summary(orders, END, "W")

    assert result.n_null_amount == 2
    g = customer_row(result.customers, "g")
    assert g["frequency"] == 1
    assert g["monetary_value"] is None
    h = customer_row(result.customers, "h")
    assert h["frequency"] == 2
    assert h["monetary_value"] == pytest.approx(40.0)


def test_summary_text_dates_parsed_before_max():
    # As text "31.01.1997" sorts after "01.02.1997", but it is the earlier date.
    orders = pl.DataFrame(
        {
            "customer_id": ["i", "i"],
            "ordered_at": ["31.01.1997", "01.02.1997"],
            "amount": [5.0, 6.0],
        }
    )
    summary = clv.summarize_transactions(orders, None, "D", date_format="%d.%m.%Y")

    row = customer_row(summary, "i")
    assert row["frequency"] == 1
    assert row["recency"] == 1.0
    assert row["T"] == 1.0


def test_summary_datetime_column_groups_by_day():
    orders = pl.DataFrame(
        {
            "customer_id": ["j", "j", "j"],
            "ordered_at": [
                dt.datetime(1997, 1, 1, 9, 0),
                dt.datetime(1997, 1, 1, 23, 59),
                dt.datetime(1997, 1, 15, 12, 0),
            ],
            "amount": [1.0, 2.0, 3.0],
        }
    )
    summary = clv.summarize_transactions(orders, "1997-01-29", "W")

    row = customer_row(summary, "j")
    assert row["frequency"] == 1
    assert row["recency"] == pytest.approx(2.0)
    assert row["T"] == pytest.approx(4.0)


def test_summary_rejects_invalid_input():
    orders = make_orders([("k", dt.date(1997, 1, 1), 1.0)])

    with pytest.raises(ValueError, match="period"):
        clv.summarize_transactions(orders, END, "M")
    with pytest.raises(ValueError, match="missing columns"):
        clv.summarize_transactions(orders.drop("amount"), END, "W")
    bad_dates = pl.DataFrame({"customer_id": ["k"], "ordered_at": ["not a date"], "amount": [1.0]})
    with pytest.raises(ValueError, match="not dates"):
        clv.summarize_transactions(bad_dates, END, "W")


# ---------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------

PUBLISHED_BGNBD = clv.BgNbdFit(
    r=0.243, alpha=4.414, a=0.793, b=2.426, log_likelihood=-9582.4, converged=True, n_customers=2357
)


def test_expected_purchases_published_example():
    # Fader, Hardie and Lee (2005): x=2, t_x=30.43, T=38.86 expects 1.226 purchases in 39 weeks.
    expected = clv.expected_purchases(PUBLISHED_BGNBD, 39, [2], [30.43], [38.86])

    assert expected[0] == pytest.approx(1.226, abs=5e-4)


def test_expected_purchases_edge_customers_finite():
    frequency = [0, 1, 5, 300]
    recency = [0.0, 38.86, 38.86, 38.0]
    T = [38.86, 38.86, 38.86, 38.86]

    expected = clv.expected_purchases(PUBLISHED_BGNBD, 39, frequency, recency, T)
    alive = clv.probability_alive(PUBLISHED_BGNBD, frequency, recency, T)

    assert np.all(np.isfinite(expected))
    assert np.all(expected > 0)
    assert alive[0] == 1.0
    assert np.all((alive > 0) & (alive <= 1))
    # A heavy buyer whose last purchase is recent is expected to keep buying at a high rate.
    assert expected[3] > 50


def test_expected_purchases_near_a_equal_one():
    frequency = [0, 2, 10]
    recency = [0.0, 20.0, 35.0]
    T = [38.86, 38.86, 38.86]
    values = []
    for a in (1.0 - 1e-4, 1.0, 1.0 + 1e-4):
        fit = clv.BgNbdFit(r=0.5, alpha=3.0, a=a, b=2.0, log_likelihood=None, converged=True, n_customers=0)
        values.append(clv.expected_purchases(fit, 39, frequency, recency, T))

    assert np.all(np.isfinite(values))
    np.testing.assert_allclose(values[0], values[1], rtol=1e-3)
    np.testing.assert_allclose(values[2], values[1], rtol=1e-3)


def test_bgnbd_gradient_matches_finite_differences():
    x = np.array([0.0, 1.0, 2.0, 7.0, 0.0])
    t_x = np.array([0.0, 3.0, 30.43, 35.0, 0.0])
    T = np.array([38.86, 20.0, 38.86, 36.0, 5.0])
    params = np.log([0.3, 4.0, 0.8, 2.5])

    def total_ll(point):
        return clv._bgnbd_terms(point, x, t_x, T)[0].sum()

    analytic = clv._bgnbd_terms(params, x, t_x, T)[1].sum(axis=1)
    numeric = optimize.approx_fprime(params, total_ll, 1e-7)

    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-6)


def test_bgnbd_tiny_sample_warns():
    with pytest.warns(clv.ClvFitWarning, match="fewer than min_customers"):
        fit = clv.fit_bgnbd([1, 0, 2], [3.0, 0.0, 5.0], [10.0, 10.0, 10.0])

    assert fit.converged is False
    assert fit.n_customers == 3
    assert fit.r is None
    assert fit.log_likelihood is None


def test_bgnbd_no_repeat_buyers_warns():
    with pytest.warns(clv.ClvFitWarning, match="repeat purchase"):
        fit = clv.fit_bgnbd([0] * 20, [0.0] * 20, [10.0] * 20)

    assert fit.converged is False


def test_bgnbd_unidentified_sample_warns():
    # Twelve customers who all buy until the end show no dropout, so a and b diverge.
    frequency = np.arange(1, 13)
    T = np.full(12, 20.0)

    with pytest.warns(clv.ClvFitWarning, match="do not identify"):
        fit = clv.fit_bgnbd(frequency, T, T)

    assert fit.converged is False
    assert fit.a is None


def test_bgnbd_rejects_invalid_rows():
    with pytest.raises(ValueError, match="recency greater than T"):
        clv.fit_bgnbd([1], [5.0], [4.0])
    with pytest.raises(ValueError, match="non-negative whole number"):
        clv.fit_bgnbd([1.5], [1.0], [4.0])
    with pytest.raises(ValueError, match="missing"):
        clv.fit_bgnbd([1], [float("nan")], [4.0])


def test_predictions_require_converged_fit():
    with pytest.warns(clv.ClvFitWarning):
        fit = clv.fit_bgnbd([1, 0], [3.0, 0.0], [10.0, 10.0])

    with pytest.raises(ValueError, match="did not converge"):
        clv.expected_purchases(fit, 10, [1], [3.0], [10.0])


# ---------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------


def test_gamma_gamma_excludes_invalid_spend():
    x, mean_spend = simulate_gamma_gamma(300, seed=7)
    frequency = np.concatenate([x, [2, 3, 1, 4, 2, 0, 0]])
    monetary = np.concatenate([mean_spend, [0.0, -12.0, -0.5, np.nan, 0.0, 0.0, 25.0]])

    with warnings.catch_warnings():
        warnings.simplefilter("error", clv.ClvFitWarning)
        clean = clv.fit_gamma_gamma(x, mean_spend)
        mixed = clv.fit_gamma_gamma(frequency, monetary)

    assert mixed.converged
    assert mixed.n_customers == 300
    # One-time buyers (frequency 0) are outside the model and not counted as excluded.
    assert mixed.n_excluded == 5
    assert mixed.p == pytest.approx(clean.p, rel=1e-6)
    assert mixed.q == pytest.approx(clean.q, rel=1e-6)
    assert mixed.gamma == pytest.approx(clean.gamma, rel=1e-6)


def test_gamma_gamma_recovers_simulated_parameters():
    x, mean_spend = simulate_gamma_gamma(5000, seed=11)

    fit = clv.fit_gamma_gamma(x, mean_spend)

    assert fit.converged
    assert fit.p == pytest.approx(6.0, rel=0.1)
    assert fit.q == pytest.approx(4.0, rel=0.15)
    assert fit.gamma == pytest.approx(15.0, rel=0.2)


def test_gamma_gamma_gradient_matches_finite_differences():
    x, mean_spend = simulate_gamma_gamma(20, seed=3)
    params = np.log([5.0, 3.0, 12.0])

    def total_ll(point):
        return clv._gamma_gamma_terms(point, x, mean_spend)[0].sum()

    analytic = clv._gamma_gamma_terms(params, x, mean_spend)[1].sum(axis=1)
    numeric = optimize.approx_fprime(params, total_ll, 1e-7)

    np.testing.assert_allclose(analytic, numeric, rtol=1e-5, atol=1e-5)


def test_gamma_gamma_tiny_sample_warns():
    with pytest.warns(clv.ClvFitWarning, match="fewer than min_customers"):
        fit = clv.fit_gamma_gamma([1, 2, 0, 3], [10.0, 0.0, 0.0, np.nan])

    assert fit.converged is False
    assert fit.n_customers == 1
    assert fit.n_excluded == 2
    assert fit.p is None


def test_gamma_gamma_constant_spend_warns():
    with pytest.warns(clv.ClvFitWarning):
        fit = clv.fit_gamma_gamma([1] * 12, [10.0] * 12)

    assert fit.converged is False


def test_expected_spend_population_mean_for_unusable_rows():
    fit = clv.GammaGammaFit(
        p=6.25, q=3.74, gamma=15.44, log_likelihood=None, converged=True, n_customers=946, n_excluded=0
    )
    population_mean = 6.25 * 15.44 / (3.74 - 1)

    spend = clv.expected_spend(fit, [0, 2, 3, 1, 5], [0.0, -4.0, np.nan, 20.0, 20.0])

    assert np.all(np.isfinite(spend))
    np.testing.assert_allclose(spend[:3], population_mean)
    # The conditional mean moves from the population mean towards the customer's own mean
    # as the number of repeat purchases grows.
    assert population_mean > spend[3] > spend[4] > 20.0


# ---------------------------------------------------------------------------
# Lifetime value
# ---------------------------------------------------------------------------

PUBLISHED_GAMMA_GAMMA = clv.GammaGammaFit(
    p=6.25, q=3.74, gamma=15.44, log_likelihood=None, converged=True, n_customers=946, n_excluded=0
)


def test_clv_without_discount_telescopes():
    frequency = [0, 2, 6]
    recency = [0.0, 30.43, 38.0]
    T = [38.86, 38.86, 38.86]
    monetary = [0.0, 22.35, 40.0]

    clv_values = clv.predict_clv(
        PUBLISHED_BGNBD,
        PUBLISHED_GAMMA_GAMMA,
        frequency,
        recency,
        T,
        monetary,
        horizon_months=12,
        monthly_discount_rate=0.0,
        period="W",
    )
    horizon_weeks = 12 * clv.DAYS_PER_MONTH / 7
    purchases = clv.expected_purchases(PUBLISHED_BGNBD, horizon_weeks, frequency, recency, T)
    spend = clv.expected_spend(PUBLISHED_GAMMA_GAMMA, frequency, monetary)

    np.testing.assert_allclose(clv_values, purchases * spend, rtol=1e-10)


def test_clv_discount_and_horizon_order():
    args = (PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, [2], [30.43], [38.86], [22.35])

    base = clv.predict_clv(*args, horizon_months=12, monthly_discount_rate=0.01)
    undiscounted = clv.predict_clv(*args, horizon_months=12, monthly_discount_rate=0.0)
    longer = clv.predict_clv(*args, horizon_months=24, monthly_discount_rate=0.01)

    assert 0 < base[0] < undiscounted[0]
    assert base[0] < longer[0]


def test_clv_days_and_weeks_agree():
    weekly = clv.predict_clv(PUBLISHED_BGNBD, PUBLISHED_GAMMA_GAMMA, [2], [30.43], [38.86], [22.35], period="W")
    daily_fit = clv.BgNbdFit(
        r=0.243, alpha=4.414 * 7, a=0.793, b=2.426, log_likelihood=None, converged=True, n_customers=0
    )
    daily = clv.predict_clv(daily_fit, PUBLISHED_GAMMA_GAMMA, [2], [30.43 * 7], [38.86 * 7], [22.35], period="D")

    np.testing.assert_allclose(daily, weekly, rtol=1e-10)


def test_score_customers_tiny_sample_has_null_not_nan():
    orders = make_orders(
        [
            ("a", dt.date(1997, 1, 1), 10.0),
            ("a", dt.date(1997, 1, 1), 3.0),
            ("a", dt.date(1997, 2, 1), 20.0),
            ("b", dt.date(1997, 1, 5), 15.0),
            ("c", dt.date(1997, 3, 1), 0.0),
            ("c", END, -5.0),
        ]
    )
    summary = clv.summarize_transactions(orders, END, "W")

    with pytest.warns(clv.ClvFitWarning):
        bgnbd = clv.fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    with pytest.warns(clv.ClvFitWarning):
        gamma_gamma = clv.fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    scores = clv.score_customers(summary, bgnbd, gamma_gamma)

    assert scores.height == 3
    for name in ("probability_alive", "expected_purchases", "expected_spend", "clv"):
        assert scores[name].dtype == pl.Float64
        assert scores[name].null_count() == 3, name
    assert_no_nan(scores)


def test_score_customers_spend_fit_missing():
    summary = pl.DataFrame(
        {
            "customer_id": ["a", "b"],
            "frequency": [2, 0],
            "recency": [30.43, 0.0],
            "T": [38.86, 38.86],
            "monetary_value": [22.35, 0.0],
        }
    )
    failed_spend_fit = clv.GammaGammaFit(None, None, None, None, converged=False, n_customers=0, n_excluded=0)

    scores = clv.score_customers(summary, PUBLISHED_BGNBD, failed_spend_fit)

    assert scores["expected_purchases"].null_count() == 0
    assert scores["expected_spend"].null_count() == 2
    assert scores["clv"].null_count() == 2
    assert_no_nan(scores)


# ---------------------------------------------------------------------------
# CDNOW sample
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_dir() -> Path:
    root = os.environ.get("CX_REAL_DATA_DIR")
    if not root:
        pytest.skip("CX_REAL_DATA_DIR not set: CDNOW reference tests need the real data folder")
    folder = Path(root) / "cdnow"
    if not (folder / "CDNOW_sample.txt").is_file():
        pytest.skip(f"CX_REAL_DATA_DIR is set but {folder}/CDNOW_sample.txt is missing")
    return folder


@pytest.fixture(scope="module")
def cdnow_orders(cdnow_dir: Path) -> pl.DataFrame:
    # Whitespace-aligned columns: master id, sample id, YYYYMMDD, CDs, dollar value.
    customer_ids, dates, amounts = [], [], []
    with open(cdnow_dir / "CDNOW_sample.txt", encoding="ascii") as handle:
        for line in handle:
            fields = line.split()
            if not fields:
                continue
            customer_ids.append(int(fields[1]))
            dates.append(dt.datetime.strptime(fields[2], "%Y%m%d").date())
            amounts.append(float(fields[4]))
    return pl.DataFrame({"customer_id": customer_ids, "ordered_at": dates, "amount": amounts})


@pytest.fixture(scope="module")
def cdnow_summary(cdnow_orders: pl.DataFrame) -> pl.DataFrame:
    return clv.summarize_transactions(cdnow_orders, END, "W")


@pytest.fixture(scope="module")
def cdnow_published_summary(cdnow_dir: Path) -> pl.DataFrame:
    return pl.read_csv(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")


def test_cdnow_summary_matches_published(cdnow_summary, cdnow_published_summary):
    joined = cdnow_summary.join(cdnow_published_summary, left_on="customer_id", right_on="ID", how="full")

    assert cdnow_summary.height == 2357
    assert joined.height == 2357
    assert (joined["frequency"] != joined["x"]).sum() == 0
    assert int((joined["frequency"] > 0).sum()) == 946
    # The published file rounds weeks and dollars to two decimals.
    assert (joined["recency"] - joined["t_x"]).abs().max() <= 0.005 + 1e-9
    assert (joined["T"] - joined["T_right"]).abs().max() <= 0.005 + 1e-9
    assert (joined["monetary_value"] - joined["zbar"]).abs().max() <= 0.005 + 1e-9


def test_cdnow_bgnbd_reproduces_published(cdnow_summary):
    started = time.perf_counter()
    fit = clv.fit_bgnbd(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
    elapsed = time.perf_counter() - started

    assert fit.converged
    assert fit.n_customers == 2357
    assert fit.r == pytest.approx(0.243, rel=0.01)
    assert fit.alpha == pytest.approx(4.414, rel=0.01)
    assert fit.a == pytest.approx(0.793, rel=0.01)
    assert fit.b == pytest.approx(2.426, rel=0.01)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.1)
    assert elapsed < 1.0, f"BG/NBD fit took {elapsed:.3f} s"


def test_cdnow_bgnbd_on_published_summary(cdnow_dir):
    published = pl.read_csv(cdnow_dir / "cdnow_customers_summary.csv")

    fit = clv.fit_bgnbd(published["frequency"], published["recency"], published["T"])

    assert fit.converged
    assert fit.r == pytest.approx(0.243, rel=0.01)
    assert fit.alpha == pytest.approx(4.414, rel=0.01)
    assert fit.a == pytest.approx(0.793, rel=0.01)
    assert fit.b == pytest.approx(2.426, rel=0.01)


def test_cdnow_conditional_expectation(cdnow_summary):
    fit = clv.fit_bgnbd(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])

    expected = clv.expected_purchases(fit, 39, [2], [30.43], [38.86])

    assert expected[0] == pytest.approx(1.226, abs=1e-3)


def test_cdnow_gamma_gamma_reproduces_published(cdnow_summary):
    started = time.perf_counter()
    fit = clv.fit_gamma_gamma(cdnow_summary["frequency"], cdnow_summary["monetary_value"])
    elapsed = time.perf_counter() - started

    assert fit.converged
    assert fit.n_customers == 946
    assert fit.n_excluded == 0
    assert fit.p == pytest.approx(6.25, rel=0.01)
    assert fit.q == pytest.approx(3.74, rel=0.01)
    assert fit.gamma == pytest.approx(15.44, rel=0.01)
    assert fit.log_likelihood == pytest.approx(-4055.92, abs=0.1)
    assert elapsed < 1.0, f"Gamma-Gamma fit took {elapsed:.3f} s"


def test_cdnow_gamma_gamma_on_published_zbar(cdnow_published_summary):
    fit = clv.fit_gamma_gamma(cdnow_published_summary["x"], cdnow_published_summary["zbar"])

    assert fit.converged
    assert fit.n_customers == 946
    assert fit.p == pytest.approx(6.25, rel=0.01)
    assert fit.q == pytest.approx(3.74, rel=0.01)
    assert fit.gamma == pytest.approx(15.44, rel=0.01)


def test_cdnow_iteration_limit_warns(cdnow_summary):
    with pytest.warns(clv.ClvFitWarning, match="did not converge"):
        fit = clv.fit_bgnbd(
            cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"], max_iterations=2
        )

    assert fit.converged is False
    assert fit.r is None


def test_cdnow_score_customers(cdnow_summary):
    with warnings.catch_warnings():
        warnings.simplefilter("error", clv.ClvFitWarning)
        bgnbd = clv.fit_bgnbd(cdnow_summary["frequency"], cdnow_summary["recency"], cdnow_summary["T"])
        gamma_gamma = clv.fit_gamma_gamma(cdnow_summary["frequency"], cdnow_summary["monetary_value"])

    scores = clv.score_customers(summary=cdnow_summary, bgnbd=bgnbd, gamma_gamma=gamma_gamma, horizon_months=12)

    assert scores.height == 2357
    for name in ("probability_alive", "expected_purchases", "expected_spend", "clv"):
        assert scores[name].null_count() == 0, name
    assert_no_nan(scores)
    assert scores["clv"].min() >= 0
    one_time = scores.filter(pl.col("frequency") == 0)
    assert (one_time["probability_alive"] == 1.0).all()
