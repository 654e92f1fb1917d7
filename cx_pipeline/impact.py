"""Before/after comparisons: go-live definitions and 95 % confidence intervals of differences.

Every interval is for ``after - before``. A difference is significant when its interval
excludes 0. Inputs are counts or samples of the two periods, so each function can be
checked by hand on small numbers.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

CONFIDENCE_LEVEL = 0.95
# Two-sided normal quantile of the confidence level, 1.959964 for 95 %.
Z_CRITICAL = float(stats.norm.ppf(0.5 + CONFIDENCE_LEVEL / 2))

# Each bootstrap batch draws at most this many indices. With the values they select, one
# batch needs at most about 64 MB whatever the sample size.
_BOOTSTRAP_BATCH_DRAWS = 4_000_000


@dataclass(frozen=True)
class Comparison:
    """Values of the two periods and the confidence interval of their difference."""

    value_before: float
    value_after: float
    difference: float
    ci_low: float
    ci_high: float
    degrees_of_freedom: float | None = None

    @property
    def is_significant(self) -> bool:
        """Whether the interval excludes 0."""
        return self.ci_low > 0 or self.ci_high < 0

    def scaled(self, factor: float) -> Comparison:
        """Return the comparison with every value multiplied by ``factor`` (e.g. 100 for %)."""
        return Comparison(
            self.value_before * factor,
            self.value_after * factor,
            self.difference * factor,
            self.ci_low * factor,
            self.ci_high * factor,
            self.degrees_of_freedom,
        )


def _require_positive(**sizes: int) -> None:
    for name, size in sizes.items():
        if size < 1:
            raise ValueError(f"{name} must be at least 1, got {size}")


def two_proportion_wald(
    successes_before: int, n_before: int, successes_after: int, n_after: int
) -> Comparison:
    """Compare two proportions with the unpooled Wald interval.

    SE = sqrt(p1 (1 - p1) / n1 + p2 (1 - p2) / n2). When both shares are 0 or 1 the SE is
    0 and the interval collapses to the difference itself.
    """
    _require_positive(n_before=n_before, n_after=n_after)
    p_before = successes_before / n_before
    p_after = successes_after / n_after
    standard_error = math.sqrt(
        p_before * (1 - p_before) / n_before + p_after * (1 - p_after) / n_after
    )
    difference = p_after - p_before
    margin = Z_CRITICAL * standard_error
    return Comparison(p_before, p_after, difference, difference - margin, difference + margin)


def welch_from_moments(
    mean_before: float,
    variance_before: float,
    n_before: int,
    mean_after: float,
    variance_after: float,
    n_after: int,
) -> Comparison:
    """Compare two means with Welch's t interval, from sample variances (divisor n - 1).

    The degrees of freedom follow Welch-Satterthwaite:
    (v1/n1 + v2/n2)^2 / ((v1/n1)^2 / (n1 - 1) + (v2/n2)^2 / (n2 - 1)).
    When both variances are 0 the interval collapses to the difference and has no df.
    """
    if n_before < 2 or n_after < 2:
        raise ValueError(
            f"Welch's interval needs at least 2 values per period, got {n_before} and {n_after}"
        )
    share_before = variance_before / n_before
    share_after = variance_after / n_after
    difference = mean_after - mean_before
    standard_error = math.sqrt(share_before + share_after)
    if standard_error == 0:
        return Comparison(mean_before, mean_after, difference, difference, difference, None)
    degrees_of_freedom = (share_before + share_after) ** 2 / (
        share_before**2 / (n_before - 1) + share_after**2 / (n_after - 1)
    )
    margin = float(stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, degrees_of_freedom)) * standard_error
    return Comparison(
        mean_before,
        mean_after,
        difference,
        difference - margin,
        difference + margin,
        degrees_of_freedom,
    )


def welch(before: Sequence[float], after: Sequence[float]) -> Comparison:
    """Compare the means of two samples with Welch's t interval."""
    values_before = np.asarray(before, dtype=float)
    values_after = np.asarray(after, dtype=float)
    if values_before.size < 2 or values_after.size < 2:
        raise ValueError(
            "Welch's interval needs at least 2 values per period, "
            f"got {values_before.size} and {values_after.size}"
        )
    return welch_from_moments(
        float(values_before.mean()),
        float(values_before.var(ddof=1)),
        int(values_before.size),
        float(values_after.mean()),
        float(values_after.var(ddof=1)),
        int(values_after.size),
    )


def nps_difference(
    promoters_before: int,
    detractors_before: int,
    n_before: int,
    promoters_after: int,
    detractors_after: int,
    n_after: int,
) -> Comparison:
    """Compare two Net Promoter Scores, in points from -100 to 100.

    Per period, with promoter share p and detractor share d, NPS = 100 (p - d) and
    SE = sqrt((p + d - (p - d)^2) / n). The SE of the difference is
    sqrt(SE_before^2 + SE_after^2), and the interval is the difference +/- z SE.
    """
    _require_positive(n_before=n_before, n_after=n_after)

    def share_and_variance(promoters: int, detractors: int, n: int) -> tuple[float, float]:
        p, d = promoters / n, detractors / n
        return p - d, max(p + d - (p - d) ** 2, 0.0) / n

    nps_before, variance_before = share_and_variance(promoters_before, detractors_before, n_before)
    nps_after, variance_after = share_and_variance(promoters_after, detractors_after, n_after)
    difference = nps_after - nps_before
    margin = Z_CRITICAL * math.sqrt(variance_before + variance_after)
    return Comparison(
        nps_before, nps_after, difference, difference - margin, difference + margin
    ).scaled(100)


