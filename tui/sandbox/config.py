"""Settings of one sandbox server."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_API_KEY = "sandbox"


@dataclass
class SandboxConfig:
    host: str = "127.0.0.1"
    port: int = 8787  # 0 picks a free port
    api_key: str = DEFAULT_API_KEY
    workers: int = 2  # per queue endpoint
    latency_ms: float = 0
    error_rate: float = 0.0  # fraction of endpoint requests answered 500 or 502
    rate_limit: int = 0  # requests per rolling 10 s per endpoint; 0 = unlimited
    time_scale: float = 1.0  # multiplies demo job durations (tests go faster with 0.2)
    seed: int | None = None  # for fault injection, so a failing run can be replayed
    # How long results stay readable after a job ends, as on Runpod.
    run_retention_s: float = 1800.0
    runsync_retention_s: float = 60.0
