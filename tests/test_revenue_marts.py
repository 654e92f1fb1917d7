"""Hand-computed cases for the revenue mart models in assets/marts.

Each test writes a few staging rows into a real warehouse (a DuckDB file, and a DuckLake on
PostgreSQL when that backend is available), runs the models the way the framework does (CREATE OR REPLACE TABLE <file stem> AS <file text>, with named parameters) and
checks the result against values worked out by hand in the test.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from cx_pipeline import ducklake

OpenWarehouse = Callable[[str], duckdb.DuckDBPyConnection]

MARTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "marts"

# mrr_monthly must run first because the other three models read it.
MODEL_STEMS = ("mrr_monthly", "kpi_churn_monthly", "cohort_retention_monthly", "kpi_conversion")

PARAMETER_PATTERN = re.compile(r"\$([a-z_]+)")

STAGING_DDL = """
create table stg_subscriptions (
    subscription_id varchar, customer_id varchar, plan varchar, status varchar,
    started_at timestamptz, trial_ends_at timestamptz, ended_at timestamptz,
    amount double, billing_interval varchar, interval_count integer, currency varchar
);
create table stg_orders (
    order_id varchar, customer_id varchar, ordered_at timestamptz,
    amount double, currency varchar, quantity integer
);
create table stg_sessions (
    session_id varchar, customer_id varchar, started_at timestamptz,
    converted boolean, channel varchar
);
"""


def at(text: str) -> dt.datetime:
    """Parse 'YYYY-MM-DD HH:MM' as UTC, or an ISO timestamp that carries its own offset."""
    parsed = dt.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed


def subscription(
    subscription_id: str,
    customer_id: str,
    started_at: str,
    ended_at: str | None = None,
    *,
    amount: float = 10.0,
    billing_interval: str = "month",
    interval_count: int = 1,
    plan: str = "basic",
    trial_ends_at: str | None = None,
) -> tuple:
    status = "active" if ended_at is None else "canceled"
    return (
        subscription_id,
        customer_id,
        plan,
        status,
        at(started_at),
        at(trial_ends_at) if trial_ends_at else None,
        at(ended_at) if ended_at else None,
        amount,
        billing_interval,
        interval_count,
        "USD",
    )


def order(order_id: str, customer_id: str | None, ordered_at: str, amount: float) -> tuple:
    return (order_id, customer_id, at(ordered_at), amount, "USD", 1)


def session(session_id: str, started_at: str, converted: bool | None) -> tuple:
    return (session_id, None, at(started_at), converted, "organic")


@pytest.fixture
def open_warehouse(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[OpenWarehouse]:
    """Return a function that opens a new, empty warehouse on the test's backend."""
    connections: list[duckdb.DuckDBPyConnection] = []

    def open_new(name: str = "marts") -> duckdb.DuckDBPyConnection:
        if backend == "ducklake":
            server = request.getfixturevalue("postgres_server")
            lake = ducklake.DuckLakeTarget(
                url=server.ducklake_url(server.create_database()), data_path=f"{tmp_path / name}/"
            )
            connection = ducklake.attach(lake)
        else:
            connection = duckdb.connect(str(tmp_path / f"{name}.duckdb"))
        connections.append(connection)
        return connection

    yield open_new
    for connection in connections:
        connection.close()


