"""Our client against the sandbox over real loopback HTTP: every operation, every error class.

Each error a user can meet must arrive as a typed ``FlashError`` whose message a person
understands (no traceback, the key never shown). Tests that count jobs, break the server or
inject faults get a sandbox of their own; starting one takes milliseconds.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest

from tui.api import errors as E
from tui.api.client import ClientPool, EndpointClient
from tui.api.models import EXPIRED, Endpoint, EndpointKind, Health, Job, RouteAnswer
from tui.poller import EndpointLink, JobChange, StatusPoller
from tui.sandbox import RunningSandbox, SandboxConfig, start_sandbox

KEY = "client-test-key-4321"
SCALE = 0.2
FINAL = {"COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"}


def sandbox_config(**overrides: Any) -> SandboxConfig:
    settings: dict[str, Any] = {"port": 0, "api_key": KEY, "time_scale": SCALE}
    settings.update(overrides)
    return SandboxConfig(**settings)


def queue(base: str, endpoint_id: str, **extra: Any) -> Endpoint:
    return Endpoint(
        name=endpoint_id, kind=EndpointKind.QUEUE, url=f"{base}/v2/{endpoint_id}", **extra
    )


def lb(base: str) -> Endpoint:
    return Endpoint(name="api", kind=EndpointKind.LB, url=f"{base}/lb/api")


def client_for(
    base: str, endpoint_id: str, key: str | None = KEY, pool: ClientPool | None = None
) -> EndpointClient:
    return EndpointClient(queue(base, endpoint_id), api_key=key, pool=pool)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def readable(err: BaseException, *words: str) -> str:
    """The message a user sees: says what the words say, and is no traceback."""
    text = str(err)
    assert "Traceback" not in text
    assert KEY not in text
    for word in words:
        assert word.lower() in text.lower(), f"{word!r} not in {text!r}"
    return text


async def eventually(
    probe: Callable[[], Awaitable[Any]], accept: Callable[[Any], bool], timeout: float = 10.0
) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = await probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value {value!r}"
        await asyncio.sleep(0.02)


async def until(condition: Callable[[], bool], timeout: float = 10.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what or condition}"
        await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(sandbox_config()) as sb:
        yield sb


@pytest.fixture
def fresh() -> Iterator[RunningSandbox]:
    """One worker per endpoint and zeroed counters."""
    with start_sandbox(sandbox_config(workers=1)) as sb:
        yield sb


@pytest.fixture
async def echo(sandbox: RunningSandbox) -> AsyncIterator[EndpointClient]:
    async with client_for(sandbox.base_url, "echo") as client:
        yield client


# ---- queue operations --------------------------------------------------------------------


async def test_submit_status_wait(echo: EndpointClient) -> None:
    job_input = {"prompt": "Hello world", "n": 1, "nested": {"list": [1, 2.5, None, "ü"]}}
    answer = await echo.submit(job_input)
    assert answer["status"] == "IN_QUEUE"
    job_id = answer["id"]
    assert (await echo.status(job_id))["id"] == job_id
    seen: list[str] = []
    final = await echo.wait(job_id, timeout=10, on_answer=lambda a: seen.append(a["status"]))
    assert final["status"] == "COMPLETED"
    assert final["output"] == job_input
    assert final["workerId"].startswith("sandbox-echo-")
    assert seen[-1] == "COMPLETED"
    assert (await echo.status(job_id))["output"] == job_input


async def test_runsync_short_wait_keeps_the_id_then_wait_completes(
    sandbox: RunningSandbox,
) -> None:
    async with client_for(sandbox.base_url, "sleepy") as client:
        assert client.status_sync_supported is None
        started = time.monotonic()
        answer = await client.submit({"seconds": 10}, sync=True, wait_ms=1000)  # 2 s of work
        assert time.monotonic() - started < 1.9
        assert answer["status"] in {"IN_QUEUE", "IN_PROGRESS"}
        assert answer["id"]
        final = await client.wait(answer["id"], timeout=15)
        assert final["status"] == "COMPLETED"
        assert final["output"] == {"slept": 10}
        assert client.status_sync_supported is True  # it long-polled /status-sync


async def test_runsync_that_finishes_in_time(echo: EndpointClient) -> None:
    answer = await echo.submit({"a": 1}, sync=True, wait_ms=5000)
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"a": 1}


async def test_iter_stream_yields_chunks_in_order(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox.base_url, "streamer") as client:
        job_id = (await client.submit({"count": 6}))["id"]
        state: dict[str, Any] = {}
        chunks = [chunk async for chunk in client.iter_stream(job_id, interval=0.05, state=state)]
        assert chunks == [{"index": i, "text": f"chunk {i}"} for i in range(6)]
        assert state["status"] == "COMPLETED"


async def test_cancel(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox.base_url, "sleepy") as client:
        job_id = (await client.submit({"seconds": 60}))["id"]
        assert (await client.cancel(job_id)) == {"id": job_id, "status": "CANCELLED"}
        assert (await client.status(job_id))["status"] == "CANCELLED"
        # wait() returns at once for a final job.
        assert (await client.wait(job_id, timeout=5))["status"] == "CANCELLED"


async def test_retry_a_failed_job(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox.base_url, "flaky") as client:
        job_id = (await client.submit({"fail_attempts": 1}))["id"]
        failed = await client.wait(job_id, timeout=10)
        assert failed["status"] == "FAILED"
        assert "flaky failed as asked" in failed["error"]
        assert (await client.retry(job_id)) == {"id": job_id, "status": "IN_QUEUE"}
        done = await client.wait(job_id, timeout=10)
        assert done["status"] == "COMPLETED"
        assert done["output"] == {"ok": True, "attempt": 2}
        assert done["retries"] == 1
        # Retrying a completed job is refused with the server's reason.
        with pytest.raises(E.BadRequest) as info:
            await client.retry(job_id)
        readable(info.value, "400", "only FAILED or TIMED_OUT", "COMPLETED")


async def test_purge_queue_and_health(fresh: RunningSandbox) -> None:
    async with client_for(fresh.base_url, "sleepy") as client:
        health = await client.health()
        assert isinstance(health, Health)
        assert health.jobs == {
            "completed": 0,
            "failed": 0,
            "inProgress": 0,
            "inQueue": 0,
            "retried": 0,
        }
        assert health.workers["idle"] == 1
        assert health.healthy

        busy = (await client.submit({"seconds": 60}))["id"]
        await eventually(lambda: client.status(busy), lambda a: a["status"] == "IN_PROGRESS")
        queued = [(await client.submit({"seconds": 60}))["id"] for _ in range(3)]
        health = await client.health()
        assert health.jobs["inQueue"] == 3
        assert health.jobs["inProgress"] == 1
        assert health.workers["running"] == 1
        assert health.summary().startswith("3 queued, 1 running")

        assert await client.purge_queue() == {"removed": 3, "status": "completed"}
        assert (await client.health()).jobs["inQueue"] == 0
        assert (await client.status(busy))["status"] == "IN_PROGRESS"
        for job_id in queued:
            with pytest.raises(E.NotFound):
                await client.status(job_id)

    async with client_for(fresh.base_url, "echo") as client:
        for n in range(2):
            assert (await client.submit({"n": n}, sync=True))["status"] == "COMPLETED"
        assert (await client.health()).jobs["completed"] == 2


# ---- load-balanced routes ----------------------------------------------------------------


async def test_lb_routes(sandbox: RunningSandbox) -> None:
    async with EndpointClient(lb(sandbox.base_url), api_key=KEY) as client:
        ping = await client.ping()
        assert isinstance(ping, RouteAnswer)
        assert (ping.status_code, ping.ok, ping.json) == (200, True, {"status": "healthy"})

        info = await client.call("GET", "/info")
        assert info.json["name"] == "api"
        routes = {(r["method"], r["path"]) for r in info.json["routes"]}
        assert {("GET", "/ping"), ("POST", "/echo"), ("POST", "/fail")} <= routes

        body = {"text": "Hello from flash-tui", "n": [1, 2, {"ü": None}]}
        echo = await client.call("POST", "/echo", body, headers={"X-Trace": "abc"})
        assert echo.status_code == 200 and echo.ok
        assert echo.is_json and echo.json == body
        assert echo.method == "POST"
        assert echo.url == f"{sandbox.base_url}/lb/api/echo"
        assert echo.elapsed_s > 0
        assert echo.size == len(echo.text.encode())
        headers = {name.lower(): value for name, value in echo.headers}
        assert headers["content-type"] == "application/json"
        assert int(headers["content-length"]) == echo.size

        fail = await client.call("POST", "/fail")  # an answer, not an exception
        assert (fail.status_code, fail.ok, fail.is_json) == (500, False, True)
        assert fail.json["detail"] == "the /fail route always fails (on purpose)"

        missing = await client.call("GET", "/nowhere")
        assert missing.status_code == 404
        assert "no route GET /nowhere" in missing.json["detail"]

        wrong_method = await client.call("GET", "/echo")
        assert wrong_method.status_code == 405
        assert ("allow", "POST") in [(k.lower(), v) for k, v in wrong_method.headers]

        # The load-balanced kind has no queue: refused before anything is sent.
        with pytest.raises(E.Unsupported) as info_err:
            await client.submit({"a": 1})
        readable(info_err.value, "load-balanced", "no job queue")


async def test_lb_non_json_answer_is_kept_as_text() -> None:
    with start_sandbox(sandbox_config(error_rate=1.0, seed=3)) as sb:
        async with EndpointClient(lb(sb.base_url), api_key=KEY) as client:
            for _ in range(40):
                answer = await client.call("GET", "/ping")
                if answer.status_code == 502:
                    break
            else:
                pytest.fail("no 502 page in 40 calls")
            assert not answer.is_json and answer.json is None
            assert "<title>502 Bad Gateway</title>" in answer.text
            assert answer.size == len(answer.text.encode())


# ---- error classes -----------------------------------------------------------------------


async def test_wrong_key_is_unauthorized(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox.base_url, "echo", key="not-the-key") as client:
        with pytest.raises(E.Unauthorized) as info:
            await client.health()
        assert info.value.status_code == 401
        text = readable(info.value, "Unauthorized", "401", "API key", "RUNPOD_API_KEY")
        assert "not-the-key" not in text
        # A submission refused outright is a clear answer, not an unknown outcome.
        with pytest.raises(E.Unauthorized):
            await client.submit({"a": 1})
    async with client_for(sandbox.base_url, "echo", key=None) as client:
        with pytest.raises(E.Unauthorized):
            await client.status("whatever")


async def test_unknown_job_is_not_found_and_says_expired(echo: EndpointClient) -> None:
    for call in (echo.status, echo.cancel, echo.retry, echo.stream):
        with pytest.raises(E.NotFound) as info:
            await call("no-such-job-u1")
        assert info.value.status_code == 404
        readable(info.value, "no-such-job-u1", "not found", "expired")
    # status_sync falls back to /status on a 404, which then tells the same story.
    with pytest.raises(E.NotFound) as info:
        await echo.status_sync("no-such-job-u1", wait_ms=1000)
    readable(info.value, "expired")


async def test_unknown_endpoint_is_not_found(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox.base_url, "nope") as client:
        with pytest.raises(E.NotFound) as info:
            await client.health()
        readable(info.value, "404", "endpoint", "nope")


async def test_rate_limited_has_retry_after() -> None:
    with start_sandbox(sandbox_config(rate_limit=3)) as sb:
        async with client_for(sb.base_url, "echo") as client:
            for _ in range(3):
                await client.health()
            with pytest.raises(E.RateLimited) as info:
                await client.health()
            err = info.value
            assert err.status_code == 429
            assert err.retry_after is not None and err.retry_after > 0
            readable(err, "Rate limited", "429", "retry after")
            # A 429 on submit was not accepted: it is said as such, not as "unknown".
            with pytest.raises(E.RateLimited):
                await client.submit({"a": 1})


async def test_bad_request_carries_the_servers_detail(echo: EndpointClient) -> None:
    # Our own check refuses these before sending...
    with pytest.raises(E.PayloadError):
        await echo.submit([])  # type: ignore[arg-type]
    with pytest.raises(E.PayloadError) as info:
        await echo.submit({})
    readable(info.value, "empty")
    # ...so go around it to hear the server say no.
    with pytest.raises(E.BadRequest) as err:
        await echo._op("run", content=b'{"input": []}')
    assert err.value.status_code == 400
    assert err.value.exit_code == 2
    readable(err.value, "400", '"input" must be a JSON object, not an array')
    with pytest.raises(E.BadRequest) as err:
        await echo._op("run", content=b"{not json")
    readable(err.value, "not valid JSON")


async def test_server_errors_json_and_html() -> None:
    with start_sandbox(sandbox_config(error_rate=1.0, seed=11)) as sb:
        async with client_for(sb.base_url, "echo") as client:
            seen: dict[int, E.ServerError] = {}
            for _ in range(40):
                with pytest.raises(E.ServerError) as info:
                    await client.health()
                seen.setdefault(info.value.status_code, info.value)
                if {500, 502} <= seen.keys():
                    break
            assert {500, 502} <= seen.keys(), seen
            readable(seen[500], "Server error", "500", "/v2/echo/health", "internal server error")
            html = readable(seen[502], "Server error", "502", "502 Bad Gateway", "HTML page")
            assert "<" not in html  # the page's title, not its markup
            assert "<html>" in seen[502].body


async def test_closed_port_is_connection_refused() -> None:
    base = f"http://127.0.0.1:{free_port()}"
    async with client_for(base, "echo") as client:
        with pytest.raises(E.ConnectionRefused) as info:
            await client.health()
        readable(info.value, "refused", base)
        # Nothing was sent, so a submission fails plainly (not "outcome unknown").
        with pytest.raises(E.ConnectionRefused):
            await client.submit({"a": 1})


async def test_unresolvable_host_is_dns_failure() -> None:
    async with client_for("https://nonexistent.invalid", "echo") as client:
        with pytest.raises(E.DnsFailure) as info:
            await client.health()
        readable(info.value, "resolve", "nonexistent.invalid")


async def test_slow_server_is_request_timeout_and_a_slow_submit_is_outcome_unknown() -> None:
    with start_sandbox(sandbox_config(latency_ms=2000)) as sb:
        async with client_for(sb.base_url, "echo") as client:
            started = time.monotonic()
            with pytest.raises(E.RequestTimeout) as info:
                await client._send("GET", "health", timeout=httpx.Timeout(0.3))
            assert time.monotonic() - started < 1.5
            readable(info.value, "did not answer in time", sb.base_url)

            # A /run that times out may have arrived: it is not sent again.
            sent: list[str] = []

            async def count(request: httpx.Request) -> None:
                sent.append(request.url.path)

            client.pool.get(sb.base_url).event_hooks["request"].append(count)
            send = client._send

            async def impatient_send(*args: Any, **kwargs: Any) -> Any:
                kwargs["timeout"] = httpx.Timeout(0.3)
                return await send(*args, **kwargs)

            client._send = impatient_send  # type: ignore[method-assign]
            with pytest.raises(E.OutcomeUnknown) as unknown:
                await client.submit({"a": 1})
            assert sent == ["/v2/echo/run"]
            assert isinstance(unknown.value.cause, E.RequestTimeout)
            readable(unknown.value, "may have reached the server", "check the endpoint's jobs")


async def test_wait_gives_up_at_its_timeout_and_keeps_the_id(sandbox: RunningSandbox) -> None:
    async with client_for(sandbox.base_url, "sleepy") as client:
        job_id = (await client.submit({"seconds": 60}))["id"]
        started = time.monotonic()
        with pytest.raises(E.RequestTimeout) as info:
            await client.wait(job_id, timeout=1.0)
        assert time.monotonic() - started < 4
        readable(info.value, job_id, "did not finish", "still on the server")
        await client.cancel(job_id)


async def test_submit_that_may_have_arrived_is_outcome_unknown_and_not_resent() -> None:
    with start_sandbox(sandbox_config(error_rate=1.0, seed=5)) as sb:
        async with client_for(sb.base_url, "echo") as client:
            sent: list[str] = []

            async def count(request: httpx.Request) -> None:
                sent.append(f"{request.method} {request.url.path}")

            client.pool.get(sb.base_url).event_hooks["request"].append(count)
            with pytest.raises(E.OutcomeUnknown) as info:
                await client.submit({"a": 1})
            assert sent == ["POST /v2/echo/run"]  # exactly one request: never resent
            assert isinstance(info.value.cause, E.ServerError)
            readable(info.value, "/run", "may have reached the server", "not sent again")


async def test_wait_rides_out_transient_server_errors() -> None:
    with start_sandbox(sandbox_config(error_rate=0.5, seed=1234)) as sb:
        async with client_for(sb.base_url, "echo") as client:
            answer = None
            for _ in range(20):  # a submission can meet an injected error too
                try:
                    answer = await client.submit({"a": 1})
                    break
                except E.OutcomeUnknown:
                    continue
            assert answer is not None, "no submission got through"
            seen: list[str] = []
            final = await client.wait(
                answer["id"], timeout=30, on_answer=lambda a: seen.append(a["status"])
            )
            assert final["status"] == "COMPLETED"
            assert final["output"] == {"a": 1}
            # And the read-only calls meet errors: retries were needed along the way.
            errors = 0
            for _ in range(10):
                try:
                    await client.status(answer["id"])
                except E.ServerError:
                    errors += 1
            assert errors > 0


# ---- connections and the key -------------------------------------------------------------


async def test_one_connection_pool_per_origin_and_bearer_key(sandbox: RunningSandbox) -> None:
    pool = ClientPool()
    try:
        echo = client_for(sandbox.base_url, "echo", pool=pool)
        sleepy = client_for(sandbox.base_url, "sleepy", pool=pool)
        api = EndpointClient(lb(sandbox.base_url), api_key=KEY, pool=pool)
        shared = pool.get(f"{sandbox.base_url}/v2/echo")
        assert pool.get(f"{sandbox.base_url}/v2/sleepy/health") is shared
        assert pool.get(f"{sandbox.base_url}/lb/api") is shared
        assert pool.get("http://localhost:1/v2/echo") is not shared  # another origin

        auth: list[str | None] = []
        local_ports: set[int] = set()

        async def on_request(request: httpx.Request) -> None:
            auth.append(request.headers.get("authorization"))

        async def on_response(response: httpx.Response) -> None:
            stream = response.extensions.get("network_stream")
            if stream is not None:
                local_ports.add(stream.get_extra_info("client_addr")[1])

        shared.event_hooks["request"].append(on_request)
        shared.event_hooks["response"].append(on_response)
        for _ in range(5):
            await echo.health()
            await sleepy.health()
            await api.ping()
        job = await echo.submit({"a": 1}, sync=True)
        await echo.status(job["id"])

        assert len(auth) == 17
        assert set(auth) == {f"Bearer {KEY}"}
        assert len(local_ports) == 1  # one kept-alive connection served every call
        # Closing a client that shares the pool leaves the pool to its owner.
        await echo.aclose()
        assert not shared.is_closed
        assert (await sleepy.health()).workers
    finally:
        await pool.aclose()
    assert shared.is_closed


async def test_key_is_never_sent_over_plain_http_to_another_host() -> None:
    async with client_for("http://example.com", "echo") as client:
        sent: list[httpx.Request] = []

        async def record(request: httpx.Request) -> None:
            sent.append(request)

        client.pool.get("http://example.com").event_hooks["request"].append(record)
        with pytest.raises(E.UsageError) as info:
            await client.status("some-job")
        readable(info.value, "plain http", "example.com", "https")
        with pytest.raises(E.UsageError):
            await client.submit({"a": 1})
        assert sent == []
    # https, or no key at all, is not refused (it would be sent; nothing is listening here).
    assert queue("https://example.com", "echo").key_is_safe_to_send
    assert queue("http://localhost:1", "echo").key_is_safe_to_send
    assert queue("http://[::1]:1", "echo").key_is_safe_to_send
    assert not queue("http://10.0.0.1", "echo").key_is_safe_to_send


# ---- the poller --------------------------------------------------------------------------


class Recorder:
    def __init__(self) -> None:
        self.batches: list[list[JobChange]] = []
        self.links: list[dict[str, str]] = []

    def __call__(self, changes: list[JobChange], links: dict[str, EndpointLink]) -> None:
        self.batches.append(changes)
        self.links.append({name: link.state for name, link in links.items()})


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def test_poller_follows_many_jobs_to_the_end(sandbox: RunningSandbox) -> None:
    pool = ClientPool()
    clients = {name: client_for(sandbox.base_url, name, pool=pool) for name in ("echo", "sleepy")}
    poller = StatusPoller(clients.get)
    jobs: list[Job] = []
    try:
        for i in range(20):
            name = "echo" if i % 2 == 0 else "sleepy"
            job_input = {"i": i} if name == "echo" else {"seconds": 1, "i": i}
            answer = await clients[name].submit(job_input)
            job = Job(endpoint=name, id=answer["id"], input=job_input)
            job.apply(answer)
            jobs.append(job)
            poller.track(job)
        assert len(poller) == 20
        record = Recorder()
        task = asyncio.create_task(poller.run(record))
        try:
            await until(lambda: all(j.is_final for j in jobs), timeout=20, what="all jobs final")
        finally:
            await stop(task)
        assert [j.status for j in jobs] == ["COMPLETED"] * 20
        for i, job in enumerate(jobs):
            assert job.output == ({"i": i} if i % 2 == 0 else {"slept": 1})
            assert job.ended_at is not None
        assert poller.active == 0
        assert record.batches, "no batch was delivered"
        changed = [change for batch in record.batches for change in batch]
        assert {c.job.id for c in changed} == {j.id for j in jobs}
        for change in changed:
            assert change.fields  # only jobs that changed, with what changed
        final_fields = set().union(*(c.fields for c in changed if c.job.is_final))
        assert {"status", "output"} <= final_fields
        total = poller.requests["status"] + poller.requests["status-sync"]
        assert poller.requests["status-sync"] > 0
        assert total <= 3 * len(jobs), poller.requests
        assert all(state == "ok" for links in record.links for state in links.values())
    finally:
        await pool.aclose()


async def test_poller_survives_the_server_going_away_and_coming_back() -> None:
    first = start_sandbox(sandbox_config())
    port = int(first.base_url.rsplit(":", 1)[1])
    pool = ClientPool()
    client = client_for(first.base_url, "sleepy", pool=pool)
    poller = StatusPoller(lambda name: client if name == "sleepy" else None, long_poll_wait_ms=1000)
    record = Recorder()
    task: asyncio.Task[None] | None = None
    second: RunningSandbox | None = None
    try:
        jobs = []
        for _ in range(3):
            answer = await client.submit({"seconds": 300})
            job = Job(endpoint="sleepy", id=answer["id"])
            jobs.append(job)
            poller.track(job)
        task = asyncio.create_task(poller.run(record))
        await until(lambda: all(j.raw for j in jobs), what="a first answer for every job")
        assert [j.status for j in jobs] == ["IN_PROGRESS", "IN_PROGRESS", "IN_QUEUE"]

        first.stop()
        await until(
            lambda: poller.links.get("sleepy", EndpointLink()).state == "down",
            timeout=15,
            what="link down",
        )
        link = poller.links["sleepy"]
        readable_text = link.message
        assert "Traceback" not in readable_text
        assert any(w in readable_text.lower() for w in ("refused", "broke", "connect"))
        assert not any(j.is_final for j in jobs)  # trouble on the link expires nothing

        second = start_sandbox(sandbox_config(port=port))
        # The new server never heard of these jobs: they expire (404), which is expected.
        await until(lambda: all(j.is_final for j in jobs), timeout=30, what="jobs expired")
        assert {j.status for j in jobs} == {EXPIRED}
        assert all("expired" in j.note for j in jobs)
        # A 404 is an answer: the link is up again, even with no job left to show it.
        await until(lambda: poller.links["sleepy"].state == "ok", timeout=5, what="link ok")
        assert poller.links["sleepy"].message == ""
        # A job the new server knows shows the link is fine again.
        answer = await client.submit({"seconds": 1})
        fresh_job = Job(endpoint="sleepy", id=answer["id"])
        poller.track(fresh_job)
        await until(lambda: fresh_job.is_final, timeout=15, what="new job final")
        assert fresh_job.status == "COMPLETED"
        assert poller.links["sleepy"].state == "ok"
        assert not task.done()  # the poller carried on throughout
        states = [links.get("sleepy") for links in record.links]
        assert "down" in states
        assert states.index("down") < len(states) - 1 - states[::-1].index("ok")
    finally:
        if task is not None:
            await stop(task)
        await pool.aclose()
        first.stop()
        if second is not None:
            second.stop()


@pytest.mark.parametrize("workers", [3, 12])
async def test_poller_waits_out_a_deep_queue_without_polling_each_job(workers: int) -> None:
    """60 jobs behind a few workers, a long-poll window of 6: every job ends and is seen
    soon after it ends, at close to one request per job. With 12 workers the endpoint runs
    more jobs than the window holds, and the ones running outside it are still seen."""
    sandbox = start_sandbox(sandbox_config(workers=workers, time_scale=1.0))
    pool = ClientPool()
    client = client_for(sandbox.base_url, "sleepy", pool=pool)
    poller = StatusPoller(
        lambda name: client if name == "sleepy" else None,
        long_poll_wait_ms=2000,
        long_poll_slots=6,
    )
    seen: dict[str, float] = {}

    def on_batch(changes: list[JobChange], links: dict[str, EndpointLink]) -> None:
        for change in changes:
            if change.job.is_final:
                seen.setdefault(change.job.id, time.monotonic())

    jobs: list[Job] = []
    task = asyncio.create_task(poller.run(on_batch))
    try:
        for i in range(60):
            job_input = {"seconds": 0.1 + (i % 5) * 0.1}
            answer = await client.submit(job_input)
            job = Job(endpoint="sleepy", id=answer["id"], input=job_input)
            job.apply(answer)
            jobs.append(job)
            poller.track(job)
        await until(lambda: len(seen) == 60, timeout=60, what="all 60 jobs seen ending")
    finally:
        await stop(task)
        await pool.aclose()
        sandbox.stop()
    assert [j.status for j in jobs] == ["COMPLETED"] * 60
    requests = poller.requests["status"] + poller.requests["status-sync"]
    assert requests <= 1.6 * len(jobs), poller.requests
    # Seen soon after it ended: the sandbox's engine records when each job ended, on the
    # same monotonic clock. Jobs queued behind the window are not polled one by one, yet
    # none is found out late.
    ended = {j.id: sandbox._engine.endpoints["sleepy"].jobs[j.id].finished_at for j in jobs}
    lateness = sorted(seen[i] - end for i, end in ended.items() if end is not None)
    assert len(lateness) == 60
    assert lateness[-1] < 1.5, lateness[-5:]
    assert lateness[len(lateness) // 2] < 0.3, lateness


async def test_poller_turns_to_status_when_status_sync_turns_out_missing() -> None:
    """A server without /status-sync (found out by the first long-poll): the jobs parked
    behind the long-poll window poll /status at once, not at their slow safety poll."""

    class NoStatusSync:
        status_sync_supported: bool | None = None

        def __init__(self) -> None:
            self.done_at = time.monotonic() + 0.5

        async def status(self, job_id: str) -> dict[str, Any]:
            done = time.monotonic() > self.done_at
            return {"id": job_id, "status": "COMPLETED" if done else "IN_QUEUE"}

        async def status_sync(self, job_id: str, wait_ms: int = 0) -> dict[str, Any]:
            # What EndpointClient.status_sync does when /status-sync answers 404 or 405.
            self.status_sync_supported = False
            return await self.status(job_id)

    source = NoStatusSync()
    poller = StatusPoller(lambda name: source, long_poll_slots=2)  # type: ignore[arg-type,return-value]
    jobs = [Job("ep", f"j{i}", submitted_at=float(i)) for i in range(8)]
    for job in jobs:
        job.apply({"status": "IN_QUEUE"})
        poller.track(job)
    task = asyncio.create_task(poller.run(lambda changes, links: None))
    try:
        await until(lambda: all(j.is_final for j in jobs), timeout=8, what="every job seen ending")
    finally:
        await stop(task)
