"""Finding endpoints and the key the way the Runpod tools do.

Real files in temporary directories (``.env``, ``~/.runpod/config.toml``, a Flash project's
``.flash/flash_manifest.json``) and real servers on loopback: the project's sandbox for the
account listing, and a tiny starlette app for the older REST listing. The CLI runs as a user
runs it, in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route as StarletteRoute

from tui.api import errors as E
from tui.api.client import ClientPool, EndpointClient
from tui.api.models import EndpointKind, Route
from tui.config import (
    Config,
    dotenv_key,
    find_key,
    load_config,
    parse_dotenv_line,
    runpod_config_key,
)
from tui.discovery import (
    ManifestError,
    MissingKey,
    account_urls,
    endpoints_from_listing,
    list_account_endpoints,
    load_manifest,
    manifest_path,
    project_endpoints,
)
from tui.sandbox import RunningSandbox, SandboxConfig, start_sandbox

PROJECT_ROOT = Path(__file__).resolve().parent.parent
KEY = "discovery-test-key-5f2e"
CLI_TIMEOUT_S = 60


@pytest.fixture(scope="module")
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=0.2)) as sb:
        yield sb


@dataclass
class Place:
    """A working directory and a home directory of the test's own."""

    cwd: Path
    home: Path


@pytest.fixture
def place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Place:
    cwd, home = tmp_path / "work", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    for name in ("RUNPOD_API_KEY", "FLASH_TUI_API_URL", "FLASH_TUI_REST_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    return Place(cwd, home)


# ---- the key ---------------------------------------------------------------------------------


def write_runpod_config(home: Path, text: str) -> Path:
    path = home / ".runpod" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_key_lookup_order(place: Place, monkeypatch: pytest.MonkeyPatch) -> None:
    config_path = place.home / "flash-tui.toml"
    config_path.write_text('api_key = "key-from-flash-tui-config"\n', encoding="utf-8")
    config = load_config(config_path)

    def check(key: str, source: str) -> None:
        assert config.key() == key
        assert config.key_source() == source
        assert key not in config.key_source()
        assert key not in repr(find_key(config))

    check("key-from-flash-tui-config", str(config_path))

    write_runpod_config(place.home, '[default]\napi_key = "key-from-runpod-config"\n')
    check("key-from-runpod-config", "~/.runpod/config.toml")

    (place.cwd / ".env").write_text(
        '# the project\'s secrets\nexport RUNPOD_API_KEY="key-from-dotenv"  # for flash\n',
        encoding="utf-8",
    )
    check("key-from-dotenv", f".env ({place.cwd / '.env'})")

    monkeypatch.setenv("RUNPOD_API_KEY", "key-from-env")
    check("key-from-env", "$RUNPOD_API_KEY")

    monkeypatch.setenv("RUNPOD_API_KEY", "  ")  # blank is no key: go on looking
    check("key-from-dotenv", f".env ({place.cwd / '.env'})")


def test_no_key_anywhere(place: Place) -> None:
    config = Config(path=place.home / "absent.toml")
    assert config.key() is None
    assert config.key_source() == "none"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("RUNPOD_API_KEY=plain", ("RUNPOD_API_KEY", "plain")),
        ("  RUNPOD_API_KEY = spaced  ", ("RUNPOD_API_KEY", "spaced")),
        ("export RUNPOD_API_KEY=exported", ("RUNPOD_API_KEY", "exported")),
        ('RUNPOD_API_KEY="double # not a comment"', ("RUNPOD_API_KEY", "double # not a comment")),
        ("RUNPOD_API_KEY='single'  # comment", ("RUNPOD_API_KEY", "single")),
        (r'RUNPOD_API_KEY="a\"b\\c"', ("RUNPOD_API_KEY", 'a"b\\c')),
        ("RUNPOD_API_KEY=value # comment", ("RUNPOD_API_KEY", "value")),
        ("RUNPOD_API_KEY=abc#def", ("RUNPOD_API_KEY", "abc#def")),
        ("RUNPOD_API_KEY=", ("RUNPOD_API_KEY", "")),
        ("# RUNPOD_API_KEY=commented", None),
        ("", None),
        ("not a line", None),
        ('RUNPOD_API_KEY="unterminated', None),
        ("=value", None),
    ],
)
def test_dotenv_lines(line: str, expected: tuple[str, str] | None) -> None:
    assert parse_dotenv_line(line) == expected


