"""Entry point: parse the command line, then start the app, the sandbox or a CLI command.

Kept light: the first screen's start-up time counts, so heavy modules load where used.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

FLASH_PROJECT_HELP = (
    "a Flash project directory whose .flash/flash_manifest.json names endpoints "
    "(default: the working directory's, when there is one)"
)


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
    parser.add_argument(
        "--flash-project",
        type=Path,
        metavar="PATH",
        default=None,
        help=FLASH_PROJECT_HELP,
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
    sv = sub.add_parser(
        "serve",
        help="serve the app to a browser (textual-serve), for demos to teammates",
        description="Serve the app to a web browser with textual-serve: each browser tab "
        "gets its own app. Loopback by default.",
    )
    sv.add_argument("--host", default="127.0.0.1", help="address to listen on (default loopback)")
    sv.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sv.add_argument("--demo", action="store_true", help="serve the app on the demo sandbox")
    add_commands(sub)
    for name, command in sub.choices.items():
        if name not in ("sandbox", "serve"):
            # Also accepted after the command; SUPPRESS keeps a value given before it.
            command.add_argument(
                "--flash-project",
                type=Path,
                metavar="PATH",
                default=argparse.SUPPRESS,
                help=FLASH_PROJECT_HELP,
            )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    project = getattr(args, "flash_project", None)
    if project is not None:
        project = args.flash_project = project.expanduser()
        if not project.exists():
            parser.error(f"--flash-project: {project} does not exist")
    if args.command == "sandbox":
        return run_sandbox(args, parser)
    if args.command == "serve":
        from .serve import serve

        config = str(args.config) if args.config else None
        return serve(args.host, args.port, args.demo, config, args.flash_project)
    if args.command is not None:
        from .cli import run_command

        return run_command(args)
    from .ui.app import run_app

    return run_app(demo=args.demo, config_path=args.config, flash_project=args.flash_project)


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
