"""Static charts of the KPI tables, for the HTML report and for Dagster materializations.

Charts are Vega-Lite specifications built with Altair and rendered to PNG by
vl-convert, which runs offline (no browser, no network). Every weekly or monthly value is
re-aggregated from the stored numerators and denominators, never averaged from daily rates.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import logging
from collections.abc import Callable
from pathlib import Path

import altair as alt
import duckdb
import polars as pl

from cx_pipeline.warehouse import quote_identifier

logger = logging.getLogger(__name__)

Z_95 = 1.959964
WIDTH = 640
HEIGHT = 260


def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {row[0] for row in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}


def _query(con: duckdb.DuckDBPyConnection, sql: str) -> pl.DataFrame:
    """Run ``sql`` and return its rows with DECIMAL sums as floats, which Vega-Lite can encode."""
    frame = con.execute(sql).pl()
    return frame.with_columns(pl.col(pl.Decimal).cast(pl.Float64))


def _band_chart(frame: pl.DataFrame, value: str, low: str, high: str, title: str, y_title: str,
                color: str | None = None) -> alt.Chart:
    """Build a line of ``value`` per week with a shaded interval from ``low`` to ``high``."""
    x = alt.X("week:T", title="week")
    encode_color = {"color": alt.Color(f"{color}:N")} if color else {}
    base = alt.Chart(frame).encode(x=x, **encode_color)
    band = base.mark_area(opacity=0.25).encode(y=alt.Y(f"{low}:Q", title=y_title), y2=f"{high}:Q")
    line = base.mark_line(point=True).encode(y=f"{value}:Q")
    return (band + line).properties(title=title, width=WIDTH, height=HEIGHT)


def nps_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Weekly NPS from summed promoter and detractor counts, with its 95% margin."""
    frame = _query(
        con,
        """
        SELECT date_trunc('week', submitted_date) AS week, sum(count_responses) AS n,
               sum(count_promoters) / sum(count_responses) AS p, sum(count_detractors) / sum(count_responses) AS d
        FROM kpi_nps_daily GROUP BY ALL HAVING sum(count_responses) > 0 ORDER BY week
        """
    )
    if frame.is_empty():
        return None
    margin = 100 * Z_95 * ((pl.col("p") + pl.col("d") - (pl.col("p") - pl.col("d")) ** 2) / pl.col("n")).sqrt()
    frame = frame.with_columns(nps=100 * (pl.col("p") - pl.col("d")), margin=margin).with_columns(
        low=pl.col("nps") - pl.col("margin"), high=pl.col("nps") + pl.col("margin")
    )
    return _band_chart(frame, "nps", "low", "high", "NPS per week with 95% interval", "NPS")


def csat_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Weekly CSAT from summed counts, with a 95% Wald interval."""
    frame = _query(
        con,
        """
        SELECT date_trunc('week', submitted_date) AS week, sum(count_responses) AS n,
               sum(count_satisfied) / sum(count_responses) AS share
        FROM kpi_csat_daily GROUP BY ALL HAVING sum(count_responses) > 0 ORDER BY week
        """
    )
    if frame.is_empty():
        return None
    margin = Z_95 * (pl.col("share") * (1 - pl.col("share")) / pl.col("n")).sqrt()
    frame = frame.with_columns(
        csat_pct=100 * pl.col("share"),
        low=100 * (pl.col("share") - margin),
        high=100 * (pl.col("share") + margin),
    )
    return _band_chart(frame, "csat_pct", "low", "high", "CSAT % per week with 95% interval", "CSAT %")


def ces_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Weekly mean CES per scale, with a 95% normal interval from the summed squares."""
    frame = _query(
        con,
        """
        SELECT date_trunc('week', submitted_date) AS week, scale_min || '-' || scale_max AS scale,
               sum(count_responses) AS n, sum(sum_score) AS total, sum(sum_score_squared) AS squares
        FROM kpi_ces_daily GROUP BY ALL HAVING sum(count_responses) > 1 ORDER BY week
        """
    )
    if frame.is_empty():
        return None
    mean = pl.col("total") / pl.col("n")
    variance = (pl.col("squares") - pl.col("n") * mean**2) / (pl.col("n") - 1)
    margin = Z_95 * (variance.clip(lower_bound=0) / pl.col("n")).sqrt()
    frame = frame.with_columns(ces_mean=mean, low=mean - margin, high=mean + margin)
    return _band_chart(frame, "ces_mean", "low", "high", "CES mean per week with 95% interval", "CES mean",
                       color="scale")


