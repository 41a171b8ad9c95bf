"""Running the sandbox: in a background thread (for the UI and tests) or in the foreground.

The thread owns its own asyncio loop, so the sandbox never competes with the UI's loop and a
busy UI never slows the jobs it is watching.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from tui.sandbox.app import create_app
from tui.sandbox.config import DEFAULT_API_KEY, SandboxConfig
from tui.sandbox.demo import DEMO_ENDPOINTS
from tui.sandbox.engine import Engine

STARTUP_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0


class _ErrorCollector(logging.Handler):
    """Keeps uvicorn's startup error (e.g. the port is taken) for our RuntimeError."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _quiet_uvicorn() -> None:
    # Without any handler, Python's last-resort handler would print uvicorn's warnings to
    # stderr, across the UI. A NullHandler stops that yet still lets records reach a root
    # handler if the application configured one (a log file, say).
    logger = logging.getLogger("uvicorn")
    if not any(isinstance(h, logging.NullHandler) for h in logger.handlers):
        logger.addHandler(logging.NullHandler())


def _url_host(host: str) -> str:
    """The host to put in URLs: wildcard binds are reached through loopback."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


class RunningSandbox:
    """A sandbox serving in a daemon thread; `stop()` (or leaving `with`) shuts it down."""

    def __init__(
        self,
        config: SandboxConfig,
        server: uvicorn.Server,
        thread: threading.Thread,
        loop: asyncio.AbstractEventLoop,
        engine: Engine,
        base_url: str,
    ) -> None:
        self.config = config
        self.base_url = base_url
        self._server = server
        self._thread = thread
        self._loop = loop
        self._engine = engine
        self._stopped = False

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Shut down and join the thread; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        if self._thread.is_alive():
            # Close the engine first: long-polls answer at once instead of holding the
            # connections uvicorn waits for during its graceful shutdown.
            try:
                self._loop.call_soon_threadsafe(self._engine.close)
            except RuntimeError:
                pass  # the loop already closed
            self._server.should_exit = True
            self._thread.join(STOP_TIMEOUT_S)

    def __enter__(self) -> RunningSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"RunningSandbox({self.base_url!r})"


def uvicorn_server(app: Any, config: SandboxConfig, **options: Any) -> uvicorn.Server:
    """The uvicorn server the sandbox runs on (``options`` add to its settings)."""
    return uvicorn.Server(
        uvicorn.Config(
            app,
            host=config.host,
            port=config.port,
            log_config=None,
            log_level="warning",
            access_log=False,
            lifespan="on",
            ws="none",
            timeout_graceful_shutdown=2,
            **options,
        )
    )


def start_sandbox(config: SandboxConfig | None = None) -> RunningSandbox:
    """Start a sandbox in a background thread; returns once it accepts connections."""
    config = config or SandboxConfig()
    app = create_app(config)
    engine: Engine = app.state.engine
    _quiet_uvicorn()
    server = uvicorn_server(app, config)
    loops: list[asyncio.AbstractEventLoop] = []
    failures: list[BaseException] = []

    async def serve() -> None:
        loops.append(asyncio.get_running_loop())
        await server.serve()

    def run() -> None:
        try:
            asyncio.run(serve())
        except BaseException as exc:  # uvicorn reports a failed bind with sys.exit
            failures.append(exc)

    collector = _ErrorCollector()
    error_logger = logging.getLogger("uvicorn.error")
    error_logger.addHandler(collector)
    thread = threading.Thread(target=run, name=f"sandbox:{config.port}", daemon=True)
    try:
        thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not server.started:
            if not thread.is_alive():
                reason = "; ".join(collector.messages) or repr(failures[0] if failures else None)
                raise RuntimeError(
                    f"the sandbox could not start on {config.host}:{config.port}: {reason}"
                )
            if time.monotonic() > deadline:
                server.should_exit = True
                raise RuntimeError(
                    f"the sandbox did not start on {config.host}:{config.port} "
                    f"within {STARTUP_TIMEOUT_S:.0f} s"
                )
            time.sleep(0.01)
    finally:
        error_logger.removeHandler(collector)

    port = server.servers[0].sockets[0].getsockname()[1]
    host = _url_host(config.host)
    # `started` is set once the socket listens; one connection proves it from the outside.
    with socket.create_connection((host.strip("[]"), port), timeout=STARTUP_TIMEOUT_S):
        pass
    return RunningSandbox(config, server, thread, loops[0], engine, f"http://{host}:{port}")


def banner(sandbox: RunningSandbox, key_source: str = "--api-key") -> str:
    base = sandbox.base_url
    key = sandbox.config.api_key
    lines = [f"flash-tui sandbox: Runpod-compatible API at {base}", ""]
    for demo in DEMO_ENDPOINTS:
        url = f"{base}/v2/{demo.id}" if demo.kind == "queue" else f"{base}/lb/{demo.id}"
        label = "queue" if demo.kind == "queue" else "load-balanced"
        lines.append(f"  {url:<40} {label:<14} {demo.title}")
    lines.append("")
    prefix = ""
    if key == DEFAULT_API_KEY:
        lines.append(f"API key: {key} (the default; --api-key sets another)")
        prefix = f"RUNPOD_API_KEY={key} "
    else:
        lines.append(f"API key: the one from {key_source} (not shown)")
    lines.append(f'SDK base: runpod.endpoint_url_base = "{base}/v2"')
    lines.append(f'Try:  {prefix}flash-tui run {base}/v2/echo --input \'{{"hello": "world"}}\'')
    lines.append("Ctrl-C stops the sandbox.")
    return "\n".join(lines)


def serve_forever(config: SandboxConfig, key_source: str = "--api-key") -> None:
    """Serve in the foreground until Ctrl-C, after printing where to find everything."""
    sandbox = start_sandbox(config)
    print(banner(sandbox, key_source), flush=True)
    try:
        # The server runs in its thread; the main thread only waits, so Ctrl-C lands here.
        while sandbox.running:
            sandbox._thread.join(0.5)
    except KeyboardInterrupt:
        print("\nstopping the sandbox…", flush=True)
    finally:
        sandbox.stop()
