"""The async client for Runpod endpoints: queue (cloud), load-balanced, and local worker.

One ``httpx.AsyncClient`` per origin (``ClientPool``) so every call to a host reuses its
connections. Every failure becomes a typed ``FlashError`` with a message a person understands.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx

from . import errors as E
from .models import (
    TERMINAL_STATUSES,
    Endpoint,
    EndpointKind,
    Health,
    RouteAnswer,
)
from .payload import check_input, check_size, encode

USER_AGENT = "flash-tui/0.1"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=10.0)
#: Runpod caps ``/runsync?wait=`` and ``/status-sync?wait=`` (ms).
MAX_RUNSYNC_WAIT_MS = 300_000
MAX_STATUS_SYNC_WAIT_MS = 90_000
DEFAULT_RUNSYNC_WAIT_MS = 90_000
#: The local worker server runs the handler inside the status call: allow it time.
WORKER_TIMEOUT = httpx.Timeout(3600.0, connect=10.0)


class ClientPool:
    """One shared ``httpx.AsyncClient`` per origin (scheme, host, port), and a few small ones
    per origin for long-polls.

    A long-poll holds its connection for seconds. httpcore 1.0's pool does work proportional
    to connections x idle connections each time a request starts or ends (encode/httpcore#1035),
    so 100+ held long-polls in one pool doubled a polling client's CPU. Spread over shards of
    ``shard_size`` connections, the same long-polls cost a shard's share of that.
    """

    def __init__(
        self, max_connections: int = 100, long_poll_shards: int = 8, shard_size: int = 16
    ) -> None:
        self._clients: dict[tuple[str, int], httpx.AsyncClient] = {}
        self._limits = httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        )
        self._shard_limits = httpx.Limits(
            max_connections=shard_size, max_keepalive_connections=shard_size
        )
        self.long_poll_shards = max(1, long_poll_shards)
        self._busy: dict[tuple[str, int], int] = {}

    @staticmethod
    def _origin(url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"

    def _client(self, key: tuple[str, int]) -> httpx.AsyncClient:
        client = self._clients.get(key)
        if client is None or client.is_closed:
            client = httpx.AsyncClient(
                timeout=DEFAULT_TIMEOUT,
                limits=self._limits if key[1] < 0 else self._shard_limits,
                headers={"User-Agent": USER_AGENT},
                follow_redirects=False,
            )
            self._clients[key] = client
        return client

    def get(self, url: str) -> httpx.AsyncClient:
        return self._client((self._origin(url), -1))

    @contextlib.contextmanager
    def long_poll(self, url: str) -> Iterator[httpx.AsyncClient]:
        """A client for one long-poll: the origin's least busy shard."""
        origin = self._origin(url)
        shard = min(range(self.long_poll_shards), key=lambda i: self._busy.get((origin, i), 0))
        key = (origin, shard)
        self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield self._client(key)
        finally:
            self._busy[key] -= 1

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


# --- turning httpx outcomes into FlashErrors ----------------------------------------------

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _detail_of(response: httpx.Response) -> str:
    """The server's own words about an error, from JSON, problem+json or an HTML page."""
    text = response.text
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        parts = []
        for key in ("error", "title", "message", "detail"):
            value = data.get(key)
            if value and str(value) not in parts:
                parts.append(value if isinstance(value, str) else json.dumps(value))
        if parts:
            return _short(": ".join(parts))
    if "<html" in text[:500].lower() or "<!doctype" in text[:200].lower():
        match = _TITLE.search(text)
        return _short(match.group(1) if match else _TAGS.sub(" ", text), 160) + " (HTML page)"
    return _short(text)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def error_for(response: httpx.Response, job_id: str | None = None) -> E.ApiError:
    code = response.status_code
    detail = _detail_of(response)
    where = f"{response.request.method} {response.request.url.path}"
    tail = f" — {detail}" if detail else ""
    body = response.text[:2000]
    if code in (401, 403):
        return E.Unauthorized(
            f"Unauthorized ({code}): the API key was refused. Check RUNPOD_API_KEY{tail}.",
            code,
            detail,
            body,
        )
    if code == 404:
        if job_id:
            msg = (
                f"Job {job_id} not found (404): it has expired (past its ttl or the "
                "result's retention time) or the endpoint never had it."
            )
        else:
            msg = f"Not found (404): {where}. Check the endpoint id and the path{tail}."
        return E.NotFound(msg, code, detail, body)
    if code == 429:
        after = _retry_after(response)
        when = f"retry after {after:g} s" if after is not None else "slow down and retry"
        return E.RateLimited(
            f"Rate limited (429): too many requests to {where}; {when}.",
            code,
            detail,
            body,
            retry_after=after,
        )
    if code in (400, 422) or 400 <= code < 500:
        return E.BadRequest(
            f"Request refused ({code}){tail or ' with no reason given'}.", code, detail, body
        )
    return E.ServerError(
        f"Server error ({code} {response.reason_phrase}) on {where}{tail}.", code, detail, body
    )


def transport_error(exc: httpx.HTTPError, url: str) -> E.TransportError:
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout):
        return E.ConnectionRefused(f"Timed out connecting to {origin}: is the host reachable?")
    if isinstance(exc, httpx.TimeoutException):
        return E.RequestTimeout(f"{origin} did not answer in time ({type(exc).__name__}).")
    if isinstance(exc, httpx.ConnectError):
        lowered = text.lower()
        if any(
            s in lowered
            for s in (
                "name or service",
                "nodename",
                "getaddrinfo",
                "name resolution",
                "no address",
                "-2]",
                "-3]",
                "-5]",
            )
        ):
            return E.DnsFailure(f"Cannot resolve host {parts.hostname!r}: check the URL.")
        if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
            return E.ConnectionRefused(f"TLS handshake with {origin} failed: {_short(text, 160)}")
        return E.ConnectionRefused(
            f"Cannot connect to {origin}: connection refused. Is the server running?"
        )
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return E.ConnectionRefused(f"Not a usable URL: {url} ({_short(text, 120)})")
    return E.ConnectionLost(f"The connection to {origin} broke: {_short(text, 160)}")