def build_marts(
    connection: duckdb.DuckDBPyConnection,
    *,
    subscriptions: list[tuple] = (),
    orders: list[tuple] = (),
    sessions: list[tuple] = (),
    observation_end: str,
    reporting_timezone: str = "UTC",
    conversion_window_days: int = 14,
) -> duckdb.DuckDBPyConnection:
    """Create the staging tables in an empty warehouse and build every model on them.

    The session time zone is set far from UTC so that a model which relies on it instead of
    the reporting time zone gives wrong months.
    """
    connection.execute("set TimeZone = 'Asia/Kathmandu'")
    connection.execute(STAGING_DDL)
    if subscriptions:
        connection.executemany(
            "insert into stg_subscriptions values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            list(subscriptions),
        )
    if orders:
        connection.executemany("insert into stg_orders values (?, ?, ?, ?, ?, ?)", list(orders))
    if sessions:
        connection.executemany("insert into stg_sessions values (?, ?, ?, ?, ?)", list(sessions))

    parameters = {
        "reporting_timezone": reporting_timezone,
        "observation_end": at(observation_end),
        "conversion_window_days": conversion_window_days,
    }
    for stem in MODEL_STEMS:
        sql = (MARTS_DIR / f"{stem}.sql").read_text()
        used_names = sorted(set(PARAMETER_PATTERN.findall(sql)))
        connection.execute(
            f"create or replace table {stem} as {sql}",
            {name: parameters[name] for name in used_names},
        )
    return connection


def fetch_rows(
    connection: duckdb.DuckDBPyConnection, query: str, parameters: list | None = None
) -> list[dict]:
    cursor = connection.execute(query, parameters or [])
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]


def mrr_rows(connection: duckdb.DuckDBPyConnection, customer_id: str) -> dict[dt.date, dict]:
    rows = fetch_rows(
        connection, "from mrr_monthly where customer_id = ? order by month", [customer_id]
    )
    return {row["month"]: row for row in rows}


def churn_row(connection: duckdb.DuckDBPyConnection, month: dt.date, plan: str) -> dict:
    rows = fetch_rows(
        connection, "from kpi_churn_monthly where month = ? and plan = ?", [month, plan]
    )
    assert len(rows) == 1, f"expected one kpi_churn_monthly row for {month} and {plan}, got {rows}"
    return rows[0]


def cohort_rows(
    connection: duckdb.DuckDBPyConnection, source: str, cohort_month: dt.date
) -> dict[int, dict]:
    rows = fetch_rows(
        connection,
        "from cohort_retention_monthly where cohort_source = ? and cohort_month = ?"
        " order by month_offset",
        [source, cohort_month],
    )
    return {row["month_offset"]: row for row in rows}


def conversion_rows(
    connection: duckdb.DuckDBPyConnection, conversion_type: str
) -> dict[dt.date, dict]:
    rows = fetch_rows(
        connection,
        "from kpi_conversion where conversion_type = ? order by period_start",
        [conversion_type],
    )
    return {row["period_start"]: row for row in rows}


def month(year: int, month_number: int) -> dt.date:
    return dt.date(year, month_number, 1)


# Model file convention


@pytest.mark.parametrize("stem", MODEL_STEMS)
def test_model_file_convention(stem: str) -> None:
    sql = (MARTS_DIR / f"{stem}.sql").read_text()
    lines = sql.splitlines()

    assert lines[0].startswith("-- ")
    assert lines[0][3:].strip()
    assert lines[1].startswith("-- grain: one row per ")
    assert not sql.rstrip().endswith(";")
    assert set(PARAMETER_PATTERN.findall(sql)) <= {
        "reporting_timezone",
        "observation_end",
        "conversion_window_days",
    }
    assert re.search(r"\border by\b[^()]*$", sql.rstrip(), flags=re.IGNORECASE)


def test_models_build_on_empty_inputs(open_warehouse: OpenWarehouse) -> None:
    connection = build_marts(open_warehouse(), observation_end="2024-06-30 00:00")

    for stem in MODEL_STEMS:
        assert connection.execute(f"select count(*) from {stem}").fetchone()[0] == 0, stem


# mrr_monthly


