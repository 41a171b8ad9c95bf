"""Snapshot tests of the screens people see (plain ``def`` tests, as snap_compare needs).

Review a changed picture by eye (pytest --snapshot-report) before --snapshot-update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.states import STATES, demo_app

# Each test gets its own config and history folders, and no key or NO_COLOR from outside.
pytestmark = pytest.mark.usefixtures("isolated")


@pytest.mark.parametrize("state", list(STATES))
def test_snapshot(state: str, snap_compare: Any, tmp_path: Path) -> None:
    run_before, size = STATES[state]
    assert snap_compare(
        demo_app(tmp_path / "config.toml"), terminal_size=size, run_before=run_before
    )
