"""The benchmark's harness still measures what it says (a small run, not a timed test):
every client sees every job end, and flash-tui's poller asks fewer questions than the SDK."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.run import Sandbox, track

pytestmark = pytest.mark.usefixtures("isolated")


def test_tracking_harness_sees_every_job_with_each_client(tmp_path: Path) -> None:
    sandbox = Sandbox(workers=100)
    try:
        rows = {client: track(sandbox, client, 30, tmp_path) for client in ("flash", "sdk")}
    finally:
        sandbox.stop()
    for client, row in rows.items():
        assert "failed" not in row, row
        assert row["jobs"] == 30 and row["unseen"] == 0, (client, row)
        assert row["errors"] == 0, (client, row)
        # Staleness is measured against the sandbox's own end times: never negative.
        assert row["staleness_p50_s"] >= 0, (client, row)
    assert rows["flash"]["status_sync_share"] > 0.5
    assert rows["flash"]["requests_per_job"] < rows["sdk"]["requests_per_job"] / 2
