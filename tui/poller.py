"""One scheduler that polls every unfinished job until it ends. Imports no Textual.

Where the server has ``/status-sync``, each endpoint long-polls a window of its *oldest*
unfinished jobs: a Runpod queue is first in, first out, so they are the ones running or about
to, the ones that end next. A long-poll answers the moment its job ends, so one request often
covers a whole job; when it answers at the end of its wait, the next one starts at once (no
blind gap), and a job still queued waits twice as long the next time.

Jobs behind the window are still ``IN_QUEUE`` (first in, first out); they are not polled one
by one: they move up into the window as older jobs end. The first of them is checked every
few seconds, in case the endpoint runs more jobs at once than the window holds; if it is
running, the next is checked at once. The rest get a slow safety poll (a job cancelled or
purged by someone else), kept to a small share of the request budget however many wait.
Jobs not known to be queued, or on servers without ``/status-sync``, poll ``/status`` at
intervals that start short and grow.

Each endpoint has a request budget under Runpod's rate limits (``/status`` 2000 per 10 s, 400
concurrent, a long-poll counting for its whole length), and all endpoints together stay under
``max_long_polls`` long-polls and ``max_status_in_flight`` other requests in flight, so
requests never queue inside the HTTP client's connection pool. Answers are applied in
batches, and the caller gets one callback per batch with only the jobs that changed.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from .api import errors as E
from .api.models import EXPIRED, IN_QUEUE, Job


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


Key = tuple[str, str]  # (endpoint, job id)


@dataclass
class _Tracked:
    job: Job
    rank: tuple[float, int, Key]  # its place in the endpoint's queue: oldest first
    next_at: float  # the next /status poll, if it is not in the long-poll window
    interval: float
    hold_until: float = 0.0  # no request before this (a requested delay, a backoff)
    wait_ms: int = 0  # the next long-poll's wait
    version: int = 0
    failures: int = 0


class _Budget:
    """A token bucket: at most ``rate`` requests a second, bursts up to ``burst``."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.last = burst, time.monotonic()
        self.hold_until = 0.0  # set by a 429's Retry-After

    def ready(self, now: float) -> bool:
        if now < self.hold_until:
            return False
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        return self.tokens >= 1

    def take(self, now: float) -> bool:
        if not self.ready(now):
            return False
        self.tokens -= 1
        return True

    def next_token_in(self, now: float) -> float:
        if now < self.hold_until:
            return self.hold_until - now
        return max(0.0, (1 - self.tokens) / self.rate)


class _Lane:
    """One endpoint: its unfinished jobs oldest first, and what is in flight."""

    def __init__(self, budget: _Budget, slots: int) -> None:
        self.queue: list[tuple[float, int, Key]] = []
        self.window: set[Key] = set()
        #: How many of its oldest jobs long-poll: its share of ``long_poll_slots``.
        self.slots = slots
        self.in_flight = 0
        self.long_polls = 0
        self.budget = budget
        #: The first queued job behind the window, while it is being checked.
        self.probe: Key | None = None
        #: The last check found it running: check the next one at once.
        self.frontier_ahead = False
        self.next_probe_at = 0.0
        #: False once its server showed it has no /status-sync.
        self.long_polling = True


#: What the app asks of the poller: short long-polls, so the end of a job shows at once and
#: IN_PROGRESS within 4 s of it starting (status-sync answers only at the end); a job still
#: queued waits longer each time, up to 16 s, which keeps a deep queue cheap.
APP_SETTINGS: dict[str, Any] = {"long_poll_wait_ms": 4000, "max_long_poll_wait_ms": 16_000}


