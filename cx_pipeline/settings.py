"""Runtime settings: paths from the environment and KPI options from the CX_CONFIG file.

Everything is resolved when a run starts (``Settings.from_env``), never at import time,
so one process can run against several landing folders or warehouses.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import zoneinfo
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from cx_pipeline.business_hours import BusinessSchedule

if TYPE_CHECKING:
    from cx_pipeline.impact import GoLive

DEFAULT_LANDING_DIR = "./data/landing"
DEFAULT_WAREHOUSE_PATH = "./data/cx.duckdb"
# DuckDB's own default is 80 % of physical memory. A fixed limit makes large joins and
# aggregates spill to the temporary directory instead of growing with the machine.
DEFAULT_DUCKDB_MEMORY_LIMIT = "2GB"
MEMORY_LIMIT_PATTERN = re.compile(r"^\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$", re.IGNORECASE)


class ConfigError(ValueError):
    """Raised when the CX_CONFIG file or a declarative project file is invalid."""


@dataclass(frozen=True)
class KpiConfig:
    """KPI options read from the optional CX_CONFIG YAML file.

    Every field has a default, so a missing file means the defaults below.
    """

    # Calendar days and months of every KPI table are taken in this IANA time zone.
    reporting_timezone: str = "UTC"
    # Default scales per survey type, used when a row has no scale_min/scale_max.
    scales: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {"csat": (1, 5), "review": (1, 5), "nps": (0, 10), "ces": (1, 7)}
    )
    # CSAT counts the top N answers of a scale as satisfied (top-2-box: 4-5 of 1-5).
    # Scales of three points or fewer use the top answer only (3 of 1-3, 1 of 0-1).
    csat_top_box: int = 2
    # CES "agree" answers: top 3 on a 7-point scale (5-7), top 2 otherwise (4-5 of 1-5).
    ces_top_box_7_point: int = 3
    ces_top_box: int = 2
    # A trial counts as converted when it reaches a paid period within this many days.
    conversion_window_days: int = 30
    # Currency of every amount; subscription and order rows in another currency are quarantined.
    currency: str = "USD"
    # Predictive CLV: months ahead to sum, monthly discount rate, and an optional last day
    # (YYYY-MM-DD) of the fit's calibration period; by default the last observed day.
    clv_horizon_months: int = 12
    clv_monthly_discount_rate: float = 0.01
    clv_calibration_end: str | None = None
    # The quarantine-rate asset check warns above this share of landed rows.
    quarantine_rate_warn: float = 0.05
    # Extra source mapping files (YAML); bundled mappings are always available.
    mapping_files: tuple[str, ...] = ()
    # Support opening hours for business-minute KPIs: keys timezone (default
    # reporting_timezone), hours (weekday -> ["HH:MM-HH:MM", ...]) and holidays
    # (["YYYY-MM-DD", ...]). Empty means Monday to Friday 09:00-17:00.
    business_hours: dict[str, Any] = field(default_factory=dict)
    # A first-contact resolution counts as strict only when the ticket is not reopened
    # within this many days of its first solve.
    fcr_reopen_window_days: int = 7
    # Sentiment labels: a VADER compound score at or above the positive threshold is
    # positive, one at or below the negative threshold is negative, the rest neutral.
    sentiment_positive_threshold: float = 0.05
    sentiment_negative_threshold: float = -0.05
    # New texts are scored in this many worker processes (0: one per available CPU) when
    # a run has at least sentiment_parallel_min_texts of them, and in one process otherwise.
    # Starting the pool costs about 0.1 s, and two workers beat one process by 1.5x only
    # from about 10,000 texts on idle cores (docs/benchmarks.md).
    sentiment_workers: int = 0
    sentiment_parallel_min_texts: int = 10000
    # feedback_themes_monthly keeps the top N terms and the top N phrases per month and
    # driver, among those found in at least themes_min_comments comments.
    themes_top_n: int = 10
    themes_min_comments: int = 2
    # Before/after comparisons in kpi_impact: a list of go-lives, each a mapping with name,
    # date (YYYY-MM-DD), window_days and optionally channel and segment.
    impact_go_lives: list[dict[str, Any]] = field(default_factory=list)
    # A period with fewer units than this gets a status and a reason instead of a value.
    impact_min_sample_size: int = 30
    # Resamples and seed of the bootstrap interval for differences of medians.
    impact_bootstrap_resamples: int = 2000
    impact_bootstrap_seed: int = 20180701

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], origin: str) -> KpiConfig:
        """Build a config from parsed YAML, rejecting unknown keys and bad values."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ConfigError(f"{origin}: unknown setting(s) {unknown}; known: {sorted(known)}")

        values = dict(raw)
        if "scales" in values:
            values["scales"] = _parse_scales(values["scales"], origin)
        if "clv_calibration_end" in values and values["clv_calibration_end"] is not None:
            values["clv_calibration_end"] = str(values["clv_calibration_end"])
        if "mapping_files" in values:
            values["mapping_files"] = tuple(str(p) for p in values["mapping_files"])
        config = cls(**values)
        config.validate(origin)
        return config

    def validate(self, origin: str) -> None:
        """Raise ConfigError naming the setting when a value is out of its domain."""
        try:
            zoneinfo.ZoneInfo(self.reporting_timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(
                f"{origin}: reporting_timezone {self.reporting_timezone!r} is not an IANA time zone"
            ) from exc
        for name in (
            "csat_top_box",
            "ces_top_box_7_point",
            "ces_top_box",
            "conversion_window_days",
            "clv_horizon_months",
            "fcr_reopen_window_days",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{origin}: {name} must be a positive integer, got {value!r}")
        if not 0 <= self.clv_monthly_discount_rate < 1:
            raise ConfigError(
                f"{origin}: clv_monthly_discount_rate must be in [0, 1), got {self.clv_monthly_discount_rate!r}"
            )
        if self.clv_calibration_end is not None:
            try:
                dt.date.fromisoformat(str(self.clv_calibration_end))
            except ValueError as exc:
                raise ConfigError(
                    f"{origin}: clv_calibration_end must be a date as YYYY-MM-DD, got {self.clv_calibration_end!r}"
                ) from exc
        if not 0 <= self.quarantine_rate_warn <= 1:
            raise ConfigError(
                f"{origin}: quarantine_rate_warn must be between 0 and 1, "
                f"got {self.quarantine_rate_warn!r}"
            )
        if not isinstance(self.business_hours, dict):
            raise ConfigError(
                f"{origin}: business_hours must be a mapping with timezone, hours and holidays, "
                f"got {self.business_hours!r}"
            )
        try:
            self.business_schedule()
        except ValueError as exc:
            raise ConfigError(f"{origin}: business_hours: {exc}") from exc
        self._validate_text_and_impact(origin)

    def _validate_text_and_impact(self, origin: str) -> None:
        """Check the sentiment, theme and impact settings."""
        negative, positive = self.sentiment_negative_threshold, self.sentiment_positive_threshold
        numeric = all(isinstance(value, int | float) for value in (negative, positive))
        if not numeric or not -1 <= negative < positive <= 1:
            raise ConfigError(
                f"{origin}: sentiment thresholds must satisfy -1 <= sentiment_negative_threshold < "
                f"sentiment_positive_threshold <= 1, got {negative!r} and {positive!r}"
            )
        for name, minimum in (
            ("sentiment_workers", 0),
            ("sentiment_parallel_min_texts", 1),
            ("themes_top_n", 1),
            ("themes_min_comments", 1),
            ("impact_min_sample_size", 2),
            ("impact_bootstrap_resamples", 100),
            ("impact_bootstrap_seed", 0),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
                raise ConfigError(f"{origin}: {name} must be an integer of at least {minimum}, got {value!r}")
        try:
            self.go_lives()
        except ValueError as exc:
            raise ConfigError(f"{origin}: impact_go_lives: {exc}") from exc

    def go_lives(self) -> tuple[GoLive, ...]:
        """Parse impact_go_lives, raising ValueError that names the entry and the key."""
        # Imported here because cx_pipeline.impact loads SciPy, which most users of the
        # settings never need.
        from cx_pipeline.impact import parse_go_lives

        return parse_go_lives(self.impact_go_lives)

    def business_schedule(self) -> BusinessSchedule:
        """Build the support schedule, whose time zone defaults to the reporting time zone."""
        return BusinessSchedule.from_config({"timezone": self.reporting_timezone} | self.business_hours)

    def sql_parameters(self) -> dict[str, Any]:
        """Return the named parameters that SQL models may reference as ``$name``."""
        return {
            "reporting_timezone": self.reporting_timezone,
            "csat_top_box": self.csat_top_box,
            "ces_top_box_7_point": self.ces_top_box_7_point,
            "ces_top_box": self.ces_top_box,
            "conversion_window_days": self.conversion_window_days,
        }


def _parse_scales(raw: Any, origin: str) -> dict[str, tuple[int, int]]:
    if not isinstance(raw, dict):
        raise ConfigError(f"{origin}: scales must be a mapping of survey type to [min, max]")
    scales = dict(KpiConfig().scales)
    for survey_type, bounds in raw.items():
        if (
            not isinstance(bounds, list | tuple)
            or len(bounds) != 2
            or not all(isinstance(b, int) for b in bounds)
            or bounds[0] >= bounds[1]
        ):
            raise ConfigError(
                f"{origin}: scales.{survey_type} must be [min, max] integers with min < max, "
                f"got {bounds!r}"
            )
        scales[str(survey_type)] = (bounds[0], bounds[1])
    return scales


def load_kpi_config(path: str | os.PathLike[str] | None) -> KpiConfig:
    """Load a KpiConfig from a YAML file, or return the defaults when path is empty."""
    if not path:
        return KpiConfig()
    config_path = Path(path)
    if not config_path.is_file():
        raise ConfigError(f"CX_CONFIG file not found: {config_path}")
    try:
        raw = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{config_path}: invalid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{config_path}: expected a mapping of settings at the top level")
    if isinstance(raw.get("mapping_files"), list):
        # Relative paths are relative to the config file, wherever the command runs.
        raw["mapping_files"] = [str(config_path.parent / str(p)) for p in raw["mapping_files"]]
    return KpiConfig.from_mapping(raw, origin=str(config_path))


@dataclass(frozen=True)
class Settings:
    """Paths and KPI options of one run."""

    landing_dir: Path
    warehouse_path: Path
    publish_path: Path
    config_path: Path | None
    kpi: KpiConfig
    # Value of DuckDB's memory_limit on every warehouse connection, such as "2GB".
    duckdb_memory_limit: str = DEFAULT_DUCKDB_MEMORY_LIMIT

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read CX_LANDING_DIR, CX_WAREHOUSE_PATH, CX_PUBLISH_PATH, CX_CONFIG and
        CX_DUCKDB_MEMORY_LIMIT, applying the defaults; the published file defaults to
        ``<warehouse stem>_published.duckdb`` beside the warehouse.
        """
        env = os.environ if environ is None else environ
        config_value = env.get("CX_CONFIG") or None
        warehouse_path = Path(env.get("CX_WAREHOUSE_PATH") or DEFAULT_WAREHOUSE_PATH)
        publish_value = env.get("CX_PUBLISH_PATH")
        memory_limit = (env.get("CX_DUCKDB_MEMORY_LIMIT") or DEFAULT_DUCKDB_MEMORY_LIMIT).strip()
        if not MEMORY_LIMIT_PATTERN.match(memory_limit):
            raise ConfigError(
                f"invalid CX_DUCKDB_MEMORY_LIMIT {memory_limit!r}: expected a size such as 2GB or 512MB"
            )
        return cls(
            landing_dir=Path(env.get("CX_LANDING_DIR") or DEFAULT_LANDING_DIR),
            warehouse_path=warehouse_path,
            publish_path=Path(publish_value)
            if publish_value
            else warehouse_path.with_name(f"{warehouse_path.stem}_published.duckdb"),
            config_path=Path(config_value) if config_value else None,
            kpi=load_kpi_config(config_value),
            duckdb_memory_limit=memory_limit,
        )
