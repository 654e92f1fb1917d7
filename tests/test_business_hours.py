"""Tests for business-minute computation over opening hours, holidays and DST changes.

Calendar facts used below (2024): March 1 is a Friday. America/New_York springs
forward on Sunday March 10 (02:00 EST becomes 03:00 EDT) and falls back on Sunday
November 3 (02:00 EDT becomes 01:00 EST). December 25 is a Wednesday.
"""

import dataclasses
import random
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
import pytest
import yaml

from cx_pipeline.business_hours import (
    DEFAULT_SCHEDULE,
    WEEKDAY_NAMES,
    BusinessSchedule,
    business_minutes,
    business_minutes_many,
)

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
BERLIN = ZoneInfo("Europe/Berlin")

WEEKDAYS_9_TO_5 = {day: ["09:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")}

NY_9_TO_5 = BusinessSchedule.from_config({"timezone": "America/New_York", "hours": WEEKDAYS_9_TO_5})
NY_9_TO_5_CHRISTMAS = BusinessSchedule.from_config(
    {"timezone": "America/New_York", "hours": WEEKDAYS_9_TO_5, "holidays": ["2024-12-25"]}
)
NY_9_TO_5_MLK_PRESIDENTS = BusinessSchedule.from_config(
    {
        "timezone": "America/New_York",
        "hours": WEEKDAYS_9_TO_5,
        "holidays": ["2024-01-15", "2024-02-19"],
    }
)
# Every day 00:00-04:00 local, which contains the skipped and the repeated hour.
NY_NIGHTS = BusinessSchedule.from_config(
    {"timezone": "America/New_York", "hours": {day: ["00:00-04:00"] for day in WEEKDAY_NAMES}}
)
NY_01_TO_03 = BusinessSchedule.from_config(
    {"timezone": "America/New_York", "hours": {"sun": ["01:00-03:00"]}}
)
NY_01_TO_02 = BusinessSchedule.from_config(
    {"timezone": "America/New_York", "hours": {"sun": ["01:00-02:00"]}}
)
NY_0230_TO_04 = BusinessSchedule.from_config(
    {"timezone": "America/New_York", "hours": {"sun": ["02:30-04:00"]}}
)
BERLIN_LUNCH_AND_SATURDAY = BusinessSchedule.from_config(
    {
        "timezone": "Europe/Berlin",
        "hours": {
            **{day: ["09:00-12:00", "13:00-17:00"] for day in ("mon", "tue", "wed", "thu", "fri")},
            "sat": ["10:00-14:00"],
        },
    }
)
UTC_LATE_SHIFT = BusinessSchedule.from_config(
    {"hours": {"mon": ["20:00-24:00"], "tue": ["00:00-02:00"]}}
)


def ny(*args: int, fold: int = 0) -> datetime:
    return datetime(*args, tzinfo=NEW_YORK, fold=fold)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# (schedule, start, end, expected minutes). Each id states the hand computation.