def test_mid_month_cancellation_churns(open_warehouse: OpenWarehouse) -> None:
    # 30 per month from Jan 10 to May 15: active at the end of Jan..Apr. At the end of May the
    # subscription has ended, so May is the churn month with mrr 0, and nothing follows it.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("s1", "c1", "2024-01-10 09:00", "2024-05-15 12:00", amount=30.0)
        ],
        observation_end="2024-07-15 00:00",
    )
    rows = mrr_rows(connection, "c1")

    assert list(rows) == [month(2024, m) for m in (1, 2, 3, 4, 5)]
    assert rows[month(2024, 1)]["movement"] == "new"
    assert rows[month(2024, 4)]["mrr"] == 30.0
    assert rows[month(2024, 4)]["movement"] == "unchanged"
    assert rows[month(2024, 5)]["mrr"] == 0.0
    assert rows[month(2024, 5)]["previous_mrr"] == 30.0
    assert rows[month(2024, 5)]["movement"] == "churn"
    assert rows[month(2024, 5)]["churn_mrr"] == 30.0
    assert rows[month(2024, 5)]["mrr_change"] == -30.0
    assert rows[month(2024, 5)]["plan"] == "basic"


def test_reactivation_after_gap(open_warehouse: OpenWarehouse) -> None:
    # Paid 20 in Jan and Feb, cancelled Mar 10 (churn in March), nothing at the end of April,
    # then a new subscription of 25 from May 3: May is a reactivation, not new business.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("s1", "c1", "2024-01-05 00:00", "2024-03-10 00:00", amount=20.0),
            subscription("s2", "c1", "2024-05-03 00:00", amount=25.0, plan="pro"),
        ],
        observation_end="2024-06-30 23:00",
    )
    rows = mrr_rows(connection, "c1")

    assert list(rows) == [month(2024, m) for m in (1, 2, 3, 5, 6)]
    assert rows[month(2024, 3)]["movement"] == "churn"
    assert rows[month(2024, 5)]["movement"] == "reactivation"
    assert rows[month(2024, 5)]["previous_mrr"] == 0.0
    assert rows[month(2024, 5)]["reactivation_mrr"] == 25.0
    assert rows[month(2024, 5)]["new_mrr"] == 0.0
    assert rows[month(2024, 5)]["plan"] == "pro"
    assert rows[month(2024, 6)]["movement"] == "unchanged"


def test_upgrade_and_downgrade(open_warehouse: OpenWarehouse) -> None:
    # basic 50 until Mar 20, then pro 80 until May 5, then starter 40.
    # March: 50 -> 80 is an expansion of 30. May: 80 -> 40 is a contraction of 40.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription(
                "s1", "c1", "2024-01-10 00:00", "2024-03-20 00:00", amount=50.0, plan="basic"
            ),
            subscription(
                "s2", "c1", "2024-03-20 00:00", "2024-05-05 00:00", amount=80.0, plan="pro"
            ),
            subscription("s3", "c1", "2024-05-05 00:00", amount=40.0, plan="starter"),
        ],
        observation_end="2024-06-30 00:00",
    )
    rows = mrr_rows(connection, "c1")
    march = rows[month(2024, 3)]
    may = rows[month(2024, 5)]

    assert march["movement"] == "expansion"
    assert march["expansion_mrr"] == 30.0
    assert march["mrr_change"] == 30.0
    assert march["plan"] == "pro"
    assert march["previous_plan"] == "basic"
    assert may["movement"] == "contraction"
    assert may["contraction_mrr"] == 40.0
    assert may["mrr_change"] == -40.0
    assert may["plan"] == "starter"
    assert may["previous_plan"] == "pro"


def test_annual_plans_divide_by_twelve(open_warehouse: OpenWarehouse) -> None:
    # 1200 per year is 100 per month. 2400 every two years is also 100 per month.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("s1", "c1", "2024-01-15 00:00", amount=1200.0, billing_interval="year"),
            subscription(
                "s2",
                "c2",
                "2024-01-15 00:00",
                amount=2400.0,
                billing_interval="year",
                interval_count=2,
            ),
        ],
        observation_end="2024-03-31 00:00",
    )

    assert mrr_rows(connection, "c1")[month(2024, 1)]["mrr"] == pytest.approx(100.0)
    assert mrr_rows(connection, "c2")[month(2024, 1)]["mrr"] == pytest.approx(100.0)


