"""Predict customer lifetime value with the BG/NBD and Gamma-Gamma models.

The BG/NBD model (Fader, Hardie and Lee 2005, "Counting Your Customers the Easy Way:
An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284) predicts
repeat purchases of customers who can leave silently. The Gamma-Gamma model (Fader and
Hardie 2013, "The Gamma-Gamma Model of Monetary Value") predicts the average spend per
repeat purchase. Both likelihoods are written here from the papers' closed forms and
maximized over log-parameters with L-BFGS-B and analytic gradients.

Typical daily use::

    summary = summarize_transactions(orders, observation_end=date(2024, 6, 30))
    bgnbd = fit_bgnbd(summary["frequency"], summary["recency"], summary["T"])
    gamma_gamma = fit_gamma_gamma(summary["frequency"], summary["monetary_value"])
    scores = score_customers(summary, bgnbd, gamma_gamma, horizon_months=12)

A fit that fails or has too little data emits `ClvFitWarning` and returns
``converged=False`` with parameters set to None. `score_customers` then leaves the
predictive columns null, and the array functions raise ValueError.
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import polars as pl
from scipy import optimize, special

logger = logging.getLogger(__name__)

Period = Literal["D", "W"]

DAYS_PER_PERIOD: dict[str, float] = {"D": 1.0, "W": 7.0}

# Mean Gregorian month, used to turn a horizon in months into model time units.
DAYS_PER_MONTH = 365.2425 / 12

# Fits on fewer customers than this are not attempted. BG/NBD has four and Gamma-Gamma
# three free parameters, which need far more data to be meaningful, so this limit only
# blocks degenerate input.
DEFAULT_MIN_CUSTOMERS = 10

# Box bounds on every log-parameter. A parameter that ends on a bound means the
# likelihood has no interior maximum for this data, so the fit counts as not converged.
_LOG_PARAM_BOUND = 18.0
_BOUND_TOLERANCE = 1e-3

# Gradient norm of the mean log-likelihood below which a line-search failure of
# L-BFGS-B at the optimum still counts as converged.
_GRADIENT_TOLERANCE = 1e-5

# Smallest eigenvalue of the observed information (the Hessian of the total negative
# log-likelihood in log-parameters) that counts as identified. Below it, some
# combination of log-parameters has a standard error above 10, as when a few customers
# push a and b of the BG/NBD model towards infinity (no dropout). The CDNOW sample of
# 2,357 customers gives 7.4 for BG/NBD and 9.0 for Gamma-Gamma.
# NOTE: the limit is a judgment, not a statistical test. Samples of a few dozen
# customers can fall below it even when their estimates are usable.
_MIN_INFORMATION_EIGENVALUE = 1e-2


class ClvFitWarning(UserWarning):
    """Warning that a CLV model fit was skipped or did not converge."""


@dataclass(frozen=True)
class TransactionSummary:
    """Per-customer summary and counts of the order rows left out of it.

    Attributes
    ----------
    customers : pl.DataFrame
        One row per customer, see `summarize_transactions`.
    n_null_customer_id : int
        Rows dropped because customer_id is null.
    n_null_ordered_at : int
        Rows dropped because the order date is null.
    n_after_observation_end : int
        Rows dropped because they were ordered after the observation end.
    n_null_amount : int
        Rows kept as purchases whose amount is null. Their spend is unknown.
    """

    customers: pl.DataFrame
    n_null_customer_id: int
    n_null_ordered_at: int
    n_after_observation_end: int
    n_null_amount: int


@dataclass(frozen=True)
class BgNbdFit:
    """Maximum-likelihood fit of the BG/NBD model.

    Parameters are None when ``converged`` is False. Time parameters are in the unit
    of the recency and T values that were fitted.

    Attributes
    ----------
    r, alpha : float or None
        Shape and scale of the gamma distribution of purchase rates.
    a, b : float or None
        Parameters of the beta distribution of the dropout probability after a purchase.
    log_likelihood : float or None
        Total log-likelihood at the estimate.
    converged : bool
        True when the optimizer reached an interior maximum that the data identify,
        so predictions can use it.
    n_customers : int
        Customers in the fit.
    message : str
        Optimizer status, or the reason why the fit was skipped.
    """

    r: float | None
    alpha: float | None
    a: float | None
    b: float | None
    log_likelihood: float | None
    converged: bool
    n_customers: int
    message: str = ""


@dataclass(frozen=True)
class GammaGammaFit:
    """Maximum-likelihood fit of the Gamma-Gamma spend model.

    Parameters are None when ``converged`` is False.

    Attributes
    ----------
    p : float or None
        Shape of the gamma distribution of one transaction value.
    q, gamma : float or None
        Shape and rate of the gamma distribution of that distribution's rate across customers.
    log_likelihood : float or None
        Total log-likelihood at the estimate.
    converged : bool
        True when the optimizer reached an interior maximum that the data identify,
        with q > 1 so that the population mean spend is finite.
    n_customers : int
        Repeat buyers in the fit.
    n_excluded : int
        Repeat buyers left out because their monetary value is zero, negative or missing.
        One-time buyers are not in this count because the model never uses them.
    message : str
        Optimizer status, or the reason why the fit was skipped.
    """

    p: float | None
    q: float | None
    gamma: float | None
    log_likelihood: float | None
    converged: bool
    n_customers: int
    n_excluded: int
    message: str = ""


# ---------------------------------------------------------------------------
# Transaction summary
# ---------------------------------------------------------------------------


def _to_date(value: dt.date | dt.datetime | str, name: str) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value).date()
        except ValueError as error:
            raise ValueError(f"invalid {name} {value!r}: expected an ISO date such as 2024-06-30") from error
    raise TypeError(f"invalid {name} {value!r}: expected a date, datetime or ISO date string")


def _order_date_expression(dtype: pl.DataType, column: str, date_format: str | None) -> pl.Expr:
    """Return an expression that converts the order column to pl.Date."""
    if dtype == pl.Date:
        return pl.col(column)
    if isinstance(dtype, pl.Datetime):
        # A time-zone-aware column yields the calendar date in its own time zone.
        return pl.col(column).dt.date()
    if dtype == pl.String:
        return pl.col(column).str.to_datetime(format=date_format, strict=True).dt.date()
    raise TypeError(f"column {column!r} has type {dtype}: expected Date, Datetime or String")


def build_transaction_summary(
    orders: pl.DataFrame,
    observation_end: dt.date | dt.datetime | str | None,
    period: Period = "W",
    *,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
    amount_col: str = "amount",
    date_format: str | None = None,
) -> TransactionSummary:
    """Summarize orders per customer and count the rows left out.

    Parameters and output columns are those of `summarize_transactions`.

    Returns
    -------
    TransactionSummary
        The per-customer frame and the counts of dropped rows and of null amounts.
    """
    if period not in DAYS_PER_PERIOD:
        raise ValueError(f"invalid period {period!r}: expected 'D' (days) or 'W' (weeks)")
    missing = [column for column in (customer_col, date_col, amount_col) if column not in orders.columns]
    if missing:
        raise ValueError(f"orders is missing columns {missing}. Present columns: {orders.columns}")

    try:
        dated = orders.select(
            pl.col(customer_col).alias("customer_id"),
            _order_date_expression(orders.schema[date_col], date_col, date_format).alias("day"),
            pl.col(amount_col).cast(pl.Float64).alias("amount"),
        )
    except (pl.exceptions.InvalidOperationError, pl.exceptions.ComputeError) as error:
        raise ValueError(f"column {date_col!r} contains values that are not dates: {error}") from error

    n_null_customer_id = dated["customer_id"].null_count()
    dated = dated.filter(pl.col("customer_id").is_not_null())
    n_null_ordered_at = dated["day"].null_count()
    dated = dated.filter(pl.col("day").is_not_null())

    # The end date is resolved only after parsing, so a default never comes from a text max.
    if observation_end is None:
        end = dated["day"].max()
        if end is None:
            end = dt.date.min
    else:
        end = _to_date(observation_end, "observation_end")
    n_after_observation_end = dated.filter(pl.col("day") > end).height
    dated = dated.filter(pl.col("day") <= end)
    n_null_amount = dated["amount"].null_count()

    # Several orders on one day are one purchase. A day whose amounts are all null has
    # unknown spend, so its spend is null rather than 0.
    purchases = dated.group_by("customer_id", "day").agg(
        pl.when(pl.col("amount").count() > 0).then(pl.col("amount").sum()).alias("spend")
    )

    days_per_period = DAYS_PER_PERIOD[period]
    first_day = pl.col("day").min()
    customers = (
        purchases.sort("customer_id", "day")
        .group_by("customer_id")
        .agg(
            (pl.len() - 1).cast(pl.Int64).alias("frequency"),
            ((pl.col("day").max() - first_day).dt.total_days() / days_per_period).alias("recency"),
            ((pl.lit(end) - first_day).dt.total_days() / days_per_period).alias("T"),
            # Rows are sorted by day, so slice(1) drops the first purchase.
            pl.col("spend").slice(1).mean().alias("repeat_spend"),
        )
        .with_columns(
            pl.when(pl.col("frequency") == 0)
            .then(pl.lit(0.0))
            .otherwise(pl.col("repeat_spend"))
            .alias("monetary_value")
        )
        .select("customer_id", "frequency", "recency", "T", "monetary_value")
        .with_columns(pl.col("recency", "T", "monetary_value").cast(pl.Float64))
        .sort("customer_id")
    )

    if n_null_customer_id or n_null_ordered_at:
        logger.warning(
            "summarize_transactions dropped %d rows with null customer_id and %d rows with null %s",
            n_null_customer_id,
            n_null_ordered_at,
            date_col,
        )
    return TransactionSummary(
        customers=customers,
        n_null_customer_id=n_null_customer_id,
        n_null_ordered_at=n_null_ordered_at,
        n_after_observation_end=n_after_observation_end,
        n_null_amount=n_null_amount,
    )


def summarize_transactions(
    orders: pl.DataFrame,
    observation_end: dt.date | dt.datetime | str | None,
    period: Period = "W",
    *,
    customer_col: str = "customer_id",
    date_col: str = "ordered_at",
    amount_col: str = "amount",
    date_format: str | None = None,
) -> pl.DataFrame:
    """Compute frequency, recency, T and monetary value per customer.

    Orders of one customer on one calendar day form one purchase, and only orders on
    or before ``observation_end`` count. Times are whole days between purchase dates,
    divided by 7 when ``period`` is "W". This reproduces the published CDNOW summary
    (for example recency 30.43 weeks for purchases 213 days apart).

    Parameters
    ----------
    orders : pl.DataFrame
        One row per order with a customer id, an order date and an amount.
    observation_end : date, datetime, ISO date string or None
        Last day of the observation period, inclusive. None takes the latest order date.
    period : {"W", "D"}
        Time unit of recency and T: weeks or days.
    customer_col, date_col, amount_col : str
        Column names in ``orders``. The date column may be Date, Datetime (its calendar
        date in its own time zone is used) or String.
    date_format : str, optional
        strptime format for a String date column. By default polars infers it.

    Returns
    -------
    pl.DataFrame
        Columns customer_id, frequency (number of repeat purchase days), recency (last
        minus first purchase, 0 for one-time buyers), T (observation end minus first
        purchase) and monetary_value (mean spend per repeat purchase day, excluding the
        first purchase). monetary_value is 0.0 for one-time buyers and null when all
        repeat amounts are null. Rows with a null customer_id or date are dropped and
        logged. `build_transaction_summary` also returns their counts.

    Raises
    ------
    ValueError
        If a column is missing, ``period`` is invalid or a date does not parse.
    """
    return build_transaction_summary(
        orders,
        observation_end,
        period,
        customer_col=customer_col,
        date_col=date_col,
        amount_col=amount_col,
        date_format=date_format,
    ).customers


# ---------------------------------------------------------------------------
# Shared optimizer helpers
# ---------------------------------------------------------------------------


def _as_float_array(values: object, name: str) -> np.ndarray:
    if isinstance(values, pl.Series):
        return values.cast(pl.Float64).to_numpy().astype(np.float64, copy=False)
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array


def _min_information_eigenvalue(gradient, params: np.ndarray, n_customers: int) -> float:
    """Return the smallest eigenvalue of the observed information at ``params``.

    ``gradient`` is the gradient of the negative mean log-likelihood. The Hessian comes
    from central differences of it.
    """
    step = 1e-5
    hessian = np.empty((len(params), len(params)))
    for i in range(len(params)):
        shift = np.zeros(len(params))
        shift[i] = step
        hessian[:, i] = (gradient(params + shift) - gradient(params - shift)) / (2 * step)
    hessian = n_customers * (hessian + hessian.T) / 2
    return float(np.linalg.eigvalsh(hessian)[0])


def _maximize_log_likelihood(negative_mean_ll, gradient, start: np.ndarray, max_iterations: int, n_customers: int):
    """Minimize a negative mean log-likelihood over log-parameters.

    Returns the optimizer result and the reason why the result is not usable, or None.
    """
    bounds = [(-_LOG_PARAM_BOUND, _LOG_PARAM_BOUND)] * len(start)
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        result = optimize.minimize(
            negative_mean_ll,
            start,
            jac=gradient,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": max_iterations, "ftol": 1e-13, "gtol": 1e-9},
        )
        final_gradient = gradient(result.x)

    if not np.all(np.isfinite(result.x)) or not np.isfinite(result.fun):
        return result, f"the log-likelihood is not finite at the end point ({result.message})"
    at_bound = np.abs(np.abs(result.x) - _LOG_PARAM_BOUND) < _BOUND_TOLERANCE
    if np.any(at_bound):
        return result, "a parameter diverged to a bound, so the data do not identify the model"
    # L-BFGS-B can stop on a line-search failure right at the optimum, so a small
    # gradient also counts as success.
    if not result.success and np.linalg.norm(final_gradient) > _GRADIENT_TOLERANCE:
        return result, f"the optimizer did not converge: {result.message}"
    with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
        min_eigenvalue = _min_information_eigenvalue(gradient, result.x, n_customers)
    if not min_eigenvalue >= _MIN_INFORMATION_EIGENVALUE:
        return result, (
            f"the likelihood is flat at the maximum (smallest information eigenvalue {min_eigenvalue:.3g}), "
            "so the data do not identify the model"
        )
    return result, None


def _warn_fit(model: str, reason: str) -> None:
    warnings.warn(f"{model} fit not usable: {reason}. Predictive columns should stay empty.", ClvFitWarning, stacklevel=4)


# ---------------------------------------------------------------------------
# BG/NBD
# ---------------------------------------------------------------------------


def _bgnbd_terms(params: np.ndarray, x: np.ndarray, t_x: np.ndarray, T: np.ndarray):
    """Return per-row log-likelihood and its gradient w.r.t. the log-parameters.

    With A = Gamma(r+x) alpha^r / Gamma(r) and Beta the beta function, the likelihood is
        L = A Beta(a, b+x)/Beta(a, b) [ (alpha+T)^-(r+x)
                                        + [x>0] a/(b+x-1) (alpha+t_x)^-(r+x) ]
    as given by Fader, Hardie and Lee (2005).
    """
    r, alpha, a, b = np.exp(params)
    repeat = x > 0

    log_a1 = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    log_a2 = special.gammaln(a + b) + special.gammaln(b + x) - special.gammaln(b) - special.gammaln(a + b + x)
    log_a3 = -(r + x) * np.log(alpha + T)
    # b + x - 1 >= b > 0 for repeat buyers. For x = 0 the term is absent.
    safe_b_x = np.where(repeat, b + x - 1.0, 1.0)
    log_a4 = np.where(repeat, np.log(a) - np.log(safe_b_x) - (r + x) * np.log(alpha + t_x), -np.inf)
    log_mix = np.logaddexp(log_a3, log_a4)
    ll = log_a1 + log_a2 + log_mix

    # Share of the second term in the mixture, needed by the chain rule through logaddexp.
    weight4 = np.exp(log_a4 - log_mix)
    weight3 = 1.0 - weight4

    d_r = (
        special.digamma(r + x)
        - special.digamma(r)
        + np.log(alpha)
        - weight3 * np.log(alpha + T)
        - weight4 * np.log(alpha + t_x)
    )
    d_alpha = r / alpha - weight3 * (r + x) / (alpha + T) - weight4 * (r + x) / (alpha + t_x)
    d_a = special.digamma(a + b) - special.digamma(a + b + x) + weight4 / a
    d_b = (
        special.digamma(a + b)
        + special.digamma(b + x)
        - special.digamma(b)
        - special.digamma(a + b + x)
        - weight4 / safe_b_x
    )
    # Chain rule for log-parameters: d/d(log theta) = theta * d/d(theta).
    gradient = np.stack([r * d_r, alpha * d_alpha, a * d_a, b * d_b])
    return ll, gradient


def _validate_bgnbd_inputs(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    if not (len(x) == len(t_x) == len(T)):
        raise ValueError(f"frequency, recency and T differ in length: {len(x)}, {len(t_x)}, {len(T)}")
    checks = [
        (~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T)), "have missing or infinite values"),
        ((x < 0) | (x != np.round(x)), "have a frequency that is not a non-negative whole number"),
        (t_x < 0, "have a negative recency"),
        # A small tolerance absorbs rounding in summaries that store weeks with 2 decimals.
        (t_x > T + 1e-6 * np.maximum(T, 1.0), "have recency greater than T"),
    ]
    for invalid, problem in checks:
        if np.any(invalid):
            first = int(np.flatnonzero(invalid)[0])
            raise ValueError(
                f"{int(invalid.sum())} customers {problem} (first at index {first}: "
                f"frequency={x[first]}, recency={t_x[first]}, T={T[first]})"
            )


def fit_bgnbd(
    frequency,
    recency,
    T,
    *,
    min_customers: int = DEFAULT_MIN_CUSTOMERS,
    max_iterations: int = 500,
) -> BgNbdFit:
    """Fit the BG/NBD model by maximum likelihood.

    Customers with identical (frequency, recency, T) are collapsed with weights, so the
    cost grows with the number of distinct triples rather than customers.

    Parameters
    ----------
    frequency, recency, T : array-like or pl.Series
        Repeat purchases, time of the last purchase and observation length per
        customer, all times in one unit (see `summarize_transactions`).
    min_customers : int
        Smallest sample that is fitted. Smaller samples return a non-converged fit.
    max_iterations : int
        Iteration limit of L-BFGS-B.

    Returns
    -------
    BgNbdFit
        With ``converged=False`` and a `ClvFitWarning` when the sample is smaller than
        ``min_customers``, has no repeat buyers, or the optimizer fails.

    Raises
    ------
    ValueError
        If inputs differ in length, contain NaN, negative or non-integer frequencies,
        or a recency greater than T.
    """
    x = _as_float_array(frequency, "frequency")
    t_x = _as_float_array(recency, "recency")
    T_array = _as_float_array(T, "T")
    _validate_bgnbd_inputs(x, t_x, T_array)
    n_customers = len(x)

    def skipped(reason: str) -> BgNbdFit:
        _warn_fit("BG/NBD", reason)
        return BgNbdFit(None, None, None, None, None, converged=False, n_customers=n_customers, message=reason)

    if n_customers < min_customers:
        return skipped(f"only {n_customers} customers, fewer than min_customers={min_customers}")
    if not np.any(x > 0):
        return skipped(f"none of the {n_customers} customers made a repeat purchase")

    # Recency is irrelevant without repeat purchases, so it is zeroed before grouping.
    t_x = np.where(x > 0, np.minimum(t_x, T_array), 0.0)
    unique_rows, counts = np.unique(np.column_stack([x, t_x, T_array]), axis=0, return_counts=True)
    x_u, t_x_u, T_u = unique_rows.T
    weights = counts / n_customers

    def negative_mean_ll(params: np.ndarray) -> float:
        ll, _ = _bgnbd_terms(params, x_u, t_x_u, T_u)
        return -float(weights @ ll)

    def gradient(params: np.ndarray) -> np.ndarray:
        _, grad = _bgnbd_terms(params, x_u, t_x_u, T_u)
        return -(grad @ weights)

    # alpha is a time scale, so it starts at the mean observation length.
    mean_T = float(np.mean(T_array))
    start = np.log([1.0, max(mean_T, 1e-3), 1.0, 1.0])
    result, failure = _maximize_log_likelihood(negative_mean_ll, gradient, start, max_iterations, n_customers)
    if failure:
        return skipped(failure)

    r, alpha, a, b = (float(value) for value in np.exp(result.x))
    return BgNbdFit(
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        log_likelihood=-float(result.fun) * n_customers,
        converged=True,
        n_customers=n_customers,
        message=str(result.message),
    )


def _require_converged(fit: BgNbdFit | GammaGammaFit, name: str) -> None:
    if not fit.converged:
        raise ValueError(f"{name} did not converge ({fit.message}). Skip the predictions for this run.")


def _bgnbd_log_odds_dead(fit: BgNbdFit, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Return log(P(dead) / P(alive)) given the purchase history, -inf for x = 0."""
    repeat = x > 0
    safe_b_x = np.where(repeat, fit.b + x - 1.0, 1.0)
    return np.where(
        repeat,
        np.log(fit.a) - np.log(safe_b_x) + (fit.r + x) * (np.log(fit.alpha + T) - np.log(fit.alpha + t_x)),
        -np.inf,
    )


