"""Snapshot tests of the screens people see (plain ``def`` tests, as snap_compare needs).

Review a changed picture by eye (pytest --snapshot-report) before --snapshot-update.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.states import STATES, demo_app


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    monkeypatch.delenv("FLASH_TUI_CONFIG", raising=False)


@pytest.mark.parametrize("state", list(STATES))
def test_snapshot(state: str, snap_compare: Any, tmp_path: Path) -> None:
    run_before, size = STATES[state]
    assert snap_compare(
        demo_app(tmp_path / "config.toml"), terminal_size=size, run_before=run_before
    )