def test_weekly_plans_use_52_weeks(open_warehouse: OpenWarehouse) -> None:
    # 12 per week is 12 * 52 / 12 = 52 per month. 24 every two weeks is also 52 per month.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("s1", "c1", "2024-01-15 00:00", amount=12.0, billing_interval="week"),
            subscription(
                "s2",
                "c2",
                "2024-01-15 00:00",
                amount=24.0,
                billing_interval="week",
                interval_count=2,
            ),
        ],
        observation_end="2024-03-31 00:00",
    )

    assert mrr_rows(connection, "c1")[month(2024, 1)]["mrr"] == pytest.approx(52.0)
    assert mrr_rows(connection, "c2")[month(2024, 1)]["mrr"] == pytest.approx(52.0)
    assert mrr_rows(connection, "c1")[month(2024, 3)]["movement"] == "unchanged"


def test_customer_mrr_sums_subscriptions(open_warehouse: OpenWarehouse) -> None:
    # A base plan of 30 and an add-on of 10: MRR 40, and the plan is the larger subscription's.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("s1", "c1", "2024-01-15 00:00", amount=10.0, plan="addon"),
            subscription("s2", "c1", "2024-01-15 00:00", amount=30.0, plan="basic"),
        ],
        observation_end="2024-01-31 00:00",
    )
    january = mrr_rows(connection, "c1")[month(2024, 1)]

    assert january["mrr"] == 40.0
    assert january["plan"] == "basic"


def test_trial_never_paid(open_warehouse: OpenWarehouse) -> None:
    # c1 trials from Jan 10 to Jan 24 and cancels at the trial end: no paid period, so no MRR
    # row and no logo, but it is an unconverted trial of January.
    # c2 trials from Jan 20 to Feb 3 and then pays: the trial month January has no MRR.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription(
                "s1",
                "c1",
                "2024-01-10 00:00",
                "2024-01-24 00:00",
                amount=40.0,
                trial_ends_at="2024-01-24 00:00",
            ),
            subscription(
                "s2", "c2", "2024-01-20 00:00", amount=40.0, trial_ends_at="2024-02-03 00:00"
            ),
        ],
        observation_end="2024-03-31 00:00",
    )
    january_trials = conversion_rows(connection, "trial_to_paid")[month(2024, 1)]
    february_all_plans = churn_row(connection, month(2024, 2), "(all)")
    march_all_plans = churn_row(connection, month(2024, 3), "(all)")

    assert mrr_rows(connection, "c1") == {}
    assert list(mrr_rows(connection, "c2")) == [month(2024, 2), month(2024, 3)]
    assert mrr_rows(connection, "c2")[month(2024, 2)]["movement"] == "new"
    assert february_all_plans["new_mrr"] == 40.0
    assert march_all_plans["customers_at_start"] == 1
    assert january_trials["eligible"] == 2
    assert january_trials["converted"] == 1
    assert january_trials["conversion_rate"] == 0.5


def test_active_customer_never_churns(open_warehouse: OpenWarehouse) -> None:
    # An open subscription stays in MRR through the month of the observation end (mid-December),
    # so there is no churn row, and the last month is flagged as not fully observed.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[subscription("s1", "c1", "2024-01-15 00:00", amount=15.0)],
        observation_end="2024-12-10 08:00",
    )
    rows = mrr_rows(connection, "c1")
    movements = {row["movement"] for row in rows.values()}

    assert len(rows) == 12
    assert "churn" not in movements
    assert max(rows) == month(2024, 12)
    assert rows[month(2024, 12)]["mrr"] == 15.0
    assert rows[month(2024, 12)]["is_fully_observed"] is False
    assert rows[month(2024, 11)]["is_fully_observed"] is True


