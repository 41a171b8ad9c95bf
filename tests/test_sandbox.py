"""The sandbox against real HTTP on loopback: job lifecycle, the Runpod routes, auth, faults.

Demo jobs run at time_scale 0.2, so `sleepy` with seconds=5 takes one real second. Tests that
occupy workers or read counters get a sandbox of their own (starting one takes milliseconds).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.waits import wait_until
from tui.sandbox import (
    DEMO_ENDPOINTS,
    RunningSandbox,
    SandboxConfig,
    create_app,
    start_sandbox,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEY = "sandbox"
AUTH = {"Authorization": f"Bearer {KEY}"}
SCALE = 0.2
TERMINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


def _client(sb: RunningSandbox, headers: dict[str, str] | None = None) -> httpx.Client:
    return httpx.Client(base_url=sb.base_url, headers=AUTH if headers is None else headers)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(port=0, time_scale=SCALE)) as sb:
        yield sb


@pytest.fixture(scope="module")
def client(sandbox: RunningSandbox) -> Iterator[httpx.Client]:
    with _client(sandbox) as c:
        yield c


@pytest.fixture
def fresh() -> Iterator[httpx.Client]:
    """A client on a sandbox of its own: two idle workers per endpoint, zeroed counters."""
    with start_sandbox(SandboxConfig(port=0, time_scale=SCALE)) as sb, _client(sb) as c:
        yield c


def submit(c: httpx.Client, endpoint: str, job_input: dict[str, Any], **extra: Any) -> str:
    r = c.post(f"/v2/{endpoint}/run", json={"input": job_input, **extra})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "IN_QUEUE"
    assert body["id"].endswith("-u1")
    return str(body["id"])


def status(c: httpx.Client, endpoint: str, job_id: str) -> dict[str, Any]:
    r = c.get(f"/v2/{endpoint}/status/{job_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


def settle(c: httpx.Client, endpoint: str, job_id: str) -> dict[str, Any]:
    r = c.get(f"/v2/{endpoint}/status-sync/{job_id}", params={"wait": 10_000}, timeout=15)
    assert r.status_code == 200, r.text
    body = dict(r.json())
    assert body["status"] in TERMINAL, body
    return body


def health(c: httpx.Client, endpoint: str) -> dict[str, Any]:
    r = c.get(f"/v2/{endpoint}/health")
    assert r.status_code == 200, r.text
    return dict(r.json())


# ---- lifecycle ---------------------------------------------------------------------------


def test_lifecycle_queue_progress_completed(fresh: httpx.Client) -> None:
    ids = [submit(fresh, "sleepy", {"seconds": 2}) for _ in range(3)]  # 0.4 s each
    first, third = status(fresh, "sleepy", ids[0]), status(fresh, "sleepy", ids[2])
    # Two workers: the first two run, the third waits its turn.
    assert first["status"] == "IN_PROGRESS"
    assert first["workerId"].startswith("sandbox-sleepy-")
    assert first["delayTime"] >= 0 and first["executionTime"] >= 0
    assert set(first["output"]) == {"progress", "elapsed"}
    assert third["status"] == "IN_QUEUE"
    assert not {"workerId", "delayTime", "executionTime"} & set(third)

    running = wait_until(
        lambda: status(fresh, "sleepy", ids[2]), lambda s: s["status"] != "IN_QUEUE"
    )
    assert running["delayTime"] >= 300  # it waited for a worker

    done = [settle(fresh, "sleepy", job_id) for job_id in ids]
    assert all(d["status"] == "COMPLETED" and d["output"] == {"slept": 2} for d in done)
    assert all(350 <= d["executionTime"] <= 2000 for d in done)
    assert done[0]["workerId"] != done[1]["workerId"]
    assert done[2]["workerId"] in {done[0]["workerId"], done[1]["workerId"]}


def test_echo_output_is_the_input(client: httpx.Client) -> None:
    job_input = {"prompt": "Hello world", "n": 1, "nested": {"list": [1, 2.5, None, "ü"]}}
    r = client.post("/v2/echo/runsync", json={"input": job_input})
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "COMPLETED"
    assert body["output"] == job_input
    assert body["workerId"].startswith("sandbox-echo-")
    assert settle(client, "echo", submit(client, "echo", job_input))["output"] == job_input


def test_runsync_short_wait_answers_the_id_then_the_job_completes(fresh: httpx.Client) -> None:
    started = time.monotonic()
    # wait=10 is clamped up to Runpod's minimum of 1000 ms; the job needs 2 s.
    r = fresh.post("/v2/sleepy/runsync", params={"wait": 10}, json={"input": {"seconds": 10}})
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    body = r.json()
    assert body["status"] in {"IN_QUEUE", "IN_PROGRESS"}
    assert 0.9 <= elapsed < 1.9
    done = settle(fresh, "sleepy", body["id"])
    assert done["status"] == "COMPLETED"
    assert done["output"] == {"slept": 10}


def test_status_sync_answers_when_terminal_or_when_the_wait_runs_out(fresh: httpx.Client) -> None:
    short = submit(fresh, "sleepy", {"seconds": 2})
    long = submit(fresh, "sleepy", {"seconds": 50})
    started = time.monotonic()
    assert settle(fresh, "sleepy", short)["status"] == "COMPLETED"
    assert time.monotonic() - started < 1.5

    started = time.monotonic()
    r = fresh.get(f"/v2/sleepy/status-sync/{long}", params={"wait": 200})
    assert r.json()["status"] == "IN_PROGRESS"
    assert 0.15 <= time.monotonic() - started < 1.0


def test_stream_answers_only_new_chunks_until_terminal(client: httpx.Client) -> None:
    job_id = submit(client, "streamer", {"count": 8})
    seen: list[Any] = []
    calls = 0
    while True:
        r = client.get(f"/v2/streamer/stream/{job_id}")
        assert r.status_code == 200
        body = r.json()
        assert body["id"] == job_id
        calls += 1
        seen.extend(item["output"] for item in body["stream"])
        if body["status"] in TERMINAL and not body["stream"]:
            break
        assert calls < 500
        time.sleep(0.05)
    expected = [{"index": i, "text": f"chunk {i}"} for i in range(8)]
    assert seen == expected  # in order, none twice
    assert calls > 2  # chunks arrived over several calls, not at once
    final = status(client, "streamer", job_id)
    assert final["status"] == "COMPLETED"
    assert final["output"] == expected


def test_cancel_running_and_queued_jobs(fresh: httpx.Client) -> None:
    a = submit(fresh, "sleepy", {"seconds": 50})
    b = submit(fresh, "sleepy", {"seconds": 50})
    queued = submit(fresh, "sleepy", {"seconds": 50})
    assert status(fresh, "sleepy", queued)["status"] == "IN_QUEUE"

    r = fresh.post(f"/v2/sleepy/cancel/{queued}")
    assert r.status_code == 200
    assert r.json() == {"id": queued, "status": "CANCELLED"}
    assert "workerId" not in status(fresh, "sleepy", queued)  # it never ran

    r = fresh.post(f"/v2/sleepy/cancel/{a}")
    assert r.json() == {"id": a, "status": "CANCELLED"}
    workers = health(fresh, "sleepy")["workers"]
    assert workers["running"] == 1 and workers["idle"] == 1  # freed at once
    cancelled = status(fresh, "sleepy", a)
    assert cancelled["status"] == "CANCELLED"
    assert cancelled["executionTime"] < 1000

    # Cancelling again, or cancelling a finished job, answers the status unchanged.
    assert fresh.post(f"/v2/sleepy/cancel/{a}").json()["status"] == "CANCELLED"
    done = fresh.post("/v2/echo/runsync", json={"input": {"x": 1}}).json()
    r = fresh.post(f"/v2/echo/cancel/{done['id']}")
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"

    fresh.post(f"/v2/sleepy/cancel/{b}")
    assert health(fresh, "sleepy")["workers"]["running"] == 0


def test_flaky_failure_is_a_worker_sdk_error_and_retry_requeues(client: httpx.Client) -> None:
    job_id = submit(client, "flaky", {"fail": True})
    failed = settle(client, "flaky", job_id)
    assert failed["status"] == "FAILED"
    assert "output" not in failed
    error = json.loads(failed["error"])
    assert error["error_type"] == "<class 'ValueError'>"
    assert error["error_message"] == "flaky failed as asked"
    assert error["error_traceback"].startswith("Traceback (most recent call last):")
    assert error["worker_id"] == failed["workerId"]
    assert error["runpod_version"] == "1.12.0"

    r = client.post(f"/v2/flaky/retry/{job_id}")
    assert r.status_code == 200
    assert r.json() == {"id": job_id, "status": "IN_QUEUE"}
    again = settle(client, "flaky", job_id)
    assert again["status"] == "FAILED" and again["retries"] == 1

    once = submit(client, "flaky", {"fail": True, "fail_attempts": 1})
    assert settle(client, "flaky", once)["status"] == "FAILED"
    assert client.post(f"/v2/flaky/retry/{once}").json()["status"] == "IN_QUEUE"
    done = settle(client, "flaky", once)
    assert done["status"] == "COMPLETED"
    assert done["retries"] == 1
    assert done["output"] == {"ok": True, "attempt": 2}
    assert "error" not in done


def test_retry_refuses_jobs_that_did_not_fail(client: httpx.Client) -> None:
    done = client.post("/v2/echo/runsync", json={"input": {"x": 1}}).json()
    r = client.post(f"/v2/echo/retry/{done['id']}")
    assert r.status_code == 400
    assert "COMPLETED" in r.json()["error"]
    assert client.post("/v2/echo/retry/nope-u1").status_code == 404


def test_purge_queue_removes_only_queued_jobs(fresh: httpx.Client) -> None:
    running = [submit(fresh, "sleepy", {"seconds": 50}) for _ in range(2)]
    queued = [submit(fresh, "sleepy", {"seconds": 50}) for _ in range(3)]
    assert health(fresh, "sleepy")["jobs"]["inQueue"] == 3

    r = fresh.post("/v2/sleepy/purge-queue")
    assert r.status_code == 200
    assert r.json() == {"removed": 3, "status": "completed"}
    for job_id in queued:
        r = fresh.get(f"/v2/sleepy/status/{job_id}")
        assert r.status_code == 404
        assert r.json()["error"] == "job not found"
    assert all(status(fresh, "sleepy", j)["status"] == "IN_PROGRESS" for j in running)
    jobs = health(fresh, "sleepy")["jobs"]
    assert jobs["inQueue"] == 0 and jobs["inProgress"] == 2
    assert fresh.post("/v2/sleepy/purge-queue").json()["removed"] == 0


def test_health_counts_what_happened(fresh: httpx.Client) -> None:
    for i in range(3):
        fresh.post("/v2/echo/runsync", json={"input": {"i": i}})
    flaky = fresh.post("/v2/flaky/runsync", json={"input": {"fail": True}}).json()
    fresh.post(f"/v2/flaky/retry/{flaky['id']}")
    settle(fresh, "flaky", flaky["id"])
    for _ in range(3):
        submit(fresh, "sleepy", {"seconds": 50})

    assert health(fresh, "echo")["jobs"] == {
        "completed": 3,
        "failed": 0,
        "inProgress": 0,
        "inQueue": 0,
        "retried": 0,
    }
    flaky_jobs = health(fresh, "flaky")["jobs"]
    assert (flaky_jobs["failed"], flaky_jobs["retried"], flaky_jobs["completed"]) == (2, 1, 0)
    sleepy = health(fresh, "sleepy")
    assert sleepy["jobs"]["inProgress"] == 2 and sleepy["jobs"]["inQueue"] == 1
    assert sleepy["workers"] == {
        "idle": 0,
        "running": 2,
        "initializing": 0,
        "ready": 0,
        "throttled": 0,
        "unhealthy": 0,
    }
    assert health(fresh, "streamer")["workers"]["idle"] == 2


def test_ttl_deletes_running_and_queued_jobs(fresh: httpx.Client) -> None:
    running = submit(fresh, "sleepy", {"seconds": 50}, policy={"ttl": 400})
    blocker = submit(fresh, "sleepy", {"seconds": 50})
    queued = submit(fresh, "sleepy", {"seconds": 50}, policy={"ttl": 300})
    assert status(fresh, "sleepy", running)["status"] == "IN_PROGRESS"
    assert status(fresh, "sleepy", queued)["status"] == "IN_QUEUE"

    def code(job_id: str) -> int:
        return fresh.get(f"/v2/sleepy/status/{job_id}").status_code

    wait_until(lambda: code(running), lambda c: c == 404, timeout=3)
    assert code(queued) == 404
    # The expired run freed its worker; the queued job expired instead of taking it.
    jobs = health(fresh, "sleepy")["jobs"]
    assert jobs["inProgress"] == 1 and jobs["inQueue"] == 0
    assert status(fresh, "sleepy", blocker)["status"] == "IN_PROGRESS"


def test_execution_timeout_times_out_and_can_be_retried(fresh: httpx.Client) -> None:
    job_id = submit(fresh, "sleepy", {"seconds": 50}, policy={"executionTimeout": 300})
    done = settle(fresh, "sleepy", job_id)
    assert done["status"] == "TIMED_OUT"
    assert 250 <= done["executionTime"] < 1500
    assert health(fresh, "sleepy")["workers"]["running"] == 0
    r = fresh.post(f"/v2/sleepy/retry/{job_id}")
    assert r.json() == {"id": job_id, "status": "IN_QUEUE"}
    assert settle(fresh, "sleepy", job_id)["retries"] == 1


def test_results_expire_after_their_retention() -> None:
    cfg = SandboxConfig(port=0, time_scale=SCALE, run_retention_s=0.6, runsync_retention_s=0.2)
    with start_sandbox(cfg) as sb, _client(sb) as c:
        synced = c.post("/v2/echo/runsync", json={"input": {"a": 1}}).json()
        queued = submit(c, "echo", {"a": 2})
        settle(c, "echo", queued)
        time.sleep(0.3)
        assert c.get(f"/v2/echo/status/{synced['id']}").status_code == 404
        assert status(c, "echo", queued)["status"] == "COMPLETED"
        time.sleep(0.5)
        assert c.get(f"/v2/echo/status/{queued}").status_code == 404


# ---- requests the sandbox refuses ----------------------------------------------------------


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "wrong"},
        {"Authorization": "Bearer"},
    ],
    ids=["missing", "wrong-bearer", "wrong-bare", "empty-bearer"],
)
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/echo/health"),
        ("POST", "/v2/echo/run"),
        ("GET", "/lb/api/ping"),
        ("GET", "/v2/serverless"),
    ],
)
def test_auth_refuses_missing_or_wrong_keys(
    sandbox: RunningSandbox, headers: dict[str, str], method: str, path: str
) -> None:
    with _client(sandbox, headers) as c:
        r = c.request(method, path, json={"input": {"a": 1}})
    assert r.status_code == 401
    assert r.json() == {"error": "Unauthorized", "detail": "missing or invalid API key"}


@pytest.mark.parametrize("value", [f"Bearer {KEY}", f"bearer {KEY}", KEY])
def test_auth_accepts_bearer_and_bare_key(sandbox: RunningSandbox, value: str) -> None:
    with _client(sandbox, {"Authorization": value}) as c:
        assert c.get("/v2/echo/health").status_code == 200


@pytest.mark.parametrize("route", ["run", "runsync"])
@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"", "empty"),
        (b"not json", "not valid JSON"),
        (b'{"input": {"x": NaN}}', "not valid JSON"),
        (b"[1, 2]", "JSON object"),
        (b'{"prompt": "hi"}', 'no "input"'),
        (b'{"input": [1]}', "must be a JSON object"),
        (b'{"input": "hi"}', "must be a JSON object"),
        (b'{"input": {}}', "empty"),
        (b'{"input": {"a": 1}, "policy": {"ttl": -5}}', "ttl"),
        (b'{"input": {"a": 1}, "policy": {"executionTimeout": "soon"}}', "executionTimeout"),
        (b'{"input": {"a": 1}, "webhook": 3}', "webhook"),
    ],
)
def test_bad_bodies_get_400_with_a_clear_message(
    client: httpx.Client, route: str, body: bytes, needle: str
) -> None:
    r = client.post(f"/v2/echo/{route}", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert needle in r.json()["error"]
    assert health(client, "echo")["jobs"]["inQueue"] == 0


def test_bad_wait_and_oversized_bodies(client: httpx.Client) -> None:
    r = client.post("/v2/echo/runsync", params={"wait": "soon"}, json={"input": {"a": 1}})
    assert r.status_code == 400 and "wait" in r.json()["error"]
    r = client.get("/v2/echo/status-sync/x-u1", params={"wait": "soon"})
    assert r.status_code == 400
    big = b'{"input": {"blob": "' + b"x" * (10 * 1024 * 1024) + b'"}}'
    r = client.post("/v2/echo/run", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["error"] == "Payload Too Large"


def test_unknown_endpoints_and_jobs_get_404_json(client: httpx.Client) -> None:
    r = client.post("/v2/nope/run", json={"input": {"a": 1}})
    assert r.status_code == 404 and r.json()["error"] == "endpoint not found"
    r = client.post("/v2/api/run", json={"input": {"a": 1}})
    assert r.status_code == 404 and "/lb/api" in r.json()["detail"]
    r = client.get("/v2/echo/status/00000000-0000-0000-0000-000000000000-u1")
    assert r.status_code == 404 and r.json()["error"] == "job not found"
    echo_job = submit(client, "echo", {"a": 1})
    assert client.get(f"/v2/sleepy/status/{echo_job}").status_code == 404  # wrong endpoint
    for path in (f"/v2/echo/stream/{echo_job}x", f"/v2/echo/status-sync/{echo_job}x"):
        assert client.get(path).status_code == 404
    assert client.post(f"/v2/echo/cancel/{echo_job}x").status_code == 404
    r = client.get("/nothing/here")
    assert r.status_code == 404 and r.json()["error"] == "Not Found"


def test_webhook_and_policy_are_accepted(client: httpx.Client) -> None:
    body = {
        "input": {"a": 1},
        "webhook": "https://example.invalid/hook",
        "policy": {"executionTimeout": 5000, "lowPriority": True, "ttl": 60000},
        "s3Config": {"bucketName": "b"},
    }
    r = client.post("/v2/echo/runsync", json=body)
    assert r.status_code == 200 and r.json()["status"] == "COMPLETED"


# ---- load-balanced endpoint and listing -------------------------------------------------


def test_load_balanced_routes(client: httpx.Client) -> None:
    assert client.get("/lb/api/ping").json() == {"status": "healthy"}
    info = client.get("/lb/api/info").json()
    assert info["name"] == "api"
    assert {(r["method"], r["path"]) for r in info["routes"]} == {
        ("GET", "/ping"),
        ("GET", "/info"),
        ("POST", "/echo"),
        ("POST", "/fail"),
    }
    raw = b'{"text": "Hello from flash-tui", "n": [1, 2.50]}'
    r = client.post("/lb/api/echo", content=raw)
    assert r.status_code == 200 and r.content == raw

    r = client.post("/lb/api/echo", content=b"{oops")
    assert r.status_code == 400 and r.json()["error"] == "Bad Request"
    r = client.post("/lb/api/fail")
    assert r.status_code == 500 and set(r.json()) == {"error", "detail"}
    r = client.get("/lb/api/nope")
    assert r.status_code == 404
    assert r.json()["error"] == "Not Found" and "detail" in r.json()
    assert client.get("/lb/api/echo").status_code == 405
    assert client.get("/lb/missing/ping").status_code == 404
    assert client.get("/lb/echo/ping").status_code == 404  # echo is a queue endpoint


def test_listing_describes_the_demo_endpoints(
    sandbox: RunningSandbox, client: httpx.Client
) -> None:
    r = client.get("/v2/serverless")
    assert r.status_code == 200
    listed = {e["id"]: e for e in r.json()["endpoints"]}
    assert set(listed) == {d.id for d in DEMO_ENDPOINTS}
    assert listed["echo"]["type"] == "QUEUE"
    assert listed["echo"]["requestUrls"]["base"] == f"{sandbox.base_url}/v2/echo"
    assert listed["api"]["type"] == "LOAD_BALANCER"
    assert listed["api"]["requestUrls"]["base"] == f"{sandbox.base_url}/lb/api"
    assert listed["sleepy"]["workers"] == {"min": 0, "max": 2}


def test_demo_endpoint_descriptions() -> None:
    by_id = {d.id: d for d in DEMO_ENDPOINTS}
    assert [d.id for d in DEMO_ENDPOINTS] == ["echo", "sleepy", "flaky", "streamer", "api"]
    assert all(d.kind == "queue" and d.routes == () for d in DEMO_ENDPOINTS if d.id != "api")
    assert all(d.example_input and d.title for d in DEMO_ENDPOINTS)
    api = by_id["api"]
    assert api.kind == "lb"
    assert [(r.method, r.path) for r in api.routes] == [
        ("GET", "/ping"),
        ("GET", "/info"),
        ("POST", "/echo"),
        ("POST", "/fail"),
    ]
    assert api.routes[2].example_body == {"text": "Hello from flash-tui"}


# ---- faults -------------------------------------------------------------------------------


def test_error_rate_answers_500_json_and_502_html() -> None:
    cfg = SandboxConfig(port=0, error_rate=1.0, seed=7)
    with start_sandbox(cfg) as sb, _client(sb) as c:
        answers = [c.get("/v2/echo/health") for _ in range(30)]
        answers += [c.get("/lb/api/ping") for _ in range(10)]
        assert c.get("/v2/serverless").status_code == 200  # account-level, not faulted
        assert _client(sb, {}).get("/v2/echo/health").status_code == 401  # auth comes first
    codes = {r.status_code for r in answers}
    assert codes == {500, 502}
    for r in answers:
        if r.status_code == 500:
            assert r.json() == {"error": "internal server error"}
        else:
            assert r.headers["content-type"].startswith("text/html")
            assert "<title>502 Bad Gateway</title>" in r.text


def test_faults_never_change_state() -> None:
    app = create_app(SandboxConfig(error_rate=1.0, seed=1))

    async def hammer() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t", headers=AUTH) as c:
            return [
                (await c.post("/v2/echo/run", json={"input": {"a": 1}})).status_code
                for _ in range(20)
            ]

    assert set(asyncio.run(hammer())) <= {500, 502}
    engine = app.state.engine
    echo = engine.endpoint("echo")
    assert echo.jobs == {}
    assert engine.health(echo)["jobs"]["inQueue"] == 0


def test_rate_limit_answers_429_with_retry_after() -> None:
    with start_sandbox(SandboxConfig(port=0, rate_limit=3)) as sb, _client(sb) as c:
        assert [c.get("/v2/echo/health").status_code for _ in range(3)] == [200] * 3
        r = c.get("/v2/echo/health")
        assert r.status_code == 429
        assert r.json()["error"] == "Too Many Requests"
        assert 1 <= int(r.headers["Retry-After"]) <= 10
        assert c.get("/v2/sleepy/health").status_code == 200  # per endpoint
        assert c.get("/v2/serverless").status_code == 200


def test_latency_delays_each_request() -> None:
    with start_sandbox(SandboxConfig(port=0, latency_ms=200)) as sb, _client(sb) as c:
        started = time.monotonic()
        assert c.get("/v2/echo/health").status_code == 200
        assert time.monotonic() - started >= 0.2


# ---- running the server -------------------------------------------------------------------


def test_start_stop_and_port_conflicts() -> None:
    sb = start_sandbox(SandboxConfig(port=0))
    port = int(sb.base_url.rsplit(":", 1)[1])
    assert port > 0
    with pytest.raises(RuntimeError, match="could not start"):
        start_sandbox(SandboxConfig(port=port))
    sb.stop()
    sb.stop()  # idempotent
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_stop_ends_long_polls_quickly() -> None:
    sb = start_sandbox(SandboxConfig(port=0, time_scale=SCALE))
    with _client(sb) as c:
        job_id = submit(c, "sleepy", {"seconds": 500})
    answers: list[httpx.Response] = []

    def long_poll() -> None:
        with _client(sb) as c:
            answers.append(c.get(f"/v2/sleepy/status-sync/{job_id}", timeout=30))

    poller = threading.Thread(target=long_poll)
    poller.start()
    time.sleep(0.2)  # let the long-poll reach the server
    started = time.monotonic()
    sb.stop()
    poller.join(5)
    # The engine closes first, so the 90 s long-poll answers instead of holding shutdown.
    assert time.monotonic() - started < 1.5
    assert answers and answers[0].status_code == 200


def test_sandbox_imports_no_textual_and_loads_the_server_lazily() -> None:
    code = (
        "import sys\n"
        "from tui.sandbox import DEMO_ENDPOINTS, SandboxConfig\n"
        "assert 'uvicorn' not in sys.modules, 'the server half loaded eagerly'\n"
        "from tui.sandbox import start_sandbox\n"
        "assert 'textual' not in sys.modules, 'the sandbox imported textual'\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, check=False, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("key", "shown"), [("sandbox", True), ("s3cr3t-key", False)])
def test_serve_forever_prints_a_banner_and_stops_on_ctrl_c(key: str, shown: bool) -> None:
    code = (
        # A shell's background job starts with SIGINT ignored; a terminal user's would not be.
        "import signal; signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from tui.sandbox import SandboxConfig, serve_forever\n"
        f"serve_forever(SandboxConfig(port=0, api_key={key!r}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:
            lines.append(line)
            if "Ctrl-C" in line:
                break
        banner = "".join(lines)
        base = banner.split(" at ", 1)[1].split()[0]
        assert f"{base}/v2/echo" in banner and f"{base}/lb/api" in banner
        assert f"flash-tui run {base}/v2/echo --input" in banner
        assert (key in banner) is shown
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as c:
            assert c.get("/v2/echo/health").status_code == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