def _json_object(response: httpx.Response, what: str) -> dict[str, Any]:
    try:
        data = response.json()
    except ValueError:
        raise E.BadAnswer(
            f"{what}: the server answered {response.status_code} with something that is not "
            f"JSON: {_short(response.text, 120)!r}"
        ) from None
    if not isinstance(data, dict):
        raise E.BadAnswer(f"{what}: expected a JSON object, got {type(data).__name__}.")
    return data


# --- dialects -----------------------------------------------------------------------------


class Dialect:
    """How an operation maps to (method, path) for a kind of endpoint."""

    name = "queue"
    missing: dict[str, str] = {}

    def route(self, op: str, job_id: str = "") -> tuple[str, str]:
        if op in self.missing:
            raise E.Unsupported(self.missing[op])
        return _QUEUE_ROUTES[op][0], _QUEUE_ROUTES[op][1].format(id=job_id)


_QUEUE_ROUTES = {
    "run": ("POST", "run"),
    "runsync": ("POST", "runsync"),
    "status": ("GET", "status/{id}"),
    "status-sync": ("GET", "status-sync/{id}"),
    "stream": ("GET", "stream/{id}"),
    "cancel": ("POST", "cancel/{id}"),
    "retry": ("POST", "retry/{id}"),
    "purge-queue": ("POST", "purge-queue"),
    "health": ("GET", "health"),
}

_WORKER_WHY = "the worker SDK's local test server (--rp_serve_api) has no /{op} route"


class WorkerDialect(Dialect):
    """``python handler.py --rp_serve_api``: routes at the root, POST for status and stream."""

    name = "worker"
    missing = {
        op: f"Not available on a local worker: {_WORKER_WHY.format(op=op)}."
        for op in ("cancel", "retry", "purge-queue", "health", "status-sync")
    }

    def route(self, op: str, job_id: str = "") -> tuple[str, str]:
        method, path = super().route(op, job_id)
        return ("POST" if op in ("status", "stream") else method), path


class LoadBalancedDialect(Dialect):
    name = "lb"
    missing = {
        op: f"A load-balanced endpoint has no job queue (no /{op}): call its routes instead."
        for op in _QUEUE_ROUTES
    }


DIALECTS: dict[EndpointKind, Dialect] = {
    EndpointKind.QUEUE: Dialect(),
    EndpointKind.WORKER: WorkerDialect(),
    EndpointKind.LB: LoadBalancedDialect(),
}


#: Operations a kind of endpoint lacks, with the reason (for disabled buttons).
def unsupported_reason(kind: EndpointKind, op: str) -> str | None:
    return DIALECTS[kind].missing.get(op)


# --- the client ---------------------------------------------------------------------------


