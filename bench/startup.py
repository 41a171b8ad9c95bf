"""Time from launch to the first usable screen of `flash-tui --demo` in a real terminal.

Starts the app in a detached tmux session (a real pty, 120x36) and polls the screen until the
footer and the first endpoint are drawn. Prints the median of N runs (JSON with --json).
Needs tmux.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

READY_MARKS = ("Quit", "echo")


def once(command: str, marks: tuple[str, ...] = READY_MARKS, timeout: float = 20.0) -> float:
    session = f"ftbench{os.getpid()}"
    with tempfile.TemporaryDirectory() as home:
        # Bytecode caching on, as in any normal install: some environments (this machine's
        # among them) set PYTHONDONTWRITEBYTECODE, which recompiles the project's own modules
        # at every launch. The warm-up run writes the cache.
        env = f"-u PYTHONDONTWRITEBYTECODE XDG_CONFIG_HOME={home} XDG_DATA_HOME={home}"
        started = time.perf_counter()
        subprocess.run(
            [
                "tmux",
                "new-session",
                "-d",
                "-s",
                session,
                "-x",
                "120",
                "-y",
                "36",
                f"env {env} {command}",
            ],
            check=True,
        )
        try:
            while True:
                screen = subprocess.run(
                    ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
                ).stdout
                if all(mark in screen for mark in marks):
                    return time.perf_counter() - started
                if time.perf_counter() - started > timeout:
                    raise RuntimeError(f"no usable screen after {timeout} s:\n{screen}")
                time.sleep(0.01)  # each capture is a process: keep the poll light
        finally:
            subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("-n", type=int, default=10, help="runs (default 10)")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--command", default=None, help="what to launch")
    parser.add_argument(
        "--marks",
        default=",".join(READY_MARKS),
        help="comma-separated texts that mean the screen is ready",
    )
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        sys.exit("tmux is needed for this benchmark")
    exe = shutil.which("flash-tui") or f"{sys.executable} -m tui"
    command = args.command or f"{exe} --demo"
    marks = tuple(args.marks.split(","))
    once(command, marks)  # warm the file cache
    times = [once(command, marks) for _ in range(args.n)]
    result = {
        "startup_s": round(statistics.median(times), 3),
        "startup_min_s": round(min(times), 3),
        "startup_max_s": round(max(times), 3),
        "runs": args.n,
    }
    print(
        json.dumps(result)
        if args.json
        else f"first usable screen: median {result['startup_s']} s "
        f"(min {result['startup_min_s']}, max {result['startup_max_s']}, {args.n} runs)"
    )


if __name__ == "__main__":
    main()