def test_month_series_from_jan_31(open_warehouse: OpenWarehouse) -> None:
    # A start on Jan 31 must give every month once, February included, each on its first day.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[subscription("s1", "c1", "2024-01-31 23:00")],
        observation_end="2024-05-31 12:00",
    )

    assert list(mrr_rows(connection, "c1")) == [month(2024, m) for m in (1, 2, 3, 4, 5)]


def test_month_end_boundary_instants(open_warehouse: OpenWarehouse) -> None:
    # The rule is "covers the last instant of the month". A paid period starting exactly at
    # Feb 1 00:00 belongs to February, not January. One ending exactly at Mar 1 00:00 covered all
    # of February, so it is active in February and churns in March. Customer c0 makes the model
    # build January too.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("s0", "c0", "2024-01-05 00:00", amount=10.0),
            subscription("s1", "c1", "2024-02-01 00:00", "2024-03-01 00:00", amount=10.0),
        ],
        observation_end="2024-04-30 00:00",
    )
    rows = mrr_rows(connection, "c1")

    assert list(rows) == [month(2024, 2), month(2024, 3)]
    assert rows[month(2024, 2)]["mrr"] == 10.0
    assert rows[month(2024, 3)]["movement"] == "churn"


def test_reporting_timezone_moves_month(open_warehouse: OpenWarehouse) -> None:
    # 2024-03-01 03:00 UTC is 2024-02-29 22:00 in New York.
    # In UTC the subscription covers the end of February and churns in March, and the order
    # and the session fall in March. In New York the subscription ended before its February
    # month end (Mar 1 05:00 UTC), so it churns in February, and the order and the session fall
    # in February.
    boundary_instant = "2024-03-01 03:00"
    staging = {
        "subscriptions": [
            subscription("s1", "c1", "2024-01-10 12:00", boundary_instant, amount=10.0)
        ],
        "orders": [order("o1", "c2", boundary_instant, 25.0)],
        "sessions": [session("v1", boundary_instant, True)],
        "observation_end": "2024-04-30 12:00",
    }
    utc = build_marts(open_warehouse("utc"), **staging)
    new_york = build_marts(open_warehouse("new_york"), reporting_timezone="America/New_York", **staging)

    utc_churn = [m for m, row in mrr_rows(utc, "c1").items() if row["movement"] == "churn"]
    new_york_churn = [
        m for m, row in mrr_rows(new_york, "c1").items() if row["movement"] == "churn"
    ]
    assert utc_churn == [month(2024, 3)]
    assert new_york_churn == [month(2024, 2)]
    assert list(cohort_rows(utc, "orders", month(2024, 3))) == [0, 1]
    assert list(cohort_rows(new_york, "orders", month(2024, 2))) == [0, 1, 2]
    assert list(conversion_rows(utc, "visit_to_order")) == [dt.date(2024, 3, 1)]
    assert list(conversion_rows(new_york, "visit_to_order")) == [dt.date(2024, 2, 29)]


# kpi_churn_monthly