def retention_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Heatmap of retention by cohort month and month offset, one panel per cohort source."""
    frame = _query(
        con,
        "SELECT cohort_source, strftime(cohort_month, '%Y-%m') AS cohort, month_offset, retention_rate "
        "FROM cohort_retention_monthly ORDER BY ALL"
    )
    if frame.is_empty():
        return None
    return (
        alt.Chart(frame)
        .mark_rect()
        .encode(
            x=alt.X("month_offset:O", title="months since cohort start"),
            y=alt.Y("cohort:O", title="cohort month"),
            color=alt.Color("retention_rate:Q", scale=alt.Scale(domain=[0, 1], scheme="blues"), title="retention"),
            tooltip=["cohort_source", "cohort", "month_offset", alt.Tooltip("retention_rate:Q", format=".1%")],
        )
        .properties(width=300, height=HEIGHT)
        .facet(column=alt.Column("cohort_source:N", title=None))
        .properties(title="Cohort retention")
    )


def mrr_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Monthly MRR movements of all plans as stacked bars, losses below zero, with logo churn."""
    frame = _query(
        con,
        """
        SELECT month, new_mrr AS new, reactivation_mrr AS reactivation, expansion_mrr AS expansion,
               -contraction_mrr AS contraction, -churn_mrr AS churn, logo_churn_rate
        FROM kpi_churn_monthly WHERE plan = '(all)' ORDER BY month
        """
    )
    if frame.is_empty():
        return None
    movements = frame.unpivot(
        index="month", on=["new", "reactivation", "expansion", "contraction", "churn"],
        variable_name="movement", value_name="mrr",
    )
    bars = (
        alt.Chart(movements)
        .mark_bar()
        .encode(
            x=alt.X("yearmonth(month):O", title="month"),
            y=alt.Y("sum(mrr):Q", title="MRR movement (reporting currency)"),
            color=alt.Color("movement:N"),
        )
        .properties(title="MRR movements per month (all plans)", width=WIDTH, height=HEIGHT)
    )
    churn = (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(
            x=alt.X("yearmonth(month):O", title="month"),
            y=alt.Y("logo_churn_rate:Q", title="logo churn rate", axis=alt.Axis(format="%")),
        )
        .properties(title="Logo churn rate per month (all plans)", width=WIDTH, height=160)
    )
    return alt.vconcat(bars, churn)


def first_reply_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Weekly mean first reply time in calendar and business minutes, from the stored sums."""
    frame = _query(
        con,
        """
        SELECT date_trunc('week', created_date) AS week,
               sum(sum_first_reply_minutes) / sum(count_first_reply) AS calendar_minutes,
               sum(sum_first_reply_business_minutes) / sum(count_first_reply) AS business_minutes
        FROM kpi_support_daily GROUP BY ALL HAVING sum(count_first_reply) > 0 ORDER BY week
        """
    )
    if frame.is_empty():
        return None
    long = frame.unpivot(index="week", variable_name="clock", value_name="minutes")
    return (
        alt.Chart(long)
        .mark_line(point=True)
        .encode(x=alt.X("week:T", title="ticket created (week)"), y=alt.Y("minutes:Q", title="mean first reply (minutes)"),
                color="clock:N")
        .properties(title="First reply time per week", width=WIDTH, height=HEIGHT)
    )


def sentiment_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Weekly net sentiment per source, from the summed label counts."""
    frame = _query(
        con,
        """
        SELECT date_trunc('week', submitted_date) AS week, source,
               100 * (sum(count_positive) - sum(count_negative)) / sum(count_scored) AS net_sentiment
        FROM kpi_sentiment_daily GROUP BY ALL HAVING sum(count_scored) > 0 ORDER BY week
        """
    )
    if frame.is_empty():
        return None
    return (
        alt.Chart(frame)
        .mark_line(point=True)
        .encode(x=alt.X("week:T", title="week"), y=alt.Y("net_sentiment:Q", title="net sentiment (points)"),
                color="source:N")
        .properties(title="Net sentiment per week", width=WIDTH, height=HEIGHT)
    )


