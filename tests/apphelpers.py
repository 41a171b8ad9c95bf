"""Helpers for driving the app in tests: an isolated environment and condition waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from textual.pilot import Pilot

from tui.config import load_config
from tui.ui.app import FlashApp


def make_app(config_path: Path, demo: bool = True, **sandbox: object) -> FlashApp:
    options: dict[str, object] = {"time_scale": 0.2}
    options.update(sandbox)
    return FlashApp(load_config(config_path), demo=demo, sandbox_options=options)


async def wait_until(
    pilot: Pilot[object], condition: Callable[[], object], timeout: float = 15.0, what: str = ""
) -> None:
    """Let the app run until ``condition()`` holds (a condition, never a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        await pilot.pause(0.05)
