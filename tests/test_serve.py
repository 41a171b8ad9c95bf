"""`flash-tui serve` end to end: headless Chromium opens the served app and receives the
endpoint sidebar over the page's terminal websocket (read through the DevTools protocol,
since the page draws the terminal on a canvas)."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ANSI = re.compile(r"\x1b\[[0-9;?<>=]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>]")

if CHROMIUM is None and os.environ.get("CI"):
    raise RuntimeError("CI must install Debian's chromium for the browser test (see .ci/run)")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listens on {port}")


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "XDG_CONFIG_HOME": str(tmp_path / "c"),
        "XDG_DATA_HOME": str(tmp_path / "d"),
    }
    env.pop("NO_COLOR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", "serve", "--demo", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def browser() -> Iterator[int]:
    port = free_port()
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.Popen(
            [
                CHROMIUM or "chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                f"--user-data-dir={profile}",
                f"--remote-debugging-port={port}",
                "--remote-debugging-address=127.0.0.1",
                "--window-size=1280,800",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_for_port(port, proc)
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


async def screen_text_seen_by_browser(devtools_port: int, url: str, want: list[str]) -> str:
    """Open ``url`` in the browser; return the terminal text it received once ``want`` shows."""
    import aiohttp

    async with aiohttp.ClientSession() as http:
        async with http.put(f"http://127.0.0.1:{devtools_port}/json/new?about:blank") as r:
            target = json.loads(await r.text())
        async with http.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as ws:
            ids = iter(range(1, 10_000))

            async def send(method: str, **params: object) -> None:
                await ws.send_json({"id": next(ids), "method": method, "params": params})

            await send("Network.enable")
            await send("Page.navigate", url=url)
            received = ""
            deadline = time.monotonic() + 45
            while time.monotonic() < deadline:
                try:
                    message = await ws.receive(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    break
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                event = json.loads(message.data)
                if event.get("method") != "Network.webSocketFrameReceived":
                    continue
                frame = event["params"]["response"]
                data = frame["payloadData"]
                if frame.get("opcode") == 2:  # binary: the app's terminal output
                    data = base64.b64decode(data).decode("utf-8", "replace")
                received += data
                text = ANSI.sub("", received)
                if all(w in text for w in want):
                    return text
            return ANSI.sub("", received)


def test_browser_sees_the_endpoint_sidebar(served: str, browser: int) -> None:
    want = ["Endpoints", "QUEUE", "echo", "sleepy", "LOAD-BALANCED"]
    text = asyncio.run(screen_text_seen_by_browser(browser, served, want))
    missing = [w for w in want if w not in text]
    assert not missing, f"the browser never got {missing}; it got {text[-500:]!r}"


def test_serve_is_loopback_by_default() -> None:
    from tui.__main__ import build_parser

    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
