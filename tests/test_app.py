"""Pilot tests of real flows: the app in demo mode against its sandbox on loopback."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from tests.apphelpers import make_app, wait_until
from tui.api.models import EndpointKind, Job
from tui.ui.app import FlashApp
from tui.ui.screens.endpoint_form import EndpointForm
from tui.ui.screens.job_detail import JobDetailScreen
from tui.ui.widgets.job_table import JobTable
from tui.ui.widgets.payload import PayloadEditor
from tui.ui.widgets.route_panel import RoutePanel
from tui.ui.widgets.sidebar import EndpointSidebar

# Each test gets its own config and history folders, and no key or NO_COLOR from outside.
pytestmark = pytest.mark.usefixtures("isolated")


def jobs(app: FlashApp) -> list[Job]:
    return list(app.query_one(JobTable).jobs.values())


def real_jobs(app: FlashApp) -> list[Job]:
    return [j for j in jobs(app) if j.status != "SUBMITTING"]


async def select(pilot, app: FlashApp, name: str) -> None:  # type: ignore[no-untyped-def]
    sidebar = app.query_one(EndpointSidebar)
    await wait_until(pilot, lambda: app.sandbox is not None, what="the sandbox")
    sidebar.highlighted = sidebar.get_option_index(name)
    await wait_until(pilot, lambda: app.current is not None and app.current.name == name)
    if app.current is not None and app.current.kind is EndpointKind.LB:
        # The route panel is mounted when first needed: wait for it to show this endpoint.
        await wait_until(
            pilot,
            lambda: any(panel.endpoint is app.current for panel in app.query(RoutePanel)),
            what="the route panel",
        )


async def set_payload(pilot, app: FlashApp, value: object) -> None:  # type: ignore[no-untyped-def]
    app.query_one(PayloadEditor).text_area.load_text(json.dumps(value))
    await pilot.pause()


async def test_echo_completes_and_detail_shows_output(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        await set_payload(pilot, app, {"prompt": "hello from the test", "n": 3})
        await pilot.press("ctrl+r")
        await wait_until(
            pilot, lambda: real_jobs(app) and real_jobs(app)[0].is_final, what="echo to finish"
        )
        job = real_jobs(app)[0]
        assert job.status == "COMPLETED"
        assert job.output == {"prompt": "hello from the test", "n": 3}
        assert job.worker_id and job.execution_ms is not None
        app.query_one(JobTable).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        output = app.screen.query_one("#detail-output").text  # type: ignore[attr-defined]
        assert json.loads(output) == {"prompt": "hello from the test", "n": 3}
        await pilot.press("escape")
        assert not isinstance(app.screen, JobDetailScreen)


async def test_run_sync_gets_the_result_in_one_call(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        await set_payload(pilot, app, {"sync": True})
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: real_jobs(app) and real_jobs(app)[0].is_final)
        job = real_jobs(app)[0]
        assert job.status == "COMPLETED" and job.sync
        assert job.output == {"sync": True}


async def test_sleepy_can_be_cancelled(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "sleepy")
        await set_payload(pilot, app, {"seconds": 60})
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: real_jobs(app) and real_jobs(app)[0].status == "IN_PROGRESS",
            what="sleepy to start",
        )
        table = app.query_one(JobTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.pause()
        await pilot.press("c")
        await wait_until(
            pilot,
            lambda: real_jobs(app)[0].status == "CANCELLED",
            what=f"cancel {[str(n.message) for n in app._notifications]} {app.focused}",
        )
        assert real_jobs(app)[0].is_final


async def test_flaky_fails_then_retry_completes(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "flaky")
        await set_payload(pilot, app, {"fail": True, "fail_attempts": 1})
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: real_jobs(app) and real_jobs(app)[0].is_final)
        job = real_jobs(app)[0]
        assert job.status == "FAILED"
        decoded = job.worker_error
        assert decoded is not None and "ValueError" in decoded.type
        table = app.query_one(JobTable)
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        error_text = app.screen.query_one("#detail-error").text  # type: ignore[attr-defined]
        assert "ValueError" in error_text and "Traceback" in error_text
        await pilot.press("r")  # retry from the detail view
        await wait_until(pilot, lambda: job.status == "COMPLETED", what="the retried job")
        assert job.retries == 1
        assert app.screen.query_one("#detail-output").text  # type: ignore[attr-defined]


async def test_route_panel_post_echo_shows_status_and_body(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "api")
        panel = app.query_one(RoutePanel)
        assert panel.method == "POST" and panel.path == "/echo"
        body = {"text": "[bold]not markup[/bold] [link=https://x]y[/link] \x1b[31mred"}
        panel.query_one("#route-body").load_text(json.dumps(body))  # type: ignore[attr-defined]
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: panel.answer is not None, what="the route's answer")
        assert panel.answer is not None
        assert panel.answer.status_code == 200
        assert panel.answer.json == body
        shown = panel.query_one("#route-answer-body").text  # type: ignore[attr-defined]
        # Markup is shown literally; the escape character is shown escaped, never sent raw.
        assert "[bold]not markup[/bold]" in shown and "[link=https://x]" in shown
        assert "\x1b" not in shown and "\\u001b[31mred" in shown
        line = str(panel.query_one("#route-answer-line").render())
        assert line.startswith("200")


async def test_route_panel_shows_an_error_status(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "api")
        panel = app.query_one(RoutePanel)
        fail = next(i for i, r in enumerate(app.current.routes) if r.path == "/fail")  # type: ignore[union-attr]
        panel.use_route(fail)
        await pilot.pause()
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: panel.answer is not None)
        assert panel.answer is not None and panel.answer.status_code == 500
        assert "error" in panel.answer.json


async def test_invalid_json_is_not_sent_and_says_where(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        editor = app.query_one(PayloadEditor)
        editor.text_area.load_text('{\n  "a": 1,\n  "b": \n}')
        await pilot.pause()
        await pilot.press("ctrl+r")
        await pilot.pause()
        status = str(editor.query_one("#payload-status").render())
        assert "line 4, column 1" in status
        assert jobs(app) == []
        # The cursor is put on the error for the user.
        assert editor.text_area.cursor_location == (3, 0)
        assert editor.text_area.has_focus
        # An empty object is refused too, with Runpod's reason.
        editor.text_area.load_text("{}")
        await pilot.pause()
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert "empty" in str(editor.query_one("#payload-status").render())
        assert jobs(app) == []


async def test_add_endpoint_in_the_form_saves_toml(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    app = make_app(config_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.press("ctrl+n")
        await wait_until(pilot, lambda: isinstance(app.screen, EndpointForm))
        form = app.screen
        # A bad URL is refused with a message; nothing is saved.
        await pilot.click("#form-name")
        await pilot.press(*"my-sdxl")
        form.query_one("#form-url").value = "api.runpod.ai/v2/abc123"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, EndpointForm)
        assert "http" in str(form.query_one("#problem-url").render())
        assert not config_path.exists()
        form.query_one("#form-url").value = "https://api.runpod.ai/v2/abc123"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, EndpointForm))
    saved = tomllib.loads(config_path.read_text())
    assert saved["endpoints"] == [
        {"name": "my-sdxl", "kind": "queue", "url": "https://api.runpod.ai/v2/abc123"}
    ]
    assert config_path.stat().st_mode & 0o777 == 0o600


async def test_first_launch_offers_the_demo(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml", demo=False)
    async with app.run_test(size=(120, 36)) as pilot:
        assert "--demo" in str(app.query_one("#empty").render())
        await pilot.press("d")
        await wait_until(pilot, lambda: app.sandbox is not None, what="the demo sandbox")
        names = set(app.query_one(EndpointSidebar).endpoints)
        assert {"echo", "sleepy", "flaky", "streamer", "api"} <= names


async def test_worker_endpoint_disables_cancel_with_a_reason(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[[endpoints]]\nname = "dev"\nkind = "worker"\nurl = "http://127.0.0.1:9"\n'
    )
    app = make_app(config_path, demo=False)
    async with app.run_test(size=(120, 36)) as pilot:
        assert app.current is not None and app.current.kind is EndpointKind.WORKER
        job = Job("dev", "test-123", status="IN_PROGRESS")
        app.query_one(JobTable).add_job(job)
        await pilot.pause()
        app.query_one(JobTable).focus()
        await pilot.pause()
        assert app.check_action("cancel_job", ()) is None  # shown, disabled
        assert app.check_action("run_async", ()) is True
        # The reason is on screen, under the table.
        assert "no /cancel" in str(app.query_one(JobTable).border_subtitle)


async def test_server_down_is_a_message_not_a_crash(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text(
        '[[endpoints]]\nname = "gone"\nkind = "queue"\nurl = "http://127.0.0.1:9/v2/gone"\n'
    )
    app = make_app(config_path, demo=False)
    async with app.run_test(size=(120, 36)) as pilot:
        await set_payload(pilot, app, {"x": 1})
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: any("refused" in str(n.message) for n in app._notifications),
            what="the message",
        )
        assert real_jobs(app) == []
        state = app.query_one(EndpointSidebar).states["gone"]
        await wait_until(pilot, lambda: state.error is not None, what="the health mark")


async def test_broken_config_is_reported_and_left_alone(tmp_path: Path) -> None:
    config_path = tmp_path / "config.toml"
    config_path.write_text('[[endpoints]]\nname = "x"\nurl = "https://a\n')
    before = config_path.read_bytes()
    app = make_app(config_path)
    async with app.run_test(size=(120, 36)) as pilot:
        await pilot.pause()
        messages = [str(n.message) for n in app._notifications]
        assert any(str(config_path) in m and "line" in m for m in messages)
    assert config_path.read_bytes() == before


async def test_highlighted_editor_renders(tmp_path: Path) -> None:
    """tree-sitter JSON highlighting renders (0.26.x segfaulted here)."""
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        area = app.query_one(PayloadEditor).text_area
        assert area.language == "json"
        assert area.is_syntax_aware
        await pilot.pause()
        styled = [
            seg
            for strip in area.render_lines(area.region.reset_offset)
            for seg in strip
            if seg.style and seg.style.color
        ]
        colours = {seg.style.color for seg in styled if seg.style}
        assert len(colours) >= 2  # keys and values in different colours


async def test_streamer_chunks_show_live_in_the_detail(tmp_path: Path) -> None:
    from textual.widgets import Log

    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "streamer")
        await set_payload(pilot, app, {"count": 12})
        await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: bool(real_jobs(app)), what="the submission")
        table = app.query_one(JobTable)
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        job = real_jobs(app)[0]
        await wait_until(
            pilot, lambda: len(job.stream_chunks) == 12, timeout=20, what="twelve chunks"
        )
        assert [c["index"] for c in job.stream_chunks] == list(range(12))
        log = app.screen.query_one("#detail-stream", Log)
        await wait_until(pilot, lambda: any("stream ended" in line for line in log.lines))
        assert sum('"index"' in line for line in log.lines) == 12


async def test_submission_options_are_sent(tmp_path: Path) -> None:
    from textual.widgets import Input

    from tui.ui.screens.options import OptionsScreen

    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "sleepy")
        await pilot.press("ctrl+o")
        await wait_until(pilot, lambda: isinstance(app.screen, OptionsScreen))
        app.screen.query_one("#opt-ttl", Input).value = "2"  # too short: refused, said why
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, OptionsScreen)
        assert "10 s" in str(app.screen.query_one("#problem-ttl").render())
        app.screen.query_one("#opt-ttl", Input).value = "10"
        app.screen.query_one("#opt-execution_timeout", Input).value = "5"
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: not isinstance(app.screen, OptionsScreen))
        target = str(app.query_one("#payload-target").render())
        assert "timeout 5 s" in target and "ttl 10 s" in target
        # A 60 s job under a 5 s executionTimeout ends TIMED_OUT on the server.
        await set_payload(pilot, app, {"seconds": 60})
        await pilot.press("ctrl+r")
        await wait_until(
            pilot,
            lambda: real_jobs(app) and real_jobs(app)[0].is_final,
            timeout=30,
            what="the timeout",
        )
        assert real_jobs(app)[0].status == "TIMED_OUT"


async def test_saved_payloads_per_endpoint(tmp_path: Path) -> None:
    from textual.widgets import Input, OptionList

    from tui.ui.screens.payloads import PickPayloadScreen, SavePayloadScreen

    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        await set_payload(pilot, app, {"saved": "yes"})
        await pilot.press("f6")
        await wait_until(pilot, lambda: isinstance(app.screen, SavePayloadScreen))
        app.screen.query_one(Input).value = "my favourite"
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, SavePayloadScreen))
        await set_payload(pilot, app, {"other": 1})
        await pilot.press("f7")
        await wait_until(pilot, lambda: isinstance(app.screen, PickPayloadScreen))
        app.screen.query_one(OptionList).focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, PickPayloadScreen))
        assert json.loads(app.query_one(PayloadEditor).text) == {"saved": "yes"}
    saved = tomllib.loads((tmp_path / "payloads.toml").read_text())
    assert json.loads(saved["echo"]["my favourite"]) == {"saved": "yes"}
    assert (tmp_path / "payloads.toml").stat().st_mode & 0o777 == 0o600


async def test_health_view_shows_counts_and_trends(tmp_path: Path) -> None:
    from textual.widgets import Sparkline

    from tui.ui.screens.health import HealthScreen

    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "sleepy")
        for _ in range(3):
            await set_payload(pilot, app, {"seconds": 30})
            await pilot.press("ctrl+r")
        await wait_until(pilot, lambda: len(real_jobs(app)) == 3)
        app.query_one(EndpointSidebar).focus()
        await pilot.press("h")
        await wait_until(pilot, lambda: isinstance(app.screen, HealthScreen))
        screen = app.screen
        await wait_until(
            pilot,
            lambda: str(screen.query_one("#count-running").render()) == "2",
            what="two busy workers",
        )
        assert str(screen.query_one("#count-inQueue").render()) == "1"
        assert len(screen.query_one("#trend-running", Sparkline).data or []) >= 1


def test_health_diagnosis_says_why_jobs_wait() -> None:
    from tui.api.models import Health

    failing = Health.from_answer({"jobs": {"inQueue": 4}, "workers": {"unhealthy": 3}})
    assert "workers keep failing" in (failing.diagnosis() or "")
    assert "not for lack of capacity" in (failing.diagnosis() or "")
    throttled = Health.from_answer({"jobs": {"inQueue": 2}, "workers": {"throttled": 2}})
    assert "throttled" in (throttled.diagnosis() or "")
    fine = Health.from_answer({"jobs": {"inQueue": 2}, "workers": {"running": 2}})
    assert fine.diagnosis() is None


async def test_columns_sort_on_header_click(tmp_path: Path) -> None:
    app = make_app(tmp_path / "config.toml", demo=False)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        for i, (status, delay) in enumerate([("FAILED", 30), ("COMPLETED", 10), ("IN_QUEUE", 20)]):
            job = Job("e", f"job-{i}", submitted_at=1000.0 + i)
            job.apply({"status": status, "delayTime": delay})
            table.add_job(job)
        await pilot.pause()
        order = lambda: [str(table.get_row_at(i)[1]) for i in range(table.row_count)]  # noqa: E731
        assert order() == ["job-2", "job-1", "job-0"]  # newest first
        await pilot.click(JobTable, offset=(47, 1))  # the "Delay" header (inside the border)
        await pilot.pause()
        assert order() == ["job-1", "job-2", "job-0"]
        await pilot.click(JobTable, offset=(47, 1))
        await pilot.pause()
        assert order() == ["job-0", "job-2", "job-1"]
        assert "by delay" in str(table.border_title)


async def test_a_burst_of_jobs_lands_newest_first_with_live_counts(tmp_path: Path) -> None:
    """500 jobs added in one go (a batch submitted): newest on top, the row under the
    cursor stays under it, and the sidebar counts the unfinished ones as they end."""
    from tui.ui.messages import JobAdded

    app = make_app(tmp_path / "config.toml", demo=False)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        for i in range(5):
            job = Job("e", f"old-{i}", submitted_at=1000.0 + i)
            job.apply({"status": "COMPLETED"})
            table.add_job(job)
        await pilot.pause()
        table.focus()
        table.move_cursor(row=2)  # old-2
        await pilot.pause()
        for i in range(500):
            job = Job("e", f"new-{i}", submitted_at=2000.0 + i)
            job.apply({"status": "IN_QUEUE"})
            table.add_job(job)
        await pilot.pause()
        order = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert order[:2] == ["new-499", "new-498"] and order[-5:] == [
            f"old-{i}" for i in (4, 3, 2, 1, 0)
        ]
        assert table.selected_job is not None and table.selected_job.id == "old-2"
        assert table.active_counts() == {"e": 500}
        for job in list(table.jobs.values())[5:105]:
            job.apply({"status": "COMPLETED"})
            table.update_job(job, {"status"})
        assert table.active_counts() == {"e": 400}
        app.post_message(JobAdded(Job("e", "newest", submitted_at=3000.0)))
        await wait_until(pilot, lambda: str(table.get_row_at(0)[1]) == "newest")
        assert table.selected_job is not None and table.selected_job.id == "newest"
        assert table.active_counts() == {"e": 401}


async def test_new_rows_and_a_resort_in_the_same_moment(tmp_path: Path) -> None:
    """A job added just as the user sorts, filters, or removes and re-adds it: the table
    ends in the order asked for, with the cursor on the same job, and nothing breaks."""
    app = make_app(tmp_path / "config.toml", demo=False)
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        old = []
        for i in range(6):
            job = Job("e", f"old-{i}", submitted_at=1000.0 + i)
            job.apply({"status": "COMPLETED"})
            old.append(job)
        table.load_jobs(old)
        await pilot.pause()
        table.move_cursor(row=2)
        await pilot.pause()
        selected = table.selected_job
        table.add_job(Job("e", "new-1", submitted_at=2000.0))
        table.set_filter("")  # the filter cleared in the same moment
        await pilot.pause()
        order = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert order[0] == "new-1" and table.selected_job is selected
        fresh = Job("e", "new-2", submitted_at=3000.0)
        fresh.apply({"status": "IN_QUEUE"})
        table.add_job(fresh)
        table.action_sort("status")
        await pilot.pause()
        statuses = [table.get_row_at(i)[0].plain.split()[1] for i in range(table.row_count)]
        assert statuses == sorted(statuses)
        table.action_sort("age")
        again = Job("e", "again", submitted_at=4000.0)
        table.add_job(again)
        table.remove_job(again)
        table.add_job(again)
        await pilot.pause()
        order = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert order[:2] == ["again", "new-2"] and len(order) == len(set(order)) == 9


async def test_choosing_endpoints_quickly_keeps_every_draft(tmp_path: Path) -> None:
    """Through the load-balanced endpoint and on before its panel has loaded: no draft is
    wiped, and the panel shows the endpoint chosen last."""
    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        api = app.endpoint_named("api")
        echo = app.endpoint_named("echo")
        assert api is not None and echo is not None
        app.drafts["api"] = '{"kept": true}'
        app.select_endpoint(api)
        app.select_endpoint(echo)
        app.select_endpoint(api)
        await wait_until(
            pilot,
            lambda: any(p.endpoint is api for p in app.query(RoutePanel)),
            what="the route panel",
        )
        assert app.query_one(RoutePanel).body_text == '{"kept": true}'
        app.select_endpoint(echo)
        await pilot.pause()
        assert app.drafts["api"] == '{"kept": true}'


async def test_export_the_request_without_the_key(tmp_path: Path) -> None:
    from textual.widgets import TextArea

    from tui.ui.screens.export import ExportScreen

    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        await set_payload(pilot, app, {"prompt": "it's $HOME"})
        await pilot.press("f8")
        await wait_until(pilot, lambda: isinstance(app.screen, ExportScreen))
        curl = app.screen.query_one("#text-curl", TextArea).text
        assert curl.startswith("curl") and "$RUNPOD_API_KEY" in curl
        assert app._demo_key not in curl  # the sandbox's key never leaves the app
        assert f"{app.current.url}/run" in curl  # type: ignore[union-attr]
        python = app.screen.query_one("#text-python", TextArea).text
        assert "runpod" in python and app._demo_key not in python


async def test_import_a_pasted_curl(tmp_path: Path) -> None:
    from textual.widgets import TextArea

    from tui.ui.screens.export import ImportCurlScreen

    app = make_app(tmp_path / "config.toml")
    async with app.run_test(size=(120, 36)) as pilot:
        await select(pilot, app, "echo")
        base = app.endpoint_named("api").url  # type: ignore[union-attr]
        await pilot.press("f9")
        await wait_until(pilot, lambda: isinstance(app.screen, ImportCurlScreen))
        app.screen.query_one(TextArea).load_text(
            f"curl -X POST {base}/echo \\\n  -H 'Authorization: Bearer sk-PASTED' \\\n"
            "  -H 'Content-Type: application/json' \\\n  -d '{\"text\": \"imported\"}'"
        )
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.current is not None and app.current.name == "api")
        panel = app.query_one(RoutePanel)
        assert panel.method == "POST" and panel.path == "/echo"
        assert json.loads(panel.body_text) == {"text": "imported"}
        assert "sk-PASTED" not in panel.body_text
