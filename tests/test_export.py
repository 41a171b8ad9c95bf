"""Copy as curl / Python SDK / httpx, and importing a pasted curl command.

The exports are not only compared as text: the curl commands run in a real POSIX shell, and
the Python scripts in a fresh interpreter, against the project's sandbox on loopback.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tui.api.models import Endpoint, EndpointKind
from tui.export import (
    CurlImportError,
    ExportRequest,
    ParsedCurl,
    parse_curl,
    request_for_job,
    request_for_route,
    to_curl,
    to_httpx,
    to_python_sdk,
)
from tui.sandbox import RunningSandbox, SandboxConfig, start_sandbox

KEY = "export-test-key-0123"
SECRET = "sk-SECRET"
CURL = shutil.which("curl")
needs_curl = pytest.mark.skipif(CURL is None, reason="curl is not installed on this machine")

QUEUE = Endpoint("echo", EndpointKind.QUEUE, "https://api.runpod.ai/v2/abc123")
LB = Endpoint("api", EndpointKind.LB, "https://abc123.api.runpod.ai")
LB_PATH = Endpoint("api", EndpointKind.LB, "http://127.0.0.1:8787/lb/api")
WORKER = Endpoint("dev", EndpointKind.WORKER, "http://localhost:8000")

TRICKY = {
    "double quotes": {"text": 'say "hi"'},
    "single quote": {"text": "it's"},
    "only quotes": {"text": "'''\"\"\"'\\''"},
    "newlines": {"text": "line one\nline two\r\n\ttabbed"},
    "dollar": {"text": "$HOME ${HOME} $(id) $'x'"},
    "backticks": {"text": "`uname -a` \\` \\\\"},
    "emoji": {"text": "héllo 😀 中文 \u2028 \u200b"},
    "controls": {"text": "nul \x00 bell \x07 del \x7f"},
    "shell ops": {"text": "a | b && c; d > /tmp/x # not a comment"},
}


def job(endpoint: Endpoint, job_input: Any, sync: bool = True) -> ExportRequest:
    return request_for_job(endpoint, job_input, sync)


# ---- request builders --------------------------------------------------------------------


def test_request_for_job_wraps_the_input() -> None:
    req = request_for_job(QUEUE, {"prompt": "hi"}, sync=True)
    assert (req.method, req.url, req.op) == ("POST", f"{QUEUE.url}/runsync", "runsync")
    assert req.body == {"input": {"prompt": "hi"}}
    req = request_for_job(QUEUE, {"prompt": "hi"}, sync=False)
    assert (req.url, req.op) == (f"{QUEUE.url}/run", "run")


def test_request_for_job_refuses_a_load_balanced_endpoint() -> None:
    with pytest.raises(ValueError, match="load-balanced"):
        request_for_job(LB, {"a": 1}, sync=True)


def test_request_for_route() -> None:
    req = request_for_route(LB, "post", "generate", {"prompt": "hi"})
    assert (req.method, req.url, req.op) == ("POST", f"{LB.url}/generate", "call")
    assert request_for_route(LB_PATH, "GET", "/ping", None).url == f"{LB_PATH.url}/ping"


# ---- round trips -------------------------------------------------------------------------

ROUND_TRIPS = {
    "queue run": job(QUEUE, {"prompt": "hi"}, sync=False),
    "queue runsync": job(QUEUE, {"prompt": "hi", "n": 2}),
    "lb post": request_for_route(LB, "POST", "/generate", {"prompt": "hi"}),
    "lb get": request_for_route(LB, "GET", "/ping", None),
    "lb delete": request_for_route(LB, "DELETE", "/items/7?force=true", None),
    "lb path post": request_for_route(LB_PATH, "POST", "/echo", [1, "two", None]),
    "worker runsync": job(WORKER, {"prompt": "hi"}),
    "worker run": job(WORKER, {"prompt": "hi"}, sync=False),
}


@pytest.mark.parametrize("req", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_curl_round_trip(req: ExportRequest) -> None:
    parsed = parse_curl(to_curl(req))
    assert (parsed.method, parsed.url) == (req.method, req.url)
    assert parsed.body_json == req.body
    assert parsed.kind is req.endpoint.kind
    assert parsed.base_url == req.endpoint.url
    if req.body is None:
        assert parsed.body_text is None
        assert "-d" not in to_curl(req).split()
        assert "Content-Type" not in to_curl(req)
    else:
        assert parsed.headers["Content-Type"] == "application/json"
    if req.endpoint.kind is EndpointKind.LB:
        assert parsed.route_path == req.url[len(req.endpoint.url) :]
        assert parsed.job_input is None
    else:
        assert parsed.route_path is None
        assert isinstance(req.body, dict)
        assert parsed.job_input == req.body["input"]
        assert parsed.sync is (req.op == "runsync")
    # The key is a placeholder everywhere but the local worker, which wants none.
    assert parsed.had_auth is (req.endpoint.kind is not EndpointKind.WORKER)


def test_bodyless_get_says_so() -> None:
    text = to_curl(request_for_route(LB, "GET", "/ping", None))
    assert text.startswith("curl -X GET ")
    assert "-d" not in text


def test_worker_export_has_no_key() -> None:
    req = job(WORKER, {"prompt": "hi"})
    assert "Authorization" not in to_curl(req)
    assert "RUNPOD_API_KEY" not in to_curl(req)
    assert "RUNPOD_API_KEY" not in to_httpx(req)
    assert "RUNPOD_API_KEY" not in to_python_sdk(req)


@pytest.mark.parametrize("body", TRICKY.values(), ids=TRICKY.keys())
def test_tricky_bodies_round_trip(body: dict[str, Any]) -> None:
    for req in (job(QUEUE, body), request_for_route(LB, "POST", "/echo", body)):
        parsed = parse_curl(to_curl(req))
        assert parsed.body_json == req.body
        assert parsed.body_text is not None
        assert json.loads(parsed.body_text) == req.body


def test_a_one_megabyte_body_round_trips() -> None:
    body = {"blob": "x'y\"z$`\n😀" * (1024 * 1024 // 10)}
    req = job(QUEUE, body)
    text = to_curl(req)
    assert len(text.encode()) > 1024 * 1024
    assert parse_curl(text).job_input == body


# ---- the key never appears ----------------------------------------------------------------


def secret_endpoints() -> list[ExportRequest]:
    queue = Endpoint("echo", EndpointKind.QUEUE, QUEUE.url, api_key=SECRET)
    lb = Endpoint("api", EndpointKind.LB, LB.url, api_key=SECRET)
    return [
        job(queue, {"prompt": "hi"}),
        job(queue, {"prompt": "hi"}, sync=False),
        request_for_route(lb, "POST", "/generate", {"prompt": "hi"}),
        request_for_route(lb, "GET", "/ping", None),
    ]


@pytest.mark.parametrize("req", secret_endpoints())
def test_the_endpoint_key_never_appears(req: ExportRequest) -> None:
    assert req.endpoint.api_key == SECRET
    curl, sdk, script = to_curl(req), to_python_sdk(req), to_httpx(req)
    for text in (curl, sdk, script):
        assert SECRET not in text
        assert "SECRET" not in text
    assert '-H "Authorization: Bearer $RUNPOD_API_KEY"' in curl
    assert 'os.environ["RUNPOD_API_KEY"]' in sdk
    assert 'os.environ["RUNPOD_API_KEY"]' in script


@pytest.mark.parametrize(
    "auth",
    [
        f'-H "Authorization: Bearer {SECRET}"',
        f"-H 'authorization: {SECRET}'",
        f"--header 'AUTHORIZATION:Bearer {SECRET}'",
        f"-u 'user:{SECRET}'",
        f"--oauth2-bearer {SECRET}",
    ],
)
def test_a_pasted_key_is_dropped(auth: str) -> None:
    parsed = parse_curl(f'curl {auth} -d \'{{"input": {{"a": 1}}}}\' {QUEUE.url}/run')
    assert parsed.had_auth
    assert SECRET not in repr(parsed)
    assert SECRET not in json.dumps(dataclasses.asdict(parsed))
    assert all(SECRET not in str(getattr(parsed, f.name)) for f in dataclasses.fields(parsed))
    assert parsed.job_input == {"a": 1}


def test_errors_do_not_echo_a_pasted_key() -> None:
    with pytest.raises(CurlImportError) as err:
        parse_curl(f'curl -H "Authorization: Bearer {SECRET}" -d @- {QUEUE.url}/run')
    assert SECRET not in str(err.value)
    with pytest.raises(CurlImportError) as err:
        parse_curl(f'curl -H "Authorization: Bearer {SECRET}"')
    assert SECRET not in str(err.value)


# ---- importing real-world commands -------------------------------------------------------


def test_runpod_docs_runsync_example() -> None:
    text = """curl --request POST \\
     --url https://api.runpod.ai/v2/kandinsky-v2/runsync \\
     --header 'accept: application/json' \\
     --header 'authorization: [apiKey]' \\
     --header 'content-type: application/json' \\
     --data '
{
  "input": {
    "prompt": "A coffee cup.",
    "height": 512,
    "guidance_scale": 7.5
  }
}
'"""
    parsed = parse_curl(text)
    assert parsed.method == "POST"
    assert parsed.url == "https://api.runpod.ai/v2/kandinsky-v2/runsync"
    assert parsed.headers == {"accept": "application/json", "content-type": "application/json"}
    assert parsed.had_auth
    assert parsed.kind is EndpointKind.QUEUE
    assert parsed.base_url == "https://api.runpod.ai/v2/kandinsky-v2"
    assert parsed.sync
    assert parsed.job_input == {"prompt": "A coffee cup.", "height": 512, "guidance_scale": 7.5}