def impact_chart(con: duckdb.DuckDBPyConnection) -> alt.Chart | None:
    """Difference after minus before with its 95% interval, one row per go-live and KPI."""
    frame = _query(
        con,
        """
        SELECT go_live_name || ': ' || kpi || coalesce(' [' || scale || ']', '') || ' (' || unit || ')' AS label,
               difference, ci_low, ci_high, is_significant
        FROM kpi_impact WHERE status = 'ok' ORDER BY go_live_name, kpi
        """
    )
    if frame.is_empty():
        return None
    base = alt.Chart(frame).encode(y=alt.Y("label:N", title=None, sort=None))
    # Each KPI has its own unit, so every row gets its own x scale through a row facet.
    rule = base.mark_rule().encode(x=alt.X("ci_low:Q", title="after - before"), x2="ci_high:Q")
    point = base.mark_point(filled=True, size=60).encode(x="difference:Q", color="is_significant:N")
    return (
        alt.layer(rule, point)
        .properties(width=WIDTH - 200, height=24)
        .facet(row=alt.Row("label:N", title=None, header=alt.Header(labelAngle=0, labelAlign="left")))
        .resolve_scale(x="independent", y="independent")
        .properties(title="Impact: difference with 95% interval")
    )


# Chart name: title, builder and the table it plots, in report order.
CHARTS: dict[str, tuple[str, Callable[[duckdb.DuckDBPyConnection], alt.Chart | None], str]] = {
    "nps": ("NPS", nps_chart, "kpi_nps_daily"),
    "csat": ("CSAT", csat_chart, "kpi_csat_daily"),
    "ces": ("Customer Effort Score", ces_chart, "kpi_ces_daily"),
    "retention": ("Cohort retention", retention_chart, "cohort_retention_monthly"),
    "mrr": ("MRR movements and churn", mrr_chart, "kpi_churn_monthly"),
    "first_reply": ("First reply time", first_reply_chart, "kpi_support_daily"),
    "sentiment": ("Sentiment", sentiment_chart, "kpi_sentiment_daily"),
    "impact": ("Impact of go-lives", impact_chart, "kpi_impact"),
}

# Charts attached to the materialization of each table.
CHARTS_BY_TABLE = {table: name for name, (_, _, table) in CHARTS.items()}


def render_png(chart: alt.Chart) -> bytes:
    """Render a chart to PNG bytes with vl-convert (offline)."""
    import vl_convert

    return vl_convert.vegalite_to_png(chart.to_json(), scale=1)


def chart_for_table(con: duckdb.DuckDBPyConnection, table: str) -> alt.Chart | None:
    """Return the chart of ``table``, or None when it has no chart or no rows to plot."""
    name = CHARTS_BY_TABLE.get(table)
    if name is None or table not in _tables(con):
        return None
    return CHARTS[name][1](con)


