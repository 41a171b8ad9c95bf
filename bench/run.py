"""flash-tui's benchmarks, side by side in one run, against the sandbox on loopback.

    python bench/run.py            # the full run (about 10 minutes on 2 cores)
    python bench/run.py --quick    # a smaller one (about 2 minutes)
    python bench/run.py --json     # one JSON object on stdout instead of the table

Measures tracking N jobs to their end (flash-tui's poller, the official SDK, a naive loop),
the app with 10,000 jobs in its table, start-up, a 20 MB output in the job detail,
load-balanced calls against bare httpx, and idle CPU; writes ``bench/RESULTS.md``. Every
measured thing runs in its own process, and the sandbox in another one, so CPU and memory
figures are each client's own. Nothing leaves 127.0.0.1. Progress goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
sys.path.insert(0, str(ROOT))

from bench.startup import READY_MARKS  # noqa: E402
from bench.startup import once as startup_once  # noqa: E402

PY = sys.executable
WORKERS = 100  # the sandbox endpoint's workers: jobs it runs at once
DURATIONS = (0.1, 4.0)  # job lengths, log-uniform, seconds
CLIENTS = ("flash", "sdk", "naive")
CLIENT_NAMES = {
    "flash": "flash-tui StatusPoller",
    "sdk": "runpod SDK job.output()",
    "naive": "naive 1 s loop",
}


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    presses: int
    startup_runs: int
    idle_s: float
    big_cap_s: float
    key_cap_s: float
    lb_calls: int


FULL = Plan((1000, 10_000), 200, 10, 20.0, 45.0, 45.0, 1000)
QUICK = Plan((1000,), 60, 3, 10.0, 20.0, 20.0, 1000)

TARGETS = {
    "staleness_p95_s": ("<=", 1.0, "staleness p95 (s)"),
    "status_requests_per_job": ("<=", 1.2, "status requests per job (status-sync)"),
    "key_latency_p95_ms": ("<=", 100.0, "key latency p95, 10,000 jobs (ms)"),
    "app_rss_mb": ("<=", 300.0, "app RSS, 10,000 jobs (MB)"),
    "startup_s": ("<=", 0.45, "start-up to first usable screen (s)"),
    "idle_cpu_percent": ("<=", 1.0, "idle CPU (% of a core)"),
    "big_output_open_s": ("<=", 1.0, "20 MB output open (s)"),
    "big_output_rss_mb": ("<=", 150.0, "20 MB output RSS growth (MB)"),
    "lb_overhead_ratio": ("<=", 1.2, "load-balanced call time vs bare httpx"),
}


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


# -- the machine ---------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions: dict[str, str | None] = {}
    for package in ("textual", "httpx", "httpcore", "anyio", "runpod", "aiohttp", "uvicorn"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    try:
        sniffio: str | None = metadata.version("sniffio")
    except metadata.PackageNotFoundError:
        sniffio = None
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain", "--", "tui"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    memory = 0.0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(memory, 1),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions,
        "sniffio": sniffio,
        "commit": commit + ("+changes" if dirty else ""),
        "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


# -- the sandbox process -------------------------------------------------------------------


class Sandbox:
    def __init__(self, workers: int) -> None:
        self.key = secrets.token_urlsafe(16)
        env = dict(os.environ, BENCH_SANDBOX_KEY=self.key)
        self.proc = subprocess.Popen(
            [PY, str(BENCH / "sandbox_proc.py"), "--workers", str(workers)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("the sandbox process did not start")
        self.base = f"http://127.0.0.1:{json.loads(line)['port']}"
        self.env = env

    def call(self, method: str, path: str, body: Any = None) -> Any:
        import httpx

        response = httpx.request(
            method,
            self.base + path,
            json=body,
            headers={"Authorization": f"Bearer {self.key}"},
            timeout=60,
        )
        response.raise_for_status()
        return response.json()

    def quiet(self, timeout: float = 60.0) -> None:
        """Cancel what is left and wait until nothing is queued or running."""
        self.call("POST", "/bench/reset")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            load = self.call("GET", "/bench/load")
            if load["in_queue"] == 0 and load["in_progress"] == 0:
                return
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def child(args: list[str], env: dict[str, str], timeout: float) -> dict[str, Any] | None:
    """Run one measurement process; its last stdout line is its JSON answer."""
    try:
        done = subprocess.run(
            [PY, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=ROOT
        )
    except subprocess.TimeoutExpired:
        log(f"{args[0]} gave no answer within {timeout:.0f} s")
        return None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        log(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[-800:]}")
        return None
    result: dict[str, Any] = json.loads(lines[-1])
    return result


# -- 1. tracking N jobs --------------------------------------------------------------------


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def peak_per_10s(times: list[float]) -> int:
    ordered = sorted(times)
    best, start = 0, 0
    for end, t in enumerate(ordered):
        while ordered[start] < t - 10:
            start += 1
        best = max(best, end - start + 1)
    return best


def track(sandbox: Sandbox, client: str, n: int, tmp: Path) -> dict[str, Any]:
    out = tmp / f"track-{client}-{n}.json"
    # Past this the client is stopped and what it had not seen counts as never seen.
    deadline = 60 + n * 0.03
    low, high = DURATIONS
    cpu0 = sandbox.call("GET", "/bench/load")["cpu_s"]
    args = [
        str(BENCH / "track.py"),
        f"--client={client}",
        f"--base={sandbox.base}",
        f"--n={n}",
        f"--low={low}",
        f"--high={high}",
        f"--deadline={deadline}",
        f"--out={out}",
    ]
    started = time.monotonic()
    try:
        subprocess.run([PY, *args], env=sandbox.env, timeout=deadline + 60, check=True, cwd=ROOT)
    except (subprocess.TimeoutExpired, subprocess.CalledProcessError) as err:
        log(f"tracking with {client} failed: {err}")
        sandbox.quiet()
        return {"client": client, "n": n, "failed": str(err)}
    data = json.loads(out.read_text())
    ends = sandbox.call("POST", "/bench/ends", {"ids": data["ids"]})["ends"]
    sandbox_cpu = sandbox.call("GET", "/bench/load")["cpu_s"] - cpu0
    sandbox.quiet()
    stale: list[float] = []
    unseen = 0
    for job_id in data["ids"]:
        end = ends.get(job_id)
        seen = data["seen"].get(job_id)
        if end is None or end[3] is None or seen is None:
            unseen += 1
            stale.append(math.inf)
        else:
            stale.append(seen - end[3])
    requests = data["requests"]
    total = requests.get("status", 0) + requests.get("status-sync", 0)
    jobs = max(1, len(data["ids"]))
    return {
        "client": client,
        "n": n,
        "jobs": len(data["ids"]),
        "requests_per_job": total / jobs,
        "status_sync_share": requests.get("status-sync", 0) / max(1, total),
        "staleness_p50_s": quantile(stale, 0.5),
        "staleness_p95_s": quantile(stale, 0.95),
        "staleness_max_s": max(stale) if stale else math.nan,
        "unseen": unseen,
        "cpu_s": data["cpu_s"],
        "peak_rss_mb": data["peak_rss_mb"],
        "sandbox_cpu_s": sandbox_cpu,
        "peak_requests_per_10s": peak_per_10s(data["request_times"]),
        "wall_s": data["wall_s"],
        "errors": data["errors"],
        "timed_out": data["timed_out"],
        "elapsed_s": time.monotonic() - started,
    }


# -- 3. start-up, 6. idle CPU ----------------------------------------------------------------


def app_command() -> str:
    exe = shutil.which("flash-tui")
    return f"{exe} --demo" if exe else f"{PY} -m tui --demo"


def _startup_once(command: str) -> float:
    """One start-up; tmux occasionally fails to start a session while the server of the one
    just killed is exiting ("server exited unexpectedly"): try again."""
    for attempt in range(3):
        try:
            return startup_once(command)
        except subprocess.CalledProcessError:
            if attempt == 2:
                raise
            time.sleep(0.5)
    raise AssertionError("unreachable")


def startup(runs: int) -> dict[str, Any]:
    """flash-tui's start-up, and a bare Textual app's in turn (what this machine charges any
    Textual app), each median of ``runs`` after a warm-up run of each."""
    command, bare = app_command(), f"{PY} {BENCH / 'bare_app.py'}"
    _startup_once(command)  # warm the file cache and the bytecode cache
    _startup_once(bare)
    times, bare_times = [], []
    for _ in range(runs):
        times.append(_startup_once(command))
        bare_times.append(_startup_once(bare))
    times.sort()
    bare_times.sort()
    return {
        "startup_s": times[len(times) // 2],
        "startup_min_s": times[0],
        "startup_max_s": times[-1],
        "startup_runs": runs,
        "bare_textual_startup_s": bare_times[len(bare_times) // 2],
    }


def _tree_cpu_ticks(root: int) -> int:
    """utime + stime of a process and its descendants, in clock ticks."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            text = (entry / "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        pid = int(entry.name)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += int(stats[pid][11]) + int(stats[pid][12])
        todo.extend(children.get(pid, []))
    return total


