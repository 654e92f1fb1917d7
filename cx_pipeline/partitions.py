"""Daily partitions by arrival date, and the checks a partition key passes before use."""

from __future__ import annotations

import datetime as dt
import os
import re

import dagster as dg

DEFAULT_PARTITION_START = "2015-01-01"
_DATE_KEY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def partition_start() -> str:
    """Return the first arrival day (CX_PARTITION_START, default 2015-01-01)."""
    value = os.environ.get("CX_PARTITION_START") or DEFAULT_PARTITION_START
    parse_partition_key(value)
    return value


def daily_partitions() -> dg.DailyPartitionsDefinition:
    """Build the daily partitions shared by every partitioned asset."""
    return dg.DailyPartitionsDefinition(start_date=partition_start())


def parse_partition_key(key: str) -> dt.date:
    """Parse a YYYY-MM-DD partition key, rejecting anything else (such as paths or SQL)."""
    if not _DATE_KEY.match(key):
        raise ValueError(f"invalid partition key {key!r}: expected a date as YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"invalid partition key {key!r}: {exc}") from exc


def days_between(first: dt.date, last: dt.date) -> list[dt.date]:
    """Return every day from ``first`` to ``last``, both included."""
    return [first + dt.timedelta(days=offset) for offset in range((last - first).days + 1)]
