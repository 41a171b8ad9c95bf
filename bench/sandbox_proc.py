"""The sandbox in its own process, for the benchmarks, with a few read-only extra routes.

The product's own sandbox app (``tui.sandbox.create_app``) served on this process's event
loop with ``start_sandbox``'s uvicorn settings (``uvicorn_server``), so its CPU never counts
against the client being measured. Extra routes, all behind the same API key, read the
engine's own records:

- ``POST /bench/ends`` ``{"ids": [...]}`` → for each job: status, and when it was queued,
  started and finished, on this machine's monotonic clock (``time.monotonic()``, the same
  clock in every process), so a client can tell how late it saw each end;
- ``GET /bench/load`` → jobs queued and running, and this process's CPU seconds so far;
- ``POST /bench/reset`` → cancels every job not yet finished (between two measurements).

The API key comes from ``$BENCH_SANDBOX_KEY`` (not the command line, where ``ps`` shows it).
Prints ``{"port": N}`` on stdout once it listens; stops when its stdin closes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tui.sandbox import SandboxConfig, create_app
from tui.sandbox.engine import Engine
from tui.sandbox.server import uvicorn_server


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def add_bench_routes(app: object, engine: Engine) -> None:
    async def ends(request: Request) -> JSONResponse:
        ids = (await request.json()).get("ids", [])
        found: dict[str, object] = {}
        for job_id in ids:
            for ep in engine.endpoints.values():
                job = ep.jobs.get(job_id)
                if job is not None:
                    found[job_id] = [job.status, job.queued_at, job.started_at, job.finished_at]
                    break
        return JSONResponse({"ends": found})

    async def load(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "in_queue": sum(ep.in_queue for ep in engine.endpoints.values()),
                "in_progress": sum(ep.in_progress for ep in engine.endpoints.values()),
                "cpu_s": cpu_seconds(),
            }
        )

    async def reset(request: Request) -> JSONResponse:
        cancelled = 0
        for ep in engine.endpoints.values():
            for job in list(ep.jobs.values()):
                if not job.terminal:
                    engine.cancel(ep, job)
                    cancelled += 1
        return JSONResponse({"cancelled": cancelled})

    routes = app.router.routes  # type: ignore[attr-defined]
    routes.insert(0, Route("/bench/reset", reset, methods=["POST"]))
    routes.insert(0, Route("/bench/ends", ends, methods=["POST"]))
    routes.insert(0, Route("/bench/load", load, methods=["GET"]))


async def serve(config: SandboxConfig) -> None:
    app = create_app(config)
    add_bench_routes(app, app.state.engine)
    # A deeper listen backlog than the app's: 10,000 clients' requests may arrive at once.
    server = uvicorn_server(app, config, backlog=4096)
    loop = asyncio.get_running_loop()
    serving = asyncio.ensure_future(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            return
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)
    # The parent closes our stdin (or dies): time to go.
    await loop.run_in_executor(None, sys.stdin.read)
    app.state.engine.close()
    server.should_exit = True
    await serving


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    config = SandboxConfig(
        port=args.port, api_key=os.environ["BENCH_SANDBOX_KEY"], workers=args.workers
    )
    asyncio.run(serve(config))


if __name__ == "__main__":
    main()