EXACT_CASES = [
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 10),
        ny(2024, 3, 5, 12, 30),
        150.0,
        id="same day Tue 10:00-12:30 = 150",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 16),
        ny(2024, 3, 6, 10),
        120.0,
        id="overnight Tue 16:00 to Wed 10:00 = 60+60",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 1, 15),
        ny(2024, 3, 4, 11),
        240.0,
        id="weekend Fri 15:00 to Mon 11:00 = 120+120",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 8, 9),
        ny(2024, 3, 11, 17),
        960.0,
        id="spring forward 9-5 Fri 09:00 to Mon 17:00 = 480+480",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 7, 12),
        ny(2024, 3, 12, 12),
        1440.0,
        id="spring forward 9-5 Thu 12:00 to Tue 12:00 = 300+480+480+180",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 11, 1, 13),
        ny(2024, 11, 4, 11),
        360.0,
        id="fall back 9-5 Fri 13:00 to Mon 11:00 = 240+120",
    ),
    pytest.param(
        NY_NIGHTS,
        ny(2024, 3, 10, 0),
        ny(2024, 3, 10, 12),
        180.0,
        id="spring forward 00-04 on Sun = 3 real hours",
    ),
    pytest.param(
        NY_NIGHTS,
        ny(2024, 3, 9, 12),
        ny(2024, 3, 11, 12),
        420.0,
        id="spring forward 00-04 Sat noon to Mon noon = 180+240",
    ),
    pytest.param(
        NY_NIGHTS,
        ny(2024, 11, 3, 0),
        ny(2024, 11, 3, 12),
        300.0,
        id="fall back 00-04 on Sun = 5 real hours",
    ),
    pytest.param(
        NY_NIGHTS,
        ny(2024, 11, 2, 12),
        ny(2024, 11, 4, 12),
        540.0,
        id="fall back 00-04 Sat noon to Mon noon = 300+240",
    ),
    # 01:30 EDT is 05:30 UTC and 04:00 EST is 09:00 UTC.
    pytest.param(
        NY_NIGHTS,
        ny(2024, 11, 3, 1, 30, fold=0),
        ny(2024, 11, 3, 12),
        210.0,
        id="fall back start in first 01:30 EDT = 210",
    ),
    # 01:30 EST is 06:30 UTC, so only 150 minutes remain until 04:00 EST.
    pytest.param(
        NY_NIGHTS,
        ny(2024, 11, 3, 1, 30, fold=1),
        ny(2024, 11, 3, 12),
        150.0,
        id="fall back start in second 01:30 EST = 150",
    ),
    # 01:00 EST is 06:00 UTC and 03:00 EDT is 07:00 UTC.
    pytest.param(
        NY_01_TO_03,
        ny(2024, 3, 10, 0),
        ny(2024, 3, 10, 12),
        60.0,
        id="spring forward 01-03 has 1 real hour",
    ),
    # Wall clocks show 01:00-02:00 from 05:00 to 06:00 UTC and again from 06:00 to 07:00.
    pytest.param(
        NY_01_TO_02,
        ny(2024, 11, 3, 0),
        ny(2024, 11, 3, 12),
        120.0,
        id="fall back 01-02 counts repeated hour twice",
    ),
    # 02:30 does not exist that day. Clocks show 03:00-04:00 from 07:00 to 08:00 UTC.
    pytest.param(
        NY_0230_TO_04,
        ny(2024, 3, 10, 0),
        ny(2024, 3, 10, 12),
        60.0,
        id="spring forward 02:30-04 opens at 03:00 EDT",
    ),
    pytest.param(
        NY_0230_TO_04,
        ny(2024, 3, 17, 0),
        ny(2024, 3, 17, 12),
        90.0,
        id="ordinary Sun 02:30-04 = 90",
    ),
    pytest.param(
        NY_9_TO_5_CHRISTMAS,
        ny(2024, 12, 24, 16),
        ny(2024, 12, 26, 10),
        120.0,
        id="holiday Tue 16:00 to Thu 10:00 skips Wed = 60+60",
    ),
    pytest.param(
        NY_9_TO_5_CHRISTMAS,
        ny(2024, 12, 25, 9),
        ny(2024, 12, 25, 17),
        0.0,
        id="holiday whole day = 0",
    ),
    # Mon Jan 8 plus 60 days is Fri Mar 8. That is 8 full weeks plus Mon-Thu, so 44 days of 480.
    pytest.param(
        NY_9_TO_5,
        ny(2024, 1, 8, 9),
        ny(2024, 3, 8, 9),
        21120.0,
        id="60 days Jan 8 to Mar 8 = 44 x 480",
    ),
    pytest.param(
        NY_9_TO_5_MLK_PRESIDENTS,
        ny(2024, 1, 8, 9),
        ny(2024, 3, 8, 9),
        20160.0,
        id="60 days with 2 holidays = 42 x 480",
    ),
    # Mon Feb 26 + 60 days = Fri Apr 26, spanning the spring-forward change.
    pytest.param(
        NY_9_TO_5,
        ny(2024, 2, 26, 9),
        ny(2024, 4, 26, 9),
        21120.0,
        id="60 days across DST Feb 26 to Apr 26 = 44 x 480",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 4, 7),
        ny(2024, 3, 4, 20),
        480.0,
        id="outside hours Mon 07:00-20:00 = 480",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 18),
        ny(2024, 3, 6, 8),
        0.0,
        id="outside hours Tue 18:00 to Wed 08:00 = 0",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 2, 10),
        ny(2024, 3, 3, 20),
        0.0,
        id="outside hours Sat to Sun = 0",
    ),
    # 14:00-22:00 UTC is 09:00-17:00 EST.
    pytest.param(
        NY_9_TO_5,
        utc(2024, 3, 5, 14),
        utc(2024, 3, 5, 22),
        480.0,
        id="UTC input NY schedule winter = 480",
    ),
    # 12:00 UTC is 08:00 EDT and 15:30 UTC is 11:30 EDT.
    pytest.param(
        NY_9_TO_5,
        utc(2024, 7, 1, 12),
        utc(2024, 7, 1, 15, 30),
        150.0,
        id="UTC input NY schedule summer = 150",
    ),
    # Wed 01:00 in Tokyo is Tue 11:00 EST.
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 9, 30),
        datetime(2024, 3, 6, 1, tzinfo=TOKYO),
        90.0,
        id="Tokyo end NY schedule = 90",
    ),
    pytest.param(
        BERLIN_LUNCH_AND_SATURDAY,
        datetime(2024, 3, 8, 11, tzinfo=BERLIN),
        datetime(2024, 3, 9, 12, tzinfo=BERLIN),
        420.0,
        id="lunch break and Sat Fri 11:00 to Sat 12:00 = 60+240+120",
    ),
    pytest.param(
        UTC_LATE_SHIFT,
        utc(2024, 3, 4, 22),
        utc(2024, 3, 5, 1),
        180.0,
        id="interval ending 24:00 Mon 22:00 to Tue 01:00 = 120+60",
    ),
    pytest.param(
        DEFAULT_SCHEDULE,
        utc(2024, 3, 4, 8),
        utc(2024, 3, 4, 10),
        60.0,
        id="default schedule Mon 08:00-10:00 UTC = 60",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 10),
        ny(2024, 3, 5, 10),
        0.0,
        id="empty interval = 0",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 10),
        ny(2024, 3, 5, 10, 0, 30),
        0.5,
        id="30 seconds = 0.5",
    ),
    pytest.param(
        NY_9_TO_5,
        ny(2024, 3, 5, 10),
        ny(2024, 3, 5, 10, 0, 0, 600),
        1e-05,
        id="600 microseconds = 1e-05",
    ),
]