def test_runpod_docs_example_with_shell_variables() -> None:
    # Docs write ${ENDPOINT_ID}; a paste keeps it as typed (nothing here expands variables).
    text = (
        "curl -X POST https://api.runpod.ai/v2/${ENDPOINT_ID}/run \\\n"
        '  -H "Content-Type: application/json" \\\n'
        '  -H "Authorization: Bearer $RUNPOD_API_KEY" \\\n'
        '  -d \'{"input": {"prompt": "Hello, world!"}}\''
    )
    parsed = parse_curl(text)
    assert parsed.url == "https://api.runpod.ai/v2/${ENDPOINT_ID}/run"
    assert parsed.kind is EndpointKind.QUEUE
    assert not parsed.sync
    assert parsed.job_input == {"prompt": "Hello, world!"}


def test_load_balanced_examples() -> None:
    parsed = parse_curl(
        "curl --location 'https://oc4qjlw7gp8i5f.api.runpod.ai/ping' \\\n"
        "--header 'Authorization: Bearer XXX'"
    )
    assert (parsed.method, parsed.kind) == ("GET", EndpointKind.LB)
    assert (parsed.base_url, parsed.route_path) == ("https://oc4qjlw7gp8i5f.api.runpod.ai", "/ping")
    parsed = parse_curl(
        'curl -X POST "https://abc.api.runpod.ai/v1/generate?x=1" '
        "-H 'Content-Type: application/json' -d '{\"prompt\": \"hi\"}'"
    )
    assert parsed.route_path == "/v1/generate?x=1"
    assert parsed.body_json == {"prompt": "hi"}
    assert parsed.job_input is None
    parsed = parse_curl("curl http://127.0.0.1:8787/lb/api")
    assert (parsed.kind, parsed.base_url, parsed.route_path) == (
        EndpointKind.LB,
        "http://127.0.0.1:8787/lb/api",
        "/",
    )


