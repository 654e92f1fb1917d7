"""Bad-input corpus: every case lands in one day folder, one pipeline run loads them all,
and each file must end as rows, quarantined rows with a specific check, or a rejected
file with a specific error. No case may crash the run or lose a row.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import polars as pl
import pytest

from conftest import PipelineEnv

DAY = "2025-04-15"
FEEDBACK_HEADER = "response_id,submitted_at,survey_type,score,comment\n"
SUBSCRIPTION_HEADER = "subscription_id,customer_id,started_at,ended_at,amount,billing_interval,interval_count,currency\n"
ORDER_HEADER = "order_id,customer_id,ordered_at,amount\n"
SESSION_HEADER = "session_id,started_at,converted\n"


@dataclass(frozen=True)
class Case:
    """One bad-input file and what the pipeline must make of it."""

    name: str
    source: str
    file_name: str
    content: bytes
    valid: int = 0
    quarantined: int = 0
    check: str | None = None  # a check every quarantined row of the file must list
    rejected: str | None = None  # a phrase of the rejected-file error
    extra_files: dict[str, bytes] = field(default_factory=dict)


def feedback(rows: str, header: str = FEEDBACK_HEADER) -> bytes:
    return (header + rows).encode("utf-8")


def parquet_bytes(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


GOOD_PARQUET = parquet_bytes(
    pl.DataFrame({"response_id": ["pq1", "pq2"], "submitted_at": ["2025-04-14T10:00:00Z"] * 2,
                  "survey_type": ["csat", "nps"], "score": [5, 9]})
)

CASES = [
    Case("empty file", "feedback", "empty.csv", b"", rejected="file is empty"),
    Case("header only", "feedback", "header_only.csv", feedback("")),
    Case("byte order mark", "feedback", "bom.csv", b"\xef\xbb\xbf" + feedback("bom1,2025-04-14T10:00:00Z,csat,5,ok\n"), valid=1),
    Case("latin-1 file", "feedback", "latin1.csv",
         (FEEDBACK_HEADER + "lat1,2025-04-14T10:00:00Z,csat,5,Tr\xe8s bien\n").encode("latin-1"), valid=1),
    Case("mixed encodings", "feedback", "mixed.csv",
         FEEDBACK_HEADER.encode() + "mix1,2025-04-14T10:00:00Z,csat,5,café\n".encode()
         + "mix2,2025-04-14T10:00:00Z,csat,4,na\xefve\n".encode("latin-1"), valid=2),
    Case("carriage return inside field", "feedback", "cr_field.csv",
         feedback('crf1,2025-04-14T10:00:00Z,csat,5,"line one\rline two"\n'), valid=1),
    Case("bare carriage return line endings", "feedback", "cr_lines.csv",
         feedback("crl1,2025-04-14T10:00:00Z,csat,5,a\rcrl2,2025-04-14T11:00:00Z,csat,4,b\r").replace(b"\n", b"\r"),
         valid=2),
    Case("missing required column", "feedback", "no_score.csv",
         b"response_id,submitted_at,survey_type\nms1,2025-04-14T10:00:00Z,csat\nms2,2025-04-14T10:00:00Z,nps\n",
         quarantined=2, check="score:missing_column"),
    Case("missing optional column", "feedback", "no_comment.csv",
         b"response_id,submitted_at,survey_type,score\nmo1,2025-04-14T10:00:00Z,csat,5\n", valid=1),
    Case("extra columns", "feedback", "extra.csv",
         feedback("ex1,2025-04-14T10:00:00Z,csat,5,ok,web,42\n", FEEDBACK_HEADER.strip() + ",device,age\n"), valid=1),
    Case("columns in another order", "feedback", "reordered.csv",
         b"score,comment,survey_type,submitted_at,response_id\n3,meh,csat,2025-04-14T10:00:00Z,ro1\n", valid=1),
    Case("duplicate id within a file", "feedback", "dup_within.csv",
         feedback("dw1,2025-04-14T10:00:00Z,csat,1,first\ndw1,2025-04-14T10:00:00Z,csat,5,second\n"),
         valid=1, quarantined=1, check="response_id:duplicate_in_file"),
    Case("duplicate id across files", "feedback", "dup_across_a.csv",
         feedback("da1,2025-04-14T10:00:00Z,csat,1,older\n"), valid=1,
         extra_files={"dup_across_b.csv": feedback("da1,2025-04-14T10:00:00Z,csat,5,newer\n")}),
    Case("timestamp without offset", "feedback", "naive.csv", feedback("tz1,2025-04-14 23:30:00,csat,5,ok\n"), valid=1),
    Case("timestamp with offset", "feedback", "offset.csv", feedback("tz2,2025-04-14T23:30:00-05:00,csat,5,ok\n"), valid=1),
    Case("ambiguous day and month", "feedback", "ambiguous.csv", feedback("am1,03/04/2025,csat,5,ok\n"),
         quarantined=1, check="submitted_at:parse"),
    Case("date in the future", "feedback", "future.csv", feedback("fu1,2031-01-01T10:00:00Z,csat,5,ok\n"),
         quarantined=1, check="submitted_at:submitted_not_after_arrival"),
    Case("score out of range", "feedback", "range.csv", feedback("sr1,2025-04-14T10:00:00Z,csat,6,ok\n"),
         quarantined=1, check="score:score_within_scale"),
    Case("score as fraction text", "feedback", "nine_of_ten.csv", feedback("st1,2025-04-14T10:00:00Z,nps,9/10,ok\n"),
         quarantined=1, check="score:parse"),
    Case("score as word", "feedback", "five.csv", feedback("st2,2025-04-14T10:00:00Z,csat,five,ok\n"),
         quarantined=1, check="score:parse"),
    Case("fractional score", "feedback", "fraction.csv", feedback("fr1,2025-04-14T10:00:00Z,csat,4.5,ok\n"),
         quarantined=1, check="score:score_is_whole_number"),
    Case("unknown survey type", "feedback", "type.csv", feedback("ty1,2025-04-14T10:00:00Z,ces2,5,ok\n"),
         quarantined=1, check="survey_type:isin(['csat', 'nps', 'ces', 'review'])"),
    Case("nps on a five-point scale", "feedback", "nps_scale.csv",
         feedback("ns1,2025-04-14T10:00:00Z,nps,4,1,5\n", "response_id,submitted_at,survey_type,score,scale_min,scale_max\n"),
         quarantined=1, check="scale_max:nps_scale_is_0_to_10"),
    Case("missing id value", "feedback", "no_id.csv", feedback(",2025-04-14T10:00:00Z,csat,5,ok\n"),
         quarantined=1, check="response_id:not_nullable"),
    Case("empty score", "feedback", "empty_score.csv", feedback("es1,2025-04-14T10:00:00Z,csat,,ok\n"),
         quarantined=1, check="score:not_nullable"),
    Case("huge text field", "feedback", "huge.csv", feedback(f"hu1,2025-04-14T10:00:00Z,csat,5,{'x' * 25_000}\n"),
         quarantined=1, check="comment:str_length(None, 20000)"),
    Case("nul byte", "feedback", "nul.csv", feedback("nu1,2025-04-14T10:00:00Z,csat,5,bad\x00byte\n"),
         quarantined=1, check="comment:nul_byte"),
    Case("formula-like text", "feedback", "formula.csv",
         feedback('fo1,2025-04-14T10:00:00Z,csat,5,"=HYPERLINK(""http://x.example"",""click"")"\n'),
         quarantined=1, check="comment:formula_like"),
    Case("row with too many fields", "feedback", "ragged.csv",
         feedback("rg1,2025-04-14T10:00:00Z,csat,5,ok\nrg2,2025-04-14T10:00:00Z,csat,5,ok,surplus\n"),
         valid=1, quarantined=1, check="row:field_count"),
    Case("truncated parquet", "feedback", "truncated.parquet", GOOD_PARQUET[: len(GOOD_PARQUET) // 2],
         rejected="Error"),
    Case("valid parquet", "feedback", "good.parquet", GOOD_PARQUET, valid=2),
    Case("invalid ndjson line", "feedback", "broken.ndjson",
         b'{"response_id": "nd1", "submitted_at": "2025-04-14T10:00:00Z", "survey_type": "csat", "score": 5}\n{oops\n',
         rejected="Error"),
    Case("valid ndjson", "feedback", "good.ndjson",
         (json.dumps({"response_id": "nd2", "submitted_at": "2025-04-14T10:00:00Z", "survey_type": "nps", "score": 10})
          + "\n").encode(), valid=1),
    Case("unsupported file type", "feedback", "answers.xlsx", b"PK\x03\x04", rejected="unsupported file type .xlsx"),
    Case("file name with spaces", "feedback", "april answers final.csv", feedback("sp1,2025-04-14T10:00:00Z,csat,5,ok\n"),
         valid=1),
    Case("non-ascii file name", "feedback", "réponses_日本.csv", feedback("na1,2025-04-14T10:00:00Z,csat,5,ok\n"), valid=1),
    Case("file name crafted as sql", "feedback", "x'; DROP TABLE raw_feedback; --.csv",
         feedback("sq1,2025-04-14T10:00:00Z,csat,5,ok\n"), valid=1),
    Case("negative subscription amount", "subscriptions", "negative.csv",
         (SUBSCRIPTION_HEADER + "sub1,c1,2025-01-01T00:00:00Z,,-10,month,1,USD\n").encode(),
         quarantined=1, check="amount:greater_than_or_equal_to(0)"),
    Case("subscription ending before start", "subscriptions", "backwards.csv",
         (SUBSCRIPTION_HEADER + "sub2,c2,2025-03-01T00:00:00Z,2025-02-01T00:00:00Z,10,month,1,USD\n").encode(),
         quarantined=1, check="ended_at:ended_not_before_started"),
    Case("unknown billing interval", "subscriptions", "fortnight.csv",
         (SUBSCRIPTION_HEADER + "sub3,c3,2025-01-01T00:00:00Z,,10,fortnight,1,USD\n").encode(),
         quarantined=1, check="billing_interval:isin(['week', 'month', 'year'])"),
    Case("foreign currency", "subscriptions", "euro.csv",
         (SUBSCRIPTION_HEADER + "sub4,c4,2025-01-01T00:00:00Z,,10,month,1,EUR\n").encode(),
         quarantined=1, check="currency:currency_is_reporting_currency"),
    Case("zero interval count", "subscriptions", "zero_interval.csv",
         (SUBSCRIPTION_HEADER + "sub5,c5,2025-01-01T00:00:00Z,,10,month,0,USD\n").encode(),
         quarantined=1, check="interval_count:greater_than_or_equal_to(1)"),
    Case("return with negative amount", "orders", "return.csv",
         (ORDER_HEADER + "or1,c1,2025-04-14T10:00:00Z,-25.50\n").encode(), valid=1),
    Case("zero order amount", "orders", "zero.csv", (ORDER_HEADER + "or2,c1,2025-04-14T10:00:00Z,0\n").encode(), valid=1),
    Case("decimal comma amount", "orders", "comma.csv", (ORDER_HEADER + 'or3,c1,2025-04-14T10:00:00Z,"12,50"\n').encode(),
         quarantined=1, check="amount:parse"),
    Case("order without customer", "orders", "guest.csv", (ORDER_HEADER + "or4,,2025-04-14T10:00:00Z,9.99\n").encode(),
         valid=1),
    Case("unparseable order date", "orders", "bad_date.csv", (ORDER_HEADER + "or5,c1,last tuesday,9.99\n").encode(),
         quarantined=1, check="ordered_at:parse"),
    Case("boolean as word", "sessions", "yes.csv", (SESSION_HEADER + "se1,2025-04-14T10:00:00Z,yes\n").encode(), valid=1),
    Case("boolean unknown", "sessions", "maybe.csv", (SESSION_HEADER + "se2,2025-04-14T10:00:00Z,maybe\n").encode(),
         quarantined=1, check="converted:parse"),
]


@pytest.fixture(scope="module")
def corpus_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PipelineEnv]:
    root = tmp_path_factory.mktemp("corpus")
    env = PipelineEnv(landing=root / "landing", warehouse=root / "cx.duckdb")
    for case in CASES:
        env.land(case.source, DAY, case.file_name, case.content)
        for name, content in case.extra_files.items():
            env.land(case.source, DAY, name, content)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CX_LANDING_DIR", str(env.landing))
        patch.setenv("CX_WAREHOUSE_PATH", str(env.warehouse))
        patch.delenv("CX_CONFIG", raising=False)
        env.run(DAY)
        yield env


def test_corpus_has_forty_cases() -> None:
    assert len(CASES) >= 40


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_case(corpus_env: PipelineEnv, case: Case) -> None:
    source_file = f"{case.source}/{DAY}/{case.file_name}"
    rejected = corpus_env.query(
        f"SELECT error FROM rejected_files_{case.source} WHERE _source_file = ?", [source_file]
    )["error"].to_list()
    if case.rejected:
        assert len(rejected) == 1
        assert case.rejected in rejected[0]
        return
    assert rejected == []

    valid = corpus_env.query(
        f"SELECT count(*) AS n FROM validated_{case.source} WHERE _source_file = ?", [source_file]
    )["n"][0]
    quarantined = corpus_env.query(
        f"SELECT failed_checks, failure_reasons FROM quarantine_{case.source} WHERE _source_file = ?", [source_file]
    )
    assert valid == case.valid
    assert quarantined.height == case.quarantined
    for checks, reasons in quarantined.iter_rows():
        assert case.check in checks, reasons
        assert reasons


@pytest.mark.parametrize("source", ["feedback", "subscriptions", "orders", "sessions"])
def test_corpus_row_accounting(corpus_env: PipelineEnv, source: str) -> None:
    landed = corpus_env.query(f"SELECT count(*) AS n FROM raw_{source}")["n"][0]
    valid = corpus_env.query(f"SELECT count(*) AS n FROM validated_{source}")["n"][0]
    quarantined = corpus_env.query(f"SELECT count(*) AS n FROM quarantine_{source}")["n"][0]
    assert landed > 0
    assert landed == valid + quarantined


def test_corpus_decodes_text_exactly(corpus_env: PipelineEnv) -> None:
    comments = dict(
        corpus_env.query(
            "SELECT response_id, comment FROM stg_feedback WHERE response_id IN ('lat1', 'mix1', 'mix2', 'crf1')"
        ).rows()
    )
    assert comments == {"lat1": "Très bien", "mix1": "café", "mix2": "naïve", "crf1": "line one\rline two"}


def test_corpus_timestamps_normalized_to_utc(corpus_env: PipelineEnv) -> None:
    stamps = dict(
        corpus_env.query(
            "SELECT response_id, submitted_at FROM stg_feedback WHERE response_id IN ('tz1', 'tz2')"
        ).rows()
    )
    assert stamps["tz1"] == dt.datetime(2025, 4, 14, 23, 30, tzinfo=dt.UTC)
    assert stamps["tz2"] == dt.datetime(2025, 4, 15, 4, 30, tzinfo=dt.UTC)


def test_corpus_later_file_wins_across_files(corpus_env: PipelineEnv) -> None:
    rows = corpus_env.query("SELECT score, comment FROM stg_feedback WHERE response_id = 'da1'").rows()
    assert rows == [(5.0, "newer")]


def test_corpus_extra_columns_kept_as_json(corpus_env: PipelineEnv) -> None:
    extra = corpus_env.query(
        "SELECT _extra_columns FROM raw_feedback WHERE _source_file LIKE '%/extra.csv'"
    )["_extra_columns"][0]
    assert json.loads(extra) == {"device": "web", "age": "42"}


def test_corpus_crafted_file_name_left_tables_intact(corpus_env: PipelineEnv) -> None:
    names = corpus_env.query("SELECT table_name FROM duckdb_tables() WHERE table_name = 'raw_feedback'")
    assert names.height == 1
    row = corpus_env.query("SELECT _source_file FROM raw_feedback WHERE _source_file LIKE '%DROP TABLE%'")
    assert row["_source_file"][0] == f"feedback/{DAY}/x'; DROP TABLE raw_feedback; --.csv"


def test_corpus_paths_stay_relative(corpus_env: PipelineEnv) -> None:
    files = corpus_env.query("SELECT DISTINCT _source_file FROM raw_feedback")["_source_file"].to_list()
    assert all(not Path(f).is_absolute() and ".." not in Path(f).parts for f in files)
