"""Job lifecycle of the sandbox's queue endpoints: queues, workers, timeouts, retention.

No HTTP here: `app.py` turns requests into calls on `Engine`. Everything runs on one asyncio
loop, so there are no locks; a job's `token` changes whenever its current run or queue entry
stops counting, which lets stale tasks and queue entries recognise themselves cheaply.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import secrets
import string
import time
import traceback
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

# The statuses are the API's own: the sandbox and the client share one definition.
from tui.api.models import (
    CANCELLED,
    COMPLETED,
    FAILED,
    IN_PROGRESS,
    IN_QUEUE,
    TIMED_OUT,
)
from tui.api.models import RETRYABLE_STATUSES as RETRYABLE
from tui.api.models import TERMINAL_STATUSES as TERMINAL

DEFAULT_EXECUTION_TIMEOUT_MS = 600_000
DEFAULT_TTL_MS = 86_400_000
# The worker SDK version the fake error payloads claim, matching the SDK the project tests with.
RUNPOD_VERSION = "1.12.0"

_NO_OUTPUT: Any = object()
_ID_ALPHABET = string.ascii_lowercase + string.digits


class JobFailure(Exception):
    """Raised by a handler to fail with an error shaped the way it chooses (type, traceback)."""

    def __init__(self, error_type: str, message: str, traceback_text: str) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.traceback_text = traceback_text


def worker_error(error_type: str, message: str, traceback_text: str, worker_id: str) -> str:
    """The error string the Python worker SDK reports: a JSON document inside a string."""
    return json.dumps(
        {
            "error_type": error_type,
            "error_message": message,
            "error_traceback": traceback_text,
            # On Runpod the pod hostname is the pod id, which is also the worker id.
            "hostname": worker_id,
            "worker_id": worker_id,
            "runpod_version": RUNPOD_VERSION,
        }
    )


@dataclass(eq=False, slots=True)
class Worker:
    id: str
    job: Job | None = None


@dataclass(eq=False, slots=True)
class Job:
    id: str
    endpoint_id: str
    input: dict[str, Any]
    execution_timeout_s: float
    ttl_s: float
    sync: bool
    queued_at: float
    webhook: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)
    status: str = IN_QUEUE
    # When the job is deleted: the ttl while it waits or runs, the retention once terminal.
    deadline: float = 0.0
    started_at: float | None = None
    finished_at: float | None = None
    worker_id: str | None = None
    worker: Worker | None = None
    output: Any = _NO_OUTPUT
    error: str | None = None
    retries: int = 0
    chunks: list[Any] = field(default_factory=list)
    stream_cursor: int = 0
    token: int = 0
    gone: bool = False
    task: asyncio.Task[None] | None = None
    # Created only when someone long-polls, so 10,000 queued jobs cost no events.
    settled: asyncio.Event | None = None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL


class JobContext:
    """What a handler sees of its job: the input, and ways to report progress and chunks."""

    __slots__ = ("_job", "_token", "attempt", "input", "time_scale", "worker_id")

    def __init__(self, job: Job, worker_id: str, time_scale: float) -> None:
        self._job = job
        self._token = job.token
        self.input = job.input
        self.attempt = job.retries + 1
        self.worker_id = worker_id
        self.time_scale = time_scale

    @property
    def _current(self) -> bool:
        # A cancelled or expired run must not touch the job (it may already be retried).
        return self._job.token == self._token and not self._job.gone

    def set_progress(self, output: Any) -> None:
        """Show `output` while the job runs, as Runpod's progress updates do."""
        if self._current:
            self._job.output = output

    def emit(self, chunk: Any) -> None:
        """Add one stream chunk, readable through /stream."""
        if self._current:
            self._job.chunks.append(chunk)


Handler = Callable[[JobContext], Awaitable[Any]]


