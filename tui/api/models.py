"""Endpoints, jobs and answers: plain data, no I/O."""

from __future__ import annotations

import ipaddress
import json
import re
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit


class EndpointKind(StrEnum):
    QUEUE = "queue"
    LB = "lb"
    WORKER = "worker"

    @property
    def label(self) -> str:
        return {"queue": "queue", "lb": "load-balanced", "worker": "local worker"}[self.value]


@dataclass(frozen=True)
class Route:
    """A load-balanced route worth offering (``POST /echo``)."""

    method: str
    path: str
    example_body: dict[str, Any] | None = None
    title: str = ""


@dataclass
class Endpoint:
    """Where to send requests, and in which dialect.

    ``url`` is the base every route hangs off: ``https://api.runpod.ai/v2/ID`` (queue),
    ``https://ID.api.runpod.ai`` (load-balanced), ``http://localhost:8000`` (local worker).
    """

    name: str
    kind: EndpointKind
    url: str
    routes: list[Route] = field(default_factory=list)
    example_input: dict[str, Any] | None = None
    # A key for this endpoint alone (the in-process sandbox); never saved, never shown.
    api_key: str | None = field(default=None, repr=False, compare=False)
    # Send the key over plain http to a host that is not loopback (off unless asked).
    allow_insecure: bool = False
    source: str = "config"

    def __post_init__(self) -> None:
        self.url = self.url.rstrip("/")
        self.kind = EndpointKind(self.kind)

    @property
    def endpoint_id(self) -> str:
        """The Runpod endpoint id, as well as the URL tells it."""
        parts = urlsplit(self.url)
        if self.kind is EndpointKind.QUEUE or "/lb/" in parts.path:
            return parts.path.rstrip("/").rsplit("/", 1)[-1]
        host = parts.hostname or ""
        if host.endswith(".api.runpod.ai"):
            return host.split(".", 1)[0]
        return self.name

    @property
    def key_is_safe_to_send(self) -> bool:
        """Only https, or plain http to loopback, unless the user opted in."""
        parts = urlsplit(self.url)
        if parts.scheme == "https" or self.allow_insecure:
            return True
        return is_loopback(parts.hostname or "")


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_V2 = re.compile(r"/v2/([^/]+)/?$")
_LB_PATH = re.compile(r"/lb/([^/]+)/?$")


def guess_kind(url: str) -> EndpointKind | None:
    """The kind a URL says: ``.../v2/ID`` queue; ``ID.api.runpod.ai`` or ``.../lb/ID`` lb."""
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        return None
    if _V2.search(parts.path):
        return EndpointKind.QUEUE
    if (parts.hostname or "").endswith(".api.runpod.ai") or _LB_PATH.search(parts.path):
        return EndpointKind.LB
    return None


# --- jobs --------------------------------------------------------------------------------

IN_QUEUE = "IN_QUEUE"
IN_PROGRESS = "IN_PROGRESS"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
CANCELLED = "CANCELLED"
TIMED_OUT = "TIMED_OUT"
#: Not a Runpod status: the server no longer knows the job (404 past ttl or retention).
EXPIRED = "EXPIRED"
#: Not a Runpod status: we could not learn whether a submission reached the server.
UNKNOWN = "UNKNOWN"

TERMINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED, TIMED_OUT})
#: Runpod statuses that end a retry-able job.
RETRYABLE_STATUSES = frozenset({FAILED, TIMED_OUT})

_ANSWER_FIELDS = {
    "status": "status",
    "output": "output",
    "error": "error",
    "delayTime": "delay_ms",
    "executionTime": "execution_ms",
    "workerId": "worker_id",
    "retries": "retries",
}


@dataclass
class WorkerError:
    """The worker SDK's JSON error string, decoded."""

    type: str
    message: str
    traceback: str
    extra: dict[str, Any]


def decode_error(error: Any) -> WorkerError | None:
    """Decode ``{"error_type", "error_message", "error_traceback"}`` when the error is one."""
    data = error
    if isinstance(error, str):
        text = error.strip()
        if not text.startswith("{"):
            return None
        try:
            data = json.loads(text)
        except (ValueError, RecursionError):
            return None
    if not isinstance(data, dict) or not ({"error_type", "error_message"} & data.keys()):
        return None
    extra = {
        k: v for k, v in data.items() if k not in ("error_type", "error_message", "error_traceback")
    }
    return WorkerError(
        type=str(data.get("error_type", "")),
        message=str(data.get("error_message", "")),
        traceback=str(data.get("error_traceback", "") or ""),
        extra=extra,
    )


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    return None