def test_json_option() -> None:
    parsed = parse_curl('curl --json \'{"input": {"a": 1}}\' http://localhost:8000/runsync')
    assert parsed.method == "POST"
    assert parsed.headers == {"Content-Type": "application/json", "Accept": "application/json"}
    assert (parsed.kind, parsed.job_input, parsed.sync) == (EndpointKind.WORKER, {"a": 1}, True)


def test_browser_copy_as_curl() -> None:
    # Chrome's "Copy as cURL (bash)" uses $'...' quoting and bundles its flags.
    text = (
        "curl 'https://api.runpod.ai/v2/x1/run' \\\n"
        "  -H 'content-type: application/json' \\\n"
        '  --data-raw $\'{"input":{"text":"it\\\'s\\\\n\\\\u00e9"}}\' \\\n'
        "  --compressed -sSLk"
    )
    parsed = parse_curl(text)
    assert parsed.method == "POST"
    assert parsed.job_input == {"text": "it's\né"}


def test_flags_and_attached_values() -> None:
    parsed = parse_curl("curl -sS -XPUT -HX-One:1 -L --compressed -k https://a.example/x -d 'a=1'")
    assert (parsed.method, parsed.url) == ("PUT", "https://a.example/x")
    assert parsed.headers == {"X-One": "1"}
    assert (parsed.body_text, parsed.body_json) == ("a=1", None)
    assert parsed.kind is None