@pytest.mark.parametrize(("schedule", "start", "end", "expected"), EXACT_CASES)
def test_business_minutes_exact(schedule, start, end, expected):
    assert business_minutes(schedule, start, end) == expected


@pytest.mark.parametrize(("schedule", "start", "end", "expected"), EXACT_CASES)
def test_many_matches_exact_cases(schedule, start, end, expected):
    assert business_minutes_many(schedule, [start], [end]) == [expected]


@pytest.mark.parametrize(
    ("start", "end", "error", "message"),
    [
        pytest.param(
            datetime(2024, 3, 5, 10),
            utc(2024, 3, 5, 12),
            ValueError,
            "start .* naive",
            id="naive start",
        ),
        pytest.param(
            utc(2024, 3, 5, 10),
            datetime(2024, 3, 5, 12),
            ValueError,
            "end .* naive",
            id="naive end",
        ),
        pytest.param(
            utc(2024, 3, 5, 12),
            utc(2024, 3, 5, 10),
            ValueError,
            "before start",
            id="end before start",
        ),
        pytest.param(
            date(2024, 3, 5),
            utc(2024, 3, 5, 10),
            TypeError,
            "start must be",
            id="date instead of datetime",
        ),
        pytest.param(
            "2024-03-05T10:00Z",
            utc(2024, 3, 5, 10),
            TypeError,
            "start must be",
            id="string instead of datetime",
        ),
    ],
)
def test_business_minutes_rejects_invalid_bounds(start, end, error, message):
    with pytest.raises(error, match=message):
        business_minutes(NY_9_TO_5, start, end)


def test_default_schedule_values():
    assert DEFAULT_SCHEDULE.timezone == "UTC"
    assert DEFAULT_SCHEDULE.opening_hours == ((((540, 1020),),) * 5) + ((), ())
    assert DEFAULT_SCHEDULE.holidays == frozenset()


@pytest.mark.parametrize(
    "config",
    [pytest.param(None, id="None"), pytest.param({}, id="empty mapping")],
)
def test_from_config_empty_gives_default(config):
    assert BusinessSchedule.from_config(config) == DEFAULT_SCHEDULE


def test_from_config_parses_yaml_document():
    document = """
    timezone: America/New_York
    hours:
      Monday: ["09:00-12:00", "13:00-17:00"]
      tue: 09:00-17:00
      sat: ["10:00-14:00"]
      sun:
    holidays:
      - 2024-12-25
      - "2024-12-26"
    """
    schedule = BusinessSchedule.from_config(yaml.safe_load(document))

    assert schedule.timezone == "America/New_York"
    assert schedule.opening_hours == (
        ((540, 720), (780, 1020)),
        ((540, 1020),),
        (),
        (),
        (),
        ((600, 840),),
        (),
    )
    assert schedule.holidays == frozenset({date(2024, 12, 25), date(2024, 12, 26)})


