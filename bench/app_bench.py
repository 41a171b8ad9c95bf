"""The app itself, headless (``App.run_test``, 120x36), in its own process.

``--mode table``: 10,000 jobs in the table, 1,000 of them really queued or running on the
sandbox at ``--base`` and polled by the app's own poller; then ``--presses`` cursor moves.
Key-to-screen latency is the time from handing a key event to the app's driver (as a
terminal's input thread does) to the app writing the first frame in which the table's cursor
has moved. The headless driver writes nothing, so frames are still turned into terminal output
(``render_segments``) and thrown away, to cost what a terminal's frames cost. Event-loop lag is
how late a 20 ms ``asyncio.sleep`` wakes up, sampled all through the key presses.

``--mode big``: a finished job with a ~20 MB JSON output in the table; the time from asking for
its detail to the first frame showing it, until the app is responsive again, and the growth of
the process's RSS (peak, via ``VmHWM`` after resetting it) over that open.

Prints one JSON object. The API key comes from ``$BENCH_SANDBOX_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rich.console import RenderableType
from textual import events
from textual._compositor import CompositorUpdate
from textual.screen import Screen

from tui.api.models import Endpoint, EndpointKind, Job
from tui.config import Config
from tui.ui.app import FlashApp
from tui.ui.messages import JobAdded
from tui.ui.widgets.job_table import JobTable

SIZE = (120, 36)
#: A key press with no frame showing it after this long counts as this long (a lower bound).
KEY_TIMEOUT_S = 5.0


def log(text: str) -> None:
    print(f"[app_bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def proc_status(field: str) -> float:
    """A ``/proc/self/status`` memory figure, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] if ordered else float("nan")


class BenchApp(FlashApp):
    """FlashApp with a hook on every frame it writes."""

    # Textual reads CSS_PATH relative to the subclass's file: point at the app's own.
    CSS_PATH = str(Path(sys.modules[FlashApp.__module__].__file__ or "").parent / "app.tcss")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.frames = 0
        self.on_frame: Callable[[float], None] | None = None

    def _display(self, screen: Screen[Any], renderable: RenderableType | None) -> None:
        if renderable is not None and not self._batch_count:
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(self.console)  # what a real driver would write
            self.frames += 1
            if self.on_frame is not None:
                self.on_frame(time.perf_counter())
        super()._display(screen, renderable)


class LagMonitor:
    """How late the event loop runs a 20 ms sleep: the lag every handler sees."""

    def __init__(self, period: float = 0.02) -> None:
        self.period = period
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.period)
            self.lags.append(time.perf_counter() - started - self.period)

    def start(self) -> None:
        self.lags = []
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)


def make_app(tmp: Path, endpoints: list[Endpoint]) -> BenchApp:
    os.environ["XDG_CONFIG_HOME"] = str(tmp)
    os.environ["XDG_DATA_HOME"] = str(tmp)
    config = Config(path=tmp / "config.toml", endpoints=endpoints)
    return BenchApp(config, history_path=tmp / "history.db")


def finished_jobs(count: int, endpoint: str, now: float) -> list[Job]:
    """Finished jobs as the history would hold them: a day's worth, newest last."""
    rng = random.Random(7)
    jobs = []
    for i in range(count):
        submitted = now - 86_400 + i * 86_400 / max(count, 1)
        job = Job(endpoint, f"done-{i:06d}-{rng.randrange(16**8):08x}-u1", submitted_at=submitted)
        job.apply(
            {
                "id": job.id,
                "status": "COMPLETED" if i % 10 else "FAILED",
                "delayTime": rng.randrange(50, 5000),
                "executionTime": rng.randrange(100, 60_000),
                "workerId": f"worker-{i % 40:02d}",
                "output": {"ok": True, "i": i},
            },
            now=submitted + 30,
        )
        jobs.append(job)
    return jobs


async def responsive(timeout: float = 300) -> float:
    """Wait until the app keeps up again: a 10 ms sleep wakes on time three times running.
    Returns the seconds waited (``Pilot.pause`` gives up after 30 s of a busy app)."""
    started = time.perf_counter()
    on_time = 0
    while on_time < 3 and time.perf_counter() - started < timeout:
        t = time.perf_counter()
        await asyncio.sleep(0.01)
        on_time = on_time + 1 if time.perf_counter() - t < 0.03 else 0
    return time.perf_counter() - started


async def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


# -- 10,000 jobs -----------------------------------------------------------------------------


