"""The DuckLake backend: table catalog in PostgreSQL (or another DuckLake catalog
database), table data as Parquet files under a data path.

Several processes, on one machine or many, may write the same DuckLake at once. DuckLake
commits each transaction as a new snapshot in the catalog. When two transactions change
the same table in ways that conflict (both create it, both replace it), the later
COMMIT fails with a "Transaction conflict" error. ``RetryingConnection`` replays such a
transaction with exponential backoff, so concurrent runs need no file lock.

Extensions load from the ``duckdb-extension-ducklake``, ``duckdb-extension-postgres`` and
``duckdb-extension-httpfs`` wheels on disk, never from the network. An ``s3://`` data path
(AWS S3 or any S3-compatible store) takes its credentials from the standard AWS variables.
"""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os
import random
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import duckdb
import pyarrow as pa

logger = logging.getLogger(__name__)

URL_VARIABLE = "CX_WAREHOUSE_URL"
DATA_PATH_VARIABLE = "CX_DUCKLAKE_DATA_PATH"
URL_PREFIX = "ducklake:"
# Unqualified table names resolve in this catalog after ``USE``.
CATALOG_ALIAS = "lake"

# Extension name (as DuckDB looks up its entry point) -> PyPI package that ships it.
# The postgres package names its file postgres.duckdb_extension, but DuckDB derives the
# entry point from the file name and the extension's real name is postgres_scanner.
_EXTENSION_PACKAGES = {
    "ducklake": ("duckdb_extension_ducklake", "ducklake"),
    "postgres_scanner": ("duckdb_extension_postgres", "postgres"),
    "httpfs": ("duckdb_extension_httpfs", "httpfs"),
}
OBJECT_STORE_SCHEME = "s3"
# The secret that gives DuckDB access to an s3:// data path.
S3_SECRET_NAME = "cx_data_path"

T = TypeVar("T")

_PASSWORD = re.compile(r"(password\s*=\s*)(\S+)", re.IGNORECASE)


@dataclass(frozen=True)
class DuckLakeTarget:
    """A DuckLake to attach: its ``ducklake:`` catalog URL and its data path."""

    url: str
    data_path: str

    def __post_init__(self) -> None:
        if not self.url.startswith(URL_PREFIX):
            raise ValueError(
                f"invalid {URL_VARIABLE} {self.redacted_url()!r}: it must start with {URL_PREFIX!r}, "
                f"e.g. 'ducklake:postgres:dbname=cx host=127.0.0.1 user=postgres'"
            )
        if not self.data_path:
            raise ValueError(
                f"{DATA_PATH_VARIABLE} is missing: set it to the folder or object-storage prefix "
                f"(e.g. s3://bucket/cx/) where DuckLake writes Parquet files"
            )

        scheme = urlsplit(self.data_path).scheme if "://" in self.data_path else ""
        if scheme and scheme != OBJECT_STORE_SCHEME:
            raise ValueError(
                f"unsupported {DATA_PATH_VARIABLE} {self.data_path!r}: use a local folder or an "
                f"{OBJECT_STORE_SCHEME}:// prefix (S3-compatible stores through AWS_ENDPOINT_URL)"
            )

    def redacted_url(self) -> str:
        """Return the URL with any password replaced, for logs and error messages."""
        return _PASSWORD.sub(r"\1***", self.url)

    def needs_postgres(self) -> bool:
        """Return whether the catalog lives in PostgreSQL."""
        return self.url[len(URL_PREFIX) :].startswith(("postgres:", "postgresql:"))

    def in_object_store(self) -> bool:
        """Return whether the data path is an s3:// prefix rather than a local folder."""
        return self.data_path.startswith(f"{OBJECT_STORE_SCHEME}://")

    def attach_statement(self, read_only: bool = False) -> str:
        """Return the ATTACH statement that opens this DuckLake as ``lake``."""
        options = [f"DATA_PATH {_sql_literal(self.data_path)}"]
        if read_only:
            options.append("READ_ONLY")
        return f"ATTACH {_sql_literal(self.url)} AS {CATALOG_ALIAS} ({', '.join(options)})"