class EndpointClient:
    """Talks to one endpoint in its dialect."""

    def __init__(
        self, endpoint: Endpoint, api_key: str | None = None, pool: ClientPool | None = None
    ) -> None:
        self.endpoint = endpoint
        self._api_key = endpoint.api_key or api_key
        self._own_pool = pool is None
        self.pool = pool or ClientPool()
        self.dialect = DIALECTS[endpoint.kind]
        #: None until known; False once the server showed it has no /status-sync.
        self.status_sync_supported: bool | None = (
            None if endpoint.kind is EndpointKind.QUEUE else False
        )

    async def aclose(self) -> None:
        if self._own_pool:
            await self.pool.aclose()

    async def __aenter__(self) -> EndpointClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # -- plumbing

    def _headers(self, has_body: bool) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if has_body:
            headers["Content-Type"] = "application/json"
        if self._api_key and self.endpoint.kind is not EndpointKind.WORKER:
            if not self.endpoint.key_is_safe_to_send:
                host = urlsplit(self.endpoint.url).hostname
                raise E.UsageError(
                    f"Refusing to send the API key over plain http to {host}: use https, or "
                    "allow it for this endpoint (allow_insecure = true in the config)."
                )
            headers["Authorization"] = f"Bearer {self._api_key}"
        return headers

    def url_for(self, path: str) -> str:
        return f"{self.endpoint.url}/{path.lstrip('/')}" if path.strip("/") else self.endpoint.url

    async def _send(
        self,
        method: str,
        path: str,
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
        extra_headers: dict[str, str] | None = None,
        long_poll: bool = False,
    ) -> tuple[httpx.Response, float]:
        url = self.url_for(path)
        headers = self._headers(content is not None)
        if extra_headers:
            headers.update(extra_headers)
        started = time.perf_counter()
        lease = (
            self.pool.long_poll(url) if long_poll else contextlib.nullcontext(self.pool.get(url))
        )
        with lease as client:
            try:
                response = await client.request(
                    method,
                    url,
                    content=content,
                    params=params,
                    headers=headers,
                    timeout=timeout
                    or (WORKER_TIMEOUT if self.dialect.name == "worker" else DEFAULT_TIMEOUT),
                )
            except httpx.HTTPError as exc:
                raise transport_error(exc, url) from None
        return response, time.perf_counter() - started

    async def _op(
        self,
        op: str,
        job_id: str = "",
        *,
        content: bytes | None = None,
        params: dict[str, Any] | None = None,
        timeout: httpx.Timeout | None = None,
        long_poll: bool = False,
    ) -> dict[str, Any]:
        method, path = self.dialect.route(op, job_id)
        response, _ = await self._send(
            method, path, content=content, params=params, timeout=timeout, long_poll=long_poll
        )
        if response.status_code >= 400:
            raise error_for(response, job_id or None)
        answer = _json_object(response, f"/{op}")
        if (
            self.dialect.name == "worker"
            and job_id
            and answer.get("status") == "FAILED"
            and answer.get("error") == "Job ID not found"
        ):
            # The local server forgets a job once it has returned its result.
            raise E.NotFound(
                f"Job {job_id} not found: the local worker server returns a result once and "
                "then forgets the job.",
                404,
            )
        return answer

    # -- queue operations

    async def submit(
        self,
        job_input: Any,
        *,
        sync: bool = False,
        wait_ms: int | None = None,
        webhook: str | None = None,
        policy: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """POST /run or /runsync. The answer always carries the job id."""
        op = "runsync" if sync else "run"
        self.dialect.route(op)  # raises Unsupported for load-balanced endpoints
        check_input(job_input)
        body: dict[str, Any] = {"input": job_input}
        if webhook:
            body["webhook"] = webhook
        if policy:
            body["policy"] = policy
        data = encode(body)
        check_size(data, op)
        params = None
        timeout = None
        if sync and self.dialect.name == "queue":
            wait = min(max(wait_ms or DEFAULT_RUNSYNC_WAIT_MS, 1000), MAX_RUNSYNC_WAIT_MS)
            params = {"wait": wait}
            timeout = httpx.Timeout(wait / 1000 + 30, connect=10.0)
        try:
            answer = await self._op(op, content=data, params=params, timeout=timeout)
        except (E.TransportError, E.ServerError) as err:
            if isinstance(err, E.TransportError) and not err.maybe_sent:
                raise
            raise E.OutcomeUnknown(
                f"The /{op} request may have reached the server, but no answer came back "
                f"({err}). It was not sent again: check the endpoint's jobs before resending.",
                err,
            ) from None
        if not isinstance(answer.get("id"), str) or not answer["id"]:
            raise E.BadAnswer(f"/{op} answered without a job id: {_short(json.dumps(answer))}")
        return answer

    async def status(self, job_id: str) -> dict[str, Any]:
        return await self._op("status", job_id)

    async def status_sync(self, job_id: str, wait_ms: int = 30_000) -> dict[str, Any]:
        """Long-poll ``/status-sync``; falls back to ``/status`` where the server lacks it."""
        if self.status_sync_supported is False:
            return await self.status(job_id)
        wait = min(max(int(wait_ms), 1000), MAX_STATUS_SYNC_WAIT_MS)
        try:
            answer = await self._op(
                "status-sync",
                job_id,
                params={"wait": wait},
                timeout=httpx.Timeout(wait / 1000 + 15, connect=10.0),
                long_poll=True,
            )
        except (E.NotFound, E.BadRequest) as err:
            if err.status_code not in (404, 405):
                raise
            answer = await self.status(job_id)  # a 404 here means the job is gone
            self.status_sync_supported = False
            return answer
        self.status_sync_supported = True
        return answer

    async def stream(self, job_id: str) -> dict[str, Any]:
        """One ``/stream`` call: the chunks new since the last one."""
        return await self._op("stream", job_id)

    async def iter_stream(
        self,
        job_id: str,
        interval: float = 0.5,
        max_failures: int = 8,
        state: dict[str, Any] | None = None,
    ) -> AsyncIterator[Any]:
        """Yield each chunk's output until the job is final and nothing new came.

        ``state["status"]`` follows the job's last status, for callers that need it.
        """
        state = {} if state is None else state
        while True:
            answer = await self._with_retries(lambda: self.stream(job_id), max_failures)
            state["status"] = answer.get("status")
            if answer.get("error"):
                state["error"] = answer["error"]
            chunks = answer.get("stream")
            if isinstance(chunks, dict):
                chunks = [chunks]
            if not isinstance(chunks, list):
                chunks = []
            for chunk in chunks:
                yield chunk.get("output", chunk) if isinstance(chunk, dict) else chunk
            if str(answer.get("status")) in TERMINAL_STATUSES and not chunks:
                return
            if self.dialect.name == "worker" and str(answer.get("status")) in TERMINAL_STATUSES:
                return  # the local server hands every chunk over in one answer
            if not chunks:
                await asyncio.sleep(interval)

    async def cancel(self, job_id: str) -> dict[str, Any]:
        return await self._op("cancel", job_id)

    async def retry(self, job_id: str) -> dict[str, Any]:
        return await self._op("retry", job_id)

    async def purge_queue(self) -> dict[str, Any]:
        return await self._op("purge-queue")

    async def health(self) -> Health:
        return Health.from_answer(await self._op("health"))

    async def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        on_answer: Callable[[dict[str, Any]], None] | None = None,
        max_failures: int = 10,
    ) -> dict[str, Any]:
        """Poll until the job is final. Transport trouble is retried with backoff.

        Uses ``/status-sync`` where the server has it (one request per job in most cases),
        else ``/status`` at 0.25 s growing ×1.5 to 5 s.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = 0.25
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise E.RequestTimeout(
                    f"Job {job_id} did not finish within {timeout:g} s; it is still on the "
                    "server: follow it with `flash-tui status`."
                )
            wait_ms = 30_000 if remaining is None else int(min(remaining, 30) * 1000)

            def ask(wait_ms: int = max(wait_ms, 1000)) -> Awaitable[dict[str, Any]]:
                if self.status_sync_supported is not False:
                    return self.status_sync(job_id, wait_ms=wait_ms)
                return self.status(job_id)

            answer = await self._with_retries(ask, max_failures)
            if on_answer is not None:
                on_answer(answer)
            if str(answer.get("status")) in TERMINAL_STATUSES:
                return answer
            if self.status_sync_supported is False:
                await asyncio.sleep(interval)
                interval = min(interval * 1.5, 5.0)

    # -- load-balanced routes (and any raw route)

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
    ) -> RouteAnswer:
        """Any method on ``{url}/{path}`` with a direct JSON body; keeps the whole answer."""
        method = method.upper()
        content = None
        if body is not None:
            content = encode(body)
            check_size(content, "lb")
        response, elapsed = await self._send(
            method,
            path,
            content=content,
            extra_headers=headers,
            timeout=httpx.Timeout(330.0, connect=10.0),  # the balancer allows 5.5 min
        )
        text = response.text
        parsed: Any = None
        is_json = False
        if text.strip():
            ctype = response.headers.get("content-type", "")
            if "json" in ctype or text.lstrip()[:1] in ("{", "["):
                try:
                    parsed, is_json = json.loads(text), True
                except ValueError:
                    pass
        return RouteAnswer(
            method=method,
            url=str(response.request.url),
            status_code=response.status_code,
            reason=response.reason_phrase,
            headers=list(response.headers.multi_items()),
            text=text,
            elapsed_s=elapsed,
            size=len(response.content),
            json=parsed,
            is_json=is_json,
        )

    async def ping(self) -> RouteAnswer:
        return await self.call("GET", "ping")

    @staticmethod
    async def _with_retries(
        call: Callable[[], Awaitable[dict[str, Any]]], max_failures: int
    ) -> dict[str, Any]:
        """A read-only call, retried with backoff through transient trouble (5xx, 429, …)."""
        failures = 0
        while True:
            try:
                return await call()
            except E.RETRYABLE as err:
                failures += 1
                if failures > max_failures:
                    raise
                await asyncio.sleep(_backoff(err, failures))


def _backoff(err: E.FlashError, failures: int) -> float:
    if isinstance(err, E.RateLimited) and err.retry_after is not None:
        return min(err.retry_after, 60.0)
    return min(0.5 * 2 ** (failures - 1), 10.0)