async def table_bench(args: argparse.Namespace) -> dict[str, Any]:
    key = os.environ["BENCH_SANDBOX_KEY"]
    endpoint = Endpoint("sleepy", EndpointKind.QUEUE, f"{args.base}/v2/sleepy", api_key=key)
    result: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), [endpoint])
        async with app.run_test(size=SIZE):
            await wait_for(lambda: app._poller is not None, 20, "the poller")
            table = app.query_one(JobTable)
            rss0 = proc_status("VmRSS")

            started = time.perf_counter()
            table.load_jobs(finished_jobs(args.jobs - args.active, "sleepy", time.time()))
            await responsive()
            result["load_finished_s"] = time.perf_counter() - started
            log(f"{len(table.jobs)} finished jobs loaded in {result['load_finished_s']:.1f} s")

            # The active ones: really submitted, added one by one as the app adds a new job.
            client = app.client_for("sleepy")
            assert client is not None
            rng = random.Random(11)
            gate = asyncio.Semaphore(16)

            async def submit(i: int) -> Job:
                job_input = {"seconds": round(rng.uniform(20, 120), 1), "i": i}
                async with gate:
                    answer = await client.submit(job_input)
                job = Job("sleepy", answer["id"], input=job_input)
                job.apply(answer)
                return job

            active = await asyncio.gather(*(submit(i) for i in range(args.active)))
            result["ids"] = [job.id for job in active]
            started = time.perf_counter()
            for job in active:
                app.post_message(JobAdded(job))
            await wait_for(lambda: len(table.jobs) >= args.jobs, 300, "every job in the table")
            await responsive()
            result["add_active_s"] = time.perf_counter() - started
            log(f"{args.active} active jobs added in {result['add_active_s']:.1f} s")
            # Let polling settle into its steady state (long-polls out, first answers in).
            await asyncio.sleep(args.settle)
            table.focus()
            table.move_cursor(row=0)
            result["settle_s"] = await responsive(timeout=30)

            lag = LagMonitor()
            lag.start()
            latencies: list[float] = []
            seen = asyncio.Event()
            target = {"row": 0, "at": 0.0}

            def on_frame(now: float) -> None:
                if table.cursor_row == target["row"] and not seen.is_set():
                    target["at"] = now
                    seen.set()

            app.on_frame = on_frame
            driver = app._driver
            assert driver is not None
            polled_before = dict(app._poller.requests) if app._poller else {}
            profile_to = os.environ.get("BENCH_PROFILE")  # a cProfile of the key phase
            profiler = None
            if profile_to:
                import cProfile

                profiler = cProfile.Profile()
                profiler.enable()
            timeouts = 0
            t_keys = time.perf_counter()
            for i in range(args.presses):
                if time.perf_counter() - t_keys > args.max_key_s:
                    break
                seen.clear()
                target["row"] = table.cursor_row + 1
                sent = time.perf_counter()
                driver.send_message(events.Key("down", None))
                try:
                    await asyncio.wait_for(seen.wait(), KEY_TIMEOUT_S)
                    latencies.append(target["at"] - sent)
                except TimeoutError:
                    latencies.append(KEY_TIMEOUT_S)  # a lower bound
                    timeouts += 1
                await asyncio.sleep(0.03 + 0.04 * (i % 3))  # a person holding or tapping
            keys_s = time.perf_counter() - t_keys
            if profiler is not None and profile_to:
                profiler.disable()
                profiler.dump_stats(profile_to)
            app.on_frame = None
            await lag.stop()
            polled_after = dict(app._poller.requests) if app._poller else {}

            rss = proc_status("VmRSS")
            active_left = sum(1 for j in table.jobs.values() if not j.is_final)
            result.update(
                {
                    "tracked_jobs": len(table.jobs),
                    "active_jobs": active_left,
                    "key_latency_p50_ms": pct(latencies, 0.5) * 1000,
                    "key_latency_p95_ms": pct(latencies, 0.95) * 1000,
                    "key_latency_max_ms": max(latencies) * 1000,
                    "presses": len(latencies),
                    "key_timeouts": timeouts,
                    "event_loop_lag_p50_ms": pct(lag.lags, 0.5) * 1000,
                    "event_loop_lag_p95_ms": pct(lag.lags, 0.95) * 1000,
                    "event_loop_lag_max_ms": max(lag.lags) * 1000 if lag.lags else None,
                    "polls_per_s_during_keys": (
                        sum(polled_after.values()) - sum(polled_before.values())
                    )
                    / keys_s,
                    "rss_mb": rss,
                    "rss_growth_mb": rss - rss0,
                    "peak_rss_mb": proc_status("VmHWM"),
                }
            )
            await app.action_quit()
    return result