def target_from_env(url: str = "", data_path: str = "") -> DuckLakeTarget | None:
    """Return the configured DuckLake, or None when CX_WAREHOUSE_URL (and ``url``) is empty."""
    url = url or os.environ.get(URL_VARIABLE, "")
    if not url:
        return None
    local_data_path = data_path or os.environ.get(DATA_PATH_VARIABLE, "")
    if local_data_path and "://" not in local_data_path:
        # DuckLake stores the data path as given, so a relative folder would depend on the
        # working directory of whichever process attaches first.
        local_data_path = str(Path(local_data_path).resolve()) + os.sep
    return DuckLakeTarget(url=url, data_path=local_data_path)


def _sql_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def extension_file(extension: str) -> Path:
    """Return the extension file shipped by its PyPI package for the running DuckDB version.

    Raises RuntimeError when the package is missing or was built for another DuckDB version.
    """
    package, file_stem = _EXTENSION_PACKAGES[extension]
    requirement = f"{package.replace('_', '-')}=={duckdb.__version__}"
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"the DuckDB extension package {requirement} is not installed; pip install it")
    root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
    path = root / f"v{duckdb.__version__}" / f"{file_stem}.duckdb_extension"
    if not path.is_file():
        shipped = sorted(p.name for p in root.glob("v*")) if root.is_dir() else []
        raise RuntimeError(
            f"{package} ships the extension for DuckDB {', '.join(shipped) or 'no version'}, but DuckDB "
            f"is v{duckdb.__version__}; install {requirement}"
        )
    return path


_alias_folder: Path | None = None


def _loadable_path(extension: str) -> Path:
    """Return a path whose file name matches the extension's entry point name."""
    global _alias_folder
    source = extension_file(extension)
    if source.stem == extension:
        return source
    if _alias_folder is None:
        # A private folder per process, so no other user can swap the file that is loaded.
        _alias_folder = Path(tempfile.mkdtemp(prefix="cx-duckdb-extensions-"))
        atexit.register(shutil.rmtree, _alias_folder, True)
    alias = _alias_folder / f"{extension}.duckdb_extension"
    if not alias.exists():
        alias.symlink_to(source)
    return alias


def new_connection(target: DuckLakeTarget) -> duckdb.DuckDBPyConnection:
    """Open an in-memory DuckDB session with the DuckLake (and PostgreSQL) extensions loaded."""
    # Nothing may be downloaded at run time: a missing extension must fail here.
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        if target.needs_postgres():
            con.execute(f"LOAD {_sql_literal(str(_loadable_path('postgres_scanner')))}")
        if target.in_object_store():
            con.execute(f"LOAD {_sql_literal(str(_loadable_path('httpfs')))}")
            secret = s3_secret_statement(target.data_path, os.environ)
            if secret is not None:
                con.execute(secret)
        con.execute(f"LOAD {_sql_literal(str(_loadable_path('ducklake')))}")
    except BaseException:
        con.close()
        raise
    return con


def s3_secret_statement(data_path: str, env: dict[str, str] | os._Environ[str]) -> str | None:
    """Return the CREATE SECRET statement for ``data_path`` from the standard AWS variables.

    AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are required (else None: DuckDB then uses any
    persistent secret of its own), AWS_SESSION_TOKEN and AWS_REGION (or AWS_DEFAULT_REGION)
    are optional, and AWS_ENDPOINT_URL (or AWS_ENDPOINT_URL_S3) points at an S3-compatible
    store such as MinIO, addressed path-style.
    """
    key_id = env.get("AWS_ACCESS_KEY_ID")
    secret = env.get("AWS_SECRET_ACCESS_KEY")
    if not key_id or not secret:
        return None
    bucket = urlsplit(data_path).netloc
    options = {
        "TYPE": "s3",
        "KEY_ID": _sql_literal(key_id),
        "SECRET": _sql_literal(secret),
        "SCOPE": _sql_literal(f"{OBJECT_STORE_SCHEME}://{bucket}"),
    }
    if env.get("AWS_SESSION_TOKEN"):
        options["SESSION_TOKEN"] = _sql_literal(env["AWS_SESSION_TOKEN"])
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        options["REGION"] = _sql_literal(region)
    endpoint = env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts = urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
        options["ENDPOINT"] = _sql_literal(parts.netloc)
        options["USE_SSL"] = "true" if parts.scheme == "https" else "false"
        options["URL_STYLE"] = "'path'"
    listed = ", ".join(f"{name} {value}" for name, value in options.items())
    return f"CREATE OR REPLACE SECRET {S3_SECRET_NAME} ({listed})"


