"""Fault injection: the app stays up, shows each endpoint's connection state, backs off,
resumes, and every job still reaches its true terminal state."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from tests.apphelpers import wait_until
from tests.proxy import FlakyProxy
from tui.api import errors as E
from tui.api.client import EndpointClient
from tui.api.models import Endpoint, EndpointKind, Job
from tui.config import load_config
from tui.sandbox import RunningSandbox, SandboxConfig, start_sandbox
from tui.ui.app import FlashApp
from tui.ui.messages import JobsPolled
from tui.ui.screens.job_detail import JobDetailScreen
from tui.ui.widgets.job_table import JobTable
from tui.ui.widgets.sidebar import EndpointSidebar

KEY = "fault-key"


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("RUNPOD_API_KEY", KEY)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FLASH_TUI_CONFIG", raising=False)


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=0.3, seed=7)) as sb:
        yield sb


def app_for(tmp_path: Path, base: str, *names: str) -> FlashApp:
    config = tmp_path / "config.toml"
    config.write_text(
        "".join(
            f'[[endpoints]]\nname = "{n}"\nkind = "queue"\nurl = "{base}/v2/{n}"\n' for n in names
        )
    )
    return FlashApp(load_config(config))


def table_jobs(app: FlashApp) -> list[Job]:
    return [j for j in app.query_one(JobTable).jobs.values() if j.status != "SUBMITTING"]


async def test_bursts_of_5xx_and_html_pages_mid_poll(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    seen_states: set[str] = set()

    def hook(message: object) -> None:
        if isinstance(message, JobsPolled):
            seen_states.update(link.state for link in message.links.values())

    app = app_for(tmp_path, sandbox.base_url, "sleepy", "echo")
    async with app.run_test(size=(120, 36), message_hook=hook) as pilot:
        await wait_until(pilot, lambda: app._poller is not None)
        for seconds in (2, 3, 4):
            app.submit_job(app.endpoint_named("sleepy"), {"seconds": seconds}, False)  # type: ignore[arg-type]
        await wait_until(pilot, lambda: len(table_jobs(app)) == 3, what="three submissions")
        sandbox.config.error_rate = 0.8  # most status calls now fail, half with HTML pages
        await wait_until(pilot, lambda: "retrying" in seen_states, what="the endpoint to retry")
        assert not any(j.is_final for j in table_jobs(app))  # trouble never fails a job
        sandbox.config.error_rate = 0.0
        await wait_until(
            pilot,
            lambda: all(j.status == "COMPLETED" for j in table_jobs(app)),
            timeout=40,
            what="every job to complete",
        )
        state = app.query_one(EndpointSidebar).states["sleepy"]
        await wait_until(pilot, lambda: state.link_state == "ok")


async def test_server_gone_mid_poll_and_back(sandbox: RunningSandbox, tmp_path: Path) -> None:
    proxy = FlakyProxy(int(sandbox.base_url.rsplit(":", 1)[1]))
    proxy.start()
    try:
        app = app_for(tmp_path, proxy.url, "sleepy")
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until(pilot, lambda: app._poller is not None)
            app.submit_job(app.endpoint_named("sleepy"), {"seconds": 6}, False)  # type: ignore[arg-type]
            await wait_until(pilot, lambda: len(table_jobs(app)) == 1)
            (job,) = table_jobs(app)
            proxy.stop()
            state = app.query_one(EndpointSidebar).states["sleepy"]
            await wait_until(
                pilot,
                lambda: state.link_state == "down",
                timeout=20,
                what="the endpoint to show down",
            )
            assert not job.is_final
            proxy.start()
            await wait_until(
                pilot,
                lambda: job.status == "COMPLETED",
                timeout=40,
                what="the job after the server came back",
            )
            await wait_until(pilot, lambda: state.link_state == "ok")
    finally:
        proxy.close()


async def test_rate_limited_polls_back_off_and_finish(tmp_path: Path) -> None:
    config = SandboxConfig(port=0, api_key=KEY, time_scale=0.3, rate_limit=6)
    with start_sandbox(config) as sb:
        app = app_for(tmp_path, sb.base_url, "echo")
        async with app.run_test(size=(120, 36)) as pilot:
            await wait_until(pilot, lambda: app._poller is not None)
            for i in range(4):
                app.submit_job(app.endpoint_named("echo"), {"i": i}, False)  # type: ignore[arg-type]
            await wait_until(pilot, lambda: len(app.query_one(JobTable).jobs) >= 4)
            # Some submissions may be refused with 429 (that is said, and nothing is sent);
            # every accepted job still completes despite the limit on its status calls.
            await wait_until(
                pilot,
                lambda: (
                    table_jobs(app)
                    and all(j.status == "COMPLETED" for j in table_jobs(app))
                    and not any(
                        j.status == "SUBMITTING" for j in app.query_one(JobTable).jobs.values()
                    )
                ),
                timeout=60,
                what="the accepted jobs",
            )
            assert table_jobs(app)


# --- answers of every wrong shape -------------------------------------------------------

WEIRD: dict[str, Any] = {
    "html": HTMLResponse("<html><body><h1>It works!</h1></body></html>"),
    "array": JSONResponse([1, 2, 3]),
    "unknown": JSONResponse({"id": "unknown", "status": "RUNNING", "novel": {"a": 1}}),
    "missing": JSONResponse({}),
    "wrongtypes": JSONResponse(
        {
            "id": "wrongtypes",
            "status": "COMPLETED",
            "delayTime": "soon",
            "executionTime": None,
            "workerId": 42,
            "retries": "x",
        }
    ),
    "text": JSONResponse(
        {
            "id": "text",
            "status": "COMPLETED",
            "output": {
                "markup": "[bold red]not bold[/] [link=https://evil]click[/link]",
                "ansi": "\x1b[31mred\x1b[0m\x07",
                "rtl": "שלום \u202eevil",
                "emoji": "🎉👩‍🚀",
                "long": "x" * 50_000,
            },
        }
    ),
    "html500": HTMLResponse("<html><head><title>502 Bad Gateway</title></head></html>", 502),
}


async def weird_status(request: Request) -> Response:
    return WEIRD[request.path_params["job_id"]]


@pytest.fixture(scope="module")
def weird_server() -> Iterator[str]:
    import socket
    import threading
    import time

    import uvicorn

    app = Starlette(routes=[Route("/v2/weird/status/{job_id}", weird_status)])
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}/v2/weird"
    server.should_exit = True
    thread.join(5)


async def test_answers_of_the_wrong_shape_are_clear_errors(weird_server: str) -> None:
    endpoint = Endpoint("weird", EndpointKind.QUEUE, weird_server)
    async with EndpointClient(endpoint, api_key=KEY) as client:
        with pytest.raises(E.BadAnswer, match="not JSON"):
            await client.status("html")
        with pytest.raises(E.BadAnswer, match="expected a JSON object"):
            await client.status("array")
        with pytest.raises(E.ServerError, match=r"502 Bad Gateway.*HTML page"):
            await client.status("html500")
        job = Job("weird", "unknown")
        job.apply(await client.status("unknown"))
        assert job.status == "RUNNING" and not job.is_final and job.raw["novel"] == {"a": 1}
        job = Job("weird", "missing")
        assert job.apply(await client.status("missing")) == set()
        job = Job("weird", "wrongtypes")
        job.apply(await client.status("wrongtypes"))
        assert job.is_terminal and job.delay_ms is None and job.worker_id == "42"


async def test_server_text_is_shown_literally(weird_server: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[endpoints]]\nname = "weird"\nkind = "queue"\nurl = "{weird_server}"\n')
    app = FlashApp(load_config(config))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app._poller is not None)
        job = Job("weird", "text", status="IN_QUEUE")
        app.query_one(JobTable).add_job(job)
        app._poller.track(job, delay=0)  # type: ignore[union-attr]
        await wait_until(pilot, lambda: job.status == "COMPLETED")
        table = app.query_one(JobTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        shown = app.screen.query_one("#detail-output").text  # type: ignore[attr-defined]
        assert "[bold red]not bold[/] [link=https://evil]click[/link]" in shown
        assert "\x1b" not in shown and "\x07" not in shown
        assert "🎉👩‍🚀" in shown and "שלום" in shown
        assert "text, 48.8 KB collapsed" in shown
        assert "\u202e" not in shown and "<U+202E>evil" in shown
        svg = app.export_screenshot()
        assert "evil" in svg  # drawn as text, not turned into a link or style
        json.loads(app.screen.query_one("#detail-raw").text)  # type: ignore[attr-defined]
