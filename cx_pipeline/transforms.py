"""Named transforms that a source mapping can apply to an export before its columns map
onto the contract, for reshaping that renames and constants cannot express.

A transform takes the export as text columns (exactly as read) and the options written
under ``transform:`` in the mapping, and returns text columns again; parsing and
validation happen later as for every other file. Register a transform here once and
reference it by name from any mapping.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl

from cx_pipeline.support import thread_twitter_conversations


class TransformError(ValueError):
    """Raised when a transform's options or input columns are wrong."""


TransformFunction = Callable[[pl.DataFrame, dict[str, Any], "pl.DataFrame | None"], pl.DataFrame]


@dataclass(frozen=True)
class Transform:
    """A registered transform: its function and the options it requires and accepts.

    A transform with ``uses_lookup`` also receives a second file of the same day folder,
    the one matching the mapping's ``lookup_file``; other transforms receive None.
    """

    function: TransformFunction
    required: frozenset[str]
    optional: frozenset[str] = frozenset()
    uses_lookup: bool = False


def _require_columns(frame: pl.DataFrame, columns: list[str], transform: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise TransformError(f"transform {transform}: export has no column(s) {missing}")


def line_amount(frame: pl.DataFrame, options: dict[str, Any], lookup: pl.DataFrame | None) -> pl.DataFrame:
    """Add ``output`` = ``quantity`` x ``unit_price`` for exports of invoice lines."""
    quantity, unit_price = options["quantity"], options["unit_price"]
    output = options.get("output", "amount")
    _require_columns(frame, [quantity, unit_price], "line_amount")
    product = pl.col(quantity).str.strip_chars().cast(pl.Float64, strict=False) * pl.col(unit_price).str.strip_chars().cast(
        pl.Float64, strict=False
    )
    # A value that is not a number stays text, so validation quarantines it with the value.
    return frame.with_columns(
        pl.when(product.is_not_null()).then(product.round(6).cast(pl.String)).otherwise(pl.col(unit_price)).alias(output)
    )


def snapshot_tenure(frame: pl.DataFrame, options: dict[str, Any], lookup: pl.DataFrame | None) -> pl.DataFrame:
    """Turn a churn snapshot (tenure in months and a churn flag) into start and end dates.

    ``started_at`` = ``snapshot_date`` minus tenure months; churned rows get ``ended_at`` =
    ``snapshot_date``, so they churn in the snapshot month; the others stay active.
    """
    tenure, churn = options["tenure_column"], options["churn_column"]
    churn_value = str(options.get("churn_value", "Yes"))
    _require_columns(frame, [tenure, churn], "snapshot_tenure")
    snapshot = pl.lit(str(options["snapshot_date"])).str.to_date("%Y-%m-%d")
    months = pl.col(tenure).str.strip_chars().cast(pl.Int64, strict=False)
    started = snapshot.dt.offset_by(pl.format("-{}mo", months))
    return frame.with_columns(
        pl.when(months.is_not_null()).then(started.cast(pl.String)).otherwise(pl.col(tenure)).alias("started_at"),
        pl.when(pl.col(churn).str.strip_chars() == churn_value).then(snapshot.cast(pl.String)).alias("ended_at"),
    )


def lead_conversion(frame: pl.DataFrame, options: dict[str, Any], lookup: pl.DataFrame | None) -> pl.DataFrame:
    """Turn marketing-qualified leads and their closed deals into trial-style subscriptions.

    Each lead is a trial from its first contact. A lead with a deal converts at the deal's
    won date (a won date before the first contact is taken as the first contact day); a lead
    without one is a trial that ended unpaid on its first contact day.
    """
    key, contact = options["key_column"], options["contact_column"]
    won = options["won_column"]
    _require_columns(frame, [key, contact], "lead_conversion")
    if lookup is None:
        raise TransformError("transform lead_conversion: no deals file matched lookup_file in the same folder")
    _require_columns(lookup, [key, won], "lead_conversion (deals file)")
    deals = lookup.select(pl.col(key), pl.col(won).alias("_won_at"))
    joined = frame.join(deals, on=key, how="left", maintain_order="left")
    contact_day = pl.col(contact).str.slice(0, 10)
    won_day = pl.col("_won_at").str.slice(0, 10)
    converted_day = pl.max_horizontal(won_day, contact_day)
    return joined.with_columns(
        pl.when(pl.col("_won_at").is_not_null()).then(converted_day).otherwise(contact_day).alias("trial_ends_at"),
        pl.when(pl.col("_won_at").is_null()).then(contact_day).alias("ended_at"),
    ).drop("_won_at")


TRANSFORMS: dict[str, Transform] = {
    "line_amount": Transform(line_amount, frozenset({"quantity", "unit_price"}), frozenset({"output"})),
    "snapshot_tenure": Transform(
        snapshot_tenure,
        frozenset({"tenure_column", "churn_column", "snapshot_date"}),
        frozenset({"churn_value"}),
    ),
    "lead_conversion": Transform(
        lead_conversion, frozenset({"key_column", "contact_column", "won_column"}), uses_lookup=True
    ),
    "twitter_conversations": Transform(
        thread_twitter_conversations, frozenset({"output"}), frozenset({"timestamp_format"})
    ),
}


def check_transform_options(name: str, options: dict[str, Any], has_lookup: bool) -> str | None:
    """Return what is wrong with a mapping's transform settings, or None when they are valid."""
    if name not in TRANSFORMS:
        return f"unknown transform {name!r}; registered: {sorted(TRANSFORMS)}"
    transform = TRANSFORMS[name]
    missing = sorted(transform.required - set(options))
    unknown = sorted(set(options) - transform.required - transform.optional)
    if missing or unknown:
        return f"transform {name}: missing option(s) {missing}, unknown option(s) {unknown}"
    if transform.uses_lookup != has_lookup:
        return f"transform {name} {'needs' if transform.uses_lookup else 'does not use'} lookup_file"
    return None


def apply_transform(
    name: str, options: dict[str, Any], frame: pl.DataFrame, lookup: pl.DataFrame | None = None
) -> pl.DataFrame:
    """Apply a registered transform to an export's text columns."""
    return TRANSFORMS[name].function(frame, options, lookup)