def probability_alive(fit: BgNbdFit, frequency, recency, T) -> np.ndarray:
    """Compute the probability that each customer is still active at T.

    Parameters
    ----------
    fit : BgNbdFit
        A converged fit.
    frequency, recency, T : array-like or pl.Series
        Purchase history in the time unit of the fit.

    Returns
    -------
    np.ndarray
        1.0 for one-time buyers, because BG/NBD customers can drop out only after a
        repeat purchase.
    """
    _require_converged(fit, "the BG/NBD fit")
    x = _as_float_array(frequency, "frequency")
    t_x = _as_float_array(recency, "recency")
    T_array = _as_float_array(T, "T")
    _validate_bgnbd_inputs(x, t_x, T_array)
    return np.exp(-np.logaddexp(0.0, _bgnbd_log_odds_dead(fit, x, t_x, T_array)))


def expected_purchases(fit: BgNbdFit, t, frequency, recency, T) -> np.ndarray:
    """Compute the expected number of purchases in the next ``t`` time units.

    Implements the conditional expectation of Fader, Hardie and Lee (2005)::

        E[Y(t) | x, t_x, T] = (a+b+x-1)/(a-1)
            * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)]
            / [1 + [x>0] a/(b+x-1) ((alpha+T)/(alpha+t_x))^(r+x)]

    with z = t / (alpha+T+t). Euler's transformation rewrites the product in the
    numerator as (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z). Its first two arguments
    do not grow with x, so heavy buyers do not overflow.

    Parameters
    ----------
    fit : BgNbdFit
        A converged fit.
    t : float or array-like
        Forecast length in the time unit of the fit, broadcast against the customers.
    frequency, recency, T : array-like or pl.Series
        Purchase history in the time unit of the fit.

    Returns
    -------
    np.ndarray
        Expected purchases per customer.

    Raises
    ------
    ValueError
        If the fit did not converge or the inputs are invalid.
    """
    _require_converged(fit, "the BG/NBD fit")
    x = _as_float_array(frequency, "frequency")
    t_x = _as_float_array(recency, "recency")
    T_array = _as_float_array(T, "T")
    _validate_bgnbd_inputs(x, t_x, T_array)
    horizon = np.asarray(t, dtype=np.float64)
    if np.any(horizon < 0) or not np.all(np.isfinite(horizon)):
        raise ValueError(f"invalid forecast length t={t!r}: expected finite values >= 0")

    r, alpha, b = fit.r, fit.alpha, fit.b
    # a = 1 is a removable singularity of the closed form. Shifting a by 1e-7 changes
    # the result by a relative amount of the same order.
    a = fit.a if abs(fit.a - 1.0) > 1e-7 else 1.0 + 1e-7

    z = horizon / (alpha + T_array + horizon)
    hypergeometric = special.hyp2f1(a + b - 1.0 - r, a - 1.0, a + b + x - 1.0, z)
    bracket = 1.0 - np.exp((a - 1.0) * np.log1p(-z)) * hypergeometric
    alive_factor = np.exp(-np.logaddexp(0.0, _bgnbd_log_odds_dead(fit, x, t_x, T_array)))
    return (a + b + x - 1.0) / (a - 1.0) * bracket * alive_factor