def test_from_config_timezone_only():
    schedule = BusinessSchedule.from_config({"timezone": "Asia/Tokyo"})
    assert schedule.opening_hours == DEFAULT_SCHEDULE.opening_hours
    assert schedule.timezone == "Asia/Tokyo"


def test_from_config_touching_intervals():
    schedule = BusinessSchedule.from_config({"hours": {"mon": ["12:00-17:00", "09:00-12:00"]}})
    assert schedule.opening_hours[0] == ((540, 720), (720, 1020))
    # Touching intervals merge, so Mon 11:00-13:00 UTC is 120 minutes.
    assert business_minutes(schedule, utc(2024, 3, 4, 11), utc(2024, 3, 4, 13)) == 120.0


@pytest.mark.parametrize(
    ("config", "message"),
    [
        pytest.param(
            {"hours": {"mnday": ["09:00-17:00"]}}, "Unknown weekday 'mnday'", id="unknown weekday"
        ),
        pytest.param(
            {"hours": {"mon": ["09:00-17:00"], "Monday": []}},
            "'mon' appears more than once",
            id="duplicate weekday",
        ),
        pytest.param({"hours": {"mon": ["9am-5pm"]}}, "Invalid time '9am'", id="unparseable time"),
        pytest.param(
            {"hours": {"mon": ["09:00-25:00"]}}, "Invalid time '25:00'", id="hour past 24"
        ),
        pytest.param(
            {"hours": {"mon": ["09:00-24:30"]}}, "Invalid time '24:30'", id="minutes after 24:00"
        ),
        pytest.param({"hours": {"mon": ["09:60-17:00"]}}, "Invalid time '09:60'", id="minute 60"),
        pytest.param(
            {"hours": {"mon": ["09:00"]}}, "Invalid opening interval '09:00'", id="missing end"
        ),
        pytest.param(
            {"hours": {"mon": ["17:00-09:00"]}},
            "'17:00-09:00' for 'mon': the end must be after",
            id="end before start",
        ),
        pytest.param(
            {"hours": {"tue": ["09:00-09:00"]}},
            "'09:00-09:00' for 'tue': the end must be after",
            id="empty interval",
        ),
        pytest.param(
            {"hours": {"wed": ["09:00-12:00", "11:00-13:00"]}},
            "Overlapping opening intervals for 'wed': 09:00-12:00 and 11:00-13:00",
            id="overlapping intervals",
        ),
        pytest.param(
            {"hours": {"mon": [540]}}, "Invalid opening interval 540", id="interval as number"
        ),
        pytest.param({"hours": ["09:00-17:00"]}, "Invalid 'hours'", id="hours not a mapping"),
        pytest.param(
            {"timezone": "Mars/Olympus_Mons"},
            "Unknown time zone 'Mars/Olympus_Mons'",
            id="unknown time zone",
        ),
        pytest.param(
            {"timezone": "../etc/passwd"}, "Unknown time zone '../etc/passwd'", id="time zone path"
        ),
        pytest.param({"timezone": 5}, "Invalid 'timezone' 5", id="time zone not a string"),
        pytest.param(
            {"holidays": ["2024-13-01"]}, "Invalid holiday '2024-13-01'", id="invalid holiday date"
        ),
        pytest.param(
            {"holidays": "2024-12-25"}, "Invalid 'holidays' '2024-12-25'", id="holidays not a list"
        ),
        pytest.param(
            {"holiday": ["2024-12-25"]},
            "Unknown business hours config key\\(s\\) 'holiday'",
            id="unknown top level key",
        ),
        pytest.param(["timezone", "UTC"], "must be a mapping", id="config not a mapping"),
    ],
)
def test_from_config_rejects_invalid_values(config, message):
    with pytest.raises(ValueError, match=message):
        BusinessSchedule.from_config(config)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"opening_hours": ((),) * 6}, "must have 7 entries", id="six weekdays"),
        pytest.param(
            {"opening_hours": (((600, 500),),) + ((),) * 6},
            "end must be after",
            id="reversed minutes",
        ),
        pytest.param(
            {"opening_hours": (((0, 1500),),) + ((),) * 6}, "within 00:00-24:00", id="past midnight"
        ),
        pytest.param(
            {"holidays": frozenset({datetime(2024, 12, 25)})},
            "Invalid holiday",
            id="datetime holiday",
        ),
        pytest.param({"timezone": "Nowhere/Special"}, "Unknown time zone", id="unknown zone"),
    ],
)
def test_constructor_rejects_invalid_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        BusinessSchedule(**kwargs)