def test_dotenv_last_assignment_wins_and_other_names_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / ".env"
    path.write_text(
        "OTHER=x\nRUNPOD_API_KEY=first\nRUNPOD_API_KEY_OLD=nope\nRUNPOD_API_KEY=second\n",
        encoding="utf-8",
    )
    assert dotenv_key(path) == "second"
    assert dotenv_key(tmp_path / "absent") is None


def test_malformed_files_are_skipped(place: Place) -> None:
    (place.cwd / ".env").write_bytes(b"\xff\xfe\x00garbage\x00RUNPOD_API_KEY=\x80\x81")
    toml = write_runpod_config(place.home, '[default\napi_key = "never read"\n')
    assert runpod_config_key(toml) is None
    config = Config(path=place.home / "c.toml", api_key="key-of-last-resort")
    assert config.key() == "key-of-last-resort"

    # A well-formed file with the wrong shapes is skipped too.
    write_runpod_config(place.home, "default = 5\n")
    assert config.key_source() == str(place.home / "c.toml")
    write_runpod_config(place.home, "[default]\napi_key = 42\n")
    assert config.key() == "key-of-last-resort"
    write_runpod_config(place.home, '[other]\napi_key = "profile not used"\n')
    assert config.key() == "key-of-last-resort"
    (place.cwd / ".env").unlink()
    (place.cwd / ".env").mkdir()  # a directory where a file was expected
    assert config.key() == "key-of-last-resort"


# ---- the Flash manifest ----------------------------------------------------------------------


def flash_manifest(
    queue_url: str | None = "https://api.runpod.ai/v2/q7x2abc9d0e1f2",
    lb_url: str | None = "https://lb4k8m2n6p0q3r.api.runpod.ai",
) -> dict[str, Any]:
    """A manifest as ``flash deploy`` writes it (runpod-flash's ManifestBuilder, then the
    deploy step's ``endpoint_id`` and ``resources_endpoints``)."""
    resources_endpoints = {}
    if queue_url:
        resources_endpoints["gpu_worker"] = queue_url
    if lb_url:
        resources_endpoints["api"] = lb_url
    return {
        "version": "1.0",
        "generated_at": "2026-01-12T10:31:07.412345Z",
        "project_name": "hello-flash",
        "resources": {
            "api": {
                "resource_type": "LiveLoadBalancer",
                "file_path": "lb_worker.py",
                "local_path_prefix": "/lb_worker",
                "module_path": "lb_worker",
                "functions": [
                    {
                        "name": "generate",
                        "module": "lb_worker",
                        "is_async": True,
                        "is_class": False,
                        "http_method": "POST",
                        "http_path": "/generate",
                    },
                    {
                        "name": "info",
                        "module": "lb_worker",
                        "is_async": True,
                        "is_class": False,
                        "http_method": "GET",
                        "http_path": "/info",
                    },
                ],
                "is_load_balanced": True,
                "is_live_resource": True,
                "config_variable": "api",
                "makes_remote_calls": False,
                "workersMin": 0,
                "workersMax": 3,
                "endpoint_id": "lb4k8m2n6p0q3r",
            },
            "gpu_worker": {
                "resource_type": "LiveServerless",
                "file_path": "gpu_worker.py",
                "local_path_prefix": "/gpu_worker",
                "module_path": "gpu_worker",
                "functions": [
                    {
                        "name": "gpu_hello",
                        "module": "gpu_worker",
                        "is_async": True,
                        "is_class": False,
                    }
                ],
                "is_load_balanced": False,
                "is_live_resource": True,
                "config_variable": None,
                "makes_remote_calls": False,
                "gpuIds": "ADA_24",
                "workersMin": 0,
                "workersMax": 3,
                "handler_file": "handler_gpu_worker.py",
                "endpoint_id": "q7x2abc9d0e1f2",
            },
        },
        "function_registry": {"generate": "api", "info": "api", "gpu_hello": "gpu_worker"},
        "routes": {"api": {"POST /generate": "generate", "GET /info": "info"}},
        "resources_endpoints": resources_endpoints,
    }