def test_churn_rates_and_nrr(open_warehouse: OpenWarehouse) -> None:
    # End of January: A basic 100, B basic 50, C pro 200, D pro 150, so 4 logos and 500 MRR.
    # February: A cancels (churn 100), B moves to basic 30 (contraction 20), C upgrades to
    # enterprise 300 (expansion 100, counted under pro, its January plan), D unchanged,
    # E is new on basic 40.
    #   all plans: logo churn 1/4, gross revenue churn (100 + 20) / 500,
    #              NRR (500 - 120 + 100) / 500.
    #   basic:     start 150, churn 100, contraction 20, so NRR 30 / 150, and E's 40 is new MRR.
    #   pro:       start 350, expansion 100, so NRR 450 / 350.
    # March starts from February's end: 500 - 100 - 20 + 100 + 40 = 520 MRR and 4 logos.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription(
                "a1", "A", "2024-01-05 00:00", "2024-02-14 00:00", amount=100.0, plan="basic"
            ),
            subscription(
                "b1", "B", "2024-01-05 00:00", "2024-02-10 00:00", amount=50.0, plan="basic"
            ),
            subscription("b2", "B", "2024-02-10 00:00", amount=30.0, plan="basic"),
            subscription(
                "c1", "C", "2024-01-05 00:00", "2024-02-20 00:00", amount=200.0, plan="pro"
            ),
            subscription("c2", "C", "2024-02-20 00:00", amount=300.0, plan="enterprise"),
            subscription("d1", "D", "2024-01-05 00:00", amount=150.0, plan="pro"),
            subscription("e1", "E", "2024-02-07 00:00", amount=40.0, plan="basic"),
        ],
        observation_end="2024-03-31 00:00",
    )
    january = churn_row(connection, month(2024, 1), "(all)")
    february = churn_row(connection, month(2024, 2), "(all)")
    february_basic = churn_row(connection, month(2024, 2), "basic")
    february_pro = churn_row(connection, month(2024, 2), "pro")
    march = churn_row(connection, month(2024, 3), "(all)")
    enterprise_months = fetch_rows(
        connection, "select month from kpi_churn_monthly where plan = 'enterprise'"
    )

    assert january["customers_at_start"] == 0
    assert january["logo_churn_rate"] is None
    assert january["net_revenue_retention"] is None
    assert january["new_mrr"] == 500.0

    assert february["customers_at_start"] == 4
    assert february["customers_churned"] == 1
    assert february["logo_churn_rate"] == pytest.approx(0.25)
    assert february["mrr_at_start"] == 500.0
    assert february["churn_mrr"] == 100.0
    assert february["contraction_mrr"] == 20.0
    assert february["expansion_mrr"] == 100.0
    assert february["new_mrr"] == 40.0
    assert february["reactivation_mrr"] == 0.0
    assert february["gross_revenue_churn_rate"] == pytest.approx(0.24)
    assert february["net_revenue_retention"] == pytest.approx(0.96)

    assert february_basic["customers_at_start"] == 2
    assert february_basic["logo_churn_rate"] == pytest.approx(0.5)
    assert february_basic["mrr_at_start"] == 150.0
    assert february_basic["new_mrr"] == 40.0
    assert february_basic["gross_revenue_churn_rate"] == pytest.approx(120.0 / 150.0)
    assert february_basic["net_revenue_retention"] == pytest.approx(30.0 / 150.0)

    assert february_pro["customers_at_start"] == 2
    assert february_pro["customers_churned"] == 0
    assert february_pro["expansion_mrr"] == 100.0
    assert february_pro["net_revenue_retention"] == pytest.approx(450.0 / 350.0)

    assert march["mrr_at_start"] == 520.0
    assert march["customers_at_start"] == 4
    assert march["net_revenue_retention"] == pytest.approx(1.0)
    assert [row["month"] for row in enterprise_months] == [month(2024, 3)]


# cohort_retention_monthly


def test_subscription_cohort_bounded_unbounded(open_warehouse: OpenWarehouse) -> None:
    # January cohort of 3, observed until Apr 15:
    #   A pays Jan and Feb, ends Mar 10, pays again from Apr 2.
    #   B ends Feb 5, so it is active only at the end of January.
    #   C pays throughout.
    # Bounded (active in that month):          Jan 3, Feb 2 (A, C), Mar 1 (C), Apr 2 (A, C).
    # Unbounded (active then or in any later): Jan 3, Feb 2, Mar 2 (A comes back), Apr 2.
    # April ends after Apr 15, so offset 3 is not fully observed.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("a1", "A", "2024-01-08 00:00", "2024-03-10 00:00"),
            subscription("a2", "A", "2024-04-02 00:00"),
            subscription("b1", "B", "2024-01-09 00:00", "2024-02-05 00:00"),
            subscription("c1", "C", "2024-01-10 00:00"),
        ],
        observation_end="2024-04-15 00:00",
    )
    rows = cohort_rows(connection, "subscriptions", month(2024, 1))

    assert list(rows) == [0, 1, 2, 3]
    assert {row["cohort_size"] for row in rows.values()} == {3}
    assert [rows[k]["retained_customers"] for k in range(4)] == [3, 2, 1, 2]
    assert [rows[k]["retained_customers_unbounded"] for k in range(4)] == [3, 2, 2, 2]
    assert rows[2]["retention_rate"] == pytest.approx(1 / 3)
    assert rows[2]["retention_rate_unbounded"] == pytest.approx(2 / 3)
    assert [rows[k]["is_fully_observed"] for k in range(4)] == [True, True, True, False]