def idle_cpu(seconds: float) -> dict[str, Any]:
    """The real app (``--demo``: its sandbox thread and health checks) in tmux, left alone."""
    session = f"ftidle{os.getpid()}"
    with tempfile.TemporaryDirectory() as home:
        command = (
            f"env -u PYTHONDONTWRITEBYTECODE XDG_CONFIG_HOME={home} XDG_DATA_HOME={home} "
            f"{app_command()}"
        )
        subprocess.run(
            ["tmux", "new-session", "-d", "-s", session, "-x", "120", "-y", "36", command],
            check=True,
            cwd=ROOT,
        )
        try:
            deadline = time.monotonic() + 20
            while True:
                screen = subprocess.run(
                    ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
                ).stdout
                if all(mark in screen for mark in READY_MARKS):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the app did not start:\n{screen}")
                time.sleep(0.05)
            pid = int(
                subprocess.run(
                    ["tmux", "display", "-p", "-t", session, "#{pane_pid}"],
                    capture_output=True,
                    text=True,
                ).stdout.strip()
            )
            time.sleep(3.0)  # the sandbox thread up, the first health checks answered
            tick = os.sysconf("SC_CLK_TCK")
            cpu0, t0 = _tree_cpu_ticks(pid), time.monotonic()
            time.sleep(seconds)
            cpu1, t1 = _tree_cpu_ticks(pid), time.monotonic()
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
    return {
        "idle_cpu_percent": (cpu1 - cpu0) / tick / (t1 - t0) * 100,
        "idle_seconds": round(t1 - t0, 1),
    }


