"""A condition wait for tests that drive servers directly (no app, no Textual)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(
    probe: Callable[[], Any], accept: Callable[[Any], bool], timeout: float = 5.0
) -> Any:
    """Probe until `accept` holds and return that value; fails the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"gave up waiting; last value {value!r}"
        time.sleep(0.02)