# -- a 20 MB output ----------------------------------------------------------------------------


def big_output(target_bytes: int) -> Any:
    """A JSON document of about ``target_bytes``: records of text, numbers and lists, as a
    model's batch output might be."""
    rng = random.Random(3)
    words = [
        "alpha",
        "beta",
        "gamma",
        "delta",
        "epsilon",
        "zeta",
        "eta",
        "theta",
        "iota",
        "kappa",
        "lambda",
        "mu",
    ]
    record_size = len(json.dumps(_record(0, rng, words)))
    items = [_record(i, rng, words) for i in range(target_bytes // record_size)]
    return {"model": "bench", "items": items}


def _record(i: int, rng: random.Random, words: list[str]) -> dict[str, Any]:
    return {
        "index": i,
        "text": " ".join(rng.choice(words) for _ in range(12)),
        "score": round(rng.random(), 6),
        "tokens": [rng.randrange(50_000) for _ in range(8)],
    }


def watchdog(cap: float, result: dict[str, Any], rss0: float) -> None:
    """The open runs in one synchronous call that nothing can interrupt: past ``cap``
    seconds, report what is known from another thread, and end the process."""
    import threading

    def give_up() -> None:
        time.sleep(cap)
        if "big_output_settled_s" in result:
            return  # it opened: the normal path reports
        result.update(
            {
                "big_output_open_s": None,
                "gave_up_after_s": cap,
                "big_output_rss_mb": max(proc_status("VmHWM"), proc_status("VmRSS")) - rss0,
            }
        )
        print(json.dumps(result), flush=True)
        os._exit(0)

    threading.Thread(target=give_up, daemon=True).start()


async def big_bench(args: argparse.Namespace) -> dict[str, Any]:
    output = big_output(args.size_mb * 1024 * 1024)
    size = len(json.dumps(output))
    job = Job("sleepy", "big-output-job-u1", submitted_at=time.time() - 60)
    job.apply({"id": job.id, "status": "COMPLETED", "executionTime": 42_000, "output": output})
    del output
    result: dict[str, Any] = {"output_bytes": size}
    with tempfile.TemporaryDirectory() as tmp:
        app = make_app(Path(tmp), [])
        async with app.run_test(size=SIZE) as pilot:
            table = app.query_one(JobTable)
            table.load_jobs([job])
            table.focus()
            table.move_cursor(row=0)
            await pilot.pause()
            await asyncio.sleep(0.5)
            from tui.ui.screens.job_detail import JobDetailScreen

            shown = asyncio.Event()
            at = {"t": 0.0}

            def on_frame(now: float) -> None:
                if isinstance(app.screen, JobDetailScreen) and not shown.is_set():
                    at["t"] = now
                    shown.set()

            app.on_frame = on_frame
            rss0 = proc_status("VmRSS")
            peak_ok = reset_peak_rss()
            started = time.perf_counter()
            watchdog(args.cap, result, rss0)
            app.action_open_job()
            await asyncio.wait_for(shown.wait(), 120)
            result["big_output_open_s"] = at["t"] - started
            await responsive()
            result["big_output_settled_s"] = time.perf_counter() - started
            rss1 = proc_status("VmRSS")
            peak = proc_status("VmHWM") if peak_ok else rss1
            result["big_output_rss_mb"] = max(peak, rss1) - rss0
            result["big_output_rss_after_mb"] = rss1 - rss0
            result["peak_reset"] = peak_ok
            shown_text = app.screen.query_one("#detail-output").text  # type: ignore[attr-defined]
            result["shown_chars"] = len(shown_text)
            app.on_frame = None
            await app.action_quit()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("table", "big"), required=True)
    parser.add_argument("--base", default="", help="the sandbox (table mode)")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--active", type=int, default=1_000)
    parser.add_argument("--presses", type=int, default=200)
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before the keys")
    parser.add_argument("--size-mb", type=int, default=20)
    parser.add_argument("--max-key-s", type=float, default=60.0, help="cap on the key phase")
    parser.add_argument("--cap", type=float, default=60.0, help="give up opening after, s")
    args = parser.parse_args()
    work = table_bench(args) if args.mode == "table" else big_bench(args)
    print(json.dumps(asyncio.run(work)))


if __name__ == "__main__":
    main()