def write_manifest(project: Path, manifest: dict[str, Any] | str) -> Path:
    path = project / ".flash" / "flash_manifest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    text = manifest if isinstance(manifest, str) else json.dumps(manifest, indent=2)
    path.write_text(text, encoding="utf-8")
    return path


def test_manifest_endpoints(tmp_path: Path) -> None:
    write_manifest(tmp_path, flash_manifest())
    warnings: list[str] = []
    endpoints = {e.name: e for e in load_manifest(tmp_path, warnings)}
    assert warnings == []
    assert set(endpoints) == {"api", "gpu_worker"}

    queue = endpoints["gpu_worker"]
    assert queue.kind is EndpointKind.QUEUE
    assert queue.url == "https://api.runpod.ai/v2/q7x2abc9d0e1f2"
    assert queue.endpoint_id == "q7x2abc9d0e1f2"
    assert queue.routes == []
    assert queue.source == "manifest"

    lb = endpoints["api"]
    assert lb.kind is EndpointKind.LB
    assert lb.url == "https://lb4k8m2n6p0q3r.api.runpod.ai"
    assert lb.endpoint_id == "lb4k8m2n6p0q3r"
    assert lb.routes == [
        Route("POST", "/generate", None, "generate"),
        Route("GET", "/info", None, "info"),
    ]
    assert lb.source == "manifest"


def test_manifest_urls_from_ids_and_routes_from_functions(tmp_path: Path) -> None:
    manifest = flash_manifest(queue_url=None, lb_url=None)
    del manifest["routes"]
    write_manifest(tmp_path, manifest)
    endpoints = {e.name: e for e in load_manifest(tmp_path, [])}
    assert endpoints["gpu_worker"].url == "https://api.runpod.ai/v2/q7x2abc9d0e1f2"
    assert endpoints["api"].url == "https://lb4k8m2n6p0q3r.api.runpod.ai"
    assert [(r.method, r.path, r.title) for r in endpoints["api"].routes] == [
        ("POST", "/generate", "generate"),
        ("GET", "/info", "info"),
    ]


def test_manifest_path_accepts_the_project_the_flash_dir_or_the_file(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, flash_manifest())
    assert manifest_path(tmp_path) == path
    assert manifest_path(tmp_path / ".flash") == path
    assert manifest_path(path) == path
    assert {e.name for e in load_manifest(tmp_path / ".flash", [])} == {"api", "gpu_worker"}


def test_manifest_entries_that_cannot_be_used_are_skipped(tmp_path: Path) -> None:
    manifest = flash_manifest()
    manifest["resources"].update(
        {
            "not_an_object": ["gpu"],
            "undeployed": {"resource_type": "LiveServerless", "is_load_balanced": False},
            "odd_flag": {"is_load_balanced": "yes", "endpoint_id": "abc"},
            "bad_id": {"is_load_balanced": False, "endpoint_id": "../../etc"},
            "old_lb": {"resource_type": "LoadBalancerSlsResource", "endpoint_id": "old123"},
        }
    )
    manifest["routes"]["api"]["TELEPORT /x"] = "nope"
    manifest["routes"]["api"]["GET"] = "no path"
    manifest["resources_endpoints"]["undeployed"] = 42  # not a URL, and no id to fall back on
    write_manifest(tmp_path, manifest)

    warnings: list[str] = []
    endpoints = {e.name: e for e in load_manifest(tmp_path, warnings)}
    assert set(endpoints) == {"api", "gpu_worker", "old_lb"}
    assert endpoints["old_lb"].kind is EndpointKind.LB  # told by its resource type
    assert endpoints["old_lb"].url == "https://old123.api.runpod.ai"
    assert [f"{r.method} {r.path}" for r in endpoints["api"].routes] == [
        "POST /generate",
        "GET /info",
    ]
    text = "\n".join(warnings)
    for name in ("not_an_object", "undeployed", "odd_flag", "bad_id", "TELEPORT"):
        assert name in text, text
    assert len(warnings) == 7, text  # the bad URL, then no id: two for 'undeployed'


