"""One scheduler that polls every unfinished job until it ends. Imports no Textual.

Each job has a next-poll time (a heap, so 10,000 jobs cost nothing per round): new jobs are
polled soon, and the interval grows for long ones. Where the server has ``/status-sync``, a
bounded number of jobs per endpoint long-poll instead (one request often covers the whole
job); the rest poll ``/status``. Each endpoint has a request budget under Runpod's rate limits
(``/status`` 2000 per 10 s, 400 concurrent). Answers are applied in batches, and the caller
gets one callback per batch with only the jobs that changed.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .api import errors as E
from .api.models import EXPIRED, Job


class StatusSource(Protocol):
    """What the poller needs of a client (``EndpointClient`` is one)."""

    status_sync_supported: bool | None

    async def status(self, job_id: str) -> dict[str, Any]: ...

    async def status_sync(self, job_id: str, wait_ms: int = ...) -> dict[str, Any]: ...


@dataclass
class JobChange:
    job: Job
    fields: set[str]


@dataclass
class EndpointLink:
    """How polling an endpoint is going, for the sidebar."""

    state: str = "ok"  # ok | retrying | down
    message: str = ""
    failures: int = 0
    since: float = field(default_factory=time.time)


@dataclass
class _Tracked:
    job: Job
    next_at: float
    interval: float
    version: int = 0
    failures: int = 0
    polls: int = 0


class _Budget:
    """A token bucket: at most ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, time.monotonic()
        self.hold_until = 0.0  # set by a 429's Retry-After

    def take(self, now: float) -> bool:
        if now < self.hold_until:
            return False
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False

    def next_token_in(self, now: float) -> float:
        if now < self.hold_until:
            return self.hold_until - now
        return max(0.0, (1 - self.tokens) / self.rate)