def _is_conflict(exc: duckdb.Error) -> bool:
    return "conflict" in str(exc).lower()


def _is_catalog_init_race(exc: duckdb.Error) -> bool:
    # Two processes that attach a new catalog at once both try to create its metadata tables.
    message = str(exc)
    return "Failed to initialize DuckLake" in message and (
        "already exists" in message or "duplicate key" in message
    )


def attach(target: DuckLakeTarget, read_only: bool = False, timeout_seconds: float = 60.0) -> duckdb.DuckDBPyConnection:
    """Open a session with the DuckLake attached as ``lake`` and selected by ``USE lake``."""
    con = new_connection(target)
    deadline = time.monotonic() + timeout_seconds
    delay = 0.1
    try:
        while True:
            try:
                con.execute(target.attach_statement(read_only))
                break
            except duckdb.Error as exc:
                if not _is_catalog_init_race(exc) or time.monotonic() > deadline:
                    error = _PASSWORD.sub(r"\1***", str(exc))
                    raise RuntimeError(
                        f"failed to attach the DuckLake catalog {target.redacted_url()} "
                        f"(data path {target.data_path}): {error}"
                    ) from None
                logger.info("another process is creating the DuckLake catalog; retrying in %.1f s", delay)
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
        con.execute(f"USE {CATALOG_ALIAS}")
    except BaseException:
        con.close()
        raise
    return con


# One attached DuckLake per process, shared through cursors: attaching loads two extensions
# and reads the catalog, which costs far more than the statements of a typical asset step.
_shared_session: tuple[DuckLakeTarget, int, duckdb.DuckDBPyConnection] | None = None
_shared_session_lock = threading.Lock()


def session(target: DuckLakeTarget) -> duckdb.DuckDBPyConnection:
    """Return a new cursor on this process's writable session of ``target``, with ``USE lake``.

    The session is attached on first use and kept until another target is asked for (or
    the process forks), so the steps of one run share one attachment.
    """
    global _shared_session
    with _shared_session_lock:
        if _shared_session is None or _shared_session[:2] != (target, os.getpid()):
            if _shared_session is not None and _shared_session[1] == os.getpid():
                _shared_session[2].close()
            _shared_session = (target, os.getpid(), attach(target))
        cursor = _shared_session[2].cursor()
    try:
        cursor.execute(f"USE {CATALOG_ALIAS}")
    except BaseException:
        cursor.close()
        raise
    return cursor