def latest_kpi_values(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, float | str]:
    """Return the latest day's KPI of a daily mart, re-aggregated over channels and segments.

    Returns an empty dict for other tables and for tables without rows.
    """
    queries = {
        "kpi_csat_daily": (
            "submitted_date",
            "100 * sum(count_satisfied) / sum(count_responses) AS csat_pct, sum(count_responses) AS responses",
        ),
        "kpi_nps_daily": (
            "submitted_date",
            "100 * (sum(count_promoters) - sum(count_detractors)) / sum(count_responses) AS nps, "
            "sum(count_responses) AS responses",
        ),
        "kpi_ces_daily": (
            "submitted_date",
            "sum(sum_score) / sum(count_responses) AS ces_mean, 100 * sum(count_easy) / sum(count_responses) AS easy_pct, "
            "sum(count_responses) AS responses",
        ),
        "kpi_support_daily": (
            "created_date",
            "100 * sum(count_fcr) / nullif(sum(count_fcr_eligible), 0) AS fcr_pct, sum(tickets_created) AS tickets_created",
        ),
        "kpi_sentiment_daily": (
            "submitted_date",
            "100 * (sum(count_positive) - sum(count_negative)) / nullif(sum(count_scored), 0) AS net_sentiment, "
            "sum(count_scored) AS items_scored",
        ),
    }
    if table not in queries or table not in _tables(con):
        return {}
    day_column, expressions = queries[table]
    quoted = quote_identifier(table)
    where = f"{day_column} = (SELECT max({day_column}) FROM {quoted})"
    if table == "kpi_ces_daily":
        # Means on different scales never mix: report the most answered scale of that day.
        where += (
            f" AND (scale_min, scale_max) = (SELECT (scale_min, scale_max) FROM {quoted} "
            f"WHERE {where} GROUP BY ALL ORDER BY sum(count_responses) DESC, 1 LIMIT 1)"
        )
    frame = con.execute(f"SELECT max({day_column}) AS latest_day, {expressions} FROM {quoted} WHERE {where}").pl()
    if frame.is_empty() or frame["latest_day"][0] is None:
        return {}
    values: dict[str, float | str] = {}
    for name, value in frame.row(0, named=True).items():
        if value is None:
            continue
        values[name] = value.isoformat() if isinstance(value, dt.date) else round(float(value), 3)
    return values


def _impact_table_html(con: duckdb.DuckDBPyConnection) -> str:
    if "kpi_impact" not in _tables(con):
        return "<p>No kpi_impact table in this file.</p>"
    frame = con.execute(
        "SELECT go_live_name, go_live_date, kpi, scale, unit, n_before, n_after, value_before, value_after, "
        "difference, ci_low, ci_high, is_significant, status, reason FROM kpi_impact ORDER BY go_live_name, rowid"
    ).pl()
    if frame.is_empty():
        return "<p>No go-lives configured (impact_go_lives in CX_CONFIG).</p>"
    header = "".join(f"<th>{html.escape(column)}</th>" for column in frame.columns)
    rows = []
    for row in frame.iter_rows():
        cells = []
        for value in row:
            if value is None:
                text = ""
            elif isinstance(value, float):
                text = f"{value:.3f}"
            else:
                text = str(value)
            cells.append(f"<td>{html.escape(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:1100px}"
    "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 6px}"
    "img{max-width:100%}"
)


def render_report(published_path: Path, out_dir: Path) -> Path:
    """Write ``index.html`` and one PNG per chart of the published file to ``out_dir``.

    The page needs no network: the charts are PNG files next to it. Returns the page's path.
    """
    if not published_path.is_file():
        raise ValueError(f"no published file at {published_path}; run the pipeline first (cx-pipeline run)")
    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(published_path), read_only=True)
    try:
        tables = _tables(con)
        sections = []
        for name, (title, build, table) in CHARTS.items():
            chart = build(con) if table in tables else None
            if chart is None:
                sections.append(f"<h2>{html.escape(title)}</h2><p>No rows in {html.escape(table)}.</p>")
                logger.info("event=report_chart_skipped chart=%s table=%s reason=no_rows", name, table)
                continue
            (out_dir / f"{name}.png").write_bytes(render_png(chart))
            sections.append(
                f'<h2>{html.escape(title)}</h2><img src="{name}.png" alt="{html.escape(title)} chart">'
                f"<p>Source: <code>{html.escape(table)}</code></p>"
            )
        sections.append("<h2>Impact table</h2>" + _impact_table_html(con))
        published_at = ""
        if "publish_manifest" in tables:
            row = con.execute("SELECT max(published_at) FROM publish_manifest").fetchone()
            published_at = str(row[0]) if row and row[0] else ""
    finally:
        con.close()

    page = (
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>cx-pipeline KPI report</title><style>{_STYLE}</style></head><body>"
        f"<h1>cx-pipeline KPI report</h1><p>Published file: <code>{html.escape(str(published_path))}</code>"
        f"{', published at ' + html.escape(published_at) if published_at else ''}. Weekly and monthly values "
        "are re-aggregated from numerators and denominators.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )
    index = out_dir / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def png_data_uri(png: bytes) -> str:
    """Return a PNG as a ``data:`` URI for Markdown image links."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