class StatusPoller:
    def __init__(
        self,
        resolve: Callable[[str], StatusSource | None],
        *,
        first_interval: float = 0.25,
        growth: float = 1.5,
        max_interval: float = 3.0,
        long_poll_wait_ms: int = 20_000,
        long_poll_slots: int = 64,
        max_in_flight: int = 300,
        rate_per_s: float = 150.0,
        batch_window: float = 0.05,
    ) -> None:
        self._resolve = resolve
        self.first_interval = first_interval
        self.growth = growth
        self.max_interval = max_interval
        self.long_poll_wait_ms = long_poll_wait_ms
        self.long_poll_slots = long_poll_slots
        self.max_in_flight = max_in_flight
        self.rate_per_s = rate_per_s
        self.batch_window = batch_window
        self.paused = False
        self.links: dict[str, EndpointLink] = {}
        #: Requests sent, by kind, for the benchmark and the status line.
        self.requests = {"status": 0, "status-sync": 0}
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._heap: list[tuple[float, int, int, tuple[str, str]]] = []
        self._seq = itertools.count()
        self._in_flight: dict[tuple[str, str], bool] = {}  # key -> is long-poll
        self._per_endpoint: dict[str, int] = {}
        self._long_polls: dict[str, int] = {}
        self._budgets: dict[str, _Budget] = {}
        self._results: asyncio.Queue[tuple[tuple[str, str], Any]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what to watch

    def __len__(self) -> int:
        return len(self._tracked)

    def track(self, job: Job, delay: float | None = None) -> None:
        if job.is_final:
            return
        key = (job.endpoint, job.id)
        entry = self._tracked.get(key)
        now = time.monotonic()
        first = self.first_interval if delay is None else delay
        if entry is None:
            entry = _Tracked(job=job, next_at=now + first, interval=self.first_interval)
            self._tracked[key] = entry
        else:
            entry.job = job
            entry.interval = self.first_interval
            entry.next_at = now + first
        self._schedule(key, entry)

    def forget(self, job: Job) -> None:
        self._tracked.pop((job.endpoint, job.id), None)

    def poll_soon(self, job: Job) -> None:
        """After the user acted on a job (cancel, retry): look again now."""
        self.track(job, delay=0.0)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._wake.set()

    @property
    def active(self) -> int:
        return len(self._tracked)

    def _schedule(self, key: tuple[str, str], entry: _Tracked) -> None:
        entry.version += 1
        heapq.heappush(self._heap, (entry.next_at, next(self._seq), entry.version, key))
        self._wake.set()

    # -- the loop

    async def run(
        self, on_batch: Callable[[list[JobChange], dict[str, EndpointLink]], Any]
    ) -> None:
        """Poll until cancelled, calling ``on_batch`` once per batch of answers."""
        try:
            while True:
                delay = self._launch_due(time.monotonic())
                await self._wait(delay)
                changes = self._drain()
                if changes is not None:
                    on_batch(changes, self.links)
        finally:
            for task in list(self._tasks):
                task.cancel()

    async def _wait(self, delay: float | None) -> None:
        self._wake.clear()
        getter = asyncio.ensure_future(self._results.get())
        waker = asyncio.ensure_future(self._wake.wait())
        try:
            await asyncio.wait({getter, waker}, timeout=delay, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waker.cancel()
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            # Put it back at the front of the batch; a short window gathers its neighbours.
            self._pending_first = getter.result()
            await asyncio.sleep(self.batch_window)
        else:
            self._pending_first = None

    _pending_first: tuple[tuple[str, str], Any] | None = None

    def _drain(self) -> list[JobChange] | None:
        results = []
        if self._pending_first is not None:
            results.append(self._pending_first)
            self._pending_first = None
        while not self._results.empty():
            results.append(self._results.get_nowait())
        if not results:
            return None
        changed: dict[tuple[str, str], JobChange] = {}
        now = time.monotonic()
        for key, outcome in results:
            entry = self._tracked.get(key)
            if entry is None:
                continue  # forgotten meanwhile
            fields = self._apply(key, entry, outcome, now)
            if fields:
                if key in changed:
                    changed[key].fields |= fields
                else:
                    changed[key] = JobChange(entry.job, fields)
        return list(changed.values())

    def _apply(self, key: tuple[str, str], entry: _Tracked, outcome: Any, now: float) -> set[str]:
        job = entry.job
        link = self.links.setdefault(job.endpoint, EndpointLink())
        if isinstance(outcome, dict):
            fields = job.apply(outcome)
            entry.failures = 0
            if link.state != "ok":
                link.state, link.message, link.failures, link.since = "ok", "", 0, time.time()
                fields.add("link")
            if job.is_final:
                self._tracked.pop(key, None)
            else:
                entry.next_at = now + entry.interval
                entry.interval = min(entry.interval * self.growth, self.max_interval)
                self._schedule(key, entry)
            return fields
        err: E.FlashError = outcome
        if isinstance(err, E.NotFound):
            job.mark(EXPIRED, str(err))
            self._tracked.pop(key, None)
            # A 404 is the server answering: the link works again, whatever it was before.
            if link.state != "ok":
                link.state, link.message, link.failures, link.since = "ok", "", 0, time.time()
                return {"status", "link"}
            return {"status"}
        entry.failures += 1
        link.failures += 1
        if link.state == "ok":
            link.since = time.time()
        link.state = "down" if isinstance(err, E.TransportError | E.Unauthorized) else "retrying"
        link.message = str(err)
        delay = min(0.5 * 2 ** min(entry.failures, 6), 30.0)
        if isinstance(err, E.RateLimited):
            hold = err.retry_after if err.retry_after is not None else delay
            self._budget(job.endpoint).hold_until = now + hold
            delay = max(delay, hold)
        entry.next_at = now + delay
        self._schedule(key, entry)
        return {"link"}

    def _budget(self, endpoint: str) -> _Budget:
        budget = self._budgets.get(endpoint)
        if budget is None:
            budget = self._budgets[endpoint] = _Budget(self.rate_per_s, self.rate_per_s)
        return budget

    def _launch_due(self, now: float) -> float | None:
        """Start the polls that are due; return seconds until the next thing to do."""
        if self.paused:
            return None
        deferred = []
        wait: float | None = None
        while self._heap:
            at, seq, version, key = self._heap[0]
            entry = self._tracked.get(key)
            if entry is None or entry.version != version or key in self._in_flight:
                heapq.heappop(self._heap)
                continue
            if at > now:
                wait = at - now if wait is None else min(wait, at - now)
                break
            heapq.heappop(self._heap)
            endpoint = key[0]
            source = self._resolve(endpoint)
            if source is None:
                continue
            budget = self._budget(endpoint)
            if self._per_endpoint.get(endpoint, 0) >= self.max_in_flight or not budget.take(now):
                deferred.append((at, seq, version, key))
                retry_in = max(budget.next_token_in(now), 0.02)
                wait = retry_in if wait is None else min(wait, retry_in)
                continue
            long_poll = (
                source.status_sync_supported is not False
                and self._long_polls.get(endpoint, 0) < self.long_poll_slots
            )
            self._start(key, entry, source, long_poll)
        for item in deferred:
            heapq.heappush(self._heap, item)
        return wait

    def _start(
        self, key: tuple[str, str], entry: _Tracked, source: StatusSource, long: bool
    ) -> None:
        endpoint = key[0]
        self._in_flight[key] = long
        self._per_endpoint[endpoint] = self._per_endpoint.get(endpoint, 0) + 1
        if long:
            self._long_polls[endpoint] = self._long_polls.get(endpoint, 0) + 1
        entry.polls += 1
        task = asyncio.create_task(self._poll(key, source, long))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, key: tuple[str, str], source: StatusSource, long: bool) -> None:
        outcome: Any
        try:
            if long:
                self.requests["status-sync"] += 1
                outcome = await source.status_sync(key[1], wait_ms=self.long_poll_wait_ms)
            else:
                self.requests["status"] += 1
                outcome = await source.status(key[1])
        except E.FlashError as err:
            outcome = err
        except Exception as err:  # never let one bad answer stop the scheduler
            outcome = E.BadAnswer(f"Unexpected trouble polling: {type(err).__name__}: {err}")
        finally:
            endpoint = key[0]
            self._in_flight.pop(key, None)
            self._per_endpoint[endpoint] -= 1
            if long:
                self._long_polls[endpoint] -= 1
        await self._results.put((key, outcome))