# ---------------------------------------------------------------------------
# Gamma-Gamma
# ---------------------------------------------------------------------------


def _gamma_gamma_terms(params: np.ndarray, x: np.ndarray, mean_spend: np.ndarray):
    """Return per-row log-likelihood and its gradient w.r.t. the log-parameters.

    With x repeat transactions of mean value z, x z is gamma(p x, nu) distributed and
    nu is gamma(q, gamma) distributed across customers. Integrating nu out gives
        f(z) = Gamma(p x + q) / (Gamma(p x) Gamma(q)) gamma^q x^(p x) z^(p x - 1)
               / (gamma + x z)^(p x + q)
    """
    p, q, gamma = np.exp(params)
    px = p * x
    log_total = np.log(gamma + x * mean_spend)
    ll = (
        special.gammaln(px + q)
        - special.gammaln(px)
        - special.gammaln(q)
        + q * np.log(gamma)
        + (px - 1.0) * np.log(mean_spend)
        + px * np.log(x)
        - (px + q) * log_total
    )
    d_p = x * (special.digamma(px + q) - special.digamma(px) + np.log(mean_spend) + np.log(x) - log_total)
    d_q = special.digamma(px + q) - special.digamma(q) + np.log(gamma) - log_total
    d_gamma = q / gamma - (px + q) / (gamma + x * mean_spend)
    gradient = np.stack([p * d_p, q * d_q, gamma * d_gamma])
    return ll, gradient


