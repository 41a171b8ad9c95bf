"""The sandbox's demo endpoints: queue handlers, the load-balanced `api` routes, and their
descriptions (`DEMO_ENDPOINTS`) for the UI and the account listing. No HTTP framework here:
load-balanced routes answer plain `LbReply` values that `app.py` turns into responses."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tui.sandbox.engine import Handler, JobContext, JobFailure


@dataclass(frozen=True)
class DemoRoute:
    method: str
    path: str
    example_body: dict[str, Any] | None
    title: str


@dataclass(frozen=True)
class DemoEndpoint:
    id: str
    kind: str  # "queue" or "lb"
    title: str
    # Queue endpoints: the `input` object itself (unwrapped); lb: the main POST route's body.
    example_input: dict[str, Any]
    routes: tuple[DemoRoute, ...] = ()


# ---- queue handlers ----------------------------------------------------------------------


async def echo(ctx: JobContext) -> Any:
    await asyncio.sleep(random.uniform(0.05, 0.15) * ctx.time_scale)
    return ctx.input


def _number(value: Any, name: str, default: float, low: float, high: float) -> float:
    if value is None:
        return default
    # bool is an int in Python, but `"seconds": true` is a caller mistake worth reporting.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {json.dumps(value)}")
    return min(high, max(low, float(value)))


async def sleepy(ctx: JobContext) -> Any:
    seconds = _number(ctx.input.get("seconds"), "seconds", 3, 0, 3600)
    total = seconds * ctx.time_scale
    loop = asyncio.get_running_loop()
    started = loop.time()
    ctx.set_progress({"progress": 0.0, "elapsed": 0.0})
    # Every half second of the job's own time, but never so often it becomes a busy loop.
    tick = max(0.05, 0.5 * ctx.time_scale)
    while (done := loop.time() - started) < total:
        await asyncio.sleep(min(tick, total - done))
        fraction = min(1.0, (loop.time() - started) / total)
        # Elapsed in the job's own seconds, so it agrees with the input whatever time_scale.
        ctx.set_progress({"progress": round(fraction, 3), "elapsed": round(fraction * seconds, 2)})
    return {"slept": int(seconds) if seconds.is_integer() else seconds}


_FLAKY_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "handler.py", line 12, in handler\n'
    '    raise ValueError("flaky failed as asked")\n'
    "ValueError: flaky failed as asked\n"
)


async def flaky(ctx: JobContext) -> Any:
    await asyncio.sleep(0.1 * ctx.time_scale)
    fail_attempts = ctx.input.get("fail_attempts")
    if fail_attempts is not None:
        should_fail = ctx.attempt <= _number(fail_attempts, "fail_attempts", 0, 0, 1_000_000)
    else:
        should_fail = bool(ctx.input.get("fail"))
    if should_fail:
        raise JobFailure("<class 'ValueError'>", "flaky failed as asked", _FLAKY_TRACEBACK)
    return {"ok": True, "attempt": ctx.attempt}


async def streamer(ctx: JobContext) -> Any:
    count = int(_number(ctx.input.get("count"), "count", 5, 0, 10_000))
    chunks = []
    for i in range(count):
        await asyncio.sleep(0.3 * ctx.time_scale)
        chunk = {"index": i, "text": f"chunk {i}"}
        chunks.append(chunk)
        ctx.emit(chunk)
    # Like the worker SDK's return_aggregate_stream: the final output is every chunk.
    return chunks


QUEUE_HANDLERS: dict[str, Handler] = {
    "echo": echo,
    "sleepy": sleepy,
    "flaky": flaky,
    "streamer": streamer,
}


# ---- load-balanced `api` -----------------------------------------------------------------


@dataclass(frozen=True)
class LbReply:
    status: int
    body: Any = None
    # Already-encoded JSON to send as is (so /echo answers byte for byte what it got).
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


LbHandler = Callable[[bytes], LbReply]

API_ROUTES = (
    DemoRoute("GET", "/ping", None, "Health check the load balancer uses"),
    DemoRoute("GET", "/info", None, "Name, version and routes of this API"),
    DemoRoute("POST", "/echo", {"text": "Hello from flash-tui"}, "Answers the JSON body it got"),
    DemoRoute("POST", "/fail", None, "Always fails with HTTP 500"),
)


def _ping(_body: bytes) -> LbReply:
    return LbReply(200, {"status": "healthy"})


def _info(_body: bytes) -> LbReply:
    routes = [{"method": r.method, "path": r.path, "title": r.title} for r in API_ROUTES]
    return LbReply(200, {"name": "api", "version": "1.0.0", "routes": routes})


def _echo(body: bytes) -> LbReply:
    try:
        json.loads(body)
    except ValueError as exc:
        detail = "the body is empty" if not body.strip() else f"the body is not valid JSON: {exc}"
        return LbReply(400, {"error": "Bad Request", "detail": detail})
    return LbReply(200, raw=body)


def _fail(_body: bytes) -> LbReply:
    return LbReply(
        500,
        {"error": "Internal Server Error", "detail": "the /fail route always fails (on purpose)"},
    )


LB_ROUTES: dict[str, dict[tuple[str, str], LbHandler]] = {
    "api": {
        ("GET", "/ping"): _ping,
        ("GET", "/info"): _info,
        ("POST", "/echo"): _echo,
        ("POST", "/fail"): _fail,
    },
}


def lb_reply(endpoint_id: str, method: str, path: str, body: bytes) -> LbReply:
    """Answer one request to a load-balanced endpoint the way a Flash worker would."""
    routes = LB_ROUTES[endpoint_id]
    if path == "/ping" and method == "GET":
        return _ping(body)  # every load-balanced worker answers the balancer's health check
    handler = routes.get((method, path))
    if handler is not None:
        return handler(body)
    allowed = sorted(m for (m, p) in routes if p == path)
    if allowed:
        return LbReply(
            405,
            {"error": "Method Not Allowed", "detail": f"{path} accepts {', '.join(allowed)}"},
            headers={"Allow": ", ".join(allowed)},
        )
    known = ", ".join(f"{m} {p}" for (m, p) in routes)
    return LbReply(404, {"error": "Not Found", "detail": f"no route {method} {path}; try {known}"})


DEMO_ENDPOINTS: list[DemoEndpoint] = [
    DemoEndpoint("echo", "queue", "Answers its input unchanged", {"prompt": "Hello world", "n": 1}),
    DemoEndpoint("sleepy", "queue", "Sleeps input.seconds, reporting progress", {"seconds": 5}),
    DemoEndpoint("flaky", "queue", "Fails when input.fail is true (retry it)", {"fail": True}),
    DemoEndpoint("streamer", "queue", "Streams input.count chunks", {"count": 8}),
    DemoEndpoint(
        "api",
        "lb",
        "Load-balanced HTTP API with its own routes",
        {"text": "Hello from flash-tui"},
        API_ROUTES,
    ),
]
