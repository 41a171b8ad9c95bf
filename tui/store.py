"""The job history: every submitted job in SQLite (WAL), so no job id or result is ever lost.

Imports no Textual. A row is written *before* a submission is sent (status SUBMITTING) and
replaced by the real job the moment the server answers, before anything is shown or printed:
a process killed at any point leaves either the job or a record that its outcome is unknown.
Outputs live in their own column and are loaded only when a job is opened.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api.models import UNKNOWN, Job

SUBMITTING = "SUBMITTING"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    endpoint      TEXT NOT NULL,
    id            TEXT NOT NULL,
    endpoint_url  TEXT NOT NULL DEFAULT '',
    kind          TEXT NOT NULL DEFAULT '',
    status        TEXT NOT NULL,
    sync          INTEGER NOT NULL DEFAULT 0,
    closed        INTEGER NOT NULL DEFAULT 0,
    note          TEXT NOT NULL DEFAULT '',
    submitted_at  REAL NOT NULL,
    updated_at    REAL NOT NULL,
    ended_at      REAL,
    delay_ms      REAL,
    execution_ms  REAL,
    worker_id     TEXT,
    retries       INTEGER,
    input         TEXT,
    error         TEXT,
    raw           TEXT NOT NULL DEFAULT '{}',
    output        TEXT,
    output_size   INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (endpoint, id)
);
CREATE INDEX IF NOT EXISTS jobs_submitted ON jobs (submitted_at);
CREATE INDEX IF NOT EXISTS jobs_open ON jobs (closed, status);
"""

_LIST_COLUMNS = (
    "endpoint, id, endpoint_url, kind, status, sync, closed, note, submitted_at, updated_at, "
    "ended_at, delay_ms, execution_ms, worker_id, retries, input, error, raw, output_size"
)


@dataclass
class Retention:
    """How much history to keep: the newest ``keep`` jobs, none older than ``max_age_days``."""

    keep: int = 10_000
    max_age_days: float = 30.0


def default_history_path(demo: bool = False) -> Path:
    from .config import default_data_dir

    return default_data_dir() / ("demo-history.sqlite3" if demo else "history.sqlite3")


