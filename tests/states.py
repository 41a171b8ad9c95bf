"""App states for the snapshot tests and the screenshots script: fixed data, so that every
run draws the same picture. The demo sandbox listens on a fixed port here because the port
shows on screen."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from tests.apphelpers import wait_until
from tui.api.models import Job, RouteAnswer
from tui.config import load_config
from tui.ui.app import FlashApp
from tui.ui.widgets.job_table import JobTable
from tui.ui.widgets.payload import PayloadEditor
from tui.ui.widgets.route_panel import RoutePanel
from tui.ui.widgets.sidebar import EndpointSidebar

SNAPSHOT_PORT = 48787
FIXED_START = time.mktime((2026, 12, 1, 9, 30, 0, 0, 0, -1))

RunBefore = Callable[[Pilot[object]], Awaitable[None]]


def demo_app(config_path: Path) -> FlashApp:
    return FlashApp(
        load_config(config_path),
        demo=True,
        sandbox_options={"port": SNAPSHOT_PORT, "time_scale": 0.2},
    )


def fixed_jobs() -> list[Job]:
    """Jobs in every state, with fixed times, as the poller would have left them."""
    rows = [
        (
            "echo",
            "3f2a9c1e-5b7d-4e8a-9c0b-1d2e3f4a5b6c-u1",
            "COMPLETED",
            {"prompt": "Hello world", "n": 1},
            None,
            12,
            104,
            "sandbox-echo-w1",
        ),
        (
            "flaky",
            "8d7c6b5a-4e3f-4a2b-9c1d-0e9f8a7b6c5d-u1",
            "FAILED",
            None,
            '{"error_type": "<class \'ValueError\'>", "error_message": "flaky failed as asked", '
            '"error_traceback": "Traceback (most recent call last):\\n  File \\"handler.py\\", '
            "line 12, in handler\\n    raise ValueError(...)\\n"
            'ValueError: flaky failed as asked\\n"}',
            31,
            208,
            "sandbox-flaky-w2",
        ),
        (
            "sleepy",
            "c4b3a291-8f7e-4d6c-b5a4-93827160f5e4-u1",
            "CANCELLED",
            None,
            None,
            15,
            1850,
            "sandbox-sleepy-w1",
        ),
        (
            "streamer",
            "e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9-u1",
            "WEIRD_NEW_STATUS",
            None,
            None,
            None,
            None,
            None,
        ),
    ]
    jobs = []
    for i, (endpoint, job_id, status, output, error, delay, execution, worker) in enumerate(rows):
        job = Job(endpoint, job_id, input={"n": i}, submitted_at=FIXED_START + i * 7)
        answer: dict[str, object] = {"id": job_id, "status": status}
        if output is not None:
            answer["output"] = output
        if error is not None:
            answer["error"] = error
        if delay is not None:
            answer["delayTime"] = delay
            answer["executionTime"] = execution
            answer["workerId"] = worker
        job.apply(answer, now=FIXED_START + i * 7 + 3)
        if not job.is_final:
            job.ended_at = FIXED_START + i * 7 + 3  # freeze its age for the picture
        jobs.append(job)
    return jobs


async def settle(pilot: Pilot[object]) -> None:
    """Wait for the sandbox and every health mark, then stop every cursor blinking."""
    app = pilot.app
    assert isinstance(app, FlashApp)
    await wait_until(pilot, lambda: app.sandbox is not None, what="the sandbox")
    sidebar = app.query_one(EndpointSidebar)
    await wait_until(
        pilot,
        lambda: all(s.health is not None or s.ping is not None for s in sidebar.states.values()),
        what="health marks",
    )
    for widget in app.query(TextArea):
        widget.cursor_blink = False
    for field in app.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def with_jobs(pilot: Pilot[object]) -> None:
    app = pilot.app
    assert isinstance(app, FlashApp)
    await settle(pilot)
    # Straight into the table: these ids are not the sandbox's, so nothing polls them.
    table = app.query_one(JobTable)
    for job in fixed_jobs():
        table.add_job(job)
    await pilot.pause()
    await pilot.pause()


async def job_detail(pilot: Pilot[object]) -> None:
    await with_jobs(pilot)
    app = pilot.app
    assert isinstance(app, FlashApp)
    table = app.query_one("#jobs")
    table.focus()
    table.move_cursor(row=2)  # type: ignore[attr-defined]  # the FAILED flaky job
    await pilot.press("enter")
    await pilot.pause()
    for widget in app.screen.query(TextArea):
        widget.cursor_blink = False
    await pilot.pause()


async def route_answer(pilot: Pilot[object]) -> None:
    app = pilot.app
    assert isinstance(app, FlashApp)
    await settle(pilot)
    sidebar = app.query_one(EndpointSidebar)
    sidebar.highlighted = sidebar.get_option_index("api")
    await pilot.pause()
    for _ in range(100):  # the route panel is mounted when first needed
        if any(panel.endpoint is not None for panel in app.query(RoutePanel)):
            break
        await pilot.pause(0.02)
    panel = app.query_one(RoutePanel)
    panel.show_answer(
        RouteAnswer(
            method="POST",
            url=f"http://127.0.0.1:{SNAPSHOT_PORT}/lb/api/echo",
            status_code=200,
            reason="OK",
            headers=[
                ("content-type", "application/json"),
                ("content-length", "37"),
                ("x-note", "[bold]shown literally[/bold]"),
            ],
            text='{"text": "Hello from flash-tui"}',
            elapsed_s=0.012,
            size=37,
            json={"text": "Hello from flash-tui", "markup": "[red]not red[/red]"},
            is_json=True,
        )
    )
    for widget in app.query(TextArea):
        widget.cursor_blink = False
    for field in app.query(Input):
        field.cursor_blink = False
    await pilot.pause()


async def validation_error(pilot: Pilot[object]) -> None:
    app = pilot.app
    assert isinstance(app, FlashApp)
    await settle(pilot)
    editor = app.query_one(PayloadEditor)
    editor.text_area.load_text('{\n  "prompt": "Hello world",\n  "n": 1,\n}')
    await pilot.press("ctrl+r")
    await pilot.pause()
    editor.text_area.cursor_blink = False
    await pilot.pause()


async def endpoint_form(pilot: Pilot[object]) -> None:
    app = pilot.app
    assert isinstance(app, FlashApp)
    await settle(pilot)
    await pilot.press("ctrl+n")
    await pilot.pause()
    await pilot.press(*"echo")
    app.screen.query_one("#form-url", Input).value = "api.runpod.ai/v2/abc123"
    await pilot.press("ctrl+s")
    for field in app.screen.query(Input):
        field.cursor_blink = False
    await pilot.pause()


STATES: dict[str, tuple[RunBefore, tuple[int, int]]] = {
    "main-demo": (with_jobs, (120, 36)),
    "job-detail": (job_detail, (120, 36)),
    "route-panel": (route_answer, (120, 36)),
    "validation-error": (validation_error, (120, 36)),
    "endpoint-form": (endpoint_form, (120, 36)),
    "main-80x24": (with_jobs, (80, 24)),
}
