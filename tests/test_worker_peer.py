"""Our client against the real Runpod worker SDK local server (``handler.py --rp_serve_api``).

The ``runpod`` package's development server is a real peer: it speaks a dialect of its own
(routes at the root, POST for status and stream, the handler runs inside the first status
call, no /health, /cancel, /retry or /purge-queue). Each handler below runs in its own server
process on a free loopback port.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tui.api import errors as E
from tui.api.client import ClientPool, EndpointClient
from tui.api.models import Endpoint, EndpointKind, Job

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 30.0

_FOOTER = """
if __name__ == "__main__":
    import runpod

    runpod.serverless.start({"handler": handler})
"""

HANDLERS = {
    "plain": """
def handler(job):
    return {"echo": job["input"], "n": len(job["input"])}
""",
    "failing": """
def handler(job):
    raise ValueError("boom from handler")
""",
    "generator": """
def handler(job):
    for i in range(job["input"].get("count", 3)):
        yield {"i": i}
""",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_env() -> dict[str, str]:
    """No RUNPOD_* from the caller (no key, no pod id, no ping URL); quiet logs."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update(
        RUNPOD_LOG_LEVEL="ERROR",
        RUNPOD_DEBUG_LEVEL="ERROR",
        UVICORN_LOG_LEVEL="warning",
        PYTHONUNBUFFERED="1",
    )
    return env


class WorkerServer:
    def __init__(self, name: str, directory: Path) -> None:
        self.name = name
        self.directory = directory
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        (directory / "handler.py").write_text(HANDLERS[name] + _FOOTER, encoding="utf-8")
        self.stdout = open(directory / "stdout.txt", "wb")  # noqa: SIM115
        self.stderr = open(directory / "stderr.txt", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "handler.py",
                "--rp_serve_api",
                "--rp_api_host",
                "127.0.0.1",
                "--rp_api_port",
                str(self.port),
            ],
            cwd=directory,
            env=quiet_env(),
            stdin=subprocess.DEVNULL,
            stdout=self.stdout,
            stderr=self.stderr,
        )

    def output(self) -> str:
        self.stdout.flush()
        self.stderr.flush()
        out = (self.directory / "stdout.txt").read_text(errors="replace")
        err = (self.directory / "stderr.txt").read_text(errors="replace")
        return f"--- stdout ---\n{out}\n--- stderr ---\n{err}"

    def wait_ready(self, deadline: float) -> None:
        while True:
            code = self.proc.poll()
            if code is not None:
                pytest.fail(
                    f"the {self.name} worker server exited with {code} before answering:\n"
                    + self.output()
                )
            try:
                httpx.get(f"{self.base}/openapi.json", timeout=1.0)
                return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(
                    f"the {self.name} worker server did not answer on {self.base} within "
                    f"{START_TIMEOUT_S:g} s:\n" + self.output()
                )
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.stdout.close()
        self.stderr.close()


@pytest.fixture(scope="module")
def workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """name -> base URL of a running ``--rp_serve_api`` server for each handler."""
    servers: list[WorkerServer] = []
    try:
        for name in HANDLERS:
            servers.append(WorkerServer(name, tmp_path_factory.mktemp(f"worker-{name}")))
        deadline = time.monotonic() + START_TIMEOUT_S
        for server in servers:
            server.wait_ready(deadline)
        yield {server.name: server.base for server in servers}
    finally:
        for server in servers:
            server.stop()


def worker_endpoint(url: str) -> Endpoint:
    return Endpoint(name="dev", kind=EndpointKind.WORKER, url=url)


def with_client(url: str, fn: Callable[[EndpointClient], Awaitable[Any]], **kw: Any) -> Any:
    async def go() -> Any:
        async with EndpointClient(worker_endpoint(url), **kw) as client:
            return await fn(client)

    return asyncio.run(go())


class TripwirePool(ClientPool):
    """A pool that fails the test if the client tries to send anything."""

    def get(self, url: str) -> httpx.AsyncClient:
        raise AssertionError(f"a request was about to be sent to {url}")


# --- queue operations in the worker dialect ------------------------------------------------