def test_order_cohort_orders_and_returns(open_warehouse: OpenWarehouse) -> None:
    # A orders twice on Jan 10 and returns 80 on Feb 3, more than either order: A is counted once
    #   in the January cohort, and the February return does not make A active in February.
    # B's first event is a return on Jan 20 and B's first order is on Mar 5, so B joins the
    #   March cohort.
    # C only has a return, and the guest order has no customer: neither starts a cohort.
    connection = build_marts(
        open_warehouse(),
        orders=[
            order("o1", "A", "2024-01-10 09:00", 30.0),
            order("o2", "A", "2024-01-10 17:00", 20.0),
            order("r1", "A", "2024-02-03 10:00", -80.0),
            order("r2", "B", "2024-01-20 10:00", -15.0),
            order("o3", "B", "2024-03-05 10:00", 45.0),
            order("r3", "C", "2024-01-02 10:00", -10.0),
            order("o4", None, "2024-01-15 10:00", 99.0),
        ],
        observation_end="2024-03-31 12:00",
    )
    january = cohort_rows(connection, "orders", month(2024, 1))
    march = cohort_rows(connection, "orders", month(2024, 3))
    cohorts = fetch_rows(
        connection,
        "select distinct cohort_month from cohort_retention_monthly"
        " where cohort_source = 'orders' order by 1",
    )

    assert [row["cohort_month"] for row in cohorts] == [month(2024, 1), month(2024, 3)]
    assert january[0]["cohort_size"] == 1
    assert january[0]["retained_customers"] == 1
    assert january[1]["retained_customers"] == 0
    assert january[1]["retained_customers_unbounded"] == 0
    assert january[1]["retention_rate"] == 0.0
    assert march[0]["cohort_size"] == 1
    assert march[0]["retention_rate"] == 1.0
    assert march[0]["is_fully_observed"] is False


# kpi_conversion


def test_trial_to_paid_conversion(open_warehouse: OpenWarehouse) -> None:
    # Window of 14 days, observation end Mar 10.
    #   t1: Jan 5 -> Jan 19, still open: converted (14 days).
    #   t2: Jan 8 -> Jan 22, ended at the trial end: not converted.
    #   t3: Jan 10 -> Feb 9, a 30-day trial: pays only after the window, not converted.
    #   t4: Jan 12 -> Jan 26, cancelled Feb 20: converted (it reached its paid period).
    #   s5: Jan 15 without a trial: not eligible.
    #   t6: Mar 1 -> Mar 15, after the observation end: not converted yet.
    # January: 2 of 4, and its windows closed by Feb 15, so fully observed.
    # February has no trials and no row. March is not fully observed.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription("t1", "c1", "2024-01-05 10:00", trial_ends_at="2024-01-19 10:00"),
            subscription(
                "t2", "c2", "2024-01-08 10:00", "2024-01-22 10:00", trial_ends_at="2024-01-22 10:00"
            ),
            subscription("t3", "c3", "2024-01-10 10:00", trial_ends_at="2024-02-09 10:00"),
            subscription(
                "t4", "c4", "2024-01-12 10:00", "2024-02-20 10:00", trial_ends_at="2024-01-26 10:00"
            ),
            subscription("s5", "c5", "2024-01-15 10:00"),
            subscription("t6", "c6", "2024-03-01 10:00", trial_ends_at="2024-03-15 10:00"),
        ],
        observation_end="2024-03-10 00:00",
        conversion_window_days=14,
    )
    rows = conversion_rows(connection, "trial_to_paid")

    assert list(rows) == [month(2024, 1), month(2024, 3)]
    assert rows[month(2024, 1)]["period_grain"] == "month"
    assert rows[month(2024, 1)]["eligible"] == 4
    assert rows[month(2024, 1)]["converted"] == 2
    assert rows[month(2024, 1)]["conversion_rate"] == 0.5
    assert rows[month(2024, 1)]["is_fully_observed"] is True
    assert rows[month(2024, 3)]["eligible"] == 1
    assert rows[month(2024, 3)]["converted"] == 0
    assert rows[month(2024, 3)]["is_fully_observed"] is False