def test_a_trailing_pipe_is_another_command() -> None:
    parsed = parse_curl("curl -s https://api.runpod.ai/v2/x1/health | jq .")
    assert (parsed.method, parsed.url) == ("GET", "https://api.runpod.ai/v2/x1/health")
    assert parsed.kind is EndpointKind.QUEUE
    assert parsed.base_url == "https://api.runpod.ai/v2/x1"


@pytest.mark.parametrize(
    "tail",
    ["| jq .", "|jq", "; echo done", "&& echo ok", "> out.json", "2>&1 | less", "2>/dev/null", "&"],
)
def test_shell_operators_end_the_command(tail: str) -> None:
    parsed = parse_curl(f"curl -s https://api.runpod.ai/v2/x1/health {tail}")
    assert parsed.url == "https://api.runpod.ai/v2/x1/health"


def test_quoted_operators_are_data() -> None:
    parsed = parse_curl("curl -d '|' -H 'X-A: a;b' \"https://a.example/x?q=>\"")
    assert (parsed.body_text, parsed.headers, parsed.url) == (
        "|",
        {"X-A": "a;b"},
        "https://a.example/x?q=>",
    )


def test_an_unquoted_ampersand_inside_a_url_is_kept() -> None:
    parsed = parse_curl("curl https://a.example/x?a=1&b=2")
    assert parsed.url == "https://a.example/x?a=1&b=2"


def test_credentials_in_the_url_are_dropped() -> None:
    parsed = parse_curl(f"curl https://user:{SECRET}@abc.api.runpod.ai/ping")
    assert parsed.url == "https://abc.api.runpod.ai/ping"
    assert parsed.had_auth
    assert SECRET not in repr(parsed)


def test_several_data_options_join_with_ampersands() -> None:
    parsed = parse_curl("curl -d a=1 --data b=2 https://a.example/x")
    assert parsed.body_text == "a=1&b=2"
    parsed = parse_curl("curl -G -d a=1 https://a.example/x")
    assert (parsed.method, parsed.url, parsed.body_text) == ("GET", "https://a.example/x?a=1", None)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("curl -d @- https://api.runpod.ai/v2/x/run", "standard input"),
        (
            "curl --request POST --url https://api.runpod.ai/v2/x/runsync --data @- <<EOF\n"
            '{"input": {"a": 1}}\nEOF',
            "standard input",
        ),
        ("curl --data-binary @body.json https://a.example/x", "body.json"),
        ("wget https://api.runpod.ai/v2/x/run", "not a curl command"),
        (SECRET, "not a curl command"),
        ('{"input": {"a": 1}}', "not a curl command"),
        ("", "not a curl command"),
        ("curl -X POST -H 'Content-Type: application/json' -d '{}'", "no URL"),
        ("curl -s", "no URL"),
        ("curl 'https://a.example/x", "quotes"),
        ("curl https://a.example/x https://b.example/y", "2 URLs"),
        ("curl -F file=@x.png https://a.example/x", "multipart"),
        ("curl https://a.example/x -H", "needs a value"),
    ],
)
def test_import_errors(text: str, message: str) -> None:
    with pytest.raises(CurlImportError, match=message) as err:
        parse_curl(text)
    assert SECRET not in str(err.value)