def _dumps(value: Any) -> str | None:
    if value is None:
        return None
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _loads(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


class JobStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Create the file private before SQLite opens it; SQLite gives its -wal and -shm
            # files the database's permissions.
            fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o600)
            os.close(fd)
            os.chmod(self.path, 0o600)
        self.db = sqlite3.connect(
            str(path), isolation_level=None, check_same_thread=False, timeout=10.0
        )
        self.db.execute("PRAGMA journal_mode=WAL")
        # NORMAL is durable across a killed process (not a power cut) and much faster.
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(_SCHEMA)
        self.db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def close(self) -> None:
        self.db.close()

    # -- writing

    def add_pending(
        self, endpoint: str, endpoint_url: str, kind: str, job_input: Any, sync: bool
    ) -> str:
        """Record a submission about to be sent; returns its placeholder id."""
        now = time.time()
        placeholder = f"pending-{os.getpid()}-{time.monotonic_ns()}"
        self.db.execute(
            "INSERT INTO jobs (endpoint, id, endpoint_url, kind, status, sync, submitted_at, "
            "updated_at, input, note) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                endpoint,
                placeholder,
                endpoint_url,
                kind,
                SUBMITTING,
                int(sync),
                now,
                now,
                _dumps(job_input),
                "sent; no answer came back before the process ended",
            ),
        )
        return placeholder

    def resolve_pending(self, placeholder: str, job: Job) -> None:
        """The server answered: the placeholder becomes the real job, in one transaction."""
        with self._transaction():
            row = self.db.execute(
                "SELECT endpoint_url, kind FROM jobs WHERE endpoint = ? AND id = ?",
                (job.endpoint, placeholder),
            ).fetchone()
            self.db.execute(
                "DELETE FROM jobs WHERE endpoint = ? AND id = ?", (job.endpoint, placeholder)
            )
            if row is not None:
                job.endpoint_url, job.endpoint_kind = row
            self._upsert(job)

    def fail_pending(self, endpoint: str, placeholder: str, reason: str, unknown: bool) -> None:
        """The submission failed: drop it if it surely never started, else keep it UNKNOWN."""
        if not unknown:
            self.db.execute(
                "DELETE FROM jobs WHERE endpoint = ? AND id = ?", (endpoint, placeholder)
            )
            return
        now = time.time()
        self.db.execute(
            "UPDATE jobs SET status = ?, closed = 1, note = ?, updated_at = ?, ended_at = ? "
            "WHERE endpoint = ? AND id = ?",
            (UNKNOWN, reason, now, now, endpoint, placeholder),
        )

    def save(self, job: Job) -> None:
        self._upsert(job)

    def save_many(self, jobs: Iterable[Job]) -> None:
        """One transaction for a poll round's changes."""
        with self._transaction():
            for job in jobs:
                self._upsert(job)

    def _upsert(self, job: Job) -> None:
        raw = {k: v for k, v in job.raw.items() if k != "output"}
        output = _dumps(job.output) if "output" in job.raw else None
        keep = job.output_pending
        values = (
            job.endpoint,
            job.id,
            job.endpoint_url,
            job.endpoint_kind,
            job.status,
            int(job.sync),
            int(job.closed),
            job.note,
            job.submitted_at,
            job.updated_at,
            job.ended_at,
            job.delay_ms,
            job.execution_ms,
            job.worker_id,
            job.retries,
            _dumps(job.input),
            _dumps(job.error),
            _dumps(raw) or "{}",
            output,
            len(output) if output else 0,
        )
        self.db.execute(
            "INSERT INTO jobs (endpoint, id, endpoint_url, kind, status, sync, closed, note, "
            "submitted_at, updated_at, ended_at, delay_ms, execution_ms, worker_id, retries, "
            "input, error, raw, output, output_size) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (endpoint, id) DO UPDATE SET "
            "endpoint_url = CASE WHEN excluded.endpoint_url = '' THEN endpoint_url "
            "ELSE excluded.endpoint_url END, "
            "kind = CASE WHEN excluded.kind = '' THEN kind ELSE excluded.kind END, "
            "status = excluded.status, sync = excluded.sync, "
            "closed = excluded.closed, note = excluded.note, updated_at = excluded.updated_at, "
            "ended_at = excluded.ended_at, delay_ms = excluded.delay_ms, "
            "execution_ms = excluded.execution_ms, worker_id = excluded.worker_id, "
            "retries = excluded.retries, input = COALESCE(excluded.input, input), "
            "error = excluded.error, raw = excluded.raw, "
            # An output still in the database (not loaded) must survive a status update.
            f"output = {'output' if keep else 'excluded.output'}, "
            f"output_size = {'output_size' if keep else 'excluded.output_size'}",
            values,
        )

    def delete(self, endpoint: str, job_id: str) -> bool:
        cursor = self.db.execute(
            "DELETE FROM jobs WHERE endpoint = ? AND id = ?", (endpoint, job_id)
        )
        return cursor.rowcount > 0

    def prune(self, retention: Retention, now: float | None = None) -> int:
        """Apply the retention setting; unfinished jobs are never pruned."""
        now = time.time() if now is None else now
        cutoff = now - retention.max_age_days * 86400
        with self._transaction():
            removed = self.db.execute(
                "DELETE FROM jobs WHERE submitted_at < ? AND (closed = 1 OR status IN "
                "('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT'))",
                (cutoff,),
            ).rowcount
            removed += self.db.execute(
                "DELETE FROM jobs WHERE rowid IN (SELECT rowid FROM jobs ORDER BY submitted_at "
                "DESC LIMIT -1 OFFSET ?)",
                (max(retention.keep, 0),),
            ).rowcount
        return removed

    # -- reading

    def jobs(
        self,
        endpoint: str | None = None,
        status: str | None = None,
        limit: int | None = None,
        newest_first: bool = True,
    ) -> list[Job]:
        """History without outputs (see ``load_output``)."""
        where, args = [], []
        if endpoint:
            where.append("endpoint = ?")
            args.append(endpoint)
        if status:
            where.append("status = ?")
            args.append(status.upper())
        sql = f"SELECT {_LIST_COLUMNS} FROM jobs"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY submitted_at " + ("DESC" if newest_first else "ASC")
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [self._job(row) for row in self.db.execute(sql, args)]

    def unfinished(self) -> list[Job]:
        """Jobs to resume polling: not final, and really submitted."""
        rows = self.db.execute(
            f"SELECT {_LIST_COLUMNS} FROM jobs WHERE closed = 0 AND status NOT IN "
            "('COMPLETED', 'FAILED', 'CANCELLED', 'TIMED_OUT', ?) ORDER BY submitted_at",
            (SUBMITTING,),
        )
        return [self._job(row) for row in rows]

    def interrupted(self) -> list[Job]:
        """Submissions a killed process left without an answer: their outcome is unknown."""
        rows = self.db.execute(f"SELECT {_LIST_COLUMNS} FROM jobs WHERE status = ?", (SUBMITTING,))
        return [self._job(row) for row in rows]

    def load_output(self, endpoint: str, job_id: str) -> Any:
        """Read one output; safe from a worker thread (its own short-lived connection)."""
        memory = str(self.path) == ":memory:"
        db = self.db if memory else sqlite3.connect(str(self.path), timeout=10.0)
        try:
            row = db.execute(
                "SELECT output FROM jobs WHERE endpoint = ? AND id = ?", (endpoint, job_id)
            ).fetchone()
        finally:
            if not memory:
                db.close()
        return None if row is None else _loads(row[0])

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM jobs").fetchone()[0])

    def _job(self, row: tuple[Any, ...]) -> Job:
        (
            endpoint,
            job_id,
            endpoint_url,
            kind,
            status,
            sync,
            closed,
            note,
            submitted_at,
            updated_at,
            ended_at,
            delay_ms,
            execution_ms,
            worker_id,
            retries,
            job_input,
            error,
            raw,
            output_size,
        ) = row
        job = Job(
            endpoint=endpoint,
            id=job_id,
            status=status,
            input=_loads(job_input),
            sync=bool(sync),
            submitted_at=submitted_at,
            updated_at=updated_at,
            ended_at=ended_at,
            raw=_loads(raw) or {},
            error=_loads(error),
            delay_ms=delay_ms,
            execution_ms=execution_ms,
            worker_id=worker_id,
            retries=retries,
            note=note,
            closed=bool(closed),
        )
        job.output_size = int(output_size or 0)
        job.endpoint_url = endpoint_url
        job.endpoint_kind = kind
        return job

    # -- plumbing

    def _transaction(self) -> _Transaction:
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type else "COMMIT")