class QueueEndpoint:
    """One queue-based endpoint: its jobs, FIFO queue, workers and health counters."""

    def __init__(self, endpoint_id: str, handler: Handler, workers: int) -> None:
        self.id = endpoint_id
        self.handler = handler
        self.jobs: dict[str, Job] = {}
        # Entries are (job, token); cancelled or purged jobs are skipped when popped, so
        # removing a job from the middle of the queue costs O(1).
        self.queue: deque[tuple[Job, int]] = deque()
        self.workers = [Worker(_worker_id(endpoint_id)) for _ in range(max(1, workers))]
        # Round-robin over idle workers so consecutive jobs show different worker ids.
        self.idle: deque[Worker] = deque(self.workers)
        self.in_queue = 0
        self.in_progress = 0
        self.completed = 0
        self.failed = 0
        self.retried = 0


def _worker_id(endpoint_id: str) -> str:
    suffix = "".join(secrets.choice(_ID_ALPHABET) for _ in range(8))
    return f"sandbox-{endpoint_id}-{suffix}"


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


class Engine:
    """All queue endpoints of a sandbox and the jobs they hold."""

    def __init__(
        self,
        handlers: Mapping[str, Handler],
        *,
        workers: int = 2,
        time_scale: float = 1.0,
        run_retention_s: float = 1800.0,
        runsync_retention_s: float = 60.0,
        sweep_interval_s: float = 1.0,
    ) -> None:
        self.endpoints = {name: QueueEndpoint(name, h, workers) for name, h in handlers.items()}
        self.time_scale = time_scale
        self.run_retention_s = run_retention_s
        self.runsync_retention_s = runsync_retention_s
        self.sweep_interval_s = sweep_interval_s
        # (deadline, seq, endpoint id, job id); entries go stale when a deadline moves and are
        # ignored when popped. Ids rather than jobs, so a stale entry never pins a job's output.
        self._deadlines: list[tuple[float, int, str, str]] = []
        self._seq = 0
        self._sweeper: asyncio.Task[None] | None = None
        self._closed = False

    # ---- lookups -------------------------------------------------------------------------

    def endpoint(self, endpoint_id: str) -> QueueEndpoint | None:
        return self.endpoints.get(endpoint_id)

    def get(self, ep: QueueEndpoint, job_id: str) -> Job | None:
        """The job, or None if unknown or past its deadline (checked here too, not only by
        the sweeper, so a client never sees a job after its ttl)."""
        job = ep.jobs.get(job_id)
        if job is not None and time.monotonic() >= job.deadline:
            self._delete(ep, job)
            return None
        return job

    # ---- commands ------------------------------------------------------------------------

    def submit(
        self,
        ep: QueueEndpoint,
        job_input: dict[str, Any],
        *,
        execution_timeout_ms: float = DEFAULT_EXECUTION_TIMEOUT_MS,
        ttl_ms: float = DEFAULT_TTL_MS,
        webhook: str | None = None,
        sync: bool = False,
        extras: dict[str, Any] | None = None,
    ) -> Job:
        self._ensure_sweeper()
        now = time.monotonic()
        job = Job(
            id=f"{uuid.uuid4()}-u1",
            endpoint_id=ep.id,
            input=job_input,
            execution_timeout_s=execution_timeout_ms / 1000,
            ttl_s=ttl_ms / 1000,
            sync=sync,
            queued_at=now,
            webhook=webhook,  # stored only: the sandbox never calls out
            extras=extras or {},
        )
        ep.jobs[job.id] = job
        self._enqueue(ep, job, now)
        return job

    def cancel(self, ep: QueueEndpoint, job: Job) -> None:
        """Cancel a queued or running job; a terminal job is left as it is."""
        if job.terminal or job.gone:
            return
        task = job.task
        self._settle(ep, job, CANCELLED)
        if task is not None:
            task.cancel()

    def retry(self, ep: QueueEndpoint, job: Job) -> None:
        """Queue a FAILED or TIMED_OUT job again under the same id."""
        if job.status not in RETRYABLE:
            raise ValueError(
                f"only FAILED or TIMED_OUT jobs can be retried; this job is {job.status}"
            )
        ep.retried += 1
        job.retries += 1
        job.output = _NO_OUTPUT
        job.error = None
        job.chunks = []
        job.stream_cursor = 0
        job.started_at = None
        job.finished_at = None
        job.worker_id = None
        now = time.monotonic()
        job.queued_at = now
        self._enqueue(ep, job, now)

    def purge(self, ep: QueueEndpoint) -> int:
        """Delete every queued job (running ones carry on); answers how many went."""
        removed = 0
        while ep.queue:
            job, token = ep.queue.popleft()
            if job.token == token and job.status == IN_QUEUE and not job.gone:
                self._delete(ep, job)
                removed += 1
        return removed

    def take_stream(self, job: Job) -> list[Any]:
        """Chunks produced since the previous call (Runpod's /stream cursor)."""
        new = job.chunks[job.stream_cursor :]
        job.stream_cursor = len(job.chunks)
        return new

    async def wait_settled(self, job: Job, timeout_s: float) -> None:
        """Return once the job is terminal or deleted, or after `timeout_s`."""
        if job.terminal or job.gone or timeout_s <= 0 or self._closed:
            return
        if job.settled is None:
            job.settled = asyncio.Event()
        event = job.settled
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await event.wait()

    # ---- views ---------------------------------------------------------------------------

    def answer(self, job: Job) -> dict[str, Any]:
        """The job as /status shows it; optional fields appear once they mean something."""
        body: dict[str, Any] = {"id": job.id, "status": job.status}
        if job.started_at is not None:
            body["delayTime"] = _ms(job.started_at - job.queued_at)
            end = job.finished_at if job.finished_at is not None else time.monotonic()
            body["executionTime"] = _ms(end - job.started_at)
        if job.worker_id is not None:
            body["workerId"] = job.worker_id
        if job.output is not _NO_OUTPUT:
            body["output"] = job.output
        if job.error is not None:
            body["error"] = job.error
        if job.retries:
            body["retries"] = job.retries
        return body

    def health(self, ep: QueueEndpoint) -> dict[str, Any]:
        idle = len(ep.idle)
        return {
            "jobs": {
                "completed": ep.completed,
                "failed": ep.failed,
                "inProgress": ep.in_progress,
                "inQueue": ep.in_queue,
                "retried": ep.retried,
            },
            "workers": {
                "idle": idle,
                "running": len(ep.workers) - idle,
                "initializing": 0,
                "ready": idle,
                "throttled": 0,
                "unhealthy": 0,
            },
        }

    # ---- lifecycle -----------------------------------------------------------------------

    def start(self) -> None:
        """Start the retention sweeper on the running loop (also done on first submit)."""
        self._closed = False
        self._ensure_sweeper()

    def close(self) -> None:
        """Stop the sweeper, cancel running handlers and wake every long-poll (shutdown)."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        for ep in self.endpoints.values():
            for job in ep.jobs.values():
                if job.task is not None:
                    job.token += 1
                    job.task.cancel()
                    job.task = None
                self._wake(job)

    def sweep(self, now: float | None = None) -> int:
        """Delete jobs whose deadline has passed; answers how many."""
        now = time.monotonic() if now is None else now
        removed = 0
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, ep_id, job_id = heapq.heappop(heap)
            ep = self.endpoints[ep_id]
            job = ep.jobs.get(job_id)
            if job is not None and job.deadline == deadline:
                self._delete(ep, job)
                removed += 1
        return removed

    # ---- internals -----------------------------------------------------------------------

    def _ensure_sweeper(self) -> None:
        loop = asyncio.get_running_loop()
        sweeper = self._sweeper
        # A sweeper from a loop that has since gone (tests driving the app with several
        # asyncio.run calls) is replaced rather than trusted.
        if sweeper is None or sweeper.done() or sweeper.get_loop() is not loop:
            self._sweeper = loop.create_task(self._sweep_forever())

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval_s)
            self.sweep()

    def _set_deadline(self, ep: QueueEndpoint, job: Job, deadline: float) -> None:
        job.deadline = deadline
        self._seq += 1
        heapq.heappush(self._deadlines, (deadline, self._seq, ep.id, job.id))

    def _enqueue(self, ep: QueueEndpoint, job: Job, now: float) -> None:
        job.status = IN_QUEUE
        job.token += 1
        self._set_deadline(ep, job, now + job.ttl_s)
        ep.in_queue += 1
        ep.queue.append((job, job.token))
        self._dispatch(ep)

    def _dispatch(self, ep: QueueEndpoint) -> None:
        while ep.idle and ep.queue:
            job, token = ep.queue.popleft()
            if job.token != token or job.status != IN_QUEUE or job.gone:
                continue
            if time.monotonic() >= job.deadline:
                self._delete(ep, job)
                continue
            self._start(ep, ep.idle.popleft(), job)

    def _start(self, ep: QueueEndpoint, worker: Worker, job: Job) -> None:
        ep.in_queue -= 1
        ep.in_progress += 1
        job.status = IN_PROGRESS
        job.started_at = time.monotonic()
        job.worker_id = worker.id
        job.worker = worker
        worker.job = job
        job.task = asyncio.get_running_loop().create_task(self._execute(ep, job, worker.id))

    async def _execute(self, ep: QueueEndpoint, job: Job, worker_id: str) -> None:
        token = job.token
        ctx = JobContext(job, worker_id, self.time_scale)
        assert job.started_at is not None
        exec_deadline = job.started_at + job.execution_timeout_s
        ttl_deadline = job.queued_at + job.ttl_s
        limit = min(exec_deadline, ttl_deadline)
        scope = asyncio.timeout(max(0.0, limit - time.monotonic()))
        try:
            async with scope:
                output = await ep.handler(ctx)
        except asyncio.CancelledError:
            if job.token != token:
                return  # the engine settled the job already (cancel, ttl, shutdown)
            raise
        except TimeoutError as exc:
            if job.token != token:
                return
            if scope.expired():
                if ttl_deadline <= exec_deadline:
                    self._delete(ep, job)
                else:
                    ms = _ms(job.execution_timeout_s)
                    self._settle(
                        ep, job, TIMED_OUT, error=f"job exceeded its executionTimeout of {ms} ms"
                    )
            else:  # the handler's own TimeoutError, not our deadline
                self._settle(ep, job, FAILED, error=_error_from(exc, worker_id))
        except JobFailure as exc:
            if job.token == token:
                error = worker_error(exc.error_type, exc.message, exc.traceback_text, worker_id)
                self._settle(ep, job, FAILED, error=error)
        except Exception as exc:
            if job.token == token:
                self._settle(ep, job, FAILED, error=_error_from(exc, worker_id))
        else:
            if job.token == token:
                self._settle(ep, job, COMPLETED, output=output)

    def _release(self, ep: QueueEndpoint, job: Job) -> bool:
        worker = job.worker
        job.worker = None
        job.task = None
        if worker is None:
            return False
        worker.job = None
        ep.idle.append(worker)
        return True

    def _settle(
        self,
        ep: QueueEndpoint,
        job: Job,
        status: str,
        *,
        output: Any = _NO_OUTPUT,
        error: str | None = None,
    ) -> None:
        """Move a queued or running job to a terminal status and start its retention."""
        freed = False
        if job.status == IN_QUEUE:
            ep.in_queue -= 1
        elif job.status == IN_PROGRESS:
            ep.in_progress -= 1
            freed = self._release(ep, job)
        now = time.monotonic()
        job.status = status
        job.finished_at = now
        job.token += 1
        if status == COMPLETED:
            ep.completed += 1
            job.output = output
        elif status in (FAILED, TIMED_OUT):
            ep.failed += 1
            job.error = error
        retention = self.runsync_retention_s if job.sync else self.run_retention_s
        self._set_deadline(ep, job, now + retention)
        self._wake(job)
        if freed:
            self._dispatch(ep)

    def _delete(self, ep: QueueEndpoint, job: Job) -> None:
        """Forget a job (ttl, retention, purge); a running handler is cancelled."""
        freed = False
        task = job.task
        if job.status == IN_QUEUE:
            ep.in_queue -= 1
        elif job.status == IN_PROGRESS:
            ep.in_progress -= 1
            freed = self._release(ep, job)
        job.gone = True
        job.token += 1
        ep.jobs.pop(job.id, None)
        if task is not None:
            task.cancel()
        self._wake(job)
        if freed:
            self._dispatch(ep)

    def _wake(self, job: Job) -> None:
        if job.settled is not None:
            job.settled.set()
            job.settled = None  # a retried job gets a fresh event for its next waiters


def _error_from(exc: BaseException, worker_id: str) -> str:
    text = "".join(traceback.format_exception(exc))
    return worker_error(str(type(exc)), str(exc), text, worker_id)