def test_trial_window_counts_local_days(open_warehouse: OpenWarehouse) -> None:
    # New York moves its clocks back on Nov 3, 2024. A trial from Oct 30 10:00 to Nov 13 10:00
    # local time lasts 14 calendar days but 337 hours, more than 14 * 24. The window counts
    # calendar days, so the trial converts within 14 days.
    connection = build_marts(
        open_warehouse(),
        subscriptions=[
            subscription(
                "t1", "c1", "2024-10-30T10:00:00-04:00", trial_ends_at="2024-11-13T10:00:00-05:00"
            ),
        ],
        observation_end="2024-12-31 00:00",
        reporting_timezone="America/New_York",
        conversion_window_days=14,
    )
    october = conversion_rows(connection, "trial_to_paid")[month(2024, 10)]

    assert october["eligible"] == 1
    assert october["converted"] == 1
    assert october["is_fully_observed"] is True


def test_visit_to_order_per_day(open_warehouse: OpenWarehouse) -> None:
    # Jan 10: 3 sessions, 1 converted. Jan 11: 3 sessions, 1 converted and 1 with an unknown flag,
    # which counts as not converted. Jan 11 is still running at the observation end (noon), so it
    # is not fully observed. The Jan 12 session is after the observation end and is left out.
    connection = build_marts(
        open_warehouse(),
        sessions=[
            session("v1", "2024-01-10 08:00", True),
            session("v2", "2024-01-10 09:00", False),
            session("v3", "2024-01-10 23:59", False),
            session("v4", "2024-01-11 00:00", True),
            session("v5", "2024-01-11 06:00", None),
            session("v6", "2024-01-11 07:00", False),
            session("v7", "2024-01-12 07:00", True),
        ],
        observation_end="2024-01-11 12:00",
    )
    rows = conversion_rows(connection, "visit_to_order")
    january_10 = rows[dt.date(2024, 1, 10)]
    january_11 = rows[dt.date(2024, 1, 11)]

    assert list(rows) == [dt.date(2024, 1, 10), dt.date(2024, 1, 11)]
    assert january_10["period_grain"] == "day"
    assert january_10["eligible"] == 3
    assert january_10["converted"] == 1
    assert january_10["conversion_rate"] == pytest.approx(1 / 3)
    assert january_10["is_fully_observed"] is True
    assert january_11["eligible"] == 3
    assert january_11["converted"] == 1
    assert january_11["is_fully_observed"] is False


def test_unknown_billing_interval_fails(open_warehouse: OpenWarehouse) -> None:
    with pytest.raises(
        duckdb.InvalidInputException, match="billing_interval must be month, year or week, got day"
    ):
        build_marts(
            open_warehouse(),
            subscriptions=[subscription("s1", "c1", "2024-01-10 00:00", billing_interval="day")],
            observation_end="2024-02-29 00:00",
        )
