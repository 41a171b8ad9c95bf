"""An embedded local server that speaks the Runpod serverless API, with demo endpoints.

It lets flash-tui (and the official `runpod` SDK) be tried and tested with no account and no
network: `start_sandbox()` serves it from a background thread, `serve_forever()` from the
command line.

The server half (starlette, uvicorn) loads on first use, so code that only reads
`DEMO_ENDPOINTS` or `SandboxConfig` does not pay for it at start-up.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tui.sandbox.config import SandboxConfig
from tui.sandbox.demo import DEMO_ENDPOINTS, DemoEndpoint, DemoRoute

if TYPE_CHECKING:
    from tui.sandbox.app import create_app
    from tui.sandbox.server import RunningSandbox, serve_forever, start_sandbox

_LAZY = {
    "create_app": "tui.sandbox.app",
    "RunningSandbox": "tui.sandbox.server",
    "serve_forever": "tui.sandbox.server",
    "start_sandbox": "tui.sandbox.server",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEMO_ENDPOINTS",
    "DemoEndpoint",
    "DemoRoute",
    "RunningSandbox",
    "SandboxConfig",
    "create_app",
    "serve_forever",
    "start_sandbox",
]
