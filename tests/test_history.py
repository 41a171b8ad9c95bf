"""Nothing lost: the SQLite history, kill -9 at any moment, resuming, retention, secrets."""

from __future__ import annotations

import base64
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from textual.widgets import TextArea

from tests.apphelpers import wait_until
from tui.api.models import Job
from tui.config import load_config
from tui.sandbox import SandboxConfig, start_sandbox
from tui.store import SUBMITTING, JobStore, Retention
from tui.ui.app import FlashApp
from tui.ui.screens.job_detail import JobDetailScreen
from tui.ui.widgets.job_table import JobTable

KEY = "sk-history-test-4f9a2c7e1b"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def sandbox() -> Iterator[str]:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, time_scale=0.5)) as sb:
        yield sb.base_url


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "RUNPOD_API_KEY": KEY,
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("FLASH_TUI_CONFIG", raising=False)
    return {**os.environ, **values}


def history_file(env: dict[str, str]) -> Path:
    return Path(env["XDG_DATA_HOME"]) / "flash-tui" / "history.sqlite3"


def cli(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def jobs_json(env: dict[str, str]) -> list[dict[str, object]]:
    done = run_cli(env, "jobs", "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


# --- the store --------------------------------------------------------------------------


def test_store_round_trip_keeps_everything_but_loads_outputs_lazily(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "h.sqlite3")
    pending = store.add_pending("echo", "http://x/v2/echo", "queue", {"a": 1}, False)
    assert [j.status for j in store.jobs()] == [SUBMITTING]
    job = Job("echo", "job-1", input={"a": 1})
    job.apply(
        {
            "id": "job-1",
            "status": "COMPLETED",
            "output": {"big": "x" * 1000},
            "delayTime": 5,
            "executionTime": 9,
            "workerId": "w1",
            "extra": [1],
        }
    )
    store.resolve_pending(pending, job)
    (listed,) = store.jobs()
    assert listed.id == "job-1" and listed.status == "COMPLETED"
    assert listed.endpoint_url == "http://x/v2/echo" and listed.endpoint_kind == "queue"
    assert listed.raw["extra"] == [1] and listed.input == {"a": 1}
    assert listed.output is None and listed.output_pending  # not loaded with the list
    # A status update of a job whose output is not loaded must not erase the output.
    listed.apply({"note": "seen again"})
    store.save(listed)
    assert store.load_output("echo", "job-1") == {"big": "x" * 1000}
    assert (tmp_path / "h.sqlite3").stat().st_mode & 0o777 == 0o600
    store.close()


def test_store_failed_submissions(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "h.sqlite3")
    never = store.add_pending("e", "u", "queue", {"a": 1}, False)
    maybe = store.add_pending("e", "u", "queue", {"a": 2}, True)
    store.fail_pending("e", never, "connection refused", unknown=False)
    store.fail_pending("e", maybe, "no answer", unknown=True)
    (kept,) = store.jobs()
    assert kept.id == maybe and kept.status == "UNKNOWN" and kept.is_final
    assert kept.note == "no answer"


def test_retention_keeps_newest_and_unfinished(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "h.sqlite3")
    now = time.time()
    for i in range(10):
        job = Job("e", f"j{i}", submitted_at=now - 100 * 86400 + i)
        job.apply({"status": "COMPLETED" if i < 9 else "IN_PROGRESS"})
        store.save(job)
    for i in range(10, 20):
        job = Job("e", f"j{i}", submitted_at=now - i)
        job.apply({"status": "COMPLETED"})
        store.save(job)
    store.prune(Retention(keep=5, max_age_days=30), now=now)
    left = [j.id for j in store.jobs()]
    # Old finished jobs are gone; then only the newest five remain.
    assert left == ["j10", "j11", "j12", "j13", "j14"]


# --- kill -9 ----------------------------------------------------------------------------


def test_kill_9_while_waiting_keeps_the_job_and_the_app_finishes_it(
    sandbox: str, env: dict[str, str], tmp_path: Path
) -> None:
    proc = cli(env, "run", f"{sandbox}/v2/sleepy", "--input", '{"seconds": 3}', "--wait")
    assert proc.stderr is not None
    line = proc.stderr.readline()  # "job ID is IN_QUEUE; waiting (...)"
    assert "waiting" in line, line
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (row,) = jobs_json(env)
    assert str(row["id"]) in line
    assert row["status"] in ("IN_QUEUE", "IN_PROGRESS")

    async def resume() -> None:
        app = FlashApp(load_config(tmp_path / "config.toml"))
        async with app.run_test(size=(120, 36)) as pilot:
            table = app.query_one(JobTable)
            await wait_until(pilot, lambda: bool(table.jobs), what="the history")
            (job,) = table.jobs.values()
            assert job.id == row["id"]
            await wait_until(
                pilot, lambda: job.status == "COMPLETED", timeout=20, what="the resumed job"
            )

    import asyncio

    asyncio.run(resume())
    (row,) = jobs_json(env)
    assert row["status"] == "COMPLETED"


def test_kill_9_before_the_answer_leaves_an_unknown_outcome(
    tmp_path: Path, env: dict[str, str]
) -> None:
    with start_sandbox(SandboxConfig(port=0, api_key=KEY, latency_ms=5000)) as slow:
        proc = cli(env, "run", f"{slow.base_url}/v2/echo", "--input", '{"a": 1}')
        # Wait until the submission is on record (written before it is sent), then kill.
        db = history_file(env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if db.exists():
                with sqlite3.connect(db) as conn:
                    if conn.execute("SELECT count(*) FROM jobs").fetchone()[0]:
                        break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    (row,) = jobs_json(env)
    assert row["status"] == SUBMITTING and row["input"] == {"a": 1}

    async def reopen() -> None:
        app = FlashApp(load_config(tmp_path / "config.toml"))
        async with app.run_test(size=(120, 36)) as pilot:
            table = app.query_one(JobTable)
            await wait_until(pilot, lambda: bool(table.jobs), what="the history")
            (job,) = table.jobs.values()
            assert job.status == "UNKNOWN" and "may or may not" in job.note

    import asyncio

    asyncio.run(reopen())
    (row,) = jobs_json(env)
    assert row["status"] == "UNKNOWN"


# --- the app with its history -----------------------------------------------------------


async def test_app_writes_jobs_and_opens_big_outputs_lazily(
    sandbox: str, env: dict[str, str], tmp_path: Path
) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'[[endpoints]]\nname = "echo"\nkind = "queue"\nurl = "{sandbox}/v2/echo"\n')
    # A 6 MB base64 PNG-looking string: collapsed with its size, never put whole on screen.
    blob = base64.b64encode(b"\x89PNG\r\n\x1a\n" + os.urandom(4_500_000)).decode()
    app = FlashApp(load_config(config))
    async with app.run_test(size=(120, 36)) as pilot:
        await wait_until(pilot, lambda: app.store is not None)
        app.submit_job(app.endpoint_named("echo"), {"image": blob}, False)  # type: ignore[arg-type]
        table = app.query_one(JobTable)
        await wait_until(
            pilot,
            lambda: any(j.status == "COMPLETED" for j in table.jobs.values()),
            timeout=30,
            what="the big echo",
        )
    stored = jobs_json(env)
    assert stored[0]["status"] == "COMPLETED" and int(stored[0]["output_bytes"]) > 6_000_000

    app = FlashApp(load_config(config))
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        await wait_until(pilot, lambda: bool(table.jobs), what="the history")
        (job,) = table.jobs.values()
        assert job.output is None and job.output_pending
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        await wait_until(pilot, lambda: not job.output_pending, what="the output to load")
        await pilot.pause()
        shown = app.screen.query_one("#detail-output").text  # type: ignore[attr-defined]
        assert "base64 PNG image" in shown and "MB collapsed" in shown
        assert len(shown) < 1000
        assert job.output == {"image": blob}


async def test_a_huge_structured_output_shows_its_head_and_saves_whole(
    env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """4 MB of small records: no string to collapse, so the detail lays out only the head,
    plainly (no wrap, no colours), says so, and ``s`` still saves every record."""
    records = [{"i": i, "label": f"record {i}", "score": i / 7} for i in range(60_000)]
    store = JobStore(history_file(env))
    job = Job("echo", "job-huge", submitted_at=time.time() - 5)
    job.apply({"status": "COMPLETED", "output": {"records": records}})
    store.save(job)
    store.close()
    monkeypatch.chdir(tmp_path)
    app = FlashApp(load_config(tmp_path / "config.toml"))
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        await wait_until(pilot, lambda: bool(table.jobs), what="the history")
        table.focus()
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, JobDetailScreen))
        (loaded,) = table.jobs.values()
        await wait_until(pilot, lambda: not loaded.output_pending, what="the output to load")
        await pilot.pause()
        area = app.screen.query_one("#detail-output", TextArea)
        assert '"label": "record 0"' in area.text
        assert area.text.rstrip().endswith("s saves the whole output")
        assert len(area.text) < 300_000
        assert not area.soft_wrap and area.language is None
        await pilot.press("s")
        await pilot.pause()
    (saved,) = tmp_path.glob("flash-tui-job-huge*-output.json")
    assert json.loads(saved.read_text()) == {"records": records}


async def test_delete_and_filter_jobs(sandbox: str, env: dict[str, str], tmp_path: Path) -> None:
    store = JobStore(history_file(env))
    for i, status in enumerate(["COMPLETED", "FAILED", "COMPLETED"]):
        job = Job("echo", f"job-{i}", submitted_at=time.time() - 10 + i)
        job.apply({"status": status})
        store.save(job)
    store.close()
    app = FlashApp(load_config(tmp_path / "config.toml"))
    async with app.run_test(size=(120, 36)) as pilot:
        table = app.query_one(JobTable)
        await wait_until(pilot, lambda: len(table.jobs) == 3, what="the history")
        assert "✓2" in str(table.border_title) and "✗1" in str(table.border_title)
        table.focus()
        await pilot.press("slash")
        await pilot.press(*"failed")
        await pilot.pause()
        assert table.row_count == 1 and table.selected_job is not None
        assert table.selected_job.id == "job-1"
        await pilot.press("enter")  # keep the filter, back to the table
        await pilot.press("delete")
        await pilot.press("y")
        await pilot.pause()
        assert set(j.id for j in table.jobs.values()) == {"job-0", "job-2"}
        await pilot.press("escape")
        await pilot.pause()
        assert table.row_count == 2
    assert sorted(str(r["id"]) for r in jobs_json(env)) == ["job-0", "job-2"]


# --- secrets ----------------------------------------------------------------------------


def test_the_key_is_nowhere_on_disk(sandbox: str, env: dict[str, str], tmp_path: Path) -> None:
    """After the CLI and the app have used the key, no file they wrote contains it."""
    done = run_cli(env, "run", f"{sandbox}/v2/echo", "--input", '{"k": 1}', "--sync")
    assert done.returncode == 0, done.stderr
    assert KEY not in done.stdout and KEY not in done.stderr

    import asyncio

    config = tmp_path / "config.toml"

    async def use_app() -> None:
        app = FlashApp(load_config(config))
        async with app.run_test(size=(120, 36)) as pilot:
            await pilot.press("ctrl+n")
            await pilot.press(*"mine")
            app.screen.query_one("#form-url").value = f"{sandbox}/v2/echo"  # type: ignore[attr-defined]
            await pilot.press("ctrl+s")
            await pilot.pause()
            await pilot.press("ctrl+r")
            table = app.query_one(JobTable)
            await wait_until(
                pilot, lambda: any(j.status == "COMPLETED" for j in table.jobs.values())
            )
            svg = app.export_screenshot()
            assert KEY not in svg
            assert KEY[:8] not in str(app.sub_title)

    asyncio.run(use_app())
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "history.sqlite3" for p in written)
    assert config in written
    for path in written:
        assert KEY.encode() not in path.read_bytes(), path
    for path in (ROOT / "screenshots").glob("*.svg"):
        assert KEY not in path.read_text()
