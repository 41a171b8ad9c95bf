"""Shared test setup."""

from __future__ import annotations

import sys
from pathlib import Path

# Make `tui` importable when pytest runs from a checkout without the project installed
# (the pytest script does not put the working directory on sys.path).
PROJECT_ROOT = Path(__file__).resolve().parent.parent
if str(PROJECT_ROOT) not in sys.path:
    sys.path.insert(0, str(PROJECT_ROOT))
