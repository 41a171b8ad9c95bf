"""Checks a payload must pass before anything is sent."""

from __future__ import annotations

import json
from typing import Any

from .errors import PayloadError

MB = 1024 * 1024
#: Runpod's request size limits, by route.
LIMITS = {"run": 10 * MB, "runsync": 20 * MB, "lb": 30 * MB}
LIMIT_NAMES = {"run": "/run", "runsync": "/runsync", "lb": "a load-balanced endpoint"}


def parse_json(text: str) -> Any:
    """Parse JSON text, reporting the line and column of the first error."""
    if not text.strip():
        raise PayloadError('The payload is empty: write a JSON object such as {"prompt": "hi"}.')
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PayloadError(
            f"Invalid JSON at line {err.lineno}, column {err.colno}: {err.msg}.",
            line=err.lineno,
            column=err.colno,
        ) from None
    except RecursionError:
        raise PayloadError("Invalid JSON: nested too deeply.") from None


def parse_input(text: str) -> dict[str, Any]:
    """Parse a queue job's input: a non-empty JSON object."""
    value = parse_json(text)
    check_input(value)
    assert isinstance(value, dict)
    return value


def check_input(value: Any) -> None:
    if not isinstance(value, dict):
        kind = type(value).__name__ if value is not None else "null"
        kind = {
            "list": "an array",
            "str": "a string",
            "int": "a number",
            "float": "a number",
            "bool": "a boolean",
        }.get(kind, kind)
        raise PayloadError(f"The input must be a JSON object, not {kind}.")
    if not value:
        raise PayloadError(
            "The input is an empty object: Runpod strips an empty input and the worker fails "
            'with "Job has missing field(s)". Add at least one field.'
        )


def encode(body: Any) -> bytes:
    # Compact, and UTF-8 as is: what we measure is what goes on the wire.
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def check_size(data: bytes, route: str) -> None:
    limit = LIMITS[route]
    if len(data) > limit:
        raise PayloadError(
            f"The request is {len(data) / MB:.1f} MB, over the {limit // MB} MB limit of "
            f"{LIMIT_NAMES[route]}. Send large data by URL or storage instead."
        )


def human_size(n: int | float) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
