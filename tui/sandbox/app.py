"""The sandbox's HTTP face: Runpod's cloud routes over `Engine`, plus auth and fault injection.

The layout matches `https://api.runpod.ai/v2/{endpoint_id}/...`, so the official SDK works with
`runpod.endpoint_url_base = "http://HOST:PORT/v2"`. Load-balanced endpoints, which live on their
own hostnames on Runpod, are served under `/lb/{endpoint_id}/...` instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from tui.sandbox.config import SandboxConfig
from tui.sandbox.demo import DEMO_ENDPOINTS, LB_ROUTES, QUEUE_HANDLERS, lb_reply
from tui.sandbox.engine import (
    DEFAULT_EXECUTION_TIMEOUT_MS,
    DEFAULT_TTL_MS,
    Engine,
    Job,
    QueueEndpoint,
)

# Runpod's documented body limits.
RUN_BODY_LIMIT = 10 * 1024 * 1024
RUNSYNC_BODY_LIMIT = 20 * 1024 * 1024
LB_BODY_LIMIT = 30 * 1024 * 1024

RUNSYNC_WAIT_DEFAULT_MS = 90_000
RUNSYNC_WAIT_RANGE_MS = (1_000, 300_000)
STATUS_SYNC_WAIT_DEFAULT_MS = 90_000
STATUS_SYNC_WAIT_RANGE_MS = (0, 90_000)
RATE_WINDOW_S = 10.0

BAD_GATEWAY_HTML = """<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>cloudflare</center>
</body>
</html>
"""


def error_response(
    status: int,
    error: str,
    detail: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": error} if detail is None else {"error": error, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def _reject_constant(name: str) -> Any:
    # Python's json accepts NaN and Infinity, which no other JSON reader (nor our answers) does.
    raise ValueError(f"{name} is not valid JSON")


def parse_json(raw: bytes) -> Any:
    return json.loads(raw, parse_constant=_reject_constant)


# ---- auth and faults ---------------------------------------------------------------------


def endpoint_of(path: str) -> str | None:
    """The endpoint id a path addresses, or None for account-level paths (the listing)."""
    parts = path.strip("/").split("/")
    if parts[0] == "v2" and len(parts) >= 3:
        return parts[1]
    if parts[0] == "lb" and len(parts) >= 2:
        return parts[1]
    return None


class RateLimiter:
    """At most `limit` requests per rolling window per key; rejected ones do not count, so a
    client that backs off as told gets through."""

    def __init__(self, limit: int, window_s: float = RATE_WINDOW_S) -> None:
        self.limit = limit
        self.window_s = window_s
        self._hits: dict[str, deque[float]] = {}

    def admit(self, key: str, now: float) -> float | None:
        """None if admitted (and counted), else seconds until a slot frees."""
        hits = self._hits.setdefault(key, deque())
        while hits and hits[0] <= now - self.window_s:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window_s - now
        hits.append(now)
        return None


class Guard:
    """ASGI middleware: latency, auth, rate limit and injected errors, in that order, all
    answered before routing so a faulted request never changes a job."""

    def __init__(self, app: ASGIApp, config: SandboxConfig, endpoint_ids: frozenset[str]) -> None:
        self.app = app
        self.config = config
        self.endpoint_ids = endpoint_ids
        self.rng = random.Random(config.seed)
        self.limiter = RateLimiter(config.rate_limit) if config.rate_limit > 0 else None
        self._key = config.api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        endpoint_id = endpoint_of(scope["path"])
        if endpoint_id is not None and self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)
        response = self._check(scope, endpoint_id)
        if response is not None:
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _check(self, scope: Scope, endpoint_id: str | None) -> Response | None:
        if not self._authorized(Headers(scope=scope).get("authorization", "")):
            return error_response(401, "Unauthorized", "missing or invalid API key")
        if endpoint_id is None:
            return None
        # Only known endpoints get a window, so made-up ids cannot grow the limiter's table.
        if self.limiter is not None and endpoint_id in self.endpoint_ids:
            wait = self.limiter.admit(endpoint_id, time.monotonic())
            if wait is not None:
                limit = self.config.rate_limit
                return error_response(
                    429,
                    "Too Many Requests",
                    f"more than {limit} requests in 10 s to {endpoint_id}",
                    headers={"Retry-After": str(max(1, math.ceil(wait)))},
                )
        if self.config.error_rate > 0 and self.rng.random() < self.config.error_rate:
            if self.rng.random() < 0.5:
                return error_response(500, "internal server error")
            return HTMLResponse(BAD_GATEWAY_HTML, status_code=502)
        return None

    def _authorized(self, header: str) -> bool:
        value = header.strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer":
            value = rest.strip()
        # Some Runpod docs send the bare key; accept both, compared in constant time.
        return hmac.compare_digest(value.encode(), self._key)


# ---- routes ------------------------------------------------------------------------------


class SandboxApi:
    """Route handlers; each answers the JSON Runpod would, errors as `{"error", "detail"?}`."""

    def __init__(self, config: SandboxConfig, engine: Engine) -> None:
        self.config = config
        self.engine = engine

    # -- helpers --

    def _endpoint(self, request: Request) -> QueueEndpoint | Response:
        endpoint_id = request.path_params["endpoint_id"]
        ep = self.engine.endpoint(endpoint_id)
        if ep is not None:
            return ep
        if endpoint_id in LB_ROUTES:
            base = str(request.base_url).rstrip("/")
            return error_response(
                404,
                "endpoint not found",
                f"{endpoint_id} is load-balanced: call {base}/lb/{endpoint_id}/<route>",
            )
        known = ", ".join(self.engine.endpoints)
        return error_response(
            404, "endpoint not found", f"no endpoint {endpoint_id!r}; the sandbox has {known}"
        )

    def _job(self, request: Request) -> tuple[QueueEndpoint, Job] | Response:
        ep = self._endpoint(request)
        if isinstance(ep, Response):
            return ep
        job_id = request.path_params["job_id"]
        job = self.engine.get(ep, job_id)
        if job is None:
            return self._job_not_found(ep, job_id)
        return ep, job

    @staticmethod
    def _job_not_found(ep: QueueEndpoint, job_id: str) -> Response:
        return error_response(
            404, "job not found", f"no job {job_id} on {ep.id} (unknown, expired or purged)"
        )

    @staticmethod
    async def _read_body(request: Request, limit: int) -> bytes | Response:
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            return error_response(413, "Payload Too Large", f"the limit is {limit} bytes")
        body = await request.body()
        if len(body) > limit:
            return error_response(413, "Payload Too Large", f"the limit is {limit} bytes")
        return body

    @staticmethod
    def _wait_ms(request: Request, default: int, bounds: tuple[int, int]) -> int | Response:
        raw = request.query_params.get("wait")
        if raw is None or raw == "":
            return default
        try:
            value = int(float(raw))
        except ValueError:
            return error_response(400, f"wait must be a number of milliseconds, got {raw!r}")
        return min(bounds[1], max(bounds[0], value))

    async def _submit(self, request: Request, *, sync: bool, limit: int) -> Job | Response:
        ep = self._endpoint(request)
        if isinstance(ep, Response):
            return ep
        raw = await self._read_body(request, limit)
        if isinstance(raw, Response):
            return raw
        parsed = parse_submission(raw)
        if isinstance(parsed, Response):
            return parsed
        return self.engine.submit(ep, sync=sync, **parsed)

    # -- queue endpoints --

    async def run(self, request: Request) -> Response:
        job = await self._submit(request, sync=False, limit=RUN_BODY_LIMIT)
        if isinstance(job, Response):
            return job
        # Runpod answers IN_QUEUE even when a worker picks the job up at once.
        return JSONResponse({"id": job.id, "status": "IN_QUEUE"})

    async def runsync(self, request: Request) -> Response:
        wait_ms = self._wait_ms(request, RUNSYNC_WAIT_DEFAULT_MS, RUNSYNC_WAIT_RANGE_MS)
        if isinstance(wait_ms, Response):
            return wait_ms
        job = await self._submit(request, sync=True, limit=RUNSYNC_BODY_LIMIT)
        if isinstance(job, Response):
            return job
        await self.engine.wait_settled(job, wait_ms / 1000)
        # Whether or not it finished: 200 with the id, so the client can go on polling.
        return JSONResponse(self.engine.answer(job))

    async def status(self, request: Request) -> Response:
        found = self._job(request)
        if isinstance(found, Response):
            return found
        return JSONResponse(self.engine.answer(found[1]))

    async def status_sync(self, request: Request) -> Response:
        wait_ms = self._wait_ms(request, STATUS_SYNC_WAIT_DEFAULT_MS, STATUS_SYNC_WAIT_RANGE_MS)
        if isinstance(wait_ms, Response):
            return wait_ms
        found = self._job(request)
        if isinstance(found, Response):
            return found
        ep, job = found
        await self.engine.wait_settled(job, wait_ms / 1000)
        if job.gone:
            return self._job_not_found(ep, job.id)
        return JSONResponse(self.engine.answer(job))

    async def stream(self, request: Request) -> Response:
        found = self._job(request)
        if isinstance(found, Response):
            return found
        job = found[1]
        chunks = [{"output": chunk} for chunk in self.engine.take_stream(job)]
        return JSONResponse({"id": job.id, "status": job.status, "stream": chunks})

    async def cancel(self, request: Request) -> Response:
        found = self._job(request)
        if isinstance(found, Response):
            return found
        ep, job = found
        self.engine.cancel(ep, job)  # a terminal job keeps its status
        return JSONResponse({"id": job.id, "status": job.status})

    async def retry(self, request: Request) -> Response:
        found = self._job(request)
        if isinstance(found, Response):
            return found
        ep, job = found
        try:
            self.engine.retry(ep, job)
        except ValueError as exc:
            return error_response(400, str(exc))
        return JSONResponse({"id": job.id, "status": "IN_QUEUE"})

    async def purge_queue(self, request: Request) -> Response:
        ep = self._endpoint(request)
        if isinstance(ep, Response):
            return ep
        return JSONResponse({"removed": self.engine.purge(ep), "status": "completed"})

    async def health(self, request: Request) -> Response:
        ep = self._endpoint(request)
        if isinstance(ep, Response):
            return ep
        return JSONResponse(self.engine.health(ep))

    # -- account and load-balanced endpoints --

    async def listing(self, request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        endpoints = []
        for demo in DEMO_ENDPOINTS:
            if demo.kind == "queue":
                root = f"{base}/v2/{demo.id}"
                urls = {
                    "base": root,
                    "run": f"{root}/run",
                    "runsync": f"{root}/runsync",
                    "health": f"{root}/health",
                }
                kind = "QUEUE"
            else:
                root = f"{base}/lb/{demo.id}"
                urls = {"base": root, "ping": f"{root}/ping"}
                kind = "LOAD_BALANCER"
            endpoints.append(
                {
                    "id": demo.id,
                    "name": demo.id,
                    "type": kind,
                    "title": demo.title,
                    "requestUrls": urls,
                    "workers": {"min": 0, "max": self.config.workers},
                }
            )
        return JSONResponse({"endpoints": endpoints})

    async def load_balanced(self, request: Request) -> Response:
        endpoint_id = request.path_params["endpoint_id"]
        path = "/" + request.path_params.get("path", "")
        if endpoint_id not in LB_ROUTES:
            hint = (
                f"{endpoint_id} is a queue endpoint: use /v2/{endpoint_id}/run"
                if endpoint_id in self.engine.endpoints
                else f"no load-balanced endpoint {endpoint_id!r}; the sandbox has "
                + ", ".join(LB_ROUTES)
            )
            return error_response(404, "endpoint not found", hint)
        body = await self._read_body(request, LB_BODY_LIMIT)
        if isinstance(body, Response):
            return body
        method = "GET" if request.method == "HEAD" else request.method
        reply = lb_reply(endpoint_id, method, path, body)
        if reply.raw is not None:
            return Response(
                reply.raw, reply.status, headers=reply.headers, media_type="application/json"
            )
        return JSONResponse(reply.body, reply.status, headers=reply.headers)


def parse_submission(raw: bytes) -> dict[str, Any] | Response:
    """Check a /run or /runsync body; answers Engine.submit's keyword arguments or a 400."""

    # The message goes in "error" itself: it is what a client shows the user.
    def bad(message: str) -> Response:
        return error_response(400, message)

    if not raw.strip():
        return bad('the body is empty: send {"input": {...}}')
    try:
        body = parse_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        return bad(f"the body is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return bad(f'the body must be a JSON object like {{"input": {{...}}}}, not {_kind(body)}')
    if "input" not in body:
        return bad('the body has no "input": wrap the payload as {"input": {...}}')
    job_input = body["input"]
    if not isinstance(job_input, dict):
        return bad(f'"input" must be a JSON object, not {_kind(job_input)}')
    if not job_input:
        # Runpod drops an empty input and the worker fails with "Job has missing field(s)".
        return bad('"input" is empty: Runpod would drop it and the job would fail; add a field')
    webhook = body.get("webhook")
    if webhook is not None and not isinstance(webhook, str):
        return bad('"webhook" must be a URL string')
    policy = body.get("policy") or {}
    if not isinstance(policy, dict):
        return bad('"policy" must be an object like {"executionTimeout": 600000, "ttl": 86400000}')
    timeouts: dict[str, float] = {}
    for name, default in (
        ("executionTimeout", DEFAULT_EXECUTION_TIMEOUT_MS),
        ("ttl", DEFAULT_TTL_MS),
    ):
        value = policy.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            return bad(f'policy "{name}" must be a positive number of milliseconds')
        timeouts[name] = float(value)
    low_priority = policy.get("lowPriority", False)
    if not isinstance(low_priority, bool):
        return bad('policy "lowPriority" must be true or false')
    extras = {k: v for k, v in body.items() if k not in ("input", "webhook", "policy")}
    extras["policy"] = policy
    return {
        "job_input": job_input,
        "execution_timeout_ms": timeouts["executionTimeout"],
        "ttl_ms": timeouts["ttl"],
        "webhook": webhook,
        "extras": extras,
    }


def _kind(value: Any) -> str:
    names = {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}
    return names.get(type(value), "a number")


# ---- the application ---------------------------------------------------------------------


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    detail = f"no route {request.method} {request.url.path}"
    if exc.status_code == 405:
        detail = f"{request.url.path} does not accept {request.method}"
    return error_response(exc.status_code, str(exc.detail), detail, headers=exc.headers)


async def _server_error(request: Request, exc: Exception) -> Response:
    return error_response(500, "internal server error", f"{type(exc).__name__}: {exc}")


def create_app(config: SandboxConfig) -> Starlette:
    """The sandbox as an ASGI app; `app.state.engine` holds its jobs."""
    engine = Engine(
        QUEUE_HANDLERS,
        workers=config.workers,
        time_scale=config.time_scale,
        run_retention_s=config.run_retention_s,
        runsync_retention_s=config.runsync_retention_s,
    )
    api = SandboxApi(config, engine)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            engine.close()

    job_methods = ["GET", "POST"]  # Runpod's docs allow both for status, status-sync, stream
    any_method = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    v2 = "/v2/{endpoint_id}"
    routes = [
        # Declared first and without a trailing segment, so it never reads as an endpoint id.
        Route("/v2/serverless", api.listing, methods=["GET"]),
        Route(f"{v2}/run", api.run, methods=["POST"]),
        Route(f"{v2}/runsync", api.runsync, methods=["POST"]),
        Route(f"{v2}/status/{{job_id}}", api.status, methods=job_methods),
        Route(f"{v2}/status-sync/{{job_id}}", api.status_sync, methods=job_methods),
        Route(f"{v2}/stream/{{job_id}}", api.stream, methods=job_methods),
        Route(f"{v2}/cancel/{{job_id}}", api.cancel, methods=["POST"]),
        Route(f"{v2}/retry/{{job_id}}", api.retry, methods=["POST"]),
        Route(f"{v2}/purge-queue", api.purge_queue, methods=["POST"]),
        Route(f"{v2}/health", api.health, methods=["GET"]),
        Route("/lb/{endpoint_id}", api.load_balanced, methods=any_method),
        Route("/lb/{endpoint_id}/{path:path}", api.load_balanced, methods=any_method),
    ]
    endpoint_ids = frozenset(engine.endpoints) | frozenset(LB_ROUTES)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(Guard, config=config, endpoint_ids=endpoint_ids)],
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
        lifespan=lifespan,
    )
    app.state.engine = engine
    app.state.config = config
    return app