@pytest.mark.parametrize(
    ("text", "shape"),
    [
        ('{"resources": {"api": {"is_load_balanced": true,}}}', "line 1, column"),
        ('{\n  "resources": {\n    "api": \n  }\n}', "line 4, column 3"),
        ("", "line 1, column 1"),
    ],
)
def test_broken_manifest_is_a_clear_error(tmp_path: Path, text: str, shape: str) -> None:
    path = write_manifest(tmp_path, text)
    with pytest.raises(ManifestError) as caught:
        load_manifest(tmp_path)
    message = str(caught.value)
    assert str(path) in message
    assert shape in message
    assert caught.value.path == path
    assert caught.value.line is not None
    assert isinstance(caught.value, E.FlashError)


def test_other_unusable_manifests(tmp_path: Path) -> None:
    path = write_manifest(tmp_path, "[1, 2]")
    with pytest.raises(ManifestError, match="not the object"):
        load_manifest(tmp_path)
    path.write_bytes(b"\xff\xfe{}")
    with pytest.raises(ManifestError, match="UTF-8"):
        load_manifest(tmp_path)
    path.unlink()
    with pytest.raises(ManifestError, match="flash deploy"):
        load_manifest(tmp_path)
    write_manifest(tmp_path, '{"project_name": "empty"}')
    warnings: list[str] = []
    assert load_manifest(tmp_path, warnings) == []
    assert "no 'resources'" in warnings[0]


def test_project_endpoints_never_raise(place: Place) -> None:
    assert project_endpoints(None) == ([], [])  # the cwd is simply not a Flash project
    endpoints, warnings = project_endpoints(place.home)  # asked for, and absent: say so
    assert endpoints == []
    assert "No Flash manifest" in warnings[0]

    write_manifest(place.cwd, flash_manifest())
    endpoints, warnings = project_endpoints(None)
    assert sorted(e.name for e in endpoints) == ["api", "gpu_worker"]
    assert warnings == []

    path = write_manifest(place.home, "{broken")
    endpoints, warnings = project_endpoints(place.home)
    assert endpoints == []
    assert str(path) in warnings[0] and "line 1" in warnings[0]


# ---- the account -----------------------------------------------------------------------------


