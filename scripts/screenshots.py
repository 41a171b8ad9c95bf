"""Take the README's screenshots from the app itself: `python scripts/screenshots.py`.

Each picture is one of the snapshot tests' states (tests/states.py), drawn by the app running
headless against its own demo sandbox, and saved as SVG in screenshots/.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


async def take(name: str, out: Path) -> Path:
    from tests.states import STATES, demo_app

    run_before, size = STATES[name]
    with tempfile.TemporaryDirectory() as tmp:
        app = demo_app(Path(tmp) / "config.toml")
        async with app.run_test(size=size) as pilot:
            await run_before(pilot)  # type: ignore[arg-type]
            await pilot.pause()
            path = out / f"{name}.svg"
            app.save_screenshot(filename=path.name, path=str(out))
    return path


async def main() -> None:
    os.environ.pop("NO_COLOR", None)
    os.environ.pop("RUNPOD_API_KEY", None)
    from tests.states import STATES

    out = ROOT / "screenshots"
    out.mkdir(exist_ok=True)
    for name in STATES:
        with tempfile.TemporaryDirectory() as home:
            os.environ["XDG_CONFIG_HOME"] = home
            os.environ["XDG_DATA_HOME"] = home
            print(await take(name, out))


if __name__ == "__main__":
    asyncio.run(main())