def test_curl_import_error_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        parse_curl("ls -la")


# ---- properties ------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values)
def test_any_json_body_survives_curl(body: Any) -> None:
    req = request_for_route(LB, "POST", "/echo", body)
    assert parse_curl(to_curl(req)).body_json == body


def body_in_script(script: str, name: str) -> Any:
    """Evaluate the script's BODY (or request) assignment without running the script."""
    for node in ast.parse(script).body:
        if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == name:
            return eval(compile(ast.Expression(node.value), "<body>", "eval"), {"json": json})
    raise AssertionError(f"no {name} in the script")


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=json_values)
def test_any_json_body_survives_python(body: Any) -> None:
    assume(body is not None)  # a None body means "no body" to ExportRequest
    assert body_in_script(to_httpx(request_for_route(LB, "POST", "/echo", body)), "BODY") == body
    sdk = to_python_sdk(job(QUEUE, {"x": body}))
    assert body_in_script(sdk, "request") == {"input": {"x": body}}


def test_deep_bodies_still_compile() -> None:
    body: Any = "leaf"
    for _ in range(150):  # 300 brackets: past the parser's limit of about 200
        body = {"a": [body]}
    script = to_httpx(request_for_route(LB, "POST", "/echo", body))
    assert body_in_script(script, "BODY") == body


@pytest.mark.parametrize("req", ROUND_TRIPS.values(), ids=ROUND_TRIPS.keys())
def test_generated_scripts_are_lint_clean(req: ExportRequest, tmp_path: Path) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this interpreter")
    for n, text in enumerate((to_httpx(req), to_python_sdk(req))):
        (tmp_path / f"script{n}.py").write_text(text, encoding="utf-8")
    result = subprocess.run(
        [str(ruff), "check", "--isolated", "--select", "E,F,W,B", "--line-length", "100", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_sdk_falls_back_to_httpx_where_it_has_no_call() -> None:
    for req in (
        request_for_route(LB, "POST", "/generate", {"a": 1}),
        job(WORKER, {"a": 1}),
        request_for_route(QUEUE, "GET", "/health", None),
        job(QUEUE, ""),  # a falsy input: Endpoint.run would wrap it a second time
    ):
        text = to_python_sdk(req)
        assert "import httpx" in text
        assert "import runpod" not in text
        assert "# The runpod SDK has no call for" in text


def test_sdk_sets_the_base_only_when_it_is_not_runpods() -> None:
    assert "endpoint_url_base" not in to_python_sdk(job(QUEUE, {"a": 1}))
    local = Endpoint("echo", EndpointKind.QUEUE, "http://127.0.0.1:9/v2/echo")
    text = to_python_sdk(job(local, {"a": 1}))
    assert 'runpod.endpoint_url_base = "http://127.0.0.1:9/v2"' in text
    assert 'runpod.Endpoint("echo")' in text


def test_export_imports_no_textual() -> None:
    code = "import sys, tui.export; assert 'textual' not in sys.modules, 'textual imported'"
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", code], cwd=root, check=True)


def test_parsed_curl_fields_are_the_documented_ones() -> None:
    names = [f.name for f in dataclasses.fields(ParsedCurl)]
    assert names == ["method", "url", "headers", "body_text", "body_json", "had_auth"]


# ---- running the exports against the sandbox ---------------------------------------------


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=0.2)) as sb:
        yield sb