def test_schedule_is_frozen_and_hashable():
    with pytest.raises(dataclasses.FrozenInstanceError):
        NY_9_TO_5.timezone = "UTC"
    assert hash(NY_9_TO_5) == hash(
        BusinessSchedule.from_config({"timezone": "America/New_York", "hours": WEEKDAYS_9_TO_5})
    )


def random_intervals(seed: int, count: int) -> tuple[list[datetime | None], list[datetime | None]]:
    """Draw intervals over 2024 with mixed zones, lengths and about 5% null bounds each."""
    rng = random.Random(seed)
    zones = [UTC, NEW_YORK, TOKYO, ZoneInfo("Asia/Kolkata")]
    year_start = utc(2024, 1, 1)
    starts: list[datetime | None] = []
    ends: list[datetime | None] = []

    for _ in range(count):
        start = year_start + timedelta(microseconds=rng.randrange(366 * 86_400 * 10**6))
        if rng.random() < 0.3:
            # Whole-hour bounds hit opening and closing times exactly.
            start = start.replace(minute=0, second=0, microsecond=0)
        kind = rng.random()
        if kind < 0.05:
            duration = timedelta(0)
        elif kind < 0.6:
            duration = timedelta(seconds=rng.randrange(3 * 86_400))
        else:
            duration = timedelta(microseconds=rng.randrange(90 * 86_400 * 10**6))
        end = start + duration

        starts.append(None if rng.random() < 0.05 else start.astimezone(rng.choice(zones)))
        ends.append(None if rng.random() < 0.05 else end.astimezone(rng.choice(zones)))

    return starts, ends


VECTOR_SCHEDULES = [
    pytest.param(NY_9_TO_5_CHRISTMAS, id="NY 9-5 with holiday"),
    pytest.param(NY_NIGHTS, id="NY 00-04 daily"),
    pytest.param(BERLIN_LUNCH_AND_SATURDAY, id="Berlin lunch and Sat"),
]


@pytest.mark.parametrize("schedule", VECTOR_SCHEDULES)
def test_many_equals_scalar_random(schedule):
    starts, ends = random_intervals(seed=20240101, count=3000)
    expected = [
        None if start is None or end is None else business_minutes(schedule, start, end)
        for start, end in zip(starts, ends, strict=True)
    ]

    result = business_minutes_many(schedule, starts, ends)

    assert sum(value is None for value in expected) > 100
    assert result == expected


@pytest.mark.parametrize("schedule", VECTOR_SCHEDULES)
def test_many_series_equals_list(schedule):
    starts, ends = random_intervals(seed=7, count=2000)
    start_series = pl.Series("created_at", starts, dtype=pl.Datetime("us", "UTC"))
    end_series = pl.Series("resolved_at", ends, dtype=pl.Datetime("us", "UTC"))
    end_series = end_series.dt.convert_time_zone("America/New_York")

    result = business_minutes_many(schedule, start_series, end_series)

    assert result.dtype == pl.Float64
    assert result.name == "business_minutes"
    assert result.to_list() == business_minutes_many(schedule, starts, ends)


def test_many_nanosecond_series():
    starts = pl.Series([utc(2024, 3, 4, 8), None], dtype=pl.Datetime("ns", "UTC"))
    ends = pl.Series([utc(2024, 3, 4, 10), utc(2024, 3, 4, 10)], dtype=pl.Datetime("ns", "UTC"))
    assert business_minutes_many(DEFAULT_SCHEDULE, starts, ends).to_list() == [60.0, None]


def test_many_empty_and_null():
    assert business_minutes_many(NY_9_TO_5, [], []) == []
    starts = [None, utc(2024, 1, 2)]
    ends = [utc(2024, 1, 3), None]
    assert business_minutes_many(NY_9_TO_5, starts, ends) == [None, None]


