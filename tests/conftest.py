"""Shared test setup."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

# Make `tui` importable when pytest runs from a checkout without the project installed
# (the pytest script does not put the working directory on sys.path).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))


@pytest.fixture(scope="session", autouse=True)
def private_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test, nor any process it starts, touches the real config, history or key.

    Tests that need their own folders set them again; this is the floor under all of them.
    """
    home = tmp_path_factory.mktemp("home")
    saved = {
        k: os.environ.get(k)
        for k in (
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "NO_COLOR",
            "RUNPOD_API_KEY",
            "FLASH_TUI_CONFIG",
        )
    }
    os.environ["XDG_CONFIG_HOME"] = str(home / "config")
    os.environ["XDG_DATA_HOME"] = str(home / "data")
    for name in ("NO_COLOR", "RUNPOD_API_KEY", "FLASH_TUI_CONFIG"):
        os.environ.pop(name, None)
    yield
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Per-test config and history folders (app tests write both), no key, no NO_COLOR."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg-config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    for name in ("NO_COLOR", "RUNPOD_API_KEY", "FLASH_TUI_CONFIG"):
        monkeypatch.delenv(name, raising=False)