@dataclass
class Job:
    """Everything known about one submitted job.

    ``raw`` merges every field of every answer, unknown ones included, so nothing the server
    said is dropped; the typed attributes are views of it for the table.
    """

    endpoint: str
    id: str
    status: str = IN_QUEUE
    input: Any = None
    sync: bool = False
    submitted_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    ended_at: float | None = None
    raw: dict[str, Any] = field(default_factory=dict)
    output: Any = None
    error: Any = None
    delay_ms: float | None = None
    execution_ms: float | None = None
    worker_id: str | None = None
    retries: int | None = None
    note: str = ""
    #: Set by ``mark``: flash-tui itself closed the job (expired, outcome unknown). A server
    #: that sends a status named EXPIRED does not close it: unknown statuses stay open.
    closed: bool = False
    #: Size of an output kept in the history but not loaded yet (0: none, or loaded).
    output_size: int = 0
    #: Where the job was sent, kept in the history so any process can poll it later.
    endpoint_url: str = ""
    endpoint_kind: str = ""
    #: Chunks read from ``/stream`` so far (the server hands each one out once).
    stream_chunks: list[Any] = field(default_factory=list)

    @property
    def output_pending(self) -> bool:
        """The output is in the history database, to be loaded when the job is opened."""
        return self.output_size > 0 and "output" not in self.raw

    @property
    def is_final(self) -> bool:
        """Nothing more will change: stop polling."""
        return self.closed or self.status in TERMINAL_STATUSES

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES

    @property
    def worker_error(self) -> WorkerError | None:
        return decode_error(self.error)

    def apply(self, answer: dict[str, Any], now: float | None = None) -> set[str]:
        """Merge a server answer; return the names of the fields that changed."""
        now = time.time() if now is None else now
        changed: set[str] = set()
        for key, value in answer.items():
            if key == "id" and value != self.id:
                continue  # a different id is not ours to adopt
            if self.raw.get(key, _MISSING) != value:
                self.raw[key] = value
                changed.add(_ANSWER_FIELDS.get(key, "raw"))
        if "status" in changed:
            status = answer.get("status")
            self.status = str(status) if status is not None else self.status
            if status == IN_QUEUE and self.ended_at is not None and not self.closed:
                # Back in the queue after a retry: the old result is gone.
                self.ended_at = None
                for key in ("output", "error"):
                    if key not in answer:
                        self.raw.pop(key, None)
                        setattr(self, key, None)
                        changed.add(key)
        for key, attr in _ANSWER_FIELDS.items():
            if key == "status" or key not in answer:
                continue
            value = answer[key]
            if attr in ("delay_ms", "execution_ms"):
                value = _number(value)
            elif attr == "retries":
                is_int = isinstance(value, int) and not isinstance(value, bool)
                value = value if is_int else None
            elif attr == "worker_id":
                value = None if value is None else str(value)
            setattr(self, attr, value)
        if changed:
            self.updated_at = now
        if self.is_final and self.ended_at is None:
            self.ended_at = now
            changed.add("ended_at")
        return changed

    def mark(self, status: str, note: str, now: float | None = None) -> None:
        """Set one of flash-tui's own statuses (expired, unknown) with a reason."""
        now = time.time() if now is None else now
        self.status = status
        self.note = note
        self.closed = True
        self.updated_at = now
        if self.ended_at is None:
            self.ended_at = now


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Any = _Missing()


# --- submission options ------------------------------------------------------------------

DAY_MS = 86_400_000