def run_env(tmp_path: Path) -> dict[str, str]:
    """A clean environment: the key, a PATH, a private HOME; no proxies, no SDK base."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "RUNPOD_API_KEY": KEY,
    }


def run_shell(command: str, tmp_path: Path) -> Any:
    result = subprocess.run(
        ["sh", "-c", command], env=run_env(tmp_path), capture_output=True, timeout=60
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return json.loads(result.stdout)


def run_python(script: str, tmp_path: Path) -> str:
    path = tmp_path / "export_script.py"
    path.write_text(script, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(path)],
        env=run_env(tmp_path),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return result.stdout.decode()


def last_json(stdout: str) -> Any:
    """The JSON the script printed last (the SDK's /run script prints the job id first)."""
    start = min(i for i in (stdout.find("{"), stdout.find("[")) if i >= 0)
    return json.loads(stdout[start:])


def sandbox_endpoints(sb: RunningSandbox) -> tuple[Endpoint, Endpoint]:
    # The key rides along as it does in the app; the exports must still use the placeholder.
    queue = Endpoint("echo", EndpointKind.QUEUE, f"{sb.base_url}/v2/echo", api_key=KEY)
    lb = Endpoint("api", EndpointKind.LB, f"{sb.base_url}/lb/api", api_key=KEY)
    return queue, lb


ECHO_INPUT = {"prompt": 'it\'s "$HOME" `id`\n😀', "n": 1, "nested": {"ok": True, "x": None}}


@needs_curl
def test_curl_runsync_runs_against_the_sandbox(sandbox: RunningSandbox, tmp_path: Path) -> None:
    queue, _ = sandbox_endpoints(sandbox)
    command = to_curl(request_for_job(queue, ECHO_INPUT, sync=True))
    assert KEY not in command
    answer = run_shell(command, tmp_path)
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == ECHO_INPUT


@needs_curl
def test_curl_without_the_key_is_refused(sandbox: RunningSandbox, tmp_path: Path) -> None:
    # The placeholder really is what authorises: with another key, the sandbox says 401.
    queue, _ = sandbox_endpoints(sandbox)
    command = to_curl(request_for_job(queue, ECHO_INPUT, sync=True))
    env = run_env(tmp_path) | {"RUNPOD_API_KEY": "wrong"}
    result = subprocess.run(
        ["sh", "-c", command + " -w '\\n%{http_code}'"], env=env, capture_output=True, timeout=60
    )
    assert result.stdout.decode().rsplit("\n", 1)[-1] == "401"


@needs_curl
@pytest.mark.parametrize("body", TRICKY.values(), ids=TRICKY.keys())
def test_curl_lb_echo_runs_against_the_sandbox(
    sandbox: RunningSandbox, tmp_path: Path, body: dict[str, Any]
) -> None:
    _, lb = sandbox_endpoints(sandbox)
    answer = run_shell(to_curl(request_for_route(lb, "POST", "/echo", body)), tmp_path)
    assert answer == body


@needs_curl
def test_curl_lb_get_runs_against_the_sandbox(sandbox: RunningSandbox, tmp_path: Path) -> None:
    _, lb = sandbox_endpoints(sandbox)
    answer = run_shell(to_curl(request_for_route(lb, "GET", "/info", None)), tmp_path)
    assert answer["name"] == "api"


@pytest.mark.parametrize("sync", [True, False], ids=["runsync", "run"])
def test_httpx_script_runs_against_the_sandbox(
    sandbox: RunningSandbox, tmp_path: Path, sync: bool
) -> None:
    queue, _ = sandbox_endpoints(sandbox)
    script = to_httpx(request_for_job(queue, ECHO_INPUT, sync=sync))
    assert KEY not in script
    answer = json.loads(run_python(script, tmp_path))
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == ECHO_INPUT


def test_httpx_script_calls_a_route(sandbox: RunningSandbox, tmp_path: Path) -> None:
    _, lb = sandbox_endpoints(sandbox)
    body = {"text": ECHO_INPUT["prompt"], "list": [1, 2.5, None]}
    answer = json.loads(
        run_python(to_httpx(request_for_route(lb, "POST", "/echo", body)), tmp_path)
    )
    assert answer == body


@pytest.mark.parametrize("sync", [True, False], ids=["runsync", "run"])
def test_sdk_script_runs_against_the_sandbox(
    sandbox: RunningSandbox, tmp_path: Path, sync: bool
) -> None:
    queue, _ = sandbox_endpoints(sandbox)
    script = to_python_sdk(request_for_job(queue, ECHO_INPUT, sync=sync))
    assert "import runpod" in script
    assert KEY not in script
    assert last_json(run_python(script, tmp_path)) == ECHO_INPUT


def test_sdk_script_for_a_route_runs_with_httpx(sandbox: RunningSandbox, tmp_path: Path) -> None:
    _, lb = sandbox_endpoints(sandbox)
    body = {"text": "hi"}
    script = to_python_sdk(request_for_route(lb, "POST", "/echo", body))
    assert "import runpod" not in script
    assert json.loads(run_python(script, tmp_path)) == body


# ---- the local worker (--rp_serve_api), a real peer with its own dialect ------------------

WORKER_HANDLER = """
import runpod


def handler(job):
    return job["input"]


if __name__ == "__main__":
    runpod.serverless.start({"handler": handler})
"""


@pytest.fixture(scope="module")
def worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Endpoint]:
    """The runpod SDK's own development server on a free loopback port."""
    directory = tmp_path_factory.mktemp("worker")
    (directory / "handler.py").write_text(WORKER_HANDLER, encoding="utf-8")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("RUNPOD_")}
    env.update(RUNPOD_LOG_LEVEL="ERROR", RUNPOD_DEBUG_LEVEL="ERROR", HOME=str(directory))
    log = open(directory / "log.txt", "wb")  # noqa: SIM115
    args = ["--rp_serve_api", "--rp_api_host", "127.0.0.1", "--rp_api_port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "handler.py", *args],
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                log.flush()
                pytest.fail("the worker exited:\n" + (directory / "log.txt").read_text())
            try:
                httpx.get(f"{base}/openapi.json", timeout=1.0)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "the worker never answered"
                time.sleep(0.1)
        yield Endpoint("dev", EndpointKind.WORKER, base)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@needs_curl
def test_curl_runsync_runs_against_a_local_worker(worker: Endpoint, tmp_path: Path) -> None:
    command = to_curl(request_for_job(worker, ECHO_INPUT, sync=True))
    assert "Authorization" not in command
    answer = run_shell(command, tmp_path)
    assert (answer["status"], answer["output"]) == ("COMPLETED", ECHO_INPUT)


@pytest.mark.parametrize("sync", [True, False], ids=["runsync", "run"])
def test_sdk_export_for_a_local_worker_runs(worker: Endpoint, tmp_path: Path, sync: bool) -> None:
    # The SDK cannot speak this dialect: the export is httpx, polling by POST /status/{id}.
    script = to_python_sdk(request_for_job(worker, ECHO_INPUT, sync=sync))
    assert "import runpod" not in script
    answer = json.loads(run_python(script, tmp_path))
    assert (answer["status"], answer["output"]) == ("COMPLETED", ECHO_INPUT)


# ---- the word splitter agrees with a real shell -------------------------------------------

SHELL_LINES = [
    'curl \'a b\' "c \\" \\\\ \\x d" e\\ f g\\\nh',
    "a''b \"\" ''",
    "x \\\n  y \\\n\tz",
    "'it'\\''s' \"it's\" it\\'s",
    "\"line\\\none\" 'line\\\ntwo'",
    "a#b c # a comment",
    "'😀 中文' \"é\"",
    "  leading and trailing  ",
]


@pytest.mark.parametrize("line", SHELL_LINES)
def test_words_split_as_sh_does(line: str) -> None:
    from tui.export import _split

    result = subprocess.run(
        ["sh", "-c", "printf '%s\\0' " + line],
        capture_output=True,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"},
    )
    assert result.returncode == 0
    assert _split(line) == result.stdout.decode().split("\0")[:-1]


def test_a_paste_that_lost_its_continuations_still_imports() -> None:
    # A shell would end the command at the first newline; an import is kinder.
    parsed = parse_curl("curl -X POST https://abc.api.runpod.ai/echo\n-d '{\"a\": 1}'\n")
    assert (parsed.method, parsed.body_json) == ("POST", {"a": 1})


@settings(max_examples=200, deadline=None)
@given(words=st.lists(st.text(), max_size=6))
def test_quoted_words_split_back(words: list[str]) -> None:
    from tui.export import _split, sh_quote

    assert _split(" \\\n ".join(sh_quote(w) for w in words)) == words