def bootstrap_median_difference(
    before: Sequence[float], after: Sequence[float], resamples: int, seed: int
) -> Comparison:
    """Compare two medians with a percentile bootstrap of the difference.

    Each resample draws both periods with replacement at their own sizes. The interval
    is the 2.5th and 97.5th percentile of the resampled differences, and the point
    estimate is the difference of the sample medians. The same inputs, resamples and seed
    give the same interval.
    """
    values_before = np.asarray(before, dtype=float)
    values_after = np.asarray(after, dtype=float)
    _require_positive(n_before=values_before.size, n_after=values_after.size, resamples=resamples)
    generator = np.random.default_rng(seed)
    # The batch size depends only on the sample sizes, so the draws do not depend on the machine.
    batch = max(1, _BOOTSTRAP_BATCH_DRAWS // (values_before.size + values_after.size))
    differences = np.empty(resamples)
    for start in range(0, resamples, batch):
        count = min(batch, resamples - start)
        draws_before = generator.integers(0, values_before.size, size=(count, values_before.size))
        draws_after = generator.integers(0, values_after.size, size=(count, values_after.size))
        differences[start : start + count] = np.median(
            values_after[draws_after], axis=1
        ) - np.median(values_before[draws_before], axis=1)
    tail = (1 - CONFIDENCE_LEVEL) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    median_before = float(np.median(values_before))
    median_after = float(np.median(values_after))
    return Comparison(
        median_before, median_after, median_after - median_before, float(low), float(high)
    )


# --- Go-lives -----------------------------------------------------------------------------

_GO_LIVE_KEYS = {"name", "date", "window_days", "channel", "segment"}


@dataclass(frozen=True)
class GoLive:
    """A release or process change whose KPIs are compared before and after ``date``.

    The before period is [date - window_days, date) and the after period is
    [date, date + window_days), in calendar days of the reporting time zone. ``channel``
    and ``segment`` restrict every KPI that has such a column; None means all.
    """

    name: str
    date: dt.date
    window_days: int
    channel: str | None = None
    segment: str | None = None

    @property
    def before_first_day(self) -> dt.date:
        """First day of the before period."""
        return self.date - dt.timedelta(days=self.window_days)

    @property
    def before_last_day(self) -> dt.date:
        """Last day of the before period, the day before the go-live."""
        return self.date - dt.timedelta(days=1)

    @property
    def after_last_day(self) -> dt.date:
        """Last day of the after period (inclusive)."""
        return self.date + dt.timedelta(days=self.window_days - 1)


def parse_go_live(raw: Any, position: int) -> GoLive:
    """Build a GoLive from one config entry, raising ValueError that names the entry and key."""
    where = f"entry {position}"
    if not isinstance(raw, dict):
        raise ValueError(f"{where} must be a mapping with name, date and window_days, got {raw!r}")
    unknown = sorted(set(raw) - _GO_LIVE_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(_GO_LIVE_KEYS)}")
    missing = sorted({"name", "date", "window_days"} - set(raw))
    if missing:
        raise ValueError(f"{where}: missing key(s) {missing}")

    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: name must be a non-empty string, got {name!r}")
    date = raw["date"]
    if isinstance(date, dt.datetime) or not isinstance(date, dt.date | str):
        raise ValueError(f"{where} ({name}): date must be a date as YYYY-MM-DD, got {date!r}")
    if isinstance(date, str):
        try:
            date = dt.date.fromisoformat(date)
        except ValueError as exc:
            raise ValueError(
                f"{where} ({name}): date must be a date as YYYY-MM-DD, got {date!r}"
            ) from exc
    window_days = raw["window_days"]
    if isinstance(window_days, bool) or not isinstance(window_days, int) or window_days < 1:
        raise ValueError(
            f"{where} ({name}): window_days must be a positive integer, got {window_days!r}"
        )
    filters = {}
    for key in ("channel", "segment"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise ValueError(
                f"{where} ({name}): {key} must be a non-empty string when given, got {value!r}"
            )
        filters[key] = value
    return GoLive(name=name.strip(), date=date, window_days=window_days, **filters)


def parse_go_lives(raw: Any) -> tuple[GoLive, ...]:
    """Build the go-lives of the config, rejecting duplicate names."""
    if not isinstance(raw, list | tuple):
        raise ValueError(f"must be a list of go-lives, got {raw!r}")
    go_lives = tuple(parse_go_live(entry, position) for position, entry in enumerate(raw, 1))
    names = [go_live.name for go_live in go_lives]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"go-live name(s) {duplicates} appear more than once")
    return go_lives
