"""One client tracking N jobs to their end, in its own process (so its CPU and RSS are its own).

``--client flash``: flash-tui's ``EndpointClient.submit`` and ``StatusPoller``, as the app
uses them; ``--client sdk``: the official SDK, ``runpod.AsyncioEndpoint.run`` then ``await
job.output()`` per job, which polls ``/status`` every second; ``--client naive``: httpx and a
loop that asks ``/status`` for every unfinished job once a second.

Every client submits all N jobs at once, at most ``SUBMIT_CONCURRENCY`` requests at a time
(httpx's pool does work proportional to its queue on every request, so thousands of queued
requests would measure httpx rather than the polling; the naive loop is bounded the same way),
and notes, on the machine's monotonic clock, when its user would learn that each job ended: the
poller's batch callback, the return of ``job.output()``, the naive loop's answer. Writes one
JSON document to ``--out``. The API key comes from ``$BENCH_SANDBOX_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import resource
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}
ENDPOINT = "sleepy"
SUBMIT_CONCURRENCY = 16


def durations(n: int, seed: int, low: float, high: float) -> list[float]:
    """Job lengths, log-uniform between ``low`` and ``high`` seconds: many short, some long."""
    rng = random.Random(seed)
    return [round(math.exp(rng.uniform(math.log(low), math.log(high))), 3) for _ in range(n)]


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Tally:
    def __init__(self) -> None:
        self.seen: dict[str, float] = {}
        self.status: dict[str, str] = {}
        self.ids: list[str] = []
        self.request_times: list[float] = []
        self.requests = {"status": 0, "status-sync": 0}
        self.errors = 0
        self.done = asyncio.Event()
        self.n = 0

    def failed(self) -> None:
        """A job that could not be submitted: nothing to wait for."""
        self.errors += 1
        self.n -= 1
        if len(self.seen) >= self.n:
            self.done.set()

    def saw_end(self, job_id: str, status: str, when: float | None = None) -> None:
        if job_id not in self.seen:
            self.seen[job_id] = time.monotonic() if when is None else when
            self.status[job_id] = status
            if len(self.seen) >= self.n:
                self.done.set()


# -- flash-tui ----------------------------------------------------------------------------


async def track_flash(
    base: str,
    key: str,
    inputs: list[dict[str, Any]],
    tally: Tally,
    tuning: dict[str, Any],
    pool_size: int | None = None,
) -> None:
    from tui.api import errors as E
    from tui.api.client import ClientPool, EndpointClient
    from tui.api.models import Endpoint, EndpointKind, Job
    from tui.poller import JobChange, StatusPoller

    pool = ClientPool() if pool_size is None else ClientPool(pool_size)  # as the app makes it
    endpoint = Endpoint(ENDPOINT, EndpointKind.QUEUE, f"{base}/v2/{ENDPOINT}", api_key=key)
    client = EndpointClient(endpoint, pool=pool)
    # Note when each request is sent (for the peak rate over 10 s), without changing it.
    status, status_sync = client.status, client.status_sync

    async def counted_status(job_id: str) -> dict[str, Any]:
        tally.request_times.append(time.monotonic())
        return await status(job_id)

    async def counted_status_sync(job_id: str, wait_ms: int = 30_000) -> dict[str, Any]:
        tally.request_times.append(time.monotonic())
        return await status_sync(job_id, wait_ms)

    client.status = counted_status  # type: ignore[method-assign]
    client.status_sync = counted_status_sync  # type: ignore[method-assign]
    poller = StatusPoller(lambda name: client if name == ENDPOINT else None, **tuning)

    def on_batch(changes: list[JobChange], links: object) -> None:
        now = time.monotonic()
        for change in changes:
            if change.job.is_final:
                tally.saw_end(change.job.id, change.job.status, now)

    gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

    async def submit(job_input: dict[str, Any]) -> None:
        try:
            async with gate:
                answer = await client.submit(job_input)
        except E.FlashError:
            tally.failed()
            return
        job = Job(ENDPOINT, answer["id"], input=job_input)
        job.apply(answer)
        tally.ids.append(job.id)
        poller.track(job)

    task = asyncio.create_task(poller.run(on_batch))
    try:
        await asyncio.gather(*(submit(i) for i in inputs))
        await tally.done.wait()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        tally.requests = dict(poller.requests)
        tally.errors += sum(link.failures for link in poller.links.values())
        await pool.aclose()


# -- the official SDK ---------------------------------------------------------------------


async def track_sdk(base: str, key: str, inputs: list[dict[str, Any]], tally: Tally) -> None:
    import aiohttp
    import runpod
    from runpod import AsyncioEndpoint

    runpod.endpoint_url_base = f"{base}/v2"
    runpod.api_key = key

    async def on_request(session: object, context: object, params: Any) -> None:
        if "/status/" in params.url.path:
            tally.requests["status"] += 1
            tally.request_times.append(time.monotonic())

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(on_request)
    # As the SDK's README shows it: a plain aiohttp session (100 connections).
    async with aiohttp.ClientSession(trace_configs=[trace]) as session:
        endpoint = AsyncioEndpoint(ENDPOINT, session)
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def one(job_input: dict[str, Any]) -> None:
            try:
                async with gate:
                    job = await endpoint.run(job_input)
                tally.ids.append(job.job_id)
                await job.output(timeout=24 * 3600)
            except Exception:
                tally.failed()
                return
            tally.saw_end(job.job_id, str(job.job_status))

        await asyncio.gather(*(one(i) for i in inputs))


# -- a naive loop -------------------------------------------------------------------------


async def track_naive(base: str, key: str, inputs: list[dict[str, Any]], tally: Tally) -> None:
    import httpx

    url = f"{base}/v2/{ENDPOINT}"
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(headers=headers, timeout=120) as http:
        gate = asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def submit(job_input: dict[str, Any]) -> str | None:
            try:
                async with gate:
                    response = await http.post(f"{url}/run", json={"input": job_input})
                job_id = str(response.json()["id"])
            except (httpx.HTTPError, ValueError, KeyError):
                tally.failed()
                return None
            tally.ids.append(job_id)
            return job_id

        pending = {i for i in await asyncio.gather(*(submit(i) for i in inputs)) if i}

        async def check(job_id: str) -> None:
            try:
                async with gate:
                    tally.requests["status"] += 1
                    tally.request_times.append(time.monotonic())
                    status = (await http.get(f"{url}/status/{job_id}")).json()["status"]
            except (httpx.HTTPError, ValueError, KeyError):
                tally.errors += 1
                return
            if status in TERMINAL:
                tally.saw_end(job_id, status)
                pending.discard(job_id)

        while pending:
            await asyncio.gather(*(check(i) for i in list(pending)))
            if pending:
                await asyncio.sleep(1.0)


# -- main ---------------------------------------------------------------------------------


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    key = os.environ["BENCH_SANDBOX_KEY"]
    lengths = durations(args.n, args.seed, args.low, args.high)
    inputs = [{"seconds": d, "i": i} for i, d in enumerate(lengths)]
    tally = Tally()
    tally.n = args.n
    tuning: dict[str, Any] = {}
    if args.client == "flash":
        # The poller as the app runs it (imported here: the other clients load none of ours).
        from tui.poller import APP_SETTINGS

        tuning = json.loads(args.tuning) if args.tuning else dict(APP_SETTINGS)
    cpu0, t0 = cpu_seconds(), time.monotonic()
    if args.client == "flash":
        work = track_flash(args.base, key, inputs, tally, tuning, args.pool)
    elif args.client == "sdk":
        work = track_sdk(args.base, key, inputs, tally)
    else:
        work = track_naive(args.base, key, inputs, tally)
    timed_out = False
    try:
        await asyncio.wait_for(work, args.deadline)
    except TimeoutError:
        timed_out = True
    return {
        "client": args.client,
        "n": args.n,
        "tuning": tuning if args.client == "flash" else None,
        "t0": t0,
        "wall_s": time.monotonic() - t0,
        "cpu_s": cpu_seconds() - cpu0,
        "peak_rss_mb": peak_rss_mb(),
        "timed_out": timed_out,
        "ids": tally.ids,
        "seen": tally.seen,
        "status": tally.status,
        "requests": tally.requests,
        "request_times": tally.request_times,
        "errors": tally.errors,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--client", choices=("flash", "sdk", "naive"), required=True)
    parser.add_argument("--base", required=True, help="the sandbox, http://127.0.0.1:PORT")
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--low", type=float, default=0.1, help="shortest job, s")
    parser.add_argument("--high", type=float, default=4.0, help="longest job, s")
    parser.add_argument("--deadline", type=float, default=300.0, help="give up after, s")
    parser.add_argument("--tuning", default="", help="StatusPoller options as JSON (flash)")
    parser.add_argument("--pool", type=int, default=None, help="ClientPool size (flash)")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    result = asyncio.run(main_async(args))
    Path(args.out).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