class RetryingConnection:
    """A DuckDB connection that replays a transaction whose COMMIT hit a DuckLake conflict.

    Statements and registered frames between BEGIN and COMMIT are recorded. When COMMIT
    fails with a conflict, the transaction is rolled back and replayed from BEGIN on a
    fresh snapshot, waiting ``base_delay_seconds`` x 2^attempt (with jitter) in between.
    A single statement outside a transaction is retried the same way. Every other method
    goes to the wrapped connection.

    Replay repeats the recorded SQL and frames. A ``CREATE ... AS SELECT`` reads the new
    snapshot again, but a frame that Python computed from the old snapshot would be written
    as it was: such work goes through ``rerun_on_conflict``, which runs it again whole.
    """

    def __init__(
        self, con: duckdb.DuckDBPyConnection, max_attempts: int = 8, base_delay_seconds: float = 0.2
    ) -> None:
        self._con = con
        self._max_attempts = max_attempts
        self._base_delay = base_delay_seconds
        self._transaction: list[tuple[str, tuple[Any, ...]]] | None = None
        self._replay = True
        # Set when the open transaction registered a stream, which a replay cannot read again.
        self._one_shot = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)

    def execute(self, sql: str, parameters: Any = None) -> duckdb.DuckDBPyConnection:
        """Run one statement, recording it while a transaction is open."""
        keyword = sql.lstrip().split(None, 1)[0].upper() if sql.strip() else ""
        if keyword in {"BEGIN", "START"}:
            result = self._con.execute(sql)
            self._transaction = []
            self._one_shot = False
            return result
        if keyword in {"COMMIT", "END"} and self._transaction is not None:
            return self._commit(sql)
        if keyword in {"ROLLBACK", "ABORT"}:
            # After a COMMIT that failed for good, DuckDB has already ended the
            # transaction, and the caller's ROLLBACK must not hide that error.
            had_transaction = self._transaction is not None
            self._transaction = None
            try:
                return self._con.execute(sql)
            except duckdb.TransactionException:
                if had_transaction:
                    raise
                return self._con
        if self._transaction is not None:
            self._transaction.append(("execute", (sql, parameters)))
            return self._run(sql, parameters)
        return self._with_retry(lambda: self._run(sql, parameters), sql)

    def register(self, name: str, data: Any) -> duckdb.DuckDBPyConnection:
        """Register ``data`` as a view, recording it while a transaction is open."""
        if self._transaction is not None:
            self._transaction.append(("register", (name, data)))
            if isinstance(data, pa.RecordBatchReader):
                self._one_shot = True
        return self._con.register(name, data)

    def unregister(self, name: str) -> duckdb.DuckDBPyConnection:
        """Drop a registered view, recording it while a transaction is open."""
        if self._transaction is not None:
            self._transaction.append(("unregister", (name,)))
        return self._con.unregister(name)

    def rerun_on_conflict(self, work: Callable[[], T]) -> T:
        """Run ``work`` (BEGIN, reads, Python, writes, COMMIT), and run it again from the start
        when its COMMIT conflicts, so what it writes is computed from the snapshot it commits on."""
        for attempt in range(1, self._max_attempts + 1):
            self._replay = False
            try:
                return work()
            except duckdb.Error as exc:
                if not _is_conflict(exc) or attempt == self._max_attempts:
                    raise
                self._rollback_quietly()
                self._wait_before_retry(attempt, "transaction rerun", exc)
            finally:
                self._replay = True
        raise AssertionError("unreachable")

    def _run(self, sql: str, parameters: Any) -> duckdb.DuckDBPyConnection:
        return self._con.execute(sql) if parameters is None else self._con.execute(sql, parameters)

    def _commit(self, sql: str) -> duckdb.DuckDBPyConnection:
        recorded = self._transaction or []
        self._transaction = None
        if not self._replay:
            return self._con.execute(sql)
        if self._one_shot:
            try:
                return self._con.execute(sql)
            except duckdb.Error as exc:
                if not _is_conflict(exc):
                    raise
                raise RuntimeError(
                    f"DuckLake commit conflict in a transaction that read a stream, which cannot be "
                    f"replayed; run it through rerun_on_conflict: {exc}"
                ) from exc

        attempts = 0

        def replay_and_commit() -> duckdb.DuckDBPyConnection:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                self._con.execute("BEGIN TRANSACTION")
                for kind, arguments in recorded:
                    if kind == "execute":
                        self._run(*arguments)
                    elif kind == "register":
                        self._con.register(*arguments)
                    else:
                        self._con.unregister(*arguments)
            return self._con.execute(sql)

        return self._with_retry(replay_and_commit, "transaction")

    def _with_retry(self, action: Any, description: str) -> duckdb.DuckDBPyConnection:
        for attempt in range(1, self._max_attempts + 1):
            try:
                return action()
            except duckdb.Error as exc:
                if not _is_conflict(exc) or attempt == self._max_attempts:
                    raise
                self._rollback_quietly()
                self._wait_before_retry(attempt, description, exc)
        raise AssertionError("unreachable")

    def _wait_before_retry(self, attempt: int, description: str, exc: duckdb.Error) -> None:
        delay = self._base_delay * 2 ** (attempt - 1) * random.uniform(0.5, 1.5)
        logger.warning(
            "event=ducklake_conflict attempt=%d of=%d retry_in=%.2fs statement=%s error=%s",
            attempt, self._max_attempts, delay, description.strip().splitlines()[0][:80],
            str(exc).strip().splitlines()[-1],
        )
        time.sleep(delay)

    def _rollback_quietly(self) -> None:
        # A failed COMMIT has already ended the transaction, so ROLLBACK may find none.
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            pass

    def close(self) -> None:
        """Close the wrapped connection."""
        self._con.close()
