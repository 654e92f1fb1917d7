"""Confidence intervals of before/after differences against hand and SciPy values."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from cx_pipeline.impact import (
    Z_CRITICAL,
    GoLive,
    bootstrap_median_difference,
    nps_difference,
    parse_go_lives,
    two_proportion_wald,
    welch,
    welch_from_moments,
)
from cx_pipeline.settings import ConfigError, load_kpi_config


def test_z_critical_is_normal_quantile() -> None:
    assert Z_CRITICAL == pytest.approx(1.959964, abs=1e-6)


def test_two_proportion_wald_by_hand() -> None:
    result = two_proportion_wald(40, 100, 55, 100)
    # SE = sqrt(0.4 * 0.6 / 100 + 0.55 * 0.45 / 100) = sqrt(0.004875) = 0.0698212
    standard_error = math.sqrt(0.004875)
    assert standard_error == pytest.approx(0.0698212, abs=1e-7)
    assert result.value_before == pytest.approx(0.40)
    assert result.value_after == pytest.approx(0.55)
    assert result.difference == pytest.approx(0.15)
    assert result.ci_low == pytest.approx(0.15 - 1.959964 * standard_error, abs=1e-6)
    assert result.ci_high == pytest.approx(0.15 + 1.959964 * standard_error, abs=1e-6)
    assert result.ci_low == pytest.approx(0.013152, abs=1e-6)
    assert result.is_significant


def test_two_proportion_wald_unequal_sizes() -> None:
    result = two_proportion_wald(3, 10, 30, 60)
    standard_error = math.sqrt(0.3 * 0.7 / 10 + 0.5 * 0.5 / 60)
    assert result.difference == pytest.approx(0.2)
    assert result.ci_high - result.difference == pytest.approx(Z_CRITICAL * standard_error)
    assert not result.is_significant


def test_two_proportion_no_change_not_significant() -> None:
    result = two_proportion_wald(50, 100, 50, 100)
    assert result.difference == 0
    assert result.ci_low < 0 < result.ci_high
    assert not result.is_significant


def test_two_proportion_scaled_to_percent() -> None:
    result = two_proportion_wald(40, 100, 55, 100).scaled(100)
    assert result.value_before == pytest.approx(40.0)
    assert result.difference == pytest.approx(15.0)
    assert result.ci_low == pytest.approx(1.3152, abs=1e-4)


def test_two_proportion_rejects_empty_period() -> None:
    with pytest.raises(ValueError, match="n_before must be at least 1"):
        two_proportion_wald(0, 0, 1, 2)


def test_welch_matches_hand_and_scipy() -> None:
    before = [1.0, 2.0, 3.0, 4.0, 5.0]
    after = [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    result = welch(before, after)

    # Sample variances 2.5 and 14; shares v/n are 0.5 and 14/6.
    share_before, share_after = 2.5 / 5, 14 / 6
    df = (share_before + share_after) ** 2 / (share_before**2 / 4 + share_after**2 / 5)
    assert df == pytest.approx(6.9722, abs=1e-4)
    assert result.degrees_of_freedom == pytest.approx(df)
    margin = stats.t.ppf(0.975, df) * math.sqrt(share_before + share_after)
    assert result.difference == pytest.approx(4.0)
    assert result.ci_low == pytest.approx(4.0 - margin)
    assert result.ci_high == pytest.approx(4.0 + margin)

    reference = stats.ttest_ind(after, before, equal_var=False)
    interval = reference.confidence_interval(0.95)
    assert result.degrees_of_freedom == pytest.approx(reference.df)
    assert result.ci_low == pytest.approx(interval.low)
    assert result.ci_high == pytest.approx(interval.high)
    assert result.is_significant == (reference.pvalue < 0.05)


def test_welch_no_change_not_significant() -> None:
    sample = [3.0, 4.0, 5.0, 6.0, 7.0, 4.0, 5.0]
    result = welch(sample, list(reversed(sample)))
    assert result.difference == pytest.approx(0.0)
    assert result.ci_low < 0 < result.ci_high
    assert not result.is_significant


def test_welch_from_moments_equals_samples() -> None:
    before = np.array([0.2, -0.4, 0.9, 0.1])
    after = np.array([0.5, 0.7, 0.3, 0.8, 0.6])
    from_samples = welch(before, after)
    from_moments = welch_from_moments(
        before.mean(), before.var(ddof=1), 4, after.mean(), after.var(ddof=1), 5
    )
    assert from_moments == from_samples


def test_welch_constant_samples_collapse() -> None:
    result = welch([2.0, 2.0, 2.0], [3.0, 3.0])
    assert (result.ci_low, result.ci_high) == (1.0, 1.0)
    assert result.degrees_of_freedom is None


def test_welch_needs_two_values_per_period() -> None:
    with pytest.raises(ValueError, match="at least 2 values per period"):
        welch([1.0], [1.0, 2.0])


def test_nps_difference_by_hand() -> None:
    result = nps_difference(50, 20, 100, 60, 10, 100)
    # Before: p 0.5, d 0.2, var (0.7 - 0.09) / 100 = 0.0061.
    # After: p 0.6, d 0.1, var (0.7 - 0.25) / 100 = 0.0045.
    standard_error = math.sqrt(0.0061 + 0.0045)
    assert result.value_before == pytest.approx(30.0)
    assert result.value_after == pytest.approx(50.0)
    assert result.difference == pytest.approx(20.0)
    assert result.ci_low == pytest.approx(100 * (0.2 - 1.959964 * standard_error), abs=1e-4)
    assert result.ci_high == pytest.approx(100 * (0.2 + 1.959964 * standard_error), abs=1e-4)
    assert result.ci_low == pytest.approx(-0.179, abs=1e-3)
    assert not result.is_significant


def test_nps_difference_significant_with_larger_samples() -> None:
    result = nps_difference(200, 80, 400, 240, 40, 400)
    standard_error = math.sqrt((0.7 - 0.09) / 400 + (0.7 - 0.25) / 400)
    assert result.difference == pytest.approx(20.0)
    assert result.ci_low == pytest.approx(100 * (0.2 - Z_CRITICAL * standard_error))
    assert result.is_significant


def test_nps_no_change_not_significant() -> None:
    result = nps_difference(45, 25, 100, 45, 25, 100)
    assert result.difference == 0
    assert not result.is_significant


def test_bootstrap_same_seed_same_interval() -> None:
    generator = np.random.default_rng(1)
    before = generator.exponential(60, size=80)
    after = generator.exponential(45, size=90)
    first = bootstrap_median_difference(before, after, resamples=1000, seed=42)
    second = bootstrap_median_difference(before, after, resamples=1000, seed=42)
    other_seed = bootstrap_median_difference(before, after, resamples=1000, seed=43)
    assert first == second
    assert (other_seed.ci_low, other_seed.ci_high) != (first.ci_low, first.ci_high)
    assert first.difference == pytest.approx(np.median(after) - np.median(before))
    assert first.ci_low <= first.difference <= first.ci_high


def test_bootstrap_by_hand_on_constant_samples() -> None:
    result = bootstrap_median_difference([5.0] * 10, [8.0] * 12, resamples=200, seed=1)
    assert (result.value_before, result.value_after) == (5.0, 8.0)
    assert (result.ci_low, result.ci_high) == (3.0, 3.0)
    assert result.is_significant


def test_bootstrap_no_change_not_significant() -> None:
    sample = np.random.default_rng(3).normal(100, 20, size=60)
    result = bootstrap_median_difference(sample, sample.copy(), resamples=2000, seed=7)
    assert result.difference == 0
    assert result.ci_low < 0 < result.ci_high
    assert not result.is_significant


def test_bootstrap_detects_clear_shift() -> None:
    sample = np.random.default_rng(5).normal(100, 10, size=60)
    result = bootstrap_median_difference(sample, sample - 30, resamples=1000, seed=7)
    assert result.difference == pytest.approx(-30.0)
    assert result.ci_high < 0
    assert result.is_significant


def test_parse_go_lives_windows() -> None:
    (go_live,) = parse_go_lives(
        [{"name": "new_ivr", "date": dt.date(2018, 7, 1), "window_days": 30, "channel": "phone"}]
    )
    assert go_live == GoLive("new_ivr", dt.date(2018, 7, 1), 30, channel="phone")
    assert go_live.before_first_day == dt.date(2018, 6, 1)
    assert go_live.before_last_day == dt.date(2018, 6, 30)
    assert go_live.after_last_day == dt.date(2018, 7, 30)


@pytest.mark.parametrize(
    ("entries", "expected"),
    [
        ([{"name": "a", "date": "2018-07-01"}], "entry 1: missing key(s) ['window_days']"),
        (
            [{"name": "a", "date": "July 1", "window_days": 30}],
            "entry 1 (a): date must be a date as YYYY-MM-DD",
        ),
        (
            [{"name": "a", "date": "2018-07-01", "window_days": 0}],
            "window_days must be a positive integer",
        ),
        (
            [{"name": "a", "date": "2018-07-01", "window_days": 7, "team": "x"}],
            "unknown key(s) ['team']",
        ),
        ([{"name": "", "date": "2018-07-01", "window_days": 7}], "name must be a non-empty string"),
        (
            [
                {"name": "a", "date": "2018-07-01", "window_days": 7},
                {"name": "a", "date": "2018-08-01", "window_days": 7},
            ],
            "go-live name(s) ['a'] appear more than once",
        ),
        ({"name": "a"}, "must be a list of go-lives"),
    ],
    ids=[
        "missing-window",
        "bad-date",
        "zero-window",
        "unknown-key",
        "empty-name",
        "duplicate-name",
        "not-a-list",
    ],
)
def test_parse_go_lives_errors(entries: object, expected: str) -> None:
    with pytest.raises(ValueError) as error:
        parse_go_lives(entries)
    assert expected in str(error.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sentiment_positive_threshold: -0.1\n", "sentiment thresholds must satisfy"),
        ("sentiment_negative_threshold: -1.5\n", "sentiment thresholds must satisfy"),
        ("themes_top_n: 0\n", "themes_top_n must be an integer of at least 1"),
        ("impact_min_sample_size: 1\n", "impact_min_sample_size must be an integer of at least 2"),
        ("sentiment_workers: -1\n", "sentiment_workers must be an integer of at least 0"),
        (
            "impact_go_lives:\n  - {name: a, date: 2018-07-01}\n",
            "impact_go_lives: entry 1: missing key(s)",
        ),
    ],
    ids=[
        "positive-below-negative",
        "negative-below-minus-one",
        "top-n",
        "min-sample",
        "workers",
        "go-live",
    ],
)
def test_config_rejects_bad_values(tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "cx.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as error:
        load_kpi_config(path)
    assert expected in str(error.value)
    assert str(path) in str(error.value)


def test_config_reads_go_lives(tmp_path: Path) -> None:
    path = tmp_path / "cx.yaml"
    path.write_text(
        "impact_go_lives:\n  - {name: launch, date: 2018-07-01, window_days: 14, segment: pro}\n",
        encoding="utf-8",
    )
    assert load_kpi_config(path).go_lives() == (
        GoLive("launch", dt.date(2018, 7, 1), 14, segment="pro"),
    )
