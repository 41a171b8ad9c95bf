"""The headless commands: what the app does, for scripts and quick checks over SSH.

Results go to stdout as JSON, messages to stderr. Exit codes: 0 success; 1 the job ended
FAILED/CANCELLED/TIMED_OUT or the route answered an error status; 2 bad usage or bad input;
3 network or auth trouble.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shlex
import sys
from pathlib import Path
from typing import Any

from .api import errors as E
from .api.models import COMPLETED, TERMINAL_STATUSES, Endpoint, EndpointKind, guess_kind

EXIT_OK, EXIT_JOB_FAILED, EXIT_USAGE, EXIT_NETWORK = 0, 1, 2, 3


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    def endpoint_parser(name: str, help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.add_argument(
            "endpoint",
            metavar="ENDPOINT",
            help="a configured name, a Flash manifest's endpoint name, or a URL",
        )
        p.add_argument(
            "--kind",
            choices=[k.value for k in EndpointKind],
            help="the endpoint's kind when a URL does not say it (e.g. worker)",
        )
        return p

    p = endpoint_parser("run", "submit a job to a queue endpoint (or a local worker)")
    p.add_argument(
        "--input",
        "-i",
        dest="input",
        metavar="JSON",
        help="the input object: JSON text, @file.json, or - for stdin",
    )
    p.add_argument("--sync", action="store_true", help="use /runsync and wait for the result")
    p.add_argument("--wait", action="store_true", help="after /run, wait until the job ends")
    p.add_argument("--timeout", type=float, metavar="S", help="give up waiting after S seconds")
    for name, help in (
        ("status", "show a job's status"),
        ("cancel", "cancel a job"),
        ("retry", "retry a failed or timed-out job"),
        ("stream", "print a job's stream chunks as they come, one JSON line each"),
    ):
        endpoint_parser(name, help).add_argument("job_id", metavar="JOB_ID")
    endpoint_parser("health", "show an endpoint's queue and worker counts")
    endpoint_parser("purge", "remove the queued (not running) jobs of an endpoint")
    p = sub.add_parser(
        "jobs",
        help="list the job history (every job the app or CLI submitted)",
        description="List the job history, newest first.",
    )
    p.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    p.add_argument("--endpoint", metavar="NAME", help="only this endpoint's jobs")
    p.add_argument("--status", metavar="S", help="only jobs with this status (e.g. FAILED)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="at most N jobs")
    p = sub.add_parser(
        "endpoints",
        help="list the configured, Flash manifest and (with --discover) account endpoints",
        description="List the endpoints flash-tui knows: the configured ones, those of the "
        "Flash project's .flash/flash_manifest.json (the working directory's, or "
        "--flash-project's), and with --discover the ones of the API key's account.",
    )
    p.add_argument("--json", action="store_true", help="one JSON array instead of a table")
    p.add_argument(
        "--discover",
        action="store_true",
        help="also ask Runpod for the account's endpoints (needs the API key)",
    )
    p = endpoint_parser("call", "call a route of a load-balanced endpoint")
    p.add_argument("method", metavar="METHOD", help="GET, POST, PUT, PATCH, DELETE, ...")
    p.add_argument("path", metavar="PATH", help="e.g. /echo")
    p.add_argument(
        "--json",
        dest="json_body",
        metavar="JSON",
        help="the JSON body: text, @file.json, or - for stdin",
    )


COMMANDS = (
    "run",
    "status",
    "cancel",
    "retry",
    "stream",
    "health",
    "purge",
    "call",
    "jobs",
    "endpoints",
)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False), flush=True)


def read_text_arg(value: str) -> str:
    if value == "-":
        return sys.stdin.read()
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            return path.read_text(encoding="utf-8")
        except OSError as err:
            raise E.UsageError(f"Cannot read {path}: {err.strerror}") from None
        except UnicodeDecodeError:
            raise E.UsageError(f"{path} is not UTF-8 text") from None
    return value


def resolve_endpoint(
    ref: str, kind: str | None, config: Any, flash_project: Path | None = None
) -> Endpoint:
    """A configured endpoint's name, then a Flash manifest's (``flash_project`` or the working
    directory's ``.flash/``), then a URL whose shape (or ``--kind``) gives its kind."""
    found = config.endpoint(ref) if config is not None else None
    if found is not None:
        if kind and kind != found.kind.value:
            raise E.UsageError(f"{ref} is configured as {found.kind.value}, not {kind}")
        return found
    if not ref.startswith(("http://", "https://")):
        from .discovery import project_endpoints

        manifest, notes = project_endpoints(flash_project)
        for endpoint in manifest:
            if endpoint.name == ref:
                if kind and kind != endpoint.kind.value:
                    raise E.UsageError(
                        f"{ref} is {endpoint.kind.value} in the Flash manifest, not {kind}"
                    )
                return endpoint
        where = f" in {config.path}" if config is not None else ""
        known = ", ".join(e.name for e in manifest)
        also = f" (the Flash manifest has: {known})" if known else ""
        # The manifest's trouble, if it may be why: the file itself, or this very entry.
        notes = [n for n in notes if "resource " not in n or repr(ref) in n]
        trouble = "".join(f"\n  note: {note}" for note in notes)
        raise E.UsageError(
            f"Unknown endpoint {ref!r}: not a configured name{where}, not in a Flash "
            f"manifest{also}, and not a URL "
            "(e.g. https://api.runpod.ai/v2/ID or http://localhost:8000 --kind worker)." + trouble
        )
    guessed = EndpointKind(kind) if kind else guess_kind(ref)
    if guessed is None:
        raise E.UsageError(
            f"Cannot tell what kind of endpoint {ref} is: add --kind queue, lb or worker."
        )
    return Endpoint(name=ref, kind=guessed, url=ref, source="cli")


def job_exit_code(answer: dict[str, Any]) -> int:
    status = answer.get("status")
    if status == COMPLETED:
        return EXIT_OK
    if status in TERMINAL_STATUSES:
        return EXIT_JOB_FAILED
    return EXIT_OK  # not final yet (run without --wait, status of a running job)


def open_history() -> Any:
    """The history database, or None (with a warning) when it cannot be opened."""
    import sqlite3

    from .store import JobStore, default_history_path

    path = default_history_path()
    try:
        return JobStore(path)
    except (sqlite3.Error, OSError) as err:
        say(f"warning: job history unavailable ({path}: {err}); the job id is printed only")
        return None


def _remember(history: Any, action: str, *args: Any) -> None:
    """Write to the history; a failure is a warning, never the end of the command."""
    import sqlite3

    if history is None:
        return
    try:
        getattr(history, action)(*args)
    except sqlite3.Error as err:
        say(f"warning: job history not updated: {err}")


async def _run(args: argparse.Namespace, client: Any) -> int:
    from .api.models import Job
    from .api.payload import parse_input

    if args.input is None:
        raise E.UsageError('run needs --input, e.g. --input \'{"prompt": "hi"}\'')
    job_input = parse_input(read_text_arg(args.input))
    endpoint = client.endpoint
    history = open_history()
    placeholder = None
    if history is not None:
        try:
            placeholder = history.add_pending(
                endpoint.name, endpoint.url, endpoint.kind.value, job_input, args.sync
            )
        except Exception as err:
            say(f"warning: job history not written: {err}")
    try:
        answer = await _submit(client, job_input, args.sync)
    except E.FlashError as err:
        if placeholder is not None:
            unknown = isinstance(err, E.OutcomeUnknown)
            _remember(history, "fail_pending", endpoint.name, placeholder, str(err), unknown)
        raise
    job = Job(endpoint.name, answer["id"], input=job_input, sync=args.sync)
    job.apply(answer)
    # In the history before it is printed: a killed process never loses the id.
    if placeholder is not None:
        _remember(history, "resolve_pending", placeholder, job)
    job_id = job.id
    status = answer.get("status")
    if status in TERMINAL_STATUSES or not (args.sync or args.wait):
        emit(answer)
        return job_exit_code(answer)
    # Never lose the id: say it before waiting, so an interrupted wait can be picked up.
    kind = f" --kind {args.kind}" if args.kind else ""
    project = getattr(args, "flash_project", None)
    if project is not None and endpoint.source == "manifest":
        kind += f" --flash-project {shlex.quote(str(project))}"
    say(f"job {job_id} is {status}; waiting (flash-tui status{kind} {args.endpoint} {job_id})")

    def on_answer(update: dict[str, Any]) -> None:
        if job.apply(update):
            _remember(history, "save", job)

    try:
        final = await client.wait(job_id, timeout=args.timeout, on_answer=on_answer)
    except E.FlashError as err:
        if isinstance(err, E.NotFound):
            from .api.models import EXPIRED

            job.mark(EXPIRED, str(err))
            _remember(history, "save", job)
        say(f"error: {err}")
        say(f"job id: {job_id}")
        return err.exit_code
    emit(final)
    return job_exit_code(final)


async def _submit(client: Any, job_input: dict[str, Any], sync: bool) -> dict[str, Any]:
    """Submit; a 429 (not accepted) is retried after its Retry-After, a few times."""
    for attempt in range(4):
        try:
            answer: dict[str, Any] = await client.submit(job_input, sync=sync)
            return answer
        except E.RateLimited as err:
            if attempt == 3:
                raise
            delay = err.retry_after if err.retry_after is not None else 2.0 * (attempt + 1)
            say(f"rate limited; trying again in {delay:g} s")
            await asyncio.sleep(min(delay, 30.0))
    raise AssertionError("unreachable")


async def _call(args: argparse.Namespace, client: Any) -> int:
    from .api.payload import parse_json

    body = None
    if args.json_body is not None:
        body = parse_json(read_text_arg(args.json_body))
    answer = await client.call(args.method, args.path, body)
    say(
        f"{answer.status_code} {answer.reason} in {answer.elapsed_s * 1000:.0f} ms "
        f"({answer.size} bytes) {answer.method} {answer.url}"
    )
    if answer.is_json:
        emit(answer.json)
    elif answer.text:
        print(answer.text, flush=True)
    if answer.status_code in (401, 403):
        say("error: the API key was refused (check RUNPOD_API_KEY)")
        return EXIT_NETWORK
    return EXIT_OK if answer.ok else EXIT_JOB_FAILED


async def _stream(args: argparse.Namespace, client: Any) -> int:
    state: dict[str, Any] = {}
    async for chunk in client.iter_stream(args.job_id, state=state):
        print(json.dumps(chunk, ensure_ascii=False), flush=True)
    status = state.get("status")
    error = f": {state['error']}" if state.get("error") else ""
    say(f"stream ended: job {args.job_id} is {status}{error}")
    return job_exit_code({"status": status})


def _update_history(endpoint: str, job_id: str, answer: dict[str, Any]) -> None:
    """Keep a job the history knows up to date with what a command just learned."""
    history = open_history()
    if history is None:
        return
    found = [j for j in history.jobs(endpoint=endpoint) if j.id == job_id]
    if found and found[0].apply(answer):
        _remember(history, "save", found[0])


def list_jobs(args: argparse.Namespace) -> int:
    import time

    history = open_history()
    if history is None:
        return EXIT_USAGE
    jobs = history.jobs(endpoint=args.endpoint, status=args.status, limit=args.limit)
    if args.json:
        emit(
            [
                {
                    "endpoint": j.endpoint,
                    "id": j.id,
                    "status": j.status,
                    "note": j.note or None,
                    "submitted_at": j.submitted_at,
                    "ended_at": j.ended_at,
                    "delayTime": j.delay_ms,
                    "executionTime": j.execution_ms,
                    "workerId": j.worker_id,
                    "retries": j.retries,
                    "sync": j.sync,
                    "endpoint_url": j.endpoint_url,
                    "input": j.input,
                    "error": j.error,
                    "output_bytes": j.output_size,
                }
                for j in jobs
            ]
        )
        return EXIT_OK
    for j in jobs:
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(j.submitted_at))
        print(f"{when}  {j.status:<12} {j.endpoint:<16} {j.id}", flush=True)
    say(f"{len(jobs)} job(s) in {history.path}")
    return EXIT_OK


