"""Load-balanced calls: flash-tui's ``EndpointClient.call`` against bare httpx, in one process.

The same ``POST /echo`` with the same small JSON body to the sandbox's load-balanced ``api``
endpoint, one call at a time (a person's or a script's calls), in alternating rounds so both
see the same server and machine conditions. Reports the wall time and the client CPU time of
each, and their ratios. Prints one JSON object. The API key comes from ``$BENCH_SANDBOX_KEY``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import httpx

from tui.api.client import ClientPool, EndpointClient
from tui.api.models import Endpoint, EndpointKind

BODY = {"text": "Hello from flash-tui", "n": 1, "tags": ["a", "b", "c"]}


async def run(base: str, calls: int, rounds: int) -> dict[str, Any]:
    key = os.environ["BENCH_SANDBOX_KEY"]
    url = f"{base}/lb/api"
    pool = ClientPool()
    flash = EndpointClient(Endpoint("api", EndpointKind.LB, url, api_key=key), pool=pool)
    bare = httpx.AsyncClient(headers={"Authorization": f"Bearer {key}"})

    async def with_flash() -> None:
        answer = await flash.call("POST", "echo", BODY)
        assert answer.status_code == 200, answer.text

    async def with_httpx() -> None:
        response = await bare.post(f"{url}/echo", json=BODY)
        assert response.status_code == 200, response.text
        response.json()

    async def batch(call: Callable[[], Awaitable[None]], n: int) -> tuple[float, float]:
        wall, cpu = time.perf_counter(), time.process_time()
        for _ in range(n):
            await call()
        return time.perf_counter() - wall, time.process_time() - cpu

    try:
        await batch(with_flash, 50)  # connections open, code warm
        await batch(with_httpx, 50)
        totals = {"flash": [0.0, 0.0], "httpx": [0.0, 0.0]}
        per_round = max(1, calls // rounds)
        for i in range(rounds):
            order = [("flash", with_flash), ("httpx", with_httpx)]
            if i % 2:
                order.reverse()
            for name, call in order:
                wall, cpu = await batch(call, per_round)
                totals[name][0] += wall
                totals[name][1] += cpu
    finally:
        await pool.aclose()
        await bare.aclose()
    n = per_round * rounds
    return {
        "lb_calls": n,
        "lb_flash_ms_per_call": totals["flash"][0] / n * 1000,
        "lb_httpx_ms_per_call": totals["httpx"][0] / n * 1000,
        "lb_flash_cpu_ms_per_call": totals["flash"][1] / n * 1000,
        "lb_httpx_cpu_ms_per_call": totals["httpx"][1] / n * 1000,
        "lb_overhead_ratio": totals["flash"][0] / totals["httpx"][0],
        "lb_cpu_ratio": totals["flash"][1] / totals["httpx"][1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.base, args.calls, args.rounds))))


if __name__ == "__main__":
    main()