def in_tmux(what: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """A measurement through tmux; a tmux failure costs that figure, not the run."""
    try:
        return measure()
    except (subprocess.CalledProcessError, RuntimeError) as err:
        log(f"{what} not measured: {err}")
        return None


# -- the run -------------------------------------------------------------------------------


def run(plan: Plan, quick: bool) -> dict[str, Any]:
    os.chdir(ROOT)
    report: dict[str, Any] = {"mode": "quick" if quick else "full", "machine": machine()}
    report["workload"] = {
        "workers": WORKERS,
        "durations_s": list(DURATIONS),
        "sizes": list(plan.sizes),
    }
    started = time.monotonic()
    tmp_dir = tempfile.TemporaryDirectory()
    tmp = Path(tmp_dir.name)
    sandbox = Sandbox(WORKERS)
    log(f"sandbox at {sandbox.base} with {WORKERS} workers")
    try:
        tracking = []
        for n in plan.sizes:
            for client in CLIENTS:
                log(f"tracking {n} jobs with {client}")
                row = track(sandbox, client, n, tmp)
                tracking.append(row)
                if "failed" not in row:
                    log(
                        f"  {row['requests_per_job']:.2f} requests/job, staleness p95 "
                        f"{row['staleness_p95_s']:.2f} s, CPU {row['cpu_s']:.1f} s"
                    )
        report["tracking"] = tracking

        table_args = [
            str(BENCH / "app_bench.py"),
            "--mode=table",
            f"--base={sandbox.base}",
            f"--presses={plan.presses}",
            f"--max-key-s={plan.key_cap_s}",
        ]
        log("the app with 10,000 jobs")
        result = child(table_args, sandbox.env, 420)
        sandbox.quiet()
        if result is not None:
            result.pop("ids", None)
        report["app"] = result

        log(f"{plan.lb_calls} load-balanced calls")
        report["lb"] = child(
            [str(BENCH / "lb.py"), f"--base={sandbox.base}", f"--calls={plan.lb_calls}"],
            sandbox.env,
            300,
        )
    finally:
        sandbox.stop()

    log("a 20 MB output in the job detail")
    big_args = [str(BENCH / "app_bench.py"), "--mode=big", f"--cap={plan.big_cap_s}"]
    report["big_output"] = child(big_args, dict(os.environ), 300)

    if shutil.which("tmux"):
        log(f"start-up, {plan.startup_runs} runs")
        report["startup"] = in_tmux("start-up", lambda: startup(plan.startup_runs))
        time.sleep(0.5)
        log(f"idle CPU over {plan.idle_s:.0f} s")
        report["idle"] = in_tmux("idle CPU", lambda: idle_cpu(plan.idle_s))
    else:
        log("tmux is not installed: no start-up or idle CPU figures")
        report["startup"] = report["idle"] = None
    tmp_dir.cleanup()
    report["elapsed_s"] = time.monotonic() - started
    report.update(headline(report))
    return report


def headline(report: dict[str, Any]) -> dict[str, Any]:
    """The issue's keys, from the largest tracking run and the app as it is."""
    rows = [r for r in report["tracking"] if "failed" not in r]
    biggest = max((r["n"] for r in rows), default=0)

    def pick(client: str, key: str) -> Any:
        found = [r[key] for r in rows if r["client"] == client and r["n"] == biggest]
        return found[0] if found else None

    app = report.get("app") or {}
    big = report.get("big_output") or {}
    return {
        "status_requests_per_job": pick("flash", "requests_per_job"),
        "sdk_status_requests_per_job": pick("sdk", "requests_per_job"),
        "staleness_p95_s": pick("flash", "staleness_p95_s"),
        "sdk_staleness_p95_s": pick("sdk", "staleness_p95_s"),
        "tracked_jobs": app.get("tracked_jobs"),
        "key_latency_p95_ms": app.get("key_latency_p95_ms"),
        "event_loop_lag_p95_ms": app.get("event_loop_lag_p95_ms"),
        "app_rss_mb": app.get("rss_mb"),
        "startup_s": (report.get("startup") or {}).get("startup_s"),
        "big_output_open_s": big.get("big_output_open_s"),
        "big_output_rss_mb": big.get("big_output_rss_mb"),
        "lb_overhead_ratio": (report.get("lb") or {}).get("lb_overhead_ratio"),
        "idle_cpu_percent": (report.get("idle") or {}).get("idle_cpu_percent"),
    }


# -- the table and RESULTS.md ----------------------------------------------------------------


def fmt(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if math.isinf(value):
            return "never"
        if math.isnan(value):
            return "–"
        return f"{value:.{digits}f}"
    return str(value)


def verdict(key: str, value: Any, report: dict[str, Any]) -> str:
    _, limit, _ = TARGETS[key]
    if key == "status_requests_per_job" and value is not None:
        sdk = report.get("sdk_status_requests_per_job")
        ok = value <= limit and (sdk is None or value <= sdk / 2)
        return "met" if ok else "MISSED"
    if value is None:
        return "MISSED (gave up)" if key.startswith("big_output_open") else "not measured"
    return "met" if value <= limit else "MISSED"


def tracking_table(report: dict[str, Any]) -> list[str]:
    lines = [
        "| client | jobs | requests/job | via status-sync | staleness p50 / p95 / max (s) "
        "| client CPU (s) | peak RSS (MB) | sandbox CPU (s) | peak requests per 10 s "
        "| wall (s) |",
        "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    for r in report["tracking"]:
        if "failed" in r:
            name = CLIENT_NAMES.get(r["client"], r["client"])
            lines.append(f"| {name} | {r['n']:,} | failed: {r['failed']} |")
            continue
        unseen = f" ({r['unseen']} never seen)" if r["unseen"] else ""
        lines.append(
            f"| {CLIENT_NAMES[r['client']]} | {r['n']:,} | {r['requests_per_job']:.2f} "
            f"| {r['status_sync_share'] * 100:.0f}% "
            f"| {fmt(r['staleness_p50_s'])} / {fmt(r['staleness_p95_s'])} / "
            f"{fmt(r['staleness_max_s'])}{unseen} | {r['cpu_s']:.1f} | {r['peak_rss_mb']:.0f} "
            f"| {r['sandbox_cpu_s']:.1f} | {r['peak_requests_per_10s']:,} | {r['wall_s']:.0f} |"
        )
    return lines


def app_table(report: dict[str, Any]) -> list[str]:
    app, big = report.get("app") or {}, report.get("big_output") or {}
    rows = [
        ("jobs in the table (active)", "tracked_jobs", 0, app, "active_jobs"),
        ("key-to-screen latency p50 (ms)", "key_latency_p50_ms", 0, app, None),
        ("key-to-screen latency p95 (ms)", "key_latency_p95_ms", 0, app, None),
        ("key presses measured", "presses", 0, app, None),
        ("event-loop lag p50 (ms)", "event_loop_lag_p50_ms", 1, app, None),
        ("event-loop lag p95 (ms)", "event_loop_lag_p95_ms", 1, app, None),
        ("status requests per second meanwhile", "polls_per_s_during_keys", 0, app, None),
        ("RSS with 10,000 jobs (MB)", "rss_mb", 0, app, None),
        ("adding 1,000 jobs one by one (s)", "add_active_s", 1, app, None),
        ("20 MB output: open (s)", "big_output_open_s", 2, big, None),
        ("20 MB output: RSS growth (MB)", "big_output_rss_mb", 0, big, None),
        ("20 MB output: characters laid out", "shown_chars", 0, big, None),
    ]
    lines = ["| measure | value |", "|---|---:|"]
    for label, key, digits, data, extra in rows:
        lines.append(f"| {label} | {_cell(data, key, digits, extra)} |")
    return lines


def _cell(d: dict[str, Any], key: str, digits: int, extra: str | None) -> str:
    if not d:
        return "–"
    value = d.get(key)
    if value is None and "gave_up_after_s" in d:
        return f"> {d['gave_up_after_s']:.0f} (gave up)"
    text = fmt(value, digits)
    if key.startswith("key_latency") and d.get("key_timeouts"):
        text = f"≥ {text} ({d['key_timeouts']} of {d['presses']} keys never drawn within 5 s)"
    if extra and d.get(extra) is not None:
        text += f" ({d[extra]:,})"
    return text


def targets_table(report: dict[str, Any]) -> list[str]:
    lines = ["| target | goal | measured | |", "|---|---:|---:|---|"]
    for key, (op, limit, label) in TARGETS.items():
        value = report.get(key)
        goal = f"{op} {limit:g}"
        if key == "status_requests_per_job":
            sdk = report.get("sdk_status_requests_per_job")
            goal += f" and ≤ SDK/2 ({fmt(sdk / 2 if sdk else None)})"
        lines.append(f"| {label} | {goal} | {fmt(value)} | {verdict(key, value, report)} |")
    return lines


def other_table(report: dict[str, Any]) -> list[str]:
    lb, st, idle = report.get("lb") or {}, report.get("startup") or {}, report.get("idle") or {}
    return [
        "| measure | value |",
        "|---|---:|",
        f"| start-up to first usable screen, median of {st.get('startup_runs', '–')} (s) "
        f"| {fmt(st.get('startup_s'), 3)} (min {fmt(st.get('startup_min_s'), 3)}, "
        f"max {fmt(st.get('startup_max_s'), 3)}) |",
        "| the same for a bare Textual app (header, table, footer), for scale (s) "
        f"| {fmt(st.get('bare_textual_startup_s'), 3)} |",
        f"| idle CPU, the demo app over {fmt(idle.get('idle_seconds'), 0)} s (% of a core) "
        f"| {fmt(idle.get('idle_cpu_percent'))} |",
        f"| load-balanced call, EndpointClient.call (ms) | {fmt(lb.get('lb_flash_ms_per_call'))} |",
        f"| load-balanced call, bare httpx (ms) | {fmt(lb.get('lb_httpx_ms_per_call'))} |",
        f"| ratio, wall time (client CPU) | {fmt(lb.get('lb_overhead_ratio'))} "
        f"({fmt(lb.get('lb_cpu_ratio'))}) |",
    ]


def render_text(report: dict[str, Any]) -> str:
    m = report["machine"]
    parts = [
        f"flash-tui benchmarks ({report['mode']} run, {report['elapsed_s'] / 60:.1f} min) on "
        f"{m['cpu']}, {m['cores']} cores, Python {m['python']}, commit {m['commit']}",
        "",
        *tracking_table(report),
        "",
        *app_table(report),
        "",
        *other_table(report),
        "",
        *targets_table(report),
    ]
    return "\n".join(parts)


RESULTS_HEAD = """# flash-tui benchmark results

Regenerated by `python bench/run.py` (`--quick` for the short version, `--json` for the figures
as one JSON object). Everything runs on one machine against the project's own sandbox on
127.0.0.1: no network.
"""

METHOD = """## How each figure is measured

- **Processes.** The sandbox (the product's `create_app`, served by uvicorn exactly as
  `start_sandbox` serves it) runs in a process of its own (`bench/sandbox_proc.py`); each
  client and each app measurement runs in another, so CPU seconds (`getrusage`) and peak RSS
  (`ru_maxrss`, `VmHWM`) are that client's own, imports included.
- **Workload.** One queue endpoint (`sleepy`) with {workers} workers, so {workers} jobs run at
  once and the rest wait in its first-in-first-out queue. N jobs are submitted at once (at most
  16 submissions in flight, the same for every client), with lengths drawn log-uniformly
  between {low:g} s and {high:g} s (the same seeded draw for every client: many short jobs, a
  few long ones).
- **Staleness** is the time from a job ending on the server to the client's user learning it.
  The sandbox process records when each job ended (`Job.finished_at`, `time.monotonic()`);
  each client records, on the same clock (Linux's `CLOCK_MONOTONIC` is shared by every process
  on the machine), when it saw the end: flash-tui's poller when its batch callback (what
  updates the app's table) gets the final status; the SDK when `await job.output()` returns;
  the naive loop when its `/status` answer says the job is over. A job never seen counts as
  infinitely stale.
- **Requests per job** count `/status` and `/status-sync` requests (not the `/run` that
  submitted it). The SDK polls `/status` every second from submission, including while the
  job waits in the queue, and once more after the end (`output()` fetches the result again).
  The naive loop asks about every unfinished job once a second, at most 16 requests at a time.
  The sandbox applies no rate limit; the peak number of requests any 10 s held is shown next
  to Runpod's limit of 2,000 per 10 s per endpoint.
- **The app** (`bench/app_bench.py`) is the real `FlashApp`, headless at 120x36, its history
  in a temporary directory, with one endpoint on the sandbox. 9,000 finished jobs are loaded
  as the history loads them (`JobTable.load_jobs`), then 1,000 jobs of 20-120 s are really
  submitted and added one by one as a submission adds them (`JobAdded`); the app's own poller
  follows them ({workers} run, the rest queue). **Key-to-screen latency**: the time from
  handing a `down` key event to the app's driver (as the terminal input thread does) to the
  app writing the first frame in which the table's cursor has moved. Headless Textual writes
  no frames, so each frame is still turned into terminal output (`render_segments`) and
  thrown away, to cost what a real terminal's frame costs. Keys come every 30-110 ms, as when
  a key is held or tapped. **Event-loop lag**: how late a 20 ms `asyncio.sleep` wakes, all
  through the key presses.
- **20 MB output**: a finished job whose output is a ~20 MB JSON document of records is in
  the table; the time from `open_job` to the first frame showing its detail, and the growth of
  the process's peak RSS (`VmHWM`, reset just before) over the open. The open is one
  synchronous call nothing can interrupt, so past a cap the figure is reported as "gave up"
  with the RSS reached by then.
- **Load-balanced calls**: {lb_calls} sequential `POST /echo` calls with the same JSON body
  through `EndpointClient.call` and through a bare `httpx.AsyncClient.post`, in alternating
  rounds in one process, after a warm-up; the ratio of wall times (and of client CPU).
- **Start-up**: `bench/startup.py` in tmux (a real pty): launch `flash-tui --demo` until the
  footer and the first endpoint are drawn; the median of the runs after a warm-up run, with
  Python's bytecode cache on (as in any install; the warm-up run fills it). A bare Textual app
  (`bench/bare_app.py`: a header, a table, a footer) is timed the same way, in turn, to show
  what this machine charges any Textual app at that moment.
- **Idle CPU**: the real `flash-tui --demo` in tmux (its sandbox thread, the 1 s age tick and
  the health checks: every 30 s while no job runs) left alone 3 s after its first screen,
  then the CPU time of its process tree (`/proc/<pid>/stat`) over the measured seconds.
"""


def findings() -> str:
    """The analysis behind the figures (why a target is missed, what would fix it)."""
    path = BENCH / "FINDINGS.md"
    return path.read_text() if path.exists() else ""


def render_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items() if v)
    w = report["workload"]
    method = METHOD.format(
        workers=w["workers"],
        low=w["durations_s"][0],
        high=w["durations_s"][1],
        lb_calls=(report.get("lb") or {}).get("lb_calls", 1000),
    )
    missed = [TARGETS[key][2] for key in TARGETS if verdict(key, report.get(key), report) != "met"]
    parts = [
        RESULTS_HEAD,
        "## The machine",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; memory {m['memory_gb']} GB; {m['os']}",
        f"- Python {m['python']}; {versions}; sniffio {m['sniffio'] or 'not installed'}",
        f"- flash-tui commit {m['commit']}; {report['mode']} run on {m['date']}, "
        f"{report['elapsed_s'] / 60:.1f} minutes",
        "",
        "## Targets",
        "",
        *targets_table(report),
        "",
        ("Missed: " + "; ".join(missed) + ". Why, and what would fix it: see below.")
        if missed
        else "Every target met.",
        "",
        f"## 1. Tracking N jobs until they end ({w['workers']} workers, "
        f"jobs of {w['durations_s'][0]:g}-{w['durations_s'][1]:g} s)",
        "",
        *tracking_table(report),
        "",
        "## 2. and 4. The app: 10,000 jobs, a 20 MB output",
        "",
        *app_table(report),
        "",
        "## 3., 5. and 6. Start-up, load-balanced calls, idle",
        "",
        *other_table(report),
        "",
        method,
        findings(),
    ]
    return "\n".join(parts)


def plain(value: Any) -> Any:
    """JSON has no infinity or NaN: a job never seen, or a figure not measured, is null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the short run (about 2 minutes)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument(
        "--results",
        type=Path,
        default=BENCH / "RESULTS.md",
        help="where to write the results (default bench/RESULTS.md; '-' for nowhere)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: write the results from a report saved with --json",
    )
    args = parser.parse_args()
    if args.render:
        report = json.loads(args.render.read_text())
    else:
        report = run(QUICK if args.quick else FULL, args.quick)
    if str(args.results) != "-":
        args.results.write_text(render_markdown(report))
        log(f"wrote {args.results}")
    if args.json:
        print(json.dumps(plain(report)))
    else:
        print(render_text(report))


if __name__ == "__main__":
    main()