def endpoint_summary(endpoint: Endpoint) -> dict[str, Any]:
    """What ``flash-tui endpoints --json`` prints for one endpoint (never a key)."""
    return {
        "name": endpoint.name,
        "kind": endpoint.kind.value,
        "url": endpoint.url,
        "source": endpoint.source,
        "routes": [f"{r.method} {r.path}" for r in endpoint.routes],
    }


def list_endpoints(args: argparse.Namespace) -> int:
    """Configured, manifest and (``--discover``) account endpoints; what is known is always
    printed, and trouble with one source is said on stderr and sets the exit code."""
    from .config import find_key, load_config
    from .discovery import ManifestError, list_account_endpoints, load_manifest, manifest_path

    code = EXIT_OK
    config = load_config(getattr(args, "config", None))
    if config.error:
        say(f"warning: config not used: {config.error}")
    key = find_key(config)
    if key.key:
        say(f"key: from {key.source}")
    else:
        say("key: none (set RUNPOD_API_KEY, put it in .env, or run `runpod config`)")
    endpoints: list[Endpoint] = list(config.endpoints)

    project = getattr(args, "flash_project", None)
    path = manifest_path(project if project is not None else Path.cwd())
    warnings: list[str] = []
    if path.is_file():
        try:
            endpoints += load_manifest(path, warnings)
        except ManifestError as err:
            say(f"error: {err}")
            code = max(code, err.exit_code)
    elif project is not None:
        say(f"error: no Flash manifest at {path}: run `flash build` or `flash deploy` there")
        code = max(code, EXIT_USAGE)
    for warning in warnings:
        say(f"warning: {warning}")

    if args.discover:
        warnings = []
        try:
            endpoints += asyncio.run(list_account_endpoints(key.key, warnings=warnings))
        except E.FlashError as err:
            say(f"error: account endpoints not listed: {err}")
            code = max(code, err.exit_code)
        for warning in warnings:
            say(f"warning: {warning}")

    if args.json:
        emit([endpoint_summary(e) for e in endpoints])
        return code
    width = max([len(e.name) for e in endpoints] + [4])
    for e in endpoints:
        print(f"{e.name:<{width}}  {e.source:<8} {e.kind.value:<6} {e.url}", flush=True)
        for route in e.routes:
            title = f"  ({route.title})" if route.title else ""
            print(f"{'':<{width}}    {route.method} {route.path}{title}", flush=True)
    say(f"{len(endpoints)} endpoint(s)")
    return code