async def test_account_listing_from_the_sandbox(
    sandbox: RunningSandbox, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASH_TUI_API_URL", sandbox.base_url)
    pool = ClientPool()
    try:
        endpoints = {e.name: e for e in await list_account_endpoints(KEY, pool=pool)}
        assert set(endpoints) == {"echo", "sleepy", "flaky", "streamer", "api"}
        assert all(e.source == "account" for e in endpoints.values())
        assert endpoints["echo"].kind is EndpointKind.QUEUE
        assert endpoints["echo"].url == f"{sandbox.base_url}/v2/echo"
        assert endpoints["api"].kind is EndpointKind.LB
        assert endpoints["api"].url == f"{sandbox.base_url}/lb/api"

        # The URLs work: a job on the queue endpoint, the balancer's health check on the lb one.
        async with EndpointClient(endpoints["echo"], api_key=KEY, pool=pool) as echo:
            submitted = await echo.submit({"hello": "discovery"})
            final = await echo.wait(submitted["id"], timeout=30)
        assert final["status"] == "COMPLETED"
        assert final["output"] == {"hello": "discovery"}
        async with EndpointClient(endpoints["api"], api_key=KEY, pool=pool) as api:
            ping = await api.ping()
        assert ping.status_code == 200, ping.text
    finally:
        await pool.aclose()


async def test_account_listing_with_a_wrong_key(sandbox: RunningSandbox, place: Place) -> None:
    with pytest.raises(E.Unauthorized) as caught:
        await list_account_endpoints("not-the-key", api_url=sandbox.base_url)
    assert caught.value.status_code == 401
    assert "not-the-key" not in str(caught.value)
    assert caught.value.exit_code == 3


async def test_account_listing_without_a_key_or_a_server(place: Place) -> None:
    with pytest.raises(MissingKey):
        await list_account_endpoints(None)
    with pytest.raises(E.ConnectionRefused):
        await list_account_endpoints(KEY, api_url=f"http://127.0.0.1:{free_port()}")
    # The key never goes over plain http to a host that is not loopback (nothing is sent).
    with pytest.raises(E.UsageError, match="plain http"):
        await list_account_endpoints(KEY, api_url="http://example.invalid")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LoopbackServer:
    base_url: str
    seen: list[tuple[str, str]]  # (path, authorization)


@pytest.fixture
def rest_only_server() -> Iterator[LoopbackServer]:
    """An account API without ``/v2/serverless``: only the older REST ``/v1/endpoints``."""
    seen: list[tuple[str, str]] = []

    async def serverless(request: Request) -> JSONResponse:
        seen.append((request.url.path, request.headers.get("authorization", "")))
        return JSONResponse({"error": "not found"}, status_code=404)

    async def rest(request: Request) -> JSONResponse:
        seen.append((request.url.path, request.headers.get("authorization", "")))
        if request.headers.get("authorization") != f"Bearer {KEY}":
            return JSONResponse({"title": "Unauthorized"}, status_code=401)
        return JSONResponse(
            [
                {
                    "id": "rest12345abc",
                    "name": "my-worker",
                    "workersMin": 0,
                    "workersMax": 2,
                    "gpuTypeIds": ["NVIDIA GeForce RTX 4090"],
                },
                {"id": "noname777"},
                {"id": "../escape", "name": "evil"},
                "not an endpoint",
            ]
        )

    app = Starlette(
        routes=[
            StarletteRoute("/v2/serverless", serverless),
            StarletteRoute("/v1/endpoints", rest),
        ]
    )
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the REST server did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield LoopbackServer(f"http://127.0.0.1:{port}", seen)
    finally:
        server.should_exit = True
        thread.join(10)


async def test_rest_fallback(
    rest_only_server: LoopbackServer, place: Place, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLASH_TUI_API_URL", rest_only_server.base_url)  # REST: the same base
    warnings: list[str] = []
    endpoints = await list_account_endpoints(KEY, warnings=warnings)
    assert [(e.name, e.kind, e.url, e.source) for e in endpoints] == [
        ("my-worker", EndpointKind.QUEUE, "https://api.runpod.ai/v2/rest12345abc", "account"),
        ("noname777", EndpointKind.QUEUE, "https://api.runpod.ai/v2/noname777", "account"),
    ]
    assert len(warnings) == 2, warnings
    assert rest_only_server.seen == [
        ("/v2/serverless", f"Bearer {KEY}"),
        ("/v1/endpoints", f"Bearer {KEY}"),
    ]
    with pytest.raises(E.Unauthorized):
        await list_account_endpoints("wrong", api_url=rest_only_server.base_url)


def test_account_urls(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLASH_TUI_API_URL", raising=False)
    monkeypatch.delenv("FLASH_TUI_REST_URL", raising=False)
    assert account_urls() == ("https://api.runpod.io", "https://rest.runpod.io")
    monkeypatch.setenv("FLASH_TUI_API_URL", "http://127.0.0.1:9/")
    assert account_urls() == ("http://127.0.0.1:9", "http://127.0.0.1:9")
    monkeypatch.setenv("FLASH_TUI_REST_URL", "http://127.0.0.1:10")
    assert account_urls() == ("http://127.0.0.1:9", "http://127.0.0.1:10")
    assert account_urls("http://a:1", "http://b:2") == ("http://a:1", "http://b:2")


def test_listing_shapes() -> None:
    listing = {
        "endpoints": [
            {"id": "aaa111", "name": "same", "type": "QUEUE"},
            {"id": "bbb222", "name": "same", "type": "LOAD_BALANCER"},
            {
                "id": "ccc333",
                "name": "runs",
                "type": "QUEUE",
                "requestUrls": {"run": "https://proxy.example/v2/ccc333/run"},
            },
            {"id": "ddd444", "name": "weird", "type": "SOMETHING_NEW"},
        ]
    }
    warnings: list[str] = []
    got = [(e.name, e.kind.value, e.url) for e in endpoints_from_listing(listing, warnings)]
    assert got == [
        ("same", "queue", "https://api.runpod.ai/v2/aaa111"),
        ("same (bbb222)", "lb", "https://bbb222.api.runpod.ai"),
        ("runs", "queue", "https://proxy.example/v2/ccc333"),
        ("weird", "queue", "https://api.runpod.ai/v2/ddd444"),
    ]
    assert "SOMETHING_NEW" in warnings[0]
    with pytest.raises(E.BadAnswer):
        endpoints_from_listing({"data": 5})


# ---- the CLI ---------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


def flash(cwd: Path, home: Path, *args: str, key: str | None = KEY, **env: str) -> Result:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RUNPOD_", "FLASH_TUI_", "XDG_")) and k != "NO_COLOR"
    }
    base.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        FLASH_TUI_CONFIG=str(home / "flash-tui.toml"),
        PYTHONPATH=str(PROJECT_ROOT),
        PYTHONUNBUFFERED="1",
    )
    if key is not None:
        base["RUNPOD_API_KEY"] = key
    base.update(env)
    proc = subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=cwd,
        env=base,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
    )
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in result.err, result
    if key:
        assert key not in result.out and key not in result.err, "the key was shown"
    return result