class StatusPoller:
    def __init__(
        self,
        resolve: Callable[[str], StatusSource | None],
        *,
        first_interval: float = 0.25,
        growth: float = 1.5,
        max_interval: float = 3.0,
        long_poll_wait_ms: int = 20_000,
        max_long_poll_wait_ms: int = 60_000,
        long_poll_slots: int = 112,
        max_in_flight: int = 300,
        max_long_polls: int = 128,
        max_status_in_flight: int = 64,
        rate_per_s: float = 150.0,
        queued_share: float = 0.1,
        queued_min_interval: float = 30.0,
        probe_interval: float = 1.0,
        batch_window: float = 0.05,
    ) -> None:
        self._resolve = resolve
        self.first_interval = first_interval
        self.growth = growth
        self.max_interval = max_interval
        #: The first long-poll's wait; a job still queued waits twice as long the next time.
        self.long_poll_wait_ms = long_poll_wait_ms
        self.max_long_poll_wait_ms = max(max_long_poll_wait_ms, long_poll_wait_ms)
        #: Long-polls per endpoint (Runpod allows 400 concurrent requests per endpoint).
        self.long_poll_slots = long_poll_slots
        #: Requests in flight per endpoint.
        self.max_in_flight = max_in_flight
        #: Requests in flight in all, across endpoints, within what ``ClientPool`` holds: its
        #: long-poll shards (8 x 16 connections per origin) and its shared pool (100), so no
        #: request waits inside httpcore's pool, whose bookkeeping grows with what waits in it.
        self.max_long_polls = max_long_polls
        self.max_status_in_flight = max_status_in_flight
        self.rate_per_s = rate_per_s
        #: Share of an endpoint's budget the safety polls of queued jobs may use.
        self.queued_share = queued_share
        self.queued_min_interval = queued_min_interval
        #: How often the first queued job behind the window is checked.
        self.probe_interval = probe_interval
        self.batch_window = batch_window
        self.paused = False
        self.links: dict[str, EndpointLink] = {}
        #: Requests sent, by kind, for the benchmark and the status line.
        self.requests = {"status": 0, "status-sync": 0}
        self._tracked: dict[Key, _Tracked] = {}
        self._heap: list[tuple[float, int, int, Key]] = []
        self._seq = itertools.count()
        self._in_flight: dict[Key, bool] = {}  # key -> is long-poll
        self._long_in_flight = 0
        self._status_in_flight = 0
        self._lanes: dict[str, _Lane] = {}
        self._results: asyncio.Queue[tuple[Key, bool, Any]] = asyncio.Queue()
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    # -- what to watch

    def __len__(self) -> int:
        return len(self._tracked)

    def track(self, job: Job, delay: float | None = None) -> None:
        if job.is_final:
            return
        key = (job.endpoint, job.id)
        lane = self._lane(job.endpoint)
        entry = self._tracked.get(key)
        now = time.monotonic()
        first = self.first_interval if delay is None else delay
        if entry is None:
            rank = (job.submitted_at, next(self._seq), key)
            entry = _Tracked(job=job, rank=rank, next_at=now + first, interval=first)
            self._tracked[key] = entry
            bisect.insort(lane.queue, rank)
        else:
            entry.job = job
            entry.next_at = now + first
        entry.interval = self.first_interval
        entry.hold_until = now + first
        entry.wait_ms = self.long_poll_wait_ms
        if delay is None and self._parked(key, entry, lane):
            # What /run answered is news enough: no poll until it nears the front.
            entry.next_at = now + self._queued_interval(lane)
        self._schedule(key, entry)

    def forget(self, job: Job) -> None:
        key = (job.endpoint, job.id)
        entry = self._tracked.pop(key, None)
        if entry is not None:
            self._drop(key, entry)

    def poll_soon(self, job: Job) -> None:
        """After the user acted on a job (cancel, retry): look again now."""
        self.track(job, delay=0.0)

    def set_paused(self, paused: bool) -> None:
        self.paused = paused
        self._wake.set()

    @property
    def active(self) -> int:
        return len(self._tracked)

    def _lane(self, endpoint: str) -> _Lane:
        lane = self._lanes.get(endpoint)
        if lane is None:
            budget = _Budget(self.rate_per_s, self.rate_per_s)
            lane = self._lanes[endpoint] = _Lane(budget, self.long_poll_slots)
        return lane

    def _drop(self, key: Key, entry: _Tracked) -> None:
        lane = self._lanes.get(key[0])
        if lane is None:
            return
        queue = lane.queue
        index = bisect.bisect_left(queue, entry.rank)
        if index < len(queue) and queue[index] == entry.rank:
            del queue[index]
        lane.window.discard(key)
        self._wake.set()

    def _schedule(self, key: Key, entry: _Tracked) -> None:
        entry.version += 1
        heapq.heappush(self._heap, (entry.next_at, next(self._seq), entry.version, key))
        self._wake.set()

    def _long_polls_allowed(self, endpoint: str) -> bool:
        source = self._resolve(endpoint)
        return source is not None and source.status_sync_supported is not False

    def _parked(self, key: Key, entry: _Tracked, lane: _Lane) -> bool:
        """Queued behind the long-poll window: it waits its turn rather than being polled."""
        if entry.job.status != IN_QUEUE or not self._long_polls_allowed(key[0]):
            return False
        return bisect.bisect_left(lane.queue, entry.rank) >= lane.slots

    def _queued_interval(self, lane: _Lane) -> float:
        """How often a queued job behind the window is checked, just in case."""
        waiting = max(0, len(lane.queue) - lane.slots)
        share = max(self.rate_per_s * self.queued_share, 1e-3)
        return max(self.queued_min_interval, waiting / share)

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

    _pending_first: tuple[Key, bool, Any] | None = None

    def _drain(self) -> list[JobChange] | None:
        results = []
        if self._pending_first is not None:
            results.append(self._pending_first)
            self._pending_first = None
        while not self._results.empty():
            results.append(self._results.get_nowait())
        if not results:
            return None
        changed: dict[Key, JobChange] = {}
        now = time.monotonic()
        for key, long, outcome in results:
            entry = self._tracked.get(key)
            if entry is None:
                continue  # forgotten meanwhile
            fields = self._apply(key, entry, long, outcome, now)
            if fields:
                if key in changed:
                    changed[key].fields |= fields
                else:
                    changed[key] = JobChange(entry.job, fields)
        return list(changed.values())

    def _apply(self, key: Key, entry: _Tracked, long: bool, outcome: Any, now: float) -> set[str]:
        job = entry.job
        link = self.links.setdefault(job.endpoint, EndpointLink())
        lane = self._lane(job.endpoint)
        if isinstance(outcome, dict):
            fields = job.apply(outcome)
            entry.failures = 0
            if link.state != "ok":
                link.state, link.message, link.failures, link.since = "ok", "", 0, time.time()
                fields.add("link")
            if key == lane.probe and not long:
                # A job running (or done) behind the window means more may be: check the
                # next one at once.
                lane.frontier_ahead = job.status != IN_QUEUE
                lane.probe = None
            if job.is_final:
                self._tracked.pop(key, None)
                self._drop(key, entry)
                return fields
            entry.hold_until = now  # in the window: long-poll again at once
            if long:
                if job.status == IN_QUEUE:
                    entry.wait_ms = min(entry.wait_ms * 2, self.max_long_poll_wait_ms)
                else:
                    entry.wait_ms = self.long_poll_wait_ms
            if self._parked(key, entry, lane):
                entry.next_at = now + self._queued_interval(lane)
            else:
                entry.next_at = now + entry.interval
                entry.interval = min(entry.interval * self.growth, self.max_interval)
            self._schedule(key, entry)
            return fields
        err: E.FlashError = outcome
        if isinstance(err, E.NotFound):
            job.mark(EXPIRED, str(err))
            self._tracked.pop(key, None)
            self._drop(key, entry)
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
            lane.budget.hold_until = now + hold
            lane.budget.tokens = 0.0  # no burst the moment the hold ends
            delay = max(delay, hold)
        entry.next_at = entry.hold_until = now + delay
        self._schedule(key, entry)
        return {"link"}

    def _room(self, lane: _Lane, long: bool) -> bool:
        """Below the caps on requests in flight (a finished request wakes the loop)."""
        if long and self._long_in_flight >= self.max_long_polls:
            return False
        if not long and self._status_in_flight >= self.max_status_in_flight:
            return False
        return lane.in_flight < self.max_in_flight

    def _launch_due(self, now: float) -> float | None:
        """Start the polls that are due; return seconds until the next thing to do."""
        if self.paused:
            return None
        wait: float | None = None

        def soon(seconds: float) -> None:
            nonlocal wait
            seconds = max(seconds, 0.0)
            wait = seconds if wait is None else min(wait, seconds)

        # First the long-poll windows: the oldest jobs of each endpoint.
        self._share_slots()
        for endpoint, lane in self._lanes.items():
            source = self._resolve(endpoint)
            if source is None or source.status_sync_supported is False:
                lane.window = set()
                if source is not None and lane.long_polling:
                    # No /status-sync after all: the jobs parked behind the window must
                    # poll /status now, not at their slow safety poll.
                    lane.long_polling = False
                    self._unpark(lane, now)
                continue
            window = lane.queue[: lane.slots]
            lane.window = {key for _, _, key in window}
            for _, _, key in window:
                if key in self._in_flight:
                    continue
                held = self._tracked[key]
                if held.hold_until > now:
                    soon(held.hold_until - now)
                    continue
                if lane.long_polls >= lane.slots or not self._room(lane, long=True):
                    break
                if not lane.budget.take(now):
                    soon(max(lane.budget.next_token_in(now), 0.02))
                    break
                self._start(key, held, source, long=True)
            probe_in = self._watch_frontier(lane, now)
            if probe_in is not None:
                soon(probe_in)

        # Then /status for the rest, by due time.
        deferred = []
        while self._heap:
            at, seq, version, key = self._heap[0]
            entry = self._tracked.get(key)
            if entry is None or entry.version != version or key in self._in_flight:
                heapq.heappop(self._heap)
                continue
            if at > now:
                soon(at - now)
                break
            heapq.heappop(self._heap)
            lane = self._lane(key[0])
            if key in lane.window:
                # The window looks after it; keep a later check in case it leaves the window.
                entry.next_at = max(now + self.max_interval, entry.hold_until)
                self._schedule(key, entry)
                continue
            source = self._resolve(key[0])
            if source is None:
                # The endpoint is gone from the config, for now: look again later.
                entry.next_at = now + self.max_interval
                self._schedule(key, entry)
                continue
            if not self._room(lane, long=False):
                deferred.append((at, seq, version, key))
                if self._status_in_flight >= self.max_status_in_flight:
                    break
                continue
            if not lane.budget.take(now):
                deferred.append((at, seq, version, key))
                soon(max(lane.budget.next_token_in(now), 0.02))
                continue
            self._start(key, entry, source, long=False)
        for item in deferred:
            heapq.heappush(self._heap, item)
        return wait

    def _unpark(self, lane: _Lane, now: float) -> None:
        soon = now + self.first_interval
        for _, _, key in lane.queue:
            entry = self._tracked.get(key)
            if entry is not None and entry.next_at > soon:
                entry.next_at = soon
                self._schedule(key, entry)

    def _share_slots(self) -> None:
        """Split the long-polls the cap allows fairly between endpoints, each up to
        ``long_poll_slots``."""
        spare = max(1, self.max_long_polls)
        wanting: list[tuple[int, _Lane]] = []
        for endpoint, lane in self._lanes.items():
            source = self._resolve(endpoint)
            if source is None or source.status_sync_supported is False:
                lane.slots = 0
            else:
                wanting.append((min(self.long_poll_slots, len(lane.queue)), lane))
        wanting.sort(key=lambda item: item[0])
        for done, (want, lane) in enumerate(wanting):
            lane.slots = min(want, spare // (len(wanting) - done))
            spare -= lane.slots
        for want, lane in wanting:
            if lane.slots == want:  # room to grow, should more jobs come
                lane.slots = min(self.long_poll_slots, want + spare)

    def _watch_frontier(self, lane: _Lane, now: float) -> float | None:
        """Check the first queued job behind the window every ``probe_interval``: if it is
        running, the endpoint runs more jobs than the window holds, so check the next one at
        once, and so on; the running ones poll ``/status`` until the window reaches them.
        Returns seconds until the next check."""
        if len(lane.queue) <= lane.slots:
            lane.frontier_ahead = False
            return None
        if lane.probe is not None and lane.probe in self._in_flight:
            return None
        if not lane.frontier_ahead and now < lane.next_probe_at:
            return lane.next_probe_at - now
        # Jobs already seen running have their own, faster schedule: skip them.
        behind = lane.queue[lane.slots : lane.slots + 256]
        found = next(
            (
                k
                for _, _, k in behind
                if k not in self._in_flight and self._tracked[k].job.status == IN_QUEUE
            ),
            None,
        )
        lane.frontier_ahead = False
        if found is None:
            return None
        lane.probe = found
        lane.next_probe_at = now + self.probe_interval
        entry = self._tracked[found]
        entry.next_at = max(now, entry.hold_until)
        self._schedule(found, entry)
        return None

    def _start(self, key: Key, entry: _Tracked, source: StatusSource, long: bool) -> None:
        lane = self._lane(key[0])
        self._in_flight[key] = long
        if long:
            self._long_in_flight += 1
        else:
            self._status_in_flight += 1
        lane.in_flight += 1
        if long:
            lane.long_polls += 1
        wait_ms = entry.wait_ms or self.long_poll_wait_ms
        task = asyncio.create_task(self._poll(key, source, long, wait_ms))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _poll(self, key: Key, source: StatusSource, long: bool, wait_ms: int) -> None:
        outcome: Any
        try:
            if long:
                self.requests["status-sync"] += 1
                outcome = await source.status_sync(key[1], wait_ms=wait_ms)
            else:
                self.requests["status"] += 1
                outcome = await source.status(key[1])
        except E.FlashError as err:
            outcome = err
        except Exception as err:  # never let one bad answer stop the scheduler
            outcome = E.BadAnswer(f"Unexpected trouble polling: {type(err).__name__}: {err}")
        finally:
            lane = self._lane(key[0])
            self._in_flight.pop(key, None)
            if long:
                self._long_in_flight -= 1
            else:
                self._status_in_flight -= 1
            lane.in_flight -= 1
            if long:
                lane.long_polls -= 1
        await self._results.put((key, long, outcome))