@pytest.mark.parametrize(
    ("starts", "ends", "error", "message"),
    [
        pytest.param([utc(2024, 3, 4, 8)], [], ValueError, "same length", id="length mismatch"),
        pytest.param(
            [utc(2024, 3, 4, 8), utc(2024, 3, 4, 12)],
            [utc(2024, 3, 4, 9), utc(2024, 3, 4, 10)],
            ValueError,
            "1 interval\\(s\\) end before they start. The first is at position 1",
            id="end before start",
        ),
        pytest.param(
            [datetime(2024, 3, 4, 8)],
            [utc(2024, 3, 4, 9)],
            ValueError,
            "starts\\[0\\] .* naive",
            id="naive item",
        ),
        pytest.param(
            ["2024-03-04"],
            [utc(2024, 3, 4, 9)],
            TypeError,
            "starts\\[0\\] must be",
            id="string item",
        ),
        pytest.param(
            pl.Series([datetime(2024, 3, 4, 8)]),
            [utc(2024, 3, 4, 9)],
            ValueError,
            "naive dtype",
            id="naive Series",
        ),
        pytest.param(
            pl.Series([1]), [utc(2024, 3, 4, 9)], ValueError, "Datetime dtype", id="integer Series"
        ),
    ],
)
def test_many_rejects_invalid_input(starts, ends, error, message):
    with pytest.raises(error, match=message):
        business_minutes_many(NY_9_TO_5, starts, ends)


def count_open_minutes_by_brute_force(
    schedule: BusinessSchedule, start: datetime, end: datetime
) -> int:
    """Count UTC minutes in [start, end) whose local wall-clock minute is open."""
    time_zone = ZoneInfo(schedule.timezone)
    open_minutes = 0
    instant = start
    while instant < end:
        local = instant.astimezone(time_zone)
        minute_of_day = local.hour * 60 + local.minute
        if local.date() not in schedule.holidays and any(
            open_minute <= minute_of_day < close_minute
            for open_minute, close_minute in schedule.opening_hours[local.weekday()]
        ):
            open_minutes += 1
        instant += timedelta(minutes=1)
    return open_minutes


# Interval bounds sit inside skipped or repeated wall-clock times in these zones.
ODD_HOURS = {
    day: ["00:30-01:45", "02:00-02:40", "09:00-17:00", "23:00-24:00"] for day in WEEKDAY_NAMES
}


@pytest.mark.parametrize(
    ("zone_name", "transition_days"),
    [
        pytest.param("America/New_York", [date(2024, 3, 10), date(2024, 11, 3)], id="New York"),
        pytest.param("Europe/London", [date(2024, 3, 31), date(2024, 10, 27)], id="London"),
        # Lord Howe Island moves its clocks by 30 minutes, from 02:00 to 02:30 in October
        # and from 02:00 back to 01:30 in April.
        pytest.param("Australia/Lord_Howe", [date(2024, 4, 7), date(2024, 10, 6)], id="Lord Howe"),
    ],
)
def test_matches_brute_force_near_dst(zone_name, transition_days):
    # The day after the first transition is a holiday, so holidays near DST are covered too.
    holiday = transition_days[0] + timedelta(days=1)
    schedule = BusinessSchedule.from_config(
        {"timezone": zone_name, "hours": ODD_HOURS, "holidays": [holiday]}
    )
    rng = random.Random(zone_name)
    starts = []
    ends = []
    for _ in range(60):
        day = rng.choice(transition_days)
        offset = timedelta(minutes=rng.randrange(-36 * 60, 36 * 60))
        start = utc(day.year, day.month, day.day) + offset
        starts.append(start)
        ends.append(start + timedelta(minutes=rng.randrange(0, 30 * 60)))

    expected = [
        count_open_minutes_by_brute_force(schedule, s, e) for s, e in zip(starts, ends, strict=True)
    ]

    assert [business_minutes(schedule, s, e) for s, e in zip(starts, ends, strict=True)] == expected
    assert business_minutes_many(schedule, starts, ends) == expected


def test_many_wide_range():
    # One interval spanning 10 years widens the precomputed range for all others.
    starts = [ny(2020, 1, 6, 9), ny(2024, 3, 5, 10)]
    ends = [ny(2030, 1, 7, 9), ny(2024, 3, 5, 12, 30)]
    result = business_minutes_many(NY_9_TO_5, starts, ends)
    assert result[1] == 150.0
    assert result[0] == business_minutes(NY_9_TO_5, starts[0], ends[0])
    # Weekdays from Mon 2020-01-06 to Sun 2030-01-06 inclusive, each 480 minutes.
    weekdays = int(np.busday_count("2020-01-06", "2030-01-07"))
    assert result[0] == weekdays * 480.0
