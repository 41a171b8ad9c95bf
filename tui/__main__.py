"""Entry point: parse the command line, then start the app, the sandbox or a CLI command.

Kept light: the first screen's start-up time counts, so heavy modules load where used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .cli import add_commands

    parser = argparse.ArgumentParser(
        prog="flash-tui",
        description="Call and watch Runpod serverless and Flash endpoints. "
        "With no command, opens the terminal app.",
    )
    parser.add_argument("--version", action="version", version=f"flash-tui {__version__}")
    parser.add_argument(
        "--demo",
        action="store_true",
        help="start the embedded sandbox in-process and open the app on its demo endpoints",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="PATH",
        help="config file (default: $FLASH_TUI_CONFIG or the platform's user config dir)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sb = sub.add_parser(
        "sandbox",
        help="run a local server that speaks the Runpod API, with demo endpoints",
        description="Run a local server that speaks the Runpod API (queue and load-balanced) "
        "with demo endpoints: echo, sleepy, flaky, streamer (queue) and api (load-balanced).",
    )
    sb.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    sb.add_argument("--port", type=int, default=8787, help="port (default 8787; 0 picks one)")
    sb.add_argument(
        "--api-key",
        metavar="KEY",
        help="the key clients must send (default: $RUNPOD_API_KEY, else 'sandbox')",
    )
    sb.add_argument(
        "--workers", type=int, default=2, metavar="N", help="workers per queue endpoint (default 2)"
    )
    sb.add_argument(
        "--latency",
        type=float,
        default=0.0,
        metavar="MS",
        help="delay added to every request, in ms",
    )
    sb.add_argument(
        "--error-rate",
        type=float,
        default=0.0,
        metavar="P",
        help="fraction of requests answered 500/502 (some with HTML bodies)",
    )
    sb.add_argument(
        "--rate-limit",
        type=int,
        default=0,
        metavar="N",
        help="answer 429 past N requests per 10 s per endpoint",
    )
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "sandbox":
        return run_sandbox(args, parser)
    if args.command is not None:
        from .cli import run_command

        return run_command(args)
    from .ui.app import run_app

    return run_app(demo=args.demo, config_path=args.config)


def run_sandbox(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import os

    if not 0 <= args.error_rate <= 1:
        parser.error("--error-rate must be between 0 and 1")
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    from .sandbox import SandboxConfig, serve_forever

    key = args.api_key or os.environ.get("RUNPOD_API_KEY") or "sandbox"
    config = SandboxConfig(
        host=args.host,
        port=args.port,
        api_key=key,
        workers=args.workers,
        latency_ms=args.latency,
        error_rate=args.error_rate,
        rate_limit=args.rate_limit,
    )
    source = "--api-key" if args.api_key else "$RUNPOD_API_KEY"
    try:
        serve_forever(config, key_source=source)
    except KeyboardInterrupt:
        pass
    except OSError as err:
        print(f"error: cannot serve on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
        return 3
    except RuntimeError as err:  # start_sandbox's "could not start" (e.g. the port is taken)
        print(f"error: {err}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