def _gamma_gamma_rows(frequency, monetary_value) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return x, monetary value, the mask of usable rows and the mask of excluded repeat buyers."""
    x = _as_float_array(frequency, "frequency")
    spend = _as_float_array(monetary_value, "monetary_value")
    if len(x) != len(spend):
        raise ValueError(f"frequency and monetary_value differ in length: {len(x)}, {len(spend)}")
    repeat = np.isfinite(x) & (x > 0)
    with np.errstate(invalid="ignore"):
        usable = repeat & np.isfinite(spend) & (spend > 0)
    return x, spend, usable, repeat & ~usable


def fit_gamma_gamma(
    frequency,
    monetary_value,
    *,
    min_customers: int = DEFAULT_MIN_CUSTOMERS,
    max_iterations: int = 500,
) -> GammaGammaFit:
    """Fit the Gamma-Gamma spend model by maximum likelihood.

    Only repeat buyers (frequency > 0) with a finite monetary value > 0 are used. The
    model assumes that spend per transaction is independent of purchase frequency,
    which this function does not check.

    Parameters
    ----------
    frequency : array-like or pl.Series
        Repeat purchases per customer.
    monetary_value : array-like or pl.Series
        Mean spend per repeat purchase. NaN, null, zero and negative values are excluded
        and counted in ``n_excluded``.
    min_customers : int
        Smallest number of usable repeat buyers that is fitted.
    max_iterations : int
        Iteration limit of L-BFGS-B.

    Returns
    -------
    GammaGammaFit
        With ``converged=False`` and a `ClvFitWarning` when fewer than ``min_customers``
        repeat buyers are usable, the optimizer fails, or q <= 1.
    """
    x, spend, usable, excluded = _gamma_gamma_rows(frequency, monetary_value)
    n_customers = int(usable.sum())
    n_excluded = int(excluded.sum())
    if n_excluded:
        logger.warning("Gamma-Gamma fit excluded %d repeat buyers with zero, negative or missing spend", n_excluded)

    def skipped(reason: str) -> GammaGammaFit:
        _warn_fit("Gamma-Gamma", reason)
        return GammaGammaFit(
            None, None, None, None, converged=False, n_customers=n_customers, n_excluded=n_excluded, message=reason
        )

    if n_customers < min_customers:
        return skipped(f"only {n_customers} usable repeat buyers, fewer than min_customers={min_customers}")

    unique_rows, counts = np.unique(np.column_stack([x[usable], spend[usable]]), axis=0, return_counts=True)
    x_u, spend_u = unique_rows.T
    weights = counts / n_customers

    def negative_mean_ll(params: np.ndarray) -> float:
        ll, _ = _gamma_gamma_terms(params, x_u, spend_u)
        return -float(weights @ ll)

    def gradient(params: np.ndarray) -> np.ndarray:
        _, grad = _gamma_gamma_terms(params, x_u, spend_u)
        return -(grad @ weights)

    # gamma has the unit of money, so it starts at the mean spend.
    start = np.log([1.0, 2.0, float(np.mean(spend[usable]))])
    result, failure = _maximize_log_likelihood(negative_mean_ll, gradient, start, max_iterations, n_customers)
    if failure:
        return skipped(failure)

    p, q, gamma = (float(value) for value in np.exp(result.x))
    if q <= 1.0:
        return skipped(f"q = {q:.4g} <= 1, so the population mean spend is infinite")
    return GammaGammaFit(
        p=p,
        q=q,
        gamma=gamma,
        log_likelihood=-float(result.fun) * n_customers,
        converged=True,
        n_customers=n_customers,
        n_excluded=n_excluded,
        message=str(result.message),
    )


def expected_spend(fit: GammaGammaFit, frequency, monetary_value) -> np.ndarray:
    """Compute each customer's expected mean spend per future transaction.

    For usable repeat buyers this is the conditional mean
    p (gamma + x z) / (p x + q - 1), a weighted average of the population mean
    p gamma / (q - 1) and the customer's own mean z. Customers that the fit could not
    use (no repeat purchase, or zero, negative or missing monetary value) get the
    population mean.

    Parameters
    ----------
    fit : GammaGammaFit
        A converged fit.
    frequency, monetary_value : array-like or pl.Series
        Repeat purchases and mean spend per repeat purchase.

    Returns
    -------
    np.ndarray
        Expected spend per customer.

    Raises
    ------
    ValueError
        If the fit did not converge or the inputs differ in length.
    """
    _require_converged(fit, "the Gamma-Gamma fit")
    x, spend, usable, _ = _gamma_gamma_rows(frequency, monetary_value)
    p, q, gamma = fit.p, fit.q, fit.gamma
    population_mean = p * gamma / (q - 1.0)
    safe_x = np.where(usable, x, 0.0)
    safe_spend = np.where(usable, spend, 0.0)
    conditional = p * (gamma + safe_x * safe_spend) / (p * safe_x + q - 1.0)
    return np.where(usable, conditional, population_mean)


# ---------------------------------------------------------------------------
# Lifetime value
# ---------------------------------------------------------------------------


def predict_clv(
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit,
    frequency,
    recency,
    T,
    monetary_value,
    *,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
    period: Period = "W",
) -> np.ndarray:
    """Compute the discounted expected spend of each customer over a horizon.

    CLV = sum over months k = 1..H of (E[X(t_k)] - E[X(t_(k-1))]) * S / (1 + d)^k,
    where E[X(t)] is `expected_purchases`, t_k is k mean Gregorian months (30.44 days)
    in the time unit of the fit, S is `expected_spend` and d the monthly discount rate.
    The value is revenue, so multiply by a margin to get profit.

    Parameters
    ----------
    bgnbd, gamma_gamma : BgNbdFit, GammaGammaFit
        Converged fits.
    frequency, recency, T, monetary_value : array-like or pl.Series
        Customer summary in the time unit given by ``period``.
    horizon_months : int
        Number of months to sum.
    monthly_discount_rate : float
        Discount rate per month, for example 0.01.
    period : {"W", "D"}
        Time unit of recency, T and the fit.

    Returns
    -------
    np.ndarray
        CLV per customer.

    Raises
    ------
    ValueError
        If a fit did not converge or an argument is invalid.
    """
    if period not in DAYS_PER_PERIOD:
        raise ValueError(f"invalid period {period!r}: expected 'D' (days) or 'W' (weeks)")
    if int(horizon_months) != horizon_months or horizon_months < 1:
        raise ValueError(f"invalid horizon_months {horizon_months!r}: expected a whole number >= 1")
    if not np.isfinite(monthly_discount_rate) or monthly_discount_rate <= -1.0:
        raise ValueError(f"invalid monthly_discount_rate {monthly_discount_rate!r}: expected a number > -1")
    _require_converged(bgnbd, "the BG/NBD fit")
    _require_converged(gamma_gamma, "the Gamma-Gamma fit")

    spend = expected_spend(gamma_gamma, frequency, monetary_value)
    periods_per_month = DAYS_PER_MONTH / DAYS_PER_PERIOD[period]
    months = np.arange(1, int(horizon_months) + 1)
    # One row per month, one column per customer.
    cumulative = expected_purchases(bgnbd, (months * periods_per_month)[:, None], frequency, recency, T)
    monthly = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + monthly_discount_rate) ** -months.astype(np.float64)
    return (discount @ monthly) * spend


def score_customers(
    summary: pl.DataFrame,
    bgnbd: BgNbdFit,
    gamma_gamma: GammaGammaFit,
    *,
    horizon_months: int = 12,
    monthly_discount_rate: float = 0.01,
    period: Period = "W",
) -> pl.DataFrame:
    """Add predictive columns to a customer summary.

    Adds probability_alive, expected_purchases (over the horizon), expected_spend and
    clv. Columns that need a non-converged fit are null, never NaN: without a BG/NBD
    fit all four are null, and without a Gamma-Gamma fit expected_spend and clv are.

    Parameters
    ----------
    summary : pl.DataFrame
        Output of `summarize_transactions` with the same ``period``.
    bgnbd, gamma_gamma : BgNbdFit, GammaGammaFit
        Fits, converged or not.
    horizon_months, monthly_discount_rate, period
        As in `predict_clv`.

    Returns
    -------
    pl.DataFrame
        ``summary`` with the four Float64 columns appended.
    """
    n_rows = summary.height
    frequency = summary["frequency"]
    recency = summary["recency"]
    T = summary["T"]
    monetary_value = summary["monetary_value"]
    missing = pl.Series([None] * n_rows, dtype=pl.Float64)

    alive = purchases = spend = clv = missing
    if bgnbd.converged:
        horizon = horizon_months * DAYS_PER_MONTH / DAYS_PER_PERIOD[period]
        alive = pl.Series(probability_alive(bgnbd, frequency, recency, T))
        purchases = pl.Series(expected_purchases(bgnbd, horizon, frequency, recency, T))
    if gamma_gamma.converged:
        spend = pl.Series(expected_spend(gamma_gamma, frequency, monetary_value))
    if bgnbd.converged and gamma_gamma.converged:
        values = predict_clv(
            bgnbd,
            gamma_gamma,
            frequency,
            recency,
            T,
            monetary_value,
            horizon_months=horizon_months,
            monthly_discount_rate=monthly_discount_rate,
            period=period,
        )
        clv = pl.Series(values)

    return summary.with_columns(
        alive.alias("probability_alive"),
        purchases.alias("expected_purchases"),
        spend.alias("expected_spend"),
        clv.alias("clv"),
    )
