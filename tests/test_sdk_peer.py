"""The official ``runpod`` SDK (1.12.0) drives our sandbox: a peer nobody here wrote.

``runpod.endpoint_url_base`` points the SDK at any server with the cloud layout, so the SDK's
own ``Endpoint`` and ``AsyncioEndpoint`` must work against the sandbox as they do against
``https://api.runpod.ai/v2``. The SDK reads ``runpod.api_key`` and ``endpoint_url_base`` when
an endpoint or job is built, so the module fixture sets both for the whole module and puts
them back afterwards. (The SDK sleeps a second between its own polls; counts stay small.)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import requests
import runpod
from runpod.endpoint.asyncio.asyncio_runner import Endpoint as AsyncioEndpoint
from runpod.endpoint.runner import Job as SdkJob
from runpod.http_client import ClientSession

from tests.waits import wait_until
from tui.sandbox import RunningSandbox, SandboxConfig, start_sandbox

KEY = "sdk-peer-key-0123"
SCALE = 0.2
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


def _point_sdk_at(sb: RunningSandbox) -> None:
    runpod.api_key = KEY
    runpod.endpoint_url_base = f"{sb.base_url}/v2"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    saved = (runpod.api_key, runpod.endpoint_url_base)
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=SCALE)) as sb:
        _point_sdk_at(sb)
        try:
            yield sb
        finally:
            runpod.api_key, runpod.endpoint_url_base = saved


@pytest.fixture
def fresh(sandbox: RunningSandbox) -> Iterator[RunningSandbox]:
    """A sandbox of its own (zeroed counters, one worker per endpoint) for the SDK."""
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=SCALE, workers=1)) as sb:
        _point_sdk_at(sb)
        try:
            yield sb
        finally:
            _point_sdk_at(sandbox)


def raw_status(sb: RunningSandbox, endpoint: str, job_id: str) -> httpx.Response:
    return httpx.get(
        f"{sb.base_url}/v2/{endpoint}/status/{job_id}",
        headers={"Authorization": f"Bearer {KEY}"},
    )


# ---- runpod.Endpoint (requests) ----------------------------------------------------------


def test_run_status_output_round_trip(sandbox: RunningSandbox) -> None:
    endpoint = runpod.Endpoint("echo")
    job_input = {"prompt": "Hello world", "n": 1, "nested": {"list": [1, 2.5, None, "ü"]}}
    job = endpoint.run(job_input)
    assert job.job_id.endswith("-u1")
    assert job.status() in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
    assert job.output(timeout=10) == job_input
    assert job.status() == "COMPLETED"


def test_run_sync_returns_the_output(sandbox: RunningSandbox) -> None:
    assert runpod.Endpoint("echo").run_sync({"a": 1}, timeout=10) == {"a": 1}
    # A job longer than nothing at all still comes back whole.
    assert runpod.Endpoint("sleepy").run_sync({"seconds": 1}, timeout=10) == {"slept": 1}


def test_cancel_a_running_job(sandbox: RunningSandbox) -> None:
    job = runpod.Endpoint("sleepy").run({"seconds": 60})
    wait_until(job.status, lambda s: s == "IN_PROGRESS", timeout=10)
    answer = job.cancel()
    assert answer == {"id": job.job_id, "status": "CANCELLED"}
    assert job.status() == "CANCELLED"
    assert raw_status(sandbox, "sleepy", job.job_id).json()["status"] == "CANCELLED"


def test_failed_job_then_retry_completes(sandbox: RunningSandbox) -> None:
    endpoint = runpod.Endpoint("flaky")
    job = endpoint.run({"fail_attempts": 1})
    assert job.output(timeout=10) is None  # a failed job has no output
    assert job.status() == "FAILED"
    error = raw_status(sandbox, "flaky", job.job_id).json()["error"]
    assert "flaky failed as asked" in error

    # The SDK has no retry: call the route itself, as a user of the SDK would.
    r = httpx.post(
        f"{sandbox.base_url}/v2/flaky/retry/{job.job_id}",
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"id": job.job_id, "status": "IN_QUEUE"}

    # The SDK's Job keeps the final status it saw; a new Job object reads afresh.
    again = SdkJob("flaky", job.job_id, endpoint.rp_client)
    assert again.output(timeout=10) == {"ok": True, "attempt": 2}
    assert again.status() == "COMPLETED"


def test_health_shape_and_counts(fresh: RunningSandbox) -> None:
    endpoint = runpod.Endpoint("echo")
    health = endpoint.health()
    assert set(health) == {"jobs", "workers"}
    assert set(health["jobs"]) == {"completed", "failed", "inProgress", "inQueue", "retried"}
    assert {"idle", "running"} <= set(health["workers"])
    assert health["jobs"]["completed"] == 0
    assert health["workers"] == {
        "idle": 1,
        "running": 0,
        "initializing": 0,
        "ready": 1,
        "throttled": 0,
        "unhealthy": 0,
    }

    for n in range(3):
        assert endpoint.run_sync({"n": n}, timeout=10) == {"n": n}
    assert endpoint.health()["jobs"]["completed"] == 3

    flaky = runpod.Endpoint("flaky")
    failed = flaky.run({"fail": True})
    assert wait_until(failed.status, lambda s: s in FINAL, timeout=10) == "FAILED"
    assert flaky.health()["jobs"]["failed"] == 1

    sleepy = runpod.Endpoint("sleepy")
    running = sleepy.run({"seconds": 60})
    wait_until(running.status, lambda s: s == "IN_PROGRESS", timeout=10)
    counts = sleepy.health()
    assert counts["jobs"]["inProgress"] == 1
    assert counts["workers"]["running"] == 1
    assert counts["workers"]["idle"] == 0


def test_purge_queue_removes_only_queued_jobs(fresh: RunningSandbox) -> None:
    endpoint = runpod.Endpoint("sleepy")
    busy = endpoint.run({"seconds": 60})  # fills the only worker
    wait_until(busy.status, lambda s: s == "IN_PROGRESS", timeout=10)
    queued = [endpoint.run({"seconds": 60}) for _ in range(3)]
    assert all(job.status() == "IN_QUEUE" for job in queued)
    assert endpoint.health()["jobs"]["inQueue"] == 3

    assert endpoint.purge_queue() == {"removed": 3, "status": "completed"}

    assert endpoint.health()["jobs"]["inQueue"] == 0
    assert busy.status() == "IN_PROGRESS"  # running jobs carry on
    for job in queued:
        with pytest.raises(requests.HTTPError) as info:
            SdkJob("sleepy", job.job_id, endpoint.rp_client).status()
        assert info.value.response.status_code == 404


def test_stream_yields_chunks_in_order(sandbox: RunningSandbox) -> None:
    job = runpod.Endpoint("streamer").run({"count": 3})
    chunks = list(job.stream())
    assert chunks == [{"index": i, "text": f"chunk {i}"} for i in range(3)]
    assert job.status() == "COMPLETED"


def test_wrong_key_raises_unauthorized(sandbox: RunningSandbox) -> None:
    endpoint = runpod.Endpoint("echo", api_key="not-the-key")
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        endpoint.run({"a": 1})
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        endpoint.health()


# ---- runpod.AsyncioEndpoint (aiohttp) ----------------------------------------------------


async def async_wait_status(job: Any, accept: Callable[[str], bool], timeout: float = 10.0) -> str:
    import asyncio

    deadline = time.monotonic() + timeout
    while True:
        status = await job.status()
        if accept(status):
            return str(status)
        assert time.monotonic() < deadline, f"gave up waiting; last status {status!r}"
        await asyncio.sleep(0.05)


async def test_async_run_status_output(sandbox: RunningSandbox) -> None:
    async with ClientSession() as session:
        endpoint = AsyncioEndpoint("echo", session)
        job = await endpoint.run({"hello": "world", "n": [1, 2]})
        assert job.job_id.endswith("-u1")
        assert await job.status() in {"IN_QUEUE", "IN_PROGRESS", "COMPLETED"}
        assert await job.output(timeout=10) == {"hello": "world", "n": [1, 2]}
        assert await job.status() == "COMPLETED"


async def test_async_cancel(sandbox: RunningSandbox) -> None:
    async with ClientSession() as session:
        job = await AsyncioEndpoint("sleepy", session).run({"seconds": 60})
        await async_wait_status(job, lambda s: s == "IN_PROGRESS")
        assert await job.cancel() == {"id": job.job_id, "status": "CANCELLED"}
        assert await job.status() == "CANCELLED"


async def test_async_health_and_purge_queue(fresh: RunningSandbox) -> None:
    async with ClientSession() as session:
        endpoint = AsyncioEndpoint("sleepy", session)
        health = await endpoint.health()
        assert health["jobs"]["inQueue"] == 0
        assert health["workers"]["idle"] == 1

        busy = await endpoint.run({"seconds": 60})
        await async_wait_status(busy, lambda s: s == "IN_PROGRESS")
        for _ in range(2):
            await endpoint.run({"seconds": 60})
        health = await endpoint.health()
        assert health["jobs"]["inQueue"] == 2
        assert health["jobs"]["inProgress"] == 1
        assert health["workers"]["running"] == 1

        assert await endpoint.purge_queue() == {"removed": 2, "status": "completed"}
        assert (await endpoint.health())["jobs"]["inQueue"] == 0
        assert await busy.status() == "IN_PROGRESS"


async def test_async_stream(sandbox: RunningSandbox) -> None:
    async with ClientSession() as session:
        job = await AsyncioEndpoint("streamer", session).run({"count": 3})
        chunks = [chunk async for chunk in job.stream()]
        assert chunks == [{"index": i, "text": f"chunk {i}"} for i in range(3)]
        assert await job.status() == "COMPLETED"


async def test_async_wrong_key_gets_the_401_body(sandbox: RunningSandbox) -> None:
    async with ClientSession() as session:
        endpoint = AsyncioEndpoint("echo", session, api_key="not-the-key")
        # The asyncio SDK does not check the status code; it hands over the JSON body.
        assert await endpoint.health() == {
            "error": "Unauthorized",
            "detail": "missing or invalid API key",
        }
        with pytest.raises(KeyError):  # no "id" in a 401 answer
            await endpoint.run({"a": 1})