def test_run_then_wait_completes(workers: dict[str, str]) -> None:
    job_input = {"prompt": "hello", "tags": ["a", "b"]}

    async def go(client: EndpointClient) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await client.submit(job_input)
        final = await client.wait(first["id"], timeout=30)
        return first, final

    first, final = with_client(workers["plain"], go)
    assert isinstance(first["id"], str) and first["id"]
    assert first["status"] == "IN_PROGRESS"
    assert final["id"] == first["id"]
    assert final["status"] == "COMPLETED"
    assert final["output"] == {"echo": job_input, "n": 2}

    job = Job(endpoint="dev", id=first["id"], input=job_input)
    job.apply(first)
    assert job.status == "IN_PROGRESS"
    assert not job.is_terminal
    assert job.ended_at is None
    changed = job.apply(final)
    assert {"status", "output"} <= changed
    assert job.is_terminal
    assert job.status == "COMPLETED"
    assert job.output == {"echo": job_input, "n": 2}
    assert job.error is None
    assert job.ended_at is not None


def test_wait_reports_every_answer(workers: dict[str, str]) -> None:
    seen: list[dict[str, Any]] = []

    async def go(client: EndpointClient) -> dict[str, Any]:
        first = await client.submit({"x": 1})
        return await client.wait(first["id"], timeout=30, on_answer=seen.append)

    final = with_client(workers["plain"], go)
    assert seen and seen[-1] == final
    assert final["output"] == {"echo": {"x": 1}, "n": 1}


def test_runsync_completes_in_one_call(workers: dict[str, str]) -> None:
    answer = with_client(workers["plain"], lambda c: c.submit({"a": 1, "b": "two"}, sync=True))
    assert answer["status"] == "COMPLETED"
    assert isinstance(answer["id"], str) and answer["id"]
    assert answer["output"] == {"echo": {"a": 1, "b": "two"}, "n": 2}
    job = Job(endpoint="dev", id=answer["id"], sync=True)
    job.apply(answer)
    assert job.is_terminal and job.output == answer["output"]


def test_non_ascii_input_round_trips(workers: dict[str, str]) -> None:
    job_input = {"text": "héllo ☃ 日本語", "emoji": "🚀", "nested": {"ключ": ["значение"]}}
    answer = with_client(workers["plain"], lambda c: c.submit(job_input, sync=True))
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"echo": job_input, "n": 3}


def test_result_is_returned_once_then_forgotten(workers: dict[str, str]) -> None:
    async def go(client: EndpointClient) -> dict[str, Any]:
        first = await client.submit({"k": "v"})
        final = await client.status(first["id"])
        with pytest.raises(E.NotFound) as info:
            await client.status(first["id"])
        assert first["id"] in str(info.value)
        return final

    final = with_client(workers["plain"], go)
    assert final["status"] == "COMPLETED"


def _check_failed(answer: dict[str, Any]) -> None:
    assert answer["status"] == "FAILED"
    job = Job(endpoint="dev", id=answer["id"])
    job.apply(answer)
    assert job.is_terminal
    assert job.status == "FAILED"
    assert job.output is None
    err = job.worker_error
    assert err is not None, f"not a worker SDK error: {answer.get('error')!r}"
    assert "ValueError" in err.type
    assert err.message == "boom from handler"
    assert "Traceback" in err.traceback
    assert "boom from handler" in err.traceback


def test_failing_handler_async(workers: dict[str, str]) -> None:
    async def go(client: EndpointClient) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await client.submit({"x": 1})
        return first, await client.wait(first["id"], timeout=30)

    first, final = with_client(workers["failing"], go)
    assert first["status"] == "IN_PROGRESS"
    _check_failed(final)


def test_failing_handler_sync(workers: dict[str, str]) -> None:
    _check_failed(with_client(workers["failing"], lambda c: c.submit({"x": 1}, sync=True)))


def test_generator_stream_yields_chunks_in_order(workers: dict[str, str]) -> None:
    state: dict[str, Any] = {}

    async def go(client: EndpointClient) -> list[Any]:
        first = await client.submit({"count": 5})
        assert first["status"] == "IN_PROGRESS"
        chunks = []
        async for chunk in client.iter_stream(first["id"], interval=0.05, state=state):
            chunks.append(chunk)
        return chunks

    chunks = with_client(workers["generator"], go)
    assert chunks == [{"i": i} for i in range(5)]
    assert state["status"] == "COMPLETED"


