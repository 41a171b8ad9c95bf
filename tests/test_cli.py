"""The headless CLI as a user meets it: ``python -m tui COMMAND ...`` in a subprocess.

Exit codes: 0 success, 1 the job ended badly or the route answered an error, 2 bad usage or
input, 3 network or auth trouble. Results go to stdout as JSON, messages to stderr, and no
traceback ever reaches the user.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tui.sandbox import RunningSandbox, SandboxConfig, start_sandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEY = "cli-test-key-9876"
SCALE = 0.2
CLI_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=SCALE)) as sb:
        yield sb


@pytest.fixture
def fresh() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=SCALE, workers=1)) as sb:
        yield sb


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cli") / "config.toml"  # does not exist: no endpoints


def cli_env(config: Path, key: str | None = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_") and k != "NO_COLOR"}
    env["FLASH_TUI_CONFIG"] = str(config)
    # Job history, ~/.runpod/config.toml and the like: in the test's own directory.
    home = config.parent / "home"
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_CACHE_HOME=str(home / "cache"),
    )
    env["PYTHONUNBUFFERED"] = "1"
    if key is not None:
        env["RUNPOD_API_KEY"] = key
    return env


class Result:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self) -> Any:
        return json.loads(self.out)

    def __repr__(self) -> str:
        return f"exit {self.code}\n--- stdout ---\n{self.out}\n--- stderr ---\n{self.err}"


def flash(config: Path, *args: str, key: str | None = KEY, stdin: str | None = None) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=PROJECT_ROOT,
        env=cli_env(config, key),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    result = Result(proc)
    assert "Traceback" not in result.err, result
    # (stdout may hold one: a failed job's error carries the worker's traceback as data.)
    if key:
        assert key not in result.err and key not in result.out, "the key was shown"
    return result


def ok_json(result: Result) -> Any:
    """A success: exit 0, stdout is JSON."""
    assert result.code == 0, result
    return result.json()


def failed(result: Result, code: int, *words: str) -> str:
    """A refusal with `code`: nothing on stdout, a message on stderr naming `words`."""
    assert result.code == code, result
    assert result.out == "", result
    assert result.err.startswith("error: "), result
    for word in words:
        assert word.lower() in result.err.lower(), f"{word!r} not in stderr:\n{result!r}"
    return result.err


def raw_health(sb: RunningSandbox, endpoint: str) -> dict[str, Any]:
    r = httpx.get(f"{sb.base_url}/v2/{endpoint}/health", headers={"Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    return dict(r.json()["jobs"])


# ---- run ---------------------------------------------------------------------------------


def test_run_sync(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/echo"
    answer = ok_json(flash(config_path, "run", url, "--input", '{"a":1}', "--sync"))
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"a": 1}
    assert answer["id"]


def test_run_without_waiting_prints_the_id(sandbox: RunningSandbox, config_path: Path) -> None:
    result = flash(config_path, "run", f"{sandbox.base_url}/v2/echo", "--input", '{"a":1}')
    answer = ok_json(result)
    assert answer["status"] == "IN_QUEUE"
    assert answer["id"].endswith("-u1")
    assert result.err == ""


def test_run_wait(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/sleepy"
    result = flash(config_path, "run", url, "--input", '{"seconds": 1}', "--wait")
    answer = ok_json(result)
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"slept": 1}
    # The id is said before waiting, with the command that picks the job up again.
    assert f"job {answer['id']} is IN_QUEUE; waiting" in result.err
    assert f"flash-tui status {url} {answer['id']}" in result.err


def test_run_wait_timeout_keeps_the_id(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/sleepy"
    result = flash(config_path, "run", url, "-i", '{"seconds": 60}', "--wait", "--timeout", "1")
    assert result.code == 3, result
    assert result.out == ""
    assert "did not finish within 1 s" in result.err
    job_id = result.err.split("job id: ", 1)[1].split()[0]
    assert ok_json(flash(config_path, "cancel", url, job_id))["status"] == "CANCELLED"


def test_run_input_from_file_and_stdin(
    sandbox: RunningSandbox, config_path: Path, tmp_path: Path
) -> None:
    url = f"{sandbox.base_url}/v2/echo"
    payload = {"prompt": "Hello ü", "nested": {"list": [1, 2.5, None]}}
    path = tmp_path / "input.json"
    path.write_text(json.dumps(payload, indent=2), encoding="utf-8")
    answer = ok_json(flash(config_path, "run", url, "--input", f"@{path}", "--sync"))
    assert answer["output"] == payload

    answer = ok_json(
        flash(config_path, "run", url, "--input", "-", "--sync", stdin=json.dumps(payload))
    )
    assert answer["output"] == payload

    missing = flash(config_path, "run", url, "--input", f"@{tmp_path / 'nope.json'}")
    failed(missing, 2, "cannot read", "nope.json")


def test_failed_job_exits_1_and_retry_completes(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/flaky"
    result = flash(config_path, "run", url, "--input", '{"fail_attempts": 1}', "--wait")
    assert result.code == 1, result
    answer = result.json()
    assert answer["status"] == "FAILED"
    assert "flaky failed as asked" in answer["error"]
    job_id = answer["id"]

    status = flash(config_path, "status", url, job_id)
    assert status.code == 1, status  # a FAILED job, told by the exit code too
    assert status.json()["status"] == "FAILED"

    retried = ok_json(flash(config_path, "retry", url, job_id))
    assert retried == {"id": job_id, "status": "IN_QUEUE"}

    deadline = time.monotonic() + 20
    while True:
        answer = ok_json(flash(config_path, "status", url, job_id))
        if answer["status"] == "COMPLETED":
            break
        assert time.monotonic() < deadline, answer
    assert answer["output"] == {"ok": True, "attempt": 2}

    # Retrying a job that did not fail is refused with the server's reason.
    refused = flash(config_path, "retry", url, job_id)
    failed(refused, 2, "400", "only FAILED or TIMED_OUT")

    plain_fail = flash(config_path, "run", url, "--input", '{"fail": true}', "--sync")
    assert plain_fail.code == 1, plain_fail
    assert plain_fail.json()["status"] == "FAILED"


def test_status_and_cancel(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/sleepy"
    job_id = ok_json(flash(config_path, "run", url, "--input", '{"seconds": 60}'))["id"]
    status = ok_json(flash(config_path, "status", url, job_id))
    assert status["id"] == job_id
    assert status["status"] in {"IN_QUEUE", "IN_PROGRESS"}  # not final: exit 0

    cancelled = ok_json(flash(config_path, "cancel", url, job_id))
    assert cancelled == {"id": job_id, "status": "CANCELLED"}
    status = flash(config_path, "status", url, job_id)
    assert status.code == 1, status
    assert status.json()["status"] == "CANCELLED"

    gone = flash(config_path, "status", url, "no-such-job")
    assert gone.code != 0, gone
    assert gone.out == "" and "no-such-job" in gone.err and "expired" in gone.err


def test_stream_prints_one_json_line_per_chunk(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/streamer"
    job_id = ok_json(flash(config_path, "run", url, "--input", '{"count": 4}'))["id"]
    result = flash(config_path, "stream", url, job_id)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert [json.loads(line) for line in lines] == [
        {"index": i, "text": f"chunk {i}"} for i in range(4)
    ]
    assert f"stream ended: job {job_id} is COMPLETED" in result.err


def test_health_and_purge(fresh: RunningSandbox, config_path: Path) -> None:
    url = f"{fresh.base_url}/v2/sleepy"
    result = flash(config_path, "health", url)
    health = ok_json(result)
    assert health["jobs"]["inQueue"] == 0
    assert health["workers"]["idle"] == 1
    assert "0 queued, 0 running; workers 0 busy, 1 idle" in result.err

    for _ in range(3):  # one runs on the only worker, two wait
        ok_json(flash(config_path, "run", url, "--input", '{"seconds": 60}'))
    deadline = time.monotonic() + 10
    while (jobs := raw_health(fresh, "sleepy"))["inProgress"] != 1:
        assert time.monotonic() < deadline, jobs
        time.sleep(0.02)
    assert jobs["inQueue"] == 2
    result = flash(config_path, "health", url)
    assert "2 queued, 1 running; workers 1 busy, 0 idle" in result.err

    assert ok_json(flash(config_path, "purge", url)) == {"removed": 2, "status": "completed"}
    assert raw_health(fresh, "sleepy")["inQueue"] == 0


# ---- call (load-balanced) ----------------------------------------------------------------


def test_call_routes(sandbox: RunningSandbox, config_path: Path, tmp_path: Path) -> None:
    url = f"{sandbox.base_url}/lb/api"
    result = flash(config_path, "call", url, "POST", "/echo", "--json", '{"x":1}')
    assert ok_json(result) == {"x": 1}
    assert result.err.startswith("200 OK in ")
    assert f"POST {url}/echo" in result.err

    body = {"text": "from a file", "n": [1, 2]}
    path = tmp_path / "body.json"
    path.write_text(json.dumps(body), encoding="utf-8")
    assert ok_json(flash(config_path, "call", url, "POST", "/echo", "--json", f"@{path}")) == body

    info = ok_json(flash(config_path, "call", url, "get", "/info"))
    assert info["name"] == "api"

    fail = flash(config_path, "call", url, "POST", "/fail")
    assert fail.code == 1, fail
    assert fail.json()["detail"] == "the /fail route always fails (on purpose)"
    assert fail.err.startswith("500 Internal Server Error")

    missing = flash(config_path, "call", url, "GET", "/nowhere")
    assert missing.code == 1, missing
    assert missing.err.startswith("404 Not Found")

    bad = flash(config_path, "call", url, "POST", "/echo", "--json", '{"x": }')
    failed(bad, 2, "Invalid JSON", "line 1", "column")

    wrong_key = flash(config_path, "call", url, "GET", "/info", key="not-the-key")
    assert wrong_key.code == 3, wrong_key
    assert "401" in wrong_key.err and "API key was refused" in wrong_key.err
    assert "not-the-key" not in wrong_key.err + wrong_key.out

    # A queue operation on a load-balanced endpoint is refused before anything is sent.
    refused = flash(config_path, "run", url, "--input", '{"a": 1}')
    failed(refused, 2, "load-balanced", "no job queue")


# ---- trouble -----------------------------------------------------------------------------


def test_wrong_key_exits_3_unauthorized(sandbox: RunningSandbox, config_path: Path) -> None:
    url = f"{sandbox.base_url}/v2/echo"
    result = flash(config_path, "run", url, "--input", '{"a":1}', "--sync", key="not-the-key")
    err = failed(result, 3, "Unauthorized", "401", "RUNPOD_API_KEY")
    assert "not-the-key" not in err
    no_key = flash(config_path, "health", url, key=None)
    failed(no_key, 3, "Unauthorized")


def test_server_down_exits_3_refused(config_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v2/echo"
    failed(flash(config_path, "run", url, "--input", '{"a":1}'), 3, "refused")
    failed(flash(config_path, "health", url), 3, "refused", "is the server running")


def test_bad_input_exits_2_before_sending(
    sandbox: RunningSandbox, config_path: Path, tmp_path: Path
) -> None:
    url = f"{sandbox.base_url}/v2/echo"
    before = raw_health(sandbox, "echo")

    path = tmp_path / "broken.json"
    path.write_text('{\n  "a": 1,\n}\n', encoding="utf-8")
    err = failed(flash(config_path, "run", url, "--input", f"@{path}"), 2, "Invalid JSON")
    assert "line 3, column 1" in err

    err = failed(flash(config_path, "run", url, "--input", '{"a": 1'), 2, "line 1", "column")
    failed(flash(config_path, "run", url, "--input", "{}"), 2, "empty")
    failed(flash(config_path, "run", url, "--input", "   "), 2, "empty")
    failed(flash(config_path, "run", url, "--input", "[1, 2]"), 2, "JSON object", "array")
    failed(flash(config_path, "run", url, "--input", '"text"'), 2, "JSON object", "string")
    failed(flash(config_path, "run", url), 2, "--input")

    big = tmp_path / "big.json"
    big.write_text(json.dumps({"data": "x" * (10 * 1024 * 1024 + 10)}), encoding="utf-8")
    failed(flash(config_path, "run", url, "--input", f"@{big}"), 2, "10 MB", "/run")

    after = raw_health(sandbox, "echo")
    sent = ("completed", "failed", "inProgress", "inQueue")
    assert {k: after[k] for k in sent} == {k: before[k] for k in sent}  # nothing reached it


def test_endpoint_references(sandbox: RunningSandbox, config_path: Path, tmp_path: Path) -> None:
    failed(flash(config_path, "health", "no-such-endpoint"), 2, "Unknown endpoint", "no-such")
    failed(
        flash(config_path, "health", f"{sandbox.base_url}/somewhere"),
        2,
        "cannot tell what kind",
        "--kind",
    )
    # --kind says what the URL does not.
    answer = ok_json(
        flash(
            config_path,
            "run",
            f"{sandbox.base_url}/v2/echo/",
            "--kind",
            "queue",
            "--input",
            '{"k": 1}',
            "--sync",
        )
    )
    assert answer["output"] == {"k": 1}

    config = tmp_path / "config.toml"
    config.write_text(
        "[[endpoints]]\n"
        'name = "e"\n'
        'kind = "queue"\n'
        f'url = "{sandbox.base_url}/v2/echo"\n'
        "\n"
        "[[endpoints]]\n"
        'name = "web"\n'
        f'url = "{sandbox.base_url}/lb/api"\n',
        encoding="utf-8",
    )
    answer = ok_json(flash(config, "run", "e", "--input", '{"via": "config"}', "--sync"))
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"via": "config"}
    assert ok_json(flash(config, "call", "web", "GET", "/ping")) == {"status": "healthy"}
    failed(flash(config, "health", "e", "--kind", "lb"), 2, "configured as queue")

    broken = tmp_path / "broken.toml"
    broken.write_text("[[endpoints]\nname = ", encoding="utf-8")
    result = flash(broken, "health", f"{sandbox.base_url}/v2/echo")
    assert result.code == 0, result
    assert "warning: config not used" in result.err
    assert result.json()["workers"]


# ---- the sandbox command -----------------------------------------------------------------


def test_sandbox_command_serves_until_ctrl_c(tmp_path: Path) -> None:
    port = free_port()
    out_path, err_path = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        # Run from a background job, this process may ignore SIGINT, and a child would
        # inherit that; let Ctrl-C reach the child as it does from a terminal.
        saved = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tui", "sandbox", "--port", str(port), "--api-key", KEY],
                cwd=PROJECT_ROOT,
                env=cli_env(tmp_path / "config.toml"),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
            )
        finally:
            signal.signal(signal.SIGINT, saved)
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 30
            while "Ctrl-C stops the sandbox." not in out_path.read_text(errors="replace"):
                assert proc.poll() is None, err_path.read_text(errors="replace")
                assert time.monotonic() < deadline, out_path.read_text(errors="replace")
                time.sleep(0.05)
            banner = out_path.read_text()
            assert f"flash-tui sandbox: Runpod-compatible API at {base}" in banner
            for url in (f"{base}/v2/echo", f"{base}/v2/streamer", f"{base}/lb/api"):
                assert url in banner
            assert KEY not in banner  # a key given on the command line is not echoed
            assert f'runpod.endpoint_url_base = "{base}/v2"' in banner

            auth = {"Authorization": f"Bearer {KEY}"}
            r = httpx.post(f"{base}/v2/echo/runsync", json={"input": {"a": 1}}, headers=auth)
            assert r.status_code == 200 and r.json()["output"] == {"a": 1}
            assert httpx.get(f"{base}/v2/echo/health").status_code == 401

            # The CLI against the sandbox it started.
            answer = ok_json(
                flash(
                    tmp_path / "config.toml", "run", f"{base}/v2/echo", "-i", '{"b": 2}', "--sync"
                )
            )
            assert answer["output"] == {"b": 2}

            # A second sandbox on the same port says why it cannot start, with no traceback.
            taken = flash(tmp_path / "config.toml", "sandbox", "--port", str(port))
            assert taken.code == 3, taken
            assert "error:" in taken.err and str(port) in taken.err

            proc.send_signal(signal.SIGINT)
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
    errors = err_path.read_text(errors="replace")
    assert "Traceback" not in errors, errors
    assert "stopping the sandbox" in out_path.read_text()
