"""Text for display: pretty JSON with huge strings collapsed, and control characters made
visible so server text can never drive the terminal. Pure functions, no widgets."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from typing import Any

from ..api.payload import human_size

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x9b]")
#: Bidirectional overrides can make text read differently from what it is: show them.
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
#: Strings longer than this are shown collapsed, with their size and guessed type.
COLLAPSE_AT = 4096
#: At most this much of a document is laid out for display; ``s`` in the job detail saves
#: the whole of it. Pretty-printing stops there, so a 20 MB output costs what 256 KB costs.
SHOW_AT_MOST = 256 * 1024

_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF8", "GIF image"),
    (b"RIFF", "RIFF (WAV/WebP)"),
    (b"%PDF", "PDF"),
    (b"ID3", "MP3 audio"),
    (b"OggS", "Ogg audio"),
    (b"fLaC", "FLAC audio"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip data"),
    (b"\x00\x00\x00", "MP4/ISO media"),
)


def visible(text: str) -> str:
    """Replace control characters (ANSI escapes included) with visible control pictures, and
    bidirectional overrides with their code (``<U+202E>``)."""
    text = _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)
    return _CONTROL.sub(
        lambda m: (
            chr(0x2400 + ord(m.group()))
            if ord(m.group()) < 32
            else "␡"
            if m.group() == "\x7f"
            else "�"
        ),
        text,
    )


def guess_base64(text: str) -> str | None:
    """What a long base64 string holds, from its first decoded bytes."""
    head = text[:64]
    if head.startswith("data:"):
        mime = head[5:].split(";", 1)[0]
        return f"data URL ({mime})"
    try:
        raw = base64.b64decode(head[: len(head) // 4 * 4], validate=True)
    except (ValueError, TypeError):
        return None
    if len(set(head)) < 12:
        return None  # "xxxx…" decodes, but it is text, not data
    for magic, name in _MAGIC:
        if raw.startswith(magic):
            return f"base64 {name}"
    return "base64 data"


def collapse(value: Any, limit: int = COLLAPSE_AT) -> Any:
    """A copy of ``value`` with every string over ``limit`` replaced by a short description."""
    if isinstance(value, str):
        if len(value) <= limit:
            return value
        kind = guess_base64(value) or "text"
        return f"<{kind}, {human_size(len(value.encode('utf-8', 'replace')))} collapsed>"
    if isinstance(value, dict):
        return {k: collapse(v, limit) for k, v in value.items()}
    if isinstance(value, list):
        return [collapse(v, limit) for v in value]
    return value


def _pieces(value: Any, limit: int, indent: str) -> Iterator[str]:
    """Indented JSON piece by piece, long strings collapsed on the way: a generator, so the
    caller stops as soon as it has enough, whatever the size of the document."""
    inner = indent + "  "
    if isinstance(value, dict) and value:
        yield "{"
        for i, (key, item) in enumerate(value.items()):
            yield ("," if i else "") + "\n" + inner + json.dumps(str(key), ensure_ascii=False)
            yield ": "
            yield from _pieces(item, limit, inner)
        yield "\n" + indent + "}"
    elif isinstance(value, list) and value:
        yield "["
        for i, item in enumerate(value):
            yield ("," if i else "") + "\n" + inner
            yield from _pieces(item, limit, inner)
        yield "\n" + indent + "]"
    else:
        shown = collapse(value, limit) if isinstance(value, str) else value
        yield json.dumps(shown, ensure_ascii=False, default=str)


def pretty(value: Any, limit: int = COLLAPSE_AT, head: int = SHOW_AT_MOST) -> str:
    """Indented JSON (or the text itself), long strings collapsed, controls made visible;
    past ``head`` characters the rest is left out, and a last line says so."""
    if isinstance(value, str) and len(value) <= limit:
        # A string output reads better as itself than as a JSON string literal.
        return visible(value)
    parts: list[str] = []
    size = 0
    for part in _pieces(value, limit, ""):
        if size + len(part) > head:
            parts.append(
                f"\n… only the first {human_size(size)} are shown: s saves the whole output"
            )
            break
        parts.append(part)
        size += len(part)
    return visible("".join(parts))