def test_generator_default_count(workers: dict[str, str]) -> None:
    state: dict[str, Any] = {}

    async def go(client: EndpointClient) -> list[Any]:
        first = await client.submit({"other": True})
        return [c async for c in client.iter_stream(first["id"], interval=0.05, state=state)]

    assert with_client(workers["generator"], go) == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert state["status"] == "COMPLETED"


def test_generator_wait_and_runsync_aggregate(workers: dict[str, str]) -> None:
    async def go(client: EndpointClient) -> tuple[dict[str, Any], dict[str, Any]]:
        first = await client.submit({"count": 2})
        waited = await client.wait(first["id"], timeout=30)
        synced = await client.submit({"count": 4}, sync=True)
        return waited, synced

    waited, synced = with_client(workers["generator"], go)
    assert waited["status"] == "COMPLETED"
    assert waited["output"] == [{"i": 0}, {"i": 1}]
    assert synced["status"] == "COMPLETED"
    assert synced["output"] == [{"i": i} for i in range(4)]


def test_stream_of_a_plain_handler_ends_failed(workers: dict[str, str]) -> None:
    """The local server refuses /stream for a non-generator handler: the stream ends."""
    state: dict[str, Any] = {}

    async def go(client: EndpointClient) -> list[Any]:
        first = await client.submit({"x": 1})
        return [c async for c in client.iter_stream(first["id"], interval=0.05, state=state)]

    assert with_client(workers["plain"], go) == []
    assert state["status"] == "FAILED"


# --- what a local worker does not have -----------------------------------------------------

UNSUPPORTED = [
    ("cancel", lambda c: c.cancel("job-1")),
    ("retry", lambda c: c.retry("job-1")),
    ("purge-queue", lambda c: c.purge_queue()),
    ("health", lambda c: c.health()),
]


@pytest.mark.parametrize(("op", "call"), UNSUPPORTED, ids=[op for op, _ in UNSUPPORTED])
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:1", "http://no-such-host.invalid:8000"], ids=["closed", "bad"]
)
def test_unsupported_ops_raise_without_a_request(
    op: str, call: Callable[[EndpointClient], Awaitable[Any]], url: str
) -> None:
    with pytest.raises(E.Unsupported) as info:
        with_client(url, call, pool=TripwirePool())
    message = str(info.value)
    assert "local worker" in message
    assert "--rp_serve_api" in message
    assert f"/{op}" in message
    assert info.value.exit_code == 2


@pytest.mark.parametrize(("op", "call"), UNSUPPORTED, ids=[op for op, _ in UNSUPPORTED])
def test_unsupported_ops_against_the_live_server(
    workers: dict[str, str], op: str, call: Callable[[EndpointClient], Awaitable[Any]]
) -> None:
    with pytest.raises(E.Unsupported):
        with_client(workers["plain"], call)


def test_live_server_really_lacks_those_routes(workers: dict[str, str]) -> None:
    """Guards the premise above: the SDK server answers 404/405 for them."""
    base = workers["plain"]
    assert httpx.get(f"{base}/health").status_code == 404
    assert httpx.post(f"{base}/cancel/x").status_code == 404
    assert httpx.post(f"{base}/retry/x").status_code == 404
    assert httpx.post(f"{base}/purge-queue").status_code == 404
    assert httpx.get(f"{base}/status/x").status_code == 405


# --- unknown ids and bad input -------------------------------------------------------------


@pytest.mark.parametrize("kind", ["plain", "generator"])
def test_unknown_job_id_is_not_found(workers: dict[str, str], kind: str) -> None:
    async def go(client: EndpointClient) -> None:
        with pytest.raises(E.NotFound) as info:
            await client.status("test-does-not-exist")
        assert "test-does-not-exist" in str(info.value)
        with pytest.raises(E.NotFound):
            await client.stream("test-does-not-exist")
        with pytest.raises(E.NotFound):
            await client.wait("test-does-not-exist", timeout=10)

    with_client(workers[kind], go)