def by_name(result: Result) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in result.json()}


def test_cli_endpoints_lists_the_manifest(place: Place) -> None:
    write_manifest(place.cwd, flash_manifest())
    result = flash(place.cwd, place.home, "endpoints", "--json")
    assert result.code == 0, result
    assert "key: from $RUNPOD_API_KEY" in result.err
    assert by_name(result) == {
        "gpu_worker": {
            "name": "gpu_worker",
            "kind": "queue",
            "url": "https://api.runpod.ai/v2/q7x2abc9d0e1f2",
            "source": "manifest",
            "routes": [],
        },
        "api": {
            "name": "api",
            "kind": "lb",
            "url": "https://lb4k8m2n6p0q3r.api.runpod.ai",
            "source": "manifest",
            "routes": ["POST /generate", "GET /info"],
        },
    }

    # The table, and the key found in the project's .env.
    (place.cwd / ".env").write_text(f"RUNPOD_API_KEY={KEY}\n", encoding="utf-8")
    table = flash(place.cwd, place.home, "endpoints", key=None)
    assert table.code == 0, table
    assert f"key: from .env ({place.cwd / '.env'})" in table.err
    assert KEY not in table.err and KEY not in table.out
    assert "gpu_worker" in table.out and "POST /generate" in table.out


def test_config_names_come_before_manifest_names(place: Place) -> None:
    from tui.cli import resolve_endpoint

    write_manifest(place.cwd, flash_manifest())
    config_path = place.home / "flash-tui.toml"
    config_path.write_text(
        '[[endpoints]]\nname = "gpu_worker"\nurl = "https://api.runpod.ai/v2/mine"\n',
        encoding="utf-8",
    )
    config = load_config(config_path)
    assert resolve_endpoint("gpu_worker", None, config).url == "https://api.runpod.ai/v2/mine"
    lb = resolve_endpoint("api", None, config)
    assert (lb.source, lb.kind, lb.url) == (
        "manifest",
        EndpointKind.LB,
        "https://lb4k8m2n6p0q3r.api.runpod.ai",
    )
    with pytest.raises(E.UsageError, match="lb in the Flash manifest, not queue"):
        resolve_endpoint("api", "queue", config)
    with pytest.raises(E.UsageError, match=r"the Flash manifest has: api, gpu_worker"):
        resolve_endpoint("nope", None, config)

    result = flash(place.cwd, place.home, "endpoints", "--json")
    assert result.code == 0, result
    assert [(e["name"], e["source"]) for e in result.json()] == [
        ("gpu_worker", "config"),
        ("api", "manifest"),
        ("gpu_worker", "manifest"),
    ]