async def dispatch(args: argparse.Namespace) -> int:
    from .api.client import EndpointClient
    from .config import load_config

    config = load_config(getattr(args, "config", None))
    if config.error:
        say(f"warning: config not used: {config.error}")
    endpoint = resolve_endpoint(
        args.endpoint, args.kind, config, getattr(args, "flash_project", None)
    )
    async with EndpointClient(endpoint, api_key=config.key()) as client:
        command = args.command
        if command == "run":
            return await _run(args, client)
        if command == "call":
            return await _call(args, client)
        if command == "stream":
            return await _stream(args, client)
        if command == "health":
            health = await client.health()
            emit(health.raw)
            say(health.summary())
            return EXIT_OK
        if command == "purge":
            emit(await client.purge_queue())
            return EXIT_OK
        op = {"status": client.status, "cancel": client.cancel, "retry": client.retry}[command]
        answer = await op(args.job_id)
        _update_history(endpoint.name, args.job_id, answer)
        emit(answer)
        return job_exit_code(answer) if command == "status" else EXIT_OK


def run_command(args: argparse.Namespace) -> int:
    try:
        if args.command == "jobs":
            return list_jobs(args)
        if args.command == "endpoints":
            return list_endpoints(args)
        return asyncio.run(dispatch(args))
    except E.FlashError as err:
        say(f"error: {err}")
        return err.exit_code
    except KeyboardInterrupt:
        say("interrupted")
        return 130
