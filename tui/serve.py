"""`flash-tui serve`: the app in a browser, through textual-serve, for demos to teammates.

Each browser tab gets its own app process (textual-serve runs the command per session).
Loopback by default: serving on another address shows your endpoints to that network.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path


def serve(
    host: str, port: int, demo: bool, config: str | None, flash_project: Path | None = None
) -> int:
    try:
        from textual_serve.server import Server
    except ImportError:  # pragma: no cover - it is a dependency; a broken install says so
        print("error: textual-serve is not installed (pip install textual-serve)", file=sys.stderr)
        return 2
    command = [sys.executable, "-m", "tui"]
    if demo:
        command.append("--demo")
    if config:
        command += ["--config", config]
    if flash_project is not None:
        command += ["--flash-project", str(flash_project)]
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"warning: serving on {host}: anyone who can reach it can use your endpoints "
            "with your key",
            file=sys.stderr,
        )
    print(f"flash-tui in the browser: http://{host}:{port} (Ctrl-C stops it)", flush=True)
    server = Server(shlex.join(command), host=host, port=port, title="flash-tui")
    try:
        server.serve()
    except KeyboardInterrupt:
        pass
    except OSError as err:
        print(f"error: cannot serve on {host}:{port}: {err.strerror}", file=sys.stderr)
        return 3
    return 0