def test_cli_endpoints_discover(sandbox: RunningSandbox, place: Place) -> None:
    write_manifest(place.cwd, flash_manifest())
    result = flash(
        place.cwd,
        place.home,
        "endpoints",
        "--json",
        "--discover",
        FLASH_TUI_API_URL=sandbox.base_url,
    )
    assert result.code == 0, result
    endpoints = result.json()
    account = {e["name"]: e for e in endpoints if e["source"] == "account"}
    assert set(account) == {"echo", "sleepy", "flaky", "streamer", "api"}
    assert account["echo"]["kind"] == "queue"
    assert account["echo"]["url"] == f"{sandbox.base_url}/v2/echo"
    assert account["api"]["kind"] == "lb"
    assert account["api"]["url"] == f"{sandbox.base_url}/lb/api"
    assert {e["name"] for e in endpoints if e["source"] == "manifest"} == {"api", "gpu_worker"}

    # A refused key: what is known is still printed, the trouble said, exit 3.
    refused = flash(
        place.cwd,
        place.home,
        "endpoints",
        "--json",
        "--discover",
        key="wrong-key-000",
        FLASH_TUI_API_URL=sandbox.base_url,
    )
    assert refused.code == 3, refused
    assert {e["source"] for e in refused.json()} == {"manifest"}
    assert "error: account endpoints not listed: Unauthorized (401)" in refused.err


def test_cli_endpoints_with_a_broken_manifest(place: Place) -> None:
    path = write_manifest(place.cwd, '{"resources": ')
    result = flash(place.cwd, place.home, "endpoints", "--json")
    assert result.code == 2, result
    assert result.json() == []
    assert str(path) in result.err and "line 1" in result.err


def test_cli_run_by_manifest_name(sandbox: RunningSandbox, place: Place) -> None:
    project = place.home / "hello-flash"
    write_manifest(
        project,
        flash_manifest(
            queue_url=f"{sandbox.base_url}/v2/echo", lb_url=f"{sandbox.base_url}/lb/api"
        ),
    )
    # From the project's own directory...
    ran = flash(project, place.home, "run", "gpu_worker", "--input", '{"n": 7}', "--sync")
    assert ran.code == 0, ran
    answer = ran.json()
    assert answer["status"] == "COMPLETED"
    assert answer["output"] == {"n": 7}

    # ...and from anywhere with --flash-project, before or after the command.
    waited = flash(
        place.cwd,
        place.home,
        "--flash-project",
        str(project),
        "run",
        "gpu_worker",
        "--input",
        '{"n": 8}',
        "--wait",
    )
    assert waited.code == 0, waited
    assert waited.json()["output"] == {"n": 8}
    assert "--flash-project" in waited.err  # the hint to follow the job names the project

    ping = flash(
        place.cwd, place.home, "call", "api", "GET", "/ping", "--flash-project", str(project)
    )
    assert ping.code == 0, ping

    unknown = flash(place.cwd, place.home, "run", "gpu_worker", "--input", '{"n": 1}')
    assert unknown.code == 2, unknown
    assert "Unknown endpoint 'gpu_worker'" in unknown.err

    missing = flash(place.cwd, place.home, "--flash-project", str(place.cwd / "nope"), "jobs")
    assert missing.code == 2
    assert "does not exist" in missing.err


def test_discovery_imports_no_textual() -> None:
    code = (
        "import sys, tui.discovery, tui.config, tui.cli; "
        "sys.exit(1 if 'textual' in sys.modules else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, timeout=60)
    assert proc.returncode == 0, "tui.discovery, tui.config or tui.cli imported textual"