@dataclass
class SubmitOptions:
    """The optional parts of a /run or /runsync body besides ``input``."""

    webhook: str | None = None
    execution_timeout_ms: int | None = None
    ttl_ms: int | None = None
    low_priority: bool = False

    def policy(self) -> dict[str, Any] | None:
        policy: dict[str, Any] = {}
        if self.execution_timeout_ms is not None:
            policy["executionTimeout"] = self.execution_timeout_ms
        if self.ttl_ms is not None:
            policy["ttl"] = self.ttl_ms
        if self.low_priority:
            policy["lowPriority"] = True
        return policy or None

    def problems(self) -> dict[str, str]:
        """Runpod's limits, checked before anything is sent."""
        out = {}
        if self.webhook and not self.webhook.startswith(("http://", "https://")):
            out["webhook"] = "The webhook must be an http:// or https:// URL."
        timeout = self.execution_timeout_ms
        if timeout is not None and not 5_000 <= timeout <= 7 * DAY_MS:
            out["execution_timeout"] = "executionTimeout must be between 5 s and 7 days."
        if self.ttl_ms is not None and not 10_000 <= self.ttl_ms <= 7 * DAY_MS:
            out["ttl"] = "ttl must be between 10 s and 7 days."
        return out

    def describe(self) -> str:
        parts = []
        if self.webhook:
            parts.append("webhook")
        if self.execution_timeout_ms is not None:
            parts.append(f"timeout {self.execution_timeout_ms / 1000:g} s")
        if self.ttl_ms is not None:
            parts.append(f"ttl {self.ttl_ms / 1000:g} s")
        if self.low_priority:
            parts.append("low priority")
        return ", ".join(parts)


# --- other answers -----------------------------------------------------------------------


@dataclass
class RouteAnswer:
    """What a load-balanced route answered, kept whole for the route panel."""

    method: str
    url: str
    status_code: int
    reason: str
    headers: list[tuple[str, str]]
    text: str
    elapsed_s: float
    size: int
    json: Any = None
    is_json: bool = False

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


WORKER_STATES = ("idle", "running", "initializing", "ready", "throttled", "unhealthy")
JOB_COUNTS = ("completed", "failed", "inProgress", "inQueue", "retried")


@dataclass
class Health:
    jobs: dict[str, int]
    workers: dict[str, int]
    raw: dict[str, Any]

    @classmethod
    def from_answer(cls, answer: dict[str, Any]) -> Health:
        def counts(section: Any, names: tuple[str, ...]) -> dict[str, int]:
            out = {name: 0 for name in names}
            if isinstance(section, dict):
                for key, value in section.items():
                    if isinstance(value, int) and not isinstance(value, bool):
                        out[key] = value
            return out

        return cls(
            jobs=counts(answer.get("jobs"), JOB_COUNTS),
            workers=counts(answer.get("workers"), WORKER_STATES),
            raw=answer,
        )

    @property
    def healthy(self) -> bool:
        w = self.workers
        ready = w.get("idle", 0) + w.get("running", 0) + w.get("ready", 0)
        return ready > 0 or w.get("unhealthy", 0) == 0

    def diagnosis(self) -> str | None:
        """Why jobs wait, in plain words, when the workers are the reason (None otherwise)."""
        j, w = self.jobs, self.workers
        waiting = j.get("inQueue", 0)
        if not waiting:
            return None
        working = w.get("idle", 0) + w.get("running", 0) + w.get("ready", 0)
        unhealthy, throttled = w.get("unhealthy", 0), w.get("throttled", 0)
        starting = w.get("initializing", 0)
        if unhealthy and not working:
            return (
                f"{waiting} job(s) are queued because workers keep failing "
                f"({unhealthy} unhealthy), not for lack of capacity."
            )
        if throttled and not working:
            return (
                f"{waiting} job(s) are queued because the workers are throttled "
                f"({throttled}): the GPUs they need are not available right now."
            )
        if starting and not working:
            return f"{waiting} job(s) are queued while {starting} worker(s) start up (cold start)."
        if not (working or starting or unhealthy or throttled):
            return f"{waiting} job(s) are queued and no worker is running: is max workers 0?"
        return None

    def summary(self) -> str:
        j, w = self.jobs, self.workers
        return (
            f"{j.get('inQueue', 0)} queued, {j.get('inProgress', 0)} running; "
            f"workers {w.get('running', 0)} busy, {w.get('idle', 0)} idle"
            + (f", {w['unhealthy']} unhealthy" if w.get("unhealthy") else "")
            + (f", {w['throttled']} throttled" if w.get("throttled") else "")
        )