@pytest.mark.parametrize("bad", [{}, [1, 2], "text", 3, None, True], ids=repr)
@pytest.mark.parametrize("sync", [False, True], ids=["run", "runsync"])
def test_bad_input_refused_before_sending(bad: Any, sync: bool) -> None:
    with pytest.raises(E.PayloadError) as info:
        with_client("http://127.0.0.1:1", lambda c: c.submit(bad, sync=sync), pool=TripwirePool())
    if isinstance(bad, dict):
        assert "empty" in str(info.value)
    else:
        assert "must be a JSON object" in str(info.value)


def test_server_would_refuse_non_object_input(workers: dict[str, str]) -> None:
    """Guards the premise: the SDK server answers 422 for a non-object input."""
    response = httpx.post(f"{workers['plain']}/run", json={"input": [1, 2]})
    assert response.status_code == 422


# --- the CLI, end to end -------------------------------------------------------------------


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env["FLASH_TUI_CONFIG"] = str(tmp_path / "no-such-dir" / "config.toml")
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    return env


def flash_tui(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("mode", ["--wait", "--sync"])
def test_cli_run_completes(workers: dict[str, str], cli_env: dict[str, str], mode: str) -> None:
    base = workers["plain"]
    result = flash_tui(cli_env, "run", "--kind", "worker", base, "--input", '{"a": 1}', mode)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"echo": {"a": 1}, "n": 1}
    assert "warning" not in result.stderr
    assert not (Path(cli_env["FLASH_TUI_CONFIG"])).exists()


def test_cli_run_without_wait_prints_the_id(
    workers: dict[str, str], cli_env: dict[str, str]
) -> None:
    result = flash_tui(cli_env, "run", "--kind", "worker", workers["plain"], "--input", '{"a": 1}')
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "IN_PROGRESS"
    job_id = answer["id"]
    # ... and `status` picks it up (POST /status on a local worker runs the handler).
    result = flash_tui(cli_env, "status", "--kind", "worker", workers["plain"], job_id)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"echo": {"a": 1}, "n": 1}


@pytest.mark.parametrize("mode", ["--wait", "--sync"])
def test_cli_run_failing_handler_exits_1(
    workers: dict[str, str], cli_env: dict[str, str], mode: str
) -> None:
    base = workers["failing"]
    result = flash_tui(cli_env, "run", "--kind", "worker", base, "--input", '{"a": 1}', mode)
    assert result.returncode == 1, result.stderr
    answer = json.loads(result.stdout)
    assert answer["status"] == "FAILED"
    assert "boom from handler" in answer["error"]


def test_cli_stream_generator(workers: dict[str, str], cli_env: dict[str, str]) -> None:
    base = workers["generator"]
    result = flash_tui(cli_env, "run", "--kind", "worker", base, "--input", '{"count": 3}')
    assert result.returncode == 0, result.stderr
    job_id = json.loads(result.stdout)["id"]
    result = flash_tui(cli_env, "stream", "--kind", "worker", base, job_id)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert lines == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert "COMPLETED" in result.stderr


def test_cli_health_on_worker_exits_2(workers: dict[str, str], cli_env: dict[str, str]) -> None:
    result = flash_tui(cli_env, "health", "--kind", "worker", workers["plain"])
    assert result.returncode == 2
    assert result.stdout == ""
    assert "local worker" in result.stderr
    assert "/health" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_empty_input_exits_2(workers: dict[str, str], cli_env: dict[str, str]) -> None:
    result = flash_tui(cli_env, "run", "--kind", "worker", workers["plain"], "--input", "{}")
    assert result.returncode == 2
    assert "empty" in result.stderr
    assert result.stdout == ""


def test_cli_wait_hint_is_a_working_command(
    workers: dict[str, str], cli_env: dict[str, str]
) -> None:
    base = workers["plain"]
    result = flash_tui(cli_env, "run", "--kind", "worker", base, "--input", '{"a": 1}', "--wait")
    assert result.returncode == 0, result.stderr
    hint = result.stderr.split("(", 1)[1].rsplit(")", 1)[0]
    assert hint.startswith("flash-tui status ")
    # Ask for a job the server does not know: a working command gets past endpoint
    # resolution and says the job is gone (exit 1), not "cannot tell what kind" (exit 2).
    args = [*hint.split()[1:-1], "test-unknown-id"]
    again = flash_tui(cli_env, *args)
    assert "Cannot tell what kind" not in again.stderr
    assert again.returncode == 1, again.stderr
