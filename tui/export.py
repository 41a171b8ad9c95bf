"""Copy a request as curl, Python SDK or httpx code, and import a pasted curl command.

Pure functions: no Textual, no I/O. The API key is never written into an export (curl reads
``$RUNPOD_API_KEY``, Python reads ``os.environ["RUNPOD_API_KEY"]``) and never kept from an
import (``ParsedCurl.had_auth`` says one was there; its value is dropped while parsing).
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from tui.api.errors import FlashError
from tui.api.models import Endpoint, EndpointKind

__all__ = [
    "CurlImportError",
    "ExportRequest",
    "ParsedCurl",
    "parse_curl",
    "request_for_job",
    "request_for_route",
    "sh_quote",
    "to_curl",
    "to_httpx",
    "to_python_sdk",
]

DEFAULT_SDK_BASE = "https://api.runpod.ai/v2"
KEY_ENV = "RUNPOD_API_KEY"
QUEUE_OPS = ("run", "runsync")


# ---- what to export ------------------------------------------------------------------------


@dataclass
class ExportRequest:
    """One request as flash-tui would send it.

    ``url`` is complete (route included); ``body`` is the JSON sent, so a queue job's body is
    already wrapped as ``{"input": ...}``. ``op`` is ``run``, ``runsync`` or ``call``.
    """

    method: str
    url: str
    body: Any | None
    endpoint: Endpoint
    op: str

    @property
    def needs_key(self) -> bool:
        """A local worker (``--rp_serve_api``) has no auth; everything else wants the key."""
        return self.endpoint.kind is not EndpointKind.WORKER


def request_for_job(endpoint: Endpoint, job_input: Any, sync: bool) -> ExportRequest:
    """The ``/run`` or ``/runsync`` request for a queue (or local worker) job."""
    if endpoint.kind is EndpointKind.LB:
        raise ValueError(
            f"{endpoint.name} is load-balanced: it has routes, not jobs (use request_for_route)"
        )
    op = "runsync" if sync else "run"
    return ExportRequest("POST", f"{endpoint.url}/{op}", {"input": job_input}, endpoint, op)


def request_for_route(
    endpoint: Endpoint, method: str, path: str, body: Any | None
) -> ExportRequest:
    """A direct call of one route (a load-balanced endpoint's ``POST /generate``, say)."""
    path = "/" + path.lstrip("/") if path else ""
    return ExportRequest(method.upper(), endpoint.url + path, body, endpoint, "call")


# ---- curl ----------------------------------------------------------------------------------

_SH_SAFE = re.compile(r"[A-Za-z0-9_@%+=:,./-]+")


def sh_quote(text: str) -> str:
    """Quote for any POSIX shell: bare when plainly safe, else single quotes with ``'\\''``."""
    if _SH_SAFE.fullmatch(text):
        return text
    return "'" + text.replace("'", "'\\''") + "'"


def _body_text(body: Any) -> str:
    """The body as JSON text: readable separators, unicode kept (shell quotes keep bytes)."""
    return json.dumps(body, ensure_ascii=False)


def to_curl(request: ExportRequest) -> str:
    """A curl command, one option per line, that any POSIX shell runs as is.

    The body is inline: Linux caps one argument at 128 KB, so a bigger body parses back but
    will not run (save it to a file and use ``--data-binary @file`` for that).
    """
    parts = [f"curl -X {sh_quote(request.method)} {sh_quote(request.url)}"]
    if request.needs_key:
        # Double quotes, so the shell expands the variable and the key never sits in the text.
        parts.append(f'-H "Authorization: Bearer ${KEY_ENV}"')
    if request.body is not None:
        parts.append('-H "Content-Type: application/json"')
        # Always single-quoted, even when "safe": a JSON body should look like one.
        parts.append("-d '" + _body_text(request.body).replace("'", "'\\''") + "'")
    return " \\\n  ".join(parts)


# ---- Python literals -----------------------------------------------------------------------

#: Deeper bodies go in as JSON text: the Python parser refuses about 200 nested brackets.
_MAX_LITERAL_DEPTH = 50
_WIDTH = 88


def _py_str(text: str) -> str:
    """A double-quoted Python string literal; unprintable characters escaped, emoji kept."""
    out = []
    for ch in json.dumps(text, ensure_ascii=False):
        code = ord(ch)
        if ch.isprintable():
            out.append(ch)
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def _py_scalar(value: Any) -> str:
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value) if math.isfinite(value) else f'float("{value}")'
    if isinstance(value, str):
        return _py_str(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _py_compact(value: Any) -> str:
    if isinstance(value, dict):
        items = ", ".join(f"{_py_str(str(k))}: {_py_compact(v)}" for k, v in value.items())
        return "{" + items + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_py_compact(v) for v in value) + "]"
    return _py_scalar(value)


def _py_literal(value: Any, indent: int = 0) -> str:
    """Black-like: one line when it fits, else one item per line with trailing commas."""
    compact = _py_compact(value)
    if indent + len(compact) <= _WIDTH or not isinstance(value, dict | list | tuple) or not value:
        return compact
    pad = " " * (indent + 4)
    if isinstance(value, dict):
        lines = [f"{pad}{_py_str(str(k))}: {_py_literal(v, indent + 4)}," for k, v in value.items()]
        return "{\n" + "\n".join(lines) + "\n" + " " * indent + "}"
    lines = [f"{pad}{_py_literal(v, indent + 4)}," for v in value]
    return "[\n" + "\n".join(lines) + "\n" + " " * indent + "]"


def _depth(value: Any) -> int:
    depth, level = 0, [value]
    while level:
        depth += 1
        nxt: list[Any] = []
        for v in level:
            if isinstance(v, dict):
                nxt.extend(v.values())
            elif isinstance(v, list | tuple):
                nxt.extend(v)
        level = nxt
    return depth


def _py_value(value: Any) -> str:
    """Python source that evaluates to ``value``."""
    if _depth(value) > _MAX_LITERAL_DEPTH:
        return f"json.loads({_py_str(json.dumps(value, ensure_ascii=False))})"
    return _py_literal(value)


# ---- Python: httpx ---------------------------------------------------------------------------

_FINAL = '("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")'


def _describe(request: ExportRequest) -> str:
    """One comment line saying what the script does (names may hold anything: no newlines)."""
    ep = request.endpoint
    name = " ".join(ep.name.split())
    if request.op in QUEUE_OPS:
        what = "Run a job" if request.op == "run" else "Run a job and wait for it"
        text = f"{what} on {ep.kind.label} endpoint {name!r}"
    else:
        path = urlsplit(request.url).path or "/"
        text = f"Call {request.method} {path} on {ep.kind.label} endpoint {name!r}"
    return "# " + " ".join(text.split())


def to_httpx(request: ExportRequest, note: str = "") -> str:
    """A runnable script with httpx that prints the answer as JSON.

    Queue jobs are followed to the end (``/runsync`` can answer before the job is done, and
    ``/run`` always does), polling ``/status/{id}``; the local worker's dialect polls by POST.
    """
    ep = request.endpoint
    queue = request.op in QUEUE_OPS
    lines = [_describe(request) + " with httpx (pip install httpx)."]
    lines += [f"# {line}" for line in textwrap.wrap(note, 86)]
    lines += ["", "import json"]
    lines += ["import os"] if request.needs_key else []
    lines += ["import sys"]
    lines += ["import time"] if queue else []
    lines += ["", "import httpx", ""]
    if queue:
        lines.append(f"BASE = {_py_str(ep.url)}")
    lines.append(f"URL = {_py_str(request.url)}")
    if request.needs_key:
        env = f"os.environ[{_py_str(KEY_ENV)}]"
        lines.append(f'HEADERS = {{"Authorization": "Bearer " + {env}}}')
    else:
        lines.append("HEADERS: dict[str, str] = {}  # a local worker wants no key")
    if request.body is not None:
        lines.append(f"BODY = {_py_value(request.body)}")
    lines += ["TIMEOUT = httpx.Timeout(30.0, read=360.0)", ""]
    body_arg = ", json=BODY" if request.body is not None else ""
    method = _py_str(request.method)
    lines += [
        f"response = httpx.request({method}, URL, headers=HEADERS{body_arg}, timeout=TIMEOUT)",
        "if response.is_error:",
        '    print(f"HTTP {response.status_code}: {response.text}", file=sys.stderr)',
        "    sys.exit(1)",
        "",
    ]
    if queue:
        poll = "httpx.post" if ep.kind is EndpointKind.WORKER else "httpx.get"
        lines += [
            "job = response.json()",
            "delay = 0.25",
            f'while job.get("status") not in {_FINAL}:',
            "    time.sleep(delay)",
            "    delay = min(delay * 1.5, 5.0)",
            "    url = f\"{BASE}/status/{job['id']}\"",
            f"    status = {poll}(url, headers=HEADERS, timeout=TIMEOUT)",
            "    status.raise_for_status()",
            "    job = status.json()",
            "print(json.dumps(job, indent=2, ensure_ascii=False))",
        ]
    else:
        lines += [
            "try:",
            "    print(json.dumps(response.json(), indent=2, ensure_ascii=False))",
            "except ValueError:  # not JSON: show it as it came",
            "    print(response.text)",
        ]
    return "\n".join(lines) + "\n"


# ---- Python: the runpod SDK ------------------------------------------------------------------


def to_python_sdk(request: ExportRequest) -> str:
    """A script with the official ``runpod`` SDK; httpx where the SDK cannot say it."""
    ep = request.endpoint
    body = request.body
    why = ""
    if ep.kind is EndpointKind.LB:
        why = "load-balanced routes"
    elif ep.kind is EndpointKind.WORKER:
        why = "a local worker's --rp_serve_api dialect"
    elif request.op not in QUEUE_OPS:
        why = f"{request.method} {urlsplit(request.url).path}"
    elif not (isinstance(body, dict) and body.get("input")):
        # Endpoint.run wraps any body whose "input" is falsy a second time.
        why = "a job whose input is empty or false"
    if why:
        note = f"The runpod SDK has no call for {why}, so this uses httpx instead."
        return to_httpx(request, note=note)

    base, _, endpoint_id = ep.url.rpartition("/")
    lines = [
        _describe(request) + " with the runpod SDK (pip install runpod).",
        "",
        "import json",
        "import os",
        "",
        "import runpod",
        "",
        f"runpod.api_key = os.environ[{_py_str(KEY_ENV)}]",
    ]
    if base != DEFAULT_SDK_BASE:
        lines.append(f"runpod.endpoint_url_base = {_py_str(base)}")
    lines += [
        "",
        f"endpoint = runpod.Endpoint({_py_str(endpoint_id)})",
        f"request = {_py_value(body)}",
    ]
    if request.op == "runsync":
        lines.append("result = endpoint.run_sync(request)  # the job's output")
    else:
        lines += [
            "job = endpoint.run(request)",
            'print(f"job {job.job_id}", flush=True)',
            "result = job.output(timeout=600)  # polls every second until the job ends",
        ]
    lines.append("print(json.dumps(result, indent=2, ensure_ascii=False))")
    return "\n".join(lines) + "\n"


# ---- importing curl ------------------------------------------------------------------------


class CurlImportError(FlashError, ValueError):
    """The pasted text is not a curl command flash-tui can import."""

    exit_code = 2


@dataclass
class ParsedCurl:
    """What a pasted curl command asks for. The Authorization value is never kept."""

    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body_text: str | None = None
    body_json: Any | None = None
    had_auth: bool = False

    @property
    def _shape(self) -> tuple[EndpointKind | None, str, str | None]:
        return _url_shape(self.url)

    @property
    def kind(self) -> EndpointKind | None:
        """Queue for ``/v2/{id}/...``; lb for ``{id}.api.runpod.ai`` or ``/lb/{id}``; worker
        for ``/run`` or ``/runsync`` at the root (``--rp_serve_api``); None otherwise."""
        return self._shape[0]

    @property
    def base_url(self) -> str:
        """The endpoint's base (``.../v2/{id}``, the lb origin or ``.../lb/{id}``)."""
        return self._shape[1]

    @property
    def route_path(self) -> str | None:
        """For a load-balanced endpoint, the route after the base (query included)."""
        return self._shape[2] if self.kind is EndpointKind.LB else None

    @property
    def op(self) -> str | None:
        """``run`` or ``runsync`` for a job submission, else None."""
        if self.kind in (EndpointKind.QUEUE, EndpointKind.WORKER):
            path = (self._shape[2] or "").split("?", 1)[0].strip("/")
            return path if path in QUEUE_OPS else None
        return None

    @property
    def sync(self) -> bool:
        return self.op == "runsync"

    @property
    def job_input(self) -> Any | None:
        """A job submission's ``input`` (the body's, unwrapped)."""
        if self.op and isinstance(self.body_json, dict):
            return self.body_json.get("input")
        return None


_QUEUE_PATH = re.compile(r"^(?P<base>.*?/v2/[^/]+)(?P<rest>/.*)?$")
_LB_PATH = re.compile(r"^(?P<base>.*?/lb/[^/]+)(?P<rest>/.*)?$")
_WORKER_PATH = re.compile(r"^/(run|runsync)/?$")


def _url_shape(url: str) -> tuple[EndpointKind | None, str, str | None]:
    """(kind, base URL, the rest: path and query after the base)."""
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    query = f"?{parts.query}" if parts.query else ""
    path = parts.path
    if m := _QUEUE_PATH.match(path):
        return EndpointKind.QUEUE, origin + m["base"], (m["rest"] or "") + query
    if (parts.hostname or "").endswith(".api.runpod.ai"):
        return EndpointKind.LB, origin, (path or "/") + query
    if m := _LB_PATH.match(path):
        return EndpointKind.LB, origin + m["base"], (m["rest"] or "/") + query
    if _WORKER_PATH.match(path):
        return EndpointKind.WORKER, origin, path + query
    return None, origin + path.rstrip("/"), None


# Options whose value is the next argument (or the rest of a short option's token).
_METHOD = {"-X", "--request"}
_HEADER = {"-H", "--header"}
_DATA = {"-d", "--data", "--data-ascii", "--data-binary", "--data-raw", "--json"}
_DATA_URLENCODE = {"--data-urlencode"}
_USER = {"-u", "--user", "--oauth2-bearer"}
_AGENT = {"-A", "--user-agent"}
_FORM = {"-F", "--form", "--form-string"}
_URL = {"--url"}
_TAKES_VALUE = (
    _METHOD | _HEADER | _DATA | _DATA_URLENCODE | _USER | _AGENT | _FORM | _URL
) | {
    "-o", "--output", "-m", "--max-time", "--connect-timeout", "-e", "--referer",
    "-b", "--cookie", "-c", "--cookie-jar", "--retry", "--retry-delay", "--retry-max-time",
    "-w", "--write-out", "--cacert", "--capath", "-E", "--cert", "--key", "-x", "--proxy",
    "-U", "--proxy-user", "--resolve", "--connect-to", "-r", "--range", "-z",
    "--time-cond", "-T", "--upload-file", "--max-redirs", "--limit-rate", "-Y",
    "--speed-limit", "-y", "--speed-time", "--interface", "--dns-servers", "-K", "--config",
    "--variable", "--expand-data", "--expand-url", "--trace", "--trace-ascii", "--stderr",
    "--max-filesize", "--keepalive-time", "--unix-socket", "--abstract-unix-socket",
}  # fmt: skip
_SHORT_WITH_VALUE = {opt[1] for opt in _TAKES_VALUE if len(opt) == 2}
_AUTH_HEADERS = {"authorization", "proxy-authorization"}

_ANSI_C = {
    "a": "\a", "b": "\b", "e": "\x1b", "E": "\x1b", "f": "\f", "n": "\n", "r": "\r",
    "t": "\t", "v": "\v", "\\": "\\", "'": "'", '"': '"', "?": "?",
}  # fmt: skip
_ANSI_C_ESCAPE = re.compile(
    r"\\(x[0-9A-Fa-f]{1,2}|u[0-9A-Fa-f]{1,4}|U[0-9A-Fa-f]{1,8}|[0-7]{1,3}|c.|.)", re.S
)
_DOUBLE_ESCAPE = re.compile(r'\\([$`"\\\n])')

# One piece of a shell word at a time. Quoted bodies use the "unrolled loop" form
# (normal* (special normal*)*), so an unclosed quote fails in linear time.
_LEX = re.compile(
    r"""
      (?P<space>[ \t\r\n]+)
    | (?P<cont>\\\r?\n)
    | '(?P<single>[^']*)'
    | \$'(?P<ansi>[^'\\]*(?:\\.[^'\\]*)*)'
    | "(?P<double>[^"\\]*(?:\\.[^"\\]*)*)"
    | \\(?P<escape>.)
    | (?P<op>\|\|?|;|&&|&(?=[ \t\r\n]|\Z)|<|>)
    | (?P<plain>[^ \t\r\n'"\\$|;<>]+|\$)
    | (?P<unclosed>['"]|\\\Z)
    """,
    re.S | re.X,
)


def _ansi_c(body: str) -> str:
    """Decode the inside of bash's ``$'...'`` (browsers' "copy as cURL" writes it)."""

    def one(m: re.Match[str]) -> str:
        esc = m[1]
        if esc[0] in "xuU" and len(esc) > 1:
            return chr(min(int(esc[1:], 16), 0x10FFFF))
        if esc[0] in "01234567":
            return chr(int(esc, 8) & 0xFF)
        if esc[0] == "c" and len(esc) == 2:
            return chr(ord(esc[1]) & 0x1F)
        return _ANSI_C.get(esc, "\\" + esc)

    return _ANSI_C_ESCAPE.sub(one, body)


def _split(text: str) -> list[str]:
    """Split a command into words as a POSIX shell would, without expanding anything.

    ``shlex`` would do, but it grows each word a character at a time: a pasted 1 MB body
    took over a minute. This reads whole runs with one regular expression.

    Unlike a shell, newlines count as spaces (a paste that lost its ``\\`` continuations
    still imports). As in a shell, ``#`` at the start of a word begins a comment and an
    operator outside quotes (``| jq``, ``; echo``, ``> out.json``, ``2>&1``) ends the
    command. A lone ``&`` ends it too, but one inside a word is kept: an unquoted
    ``?a=1&b=2`` is surely part of a URL.
    """
    words: list[str] = []
    pieces: list[str] = []
    in_word = False
    pos, end = 0, len(text)
    while pos < end:
        if not in_word and text[pos] == "#":
            newline = text.find("\n", pos)
            pos = end if newline < 0 else newline
            continue
        m = _LEX.match(text, pos)
        if m is None or m.lastgroup == "unclosed":
            raise CurlImportError("The command's quotes do not match up: one is never closed.")
        pos = m.end()
        kind = m.lastgroup
        if kind == "space":
            if in_word:
                words.append("".join(pieces))
                pieces, in_word = [], False
            continue
        if kind == "cont":
            continue
        if kind == "op":
            if m[0] in "<>" and in_word and "".join(pieces).isdigit():
                in_word = False  # the 2 of 2>&1 is a file descriptor, not an argument
            break
        value = m[kind or "plain"]
        if kind == "double":
            value = _DOUBLE_ESCAPE.sub(lambda e: "" if e[1] == "\n" else e[1], value)
        elif kind == "ansi":
            value = _ansi_c(value)
        elif kind == "escape" and value == "\r":
            value = ""
        pieces.append(value)
        in_word = True
    if in_word:
        words.append("".join(pieces))
    return words


def _options(args: list[str]) -> list[tuple[str, str | None]]:
    """(option, value) pairs in order; a positional argument comes as ("", arg)."""
    out: list[tuple[str, str | None]] = []
    i = 0
    only_positional = False
    while i < len(args):
        arg = args[i]
        i += 1
        if only_positional or arg == "-" or not arg.startswith("-"):
            out.append(("", arg))
            continue
        if arg == "--":
            only_positional = True
            continue
        if arg.startswith("--"):
            if arg in _TAKES_VALUE:
                if i >= len(args):
                    raise CurlImportError(f"{arg} needs a value.")
                out.append((arg, args[i]))
                i += 1
            else:
                out.append((arg, None))  # a flag (or an option we ignore)
            continue
        # Short options, possibly bundled (-sSL) or with the value attached (-XPOST).
        for j in range(1, len(arg)):
            letter = arg[j]
            if letter in _SHORT_WITH_VALUE:
                value = arg[j + 1 :]
                if not value:
                    if i >= len(args):
                        raise CurlImportError(f"-{letter} needs a value.")
                    value = args[i]
                    i += 1
                out.append((f"-{letter}", value))
                break
            out.append((f"-{letter}", None))
    return out


def _data_value(option: str, value: str) -> str:
    if option in ("--data-raw",) or not value.startswith("@"):
        return value
    source = value[1:]
    if source == "-":
        raise CurlImportError(
            f"{option} @- reads the body from standard input, which a pasted command does not "
            "carry: put the JSON body inline instead (-d '{...}')."
        )
    raise CurlImportError(
        f"{option} @{source} reads the body from the file {source!r}: paste the command with "
        "the JSON body inline instead (-d '{...}')."
    )


def parse_curl(text: str) -> ParsedCurl:
    """Read a pasted curl command (multi-line, any quoting) into a request to import."""
    args = _split(text.strip())
    if args and args[0] == "$":  # a copied shell prompt
        args = args[1:]
    if not args or not re.fullmatch(r"(?:.*[/\\])?curl(?:\.exe)?", args[0]):
        # Nothing of the text is echoed: a pasted key must not end up in a message.
        raise CurlImportError("That is not a curl command: it should start with 'curl'.")

    method: str | None = None
    urls: list[str] = []
    headers: dict[str, str] = {}
    data: list[str] = []
    had_auth = False
    is_json = False
    get = head = False
    for option, value in _options(args[1:]):
        if value is None:
            get = get or option in ("-G", "--get")
            head = head or option in ("-I", "--head")
            continue
        if option == "" or option in _URL:
            urls.append(value)
        elif option in _METHOD:
            method = value.upper()
        elif option in _HEADER:
            name, sep, rest = value.partition(":")
            name = name.strip()
            if name.lower() in _AUTH_HEADERS:
                had_auth = True  # the value is the key: dropped here, never stored
            elif sep and name:
                headers[name] = rest.strip()
            elif name.endswith(";"):  # curl's `-H "X-Empty;"` sends an empty header
                headers[name[:-1]] = ""
        elif option in _USER:
            had_auth = True
        elif option in _AGENT:
            headers["User-Agent"] = value
        elif option in _DATA:
            data.append(_data_value(option, value))
            is_json = is_json or option == "--json"
        elif option in _DATA_URLENCODE:
            data.append(value)
        elif option in _FORM:
            raise CurlImportError(
                f"{option} sends a multipart form; flash-tui sends JSON bodies only."
            )

    if not urls:
        raise CurlImportError("The curl command has no URL.")
    if len(urls) > 1:
        raise CurlImportError(f"The curl command has {len(urls)} URLs; import one at a time.")
    url = urls[0]
    if "://" not in url:
        url = "http://" + url  # as curl does
    parts = urlsplit(url)
    if "@" in parts.netloc:  # https://user:key@host: credentials, dropped like the header
        had_auth = True
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    body: str | None = ("" if is_json else "&").join(data) if data else None
    if get and body is not None:
        url += ("&" if "?" in url else "?") + body
        body = None
    if is_json:  # --json sets both unless the command set them itself
        present = {name.lower() for name in headers}
        for name in ("Content-Type", "Accept"):
            if name.lower() not in present:
                headers[name] = "application/json"
    if method is None:
        method = "HEAD" if head else "POST" if body is not None else "GET"
    body_json: Any | None = None
    if body is not None:
        try:
            body_json = json.loads(body)
        except (ValueError, RecursionError):
            body_json = None
    return ParsedCurl(method, url, headers, body, body_json, had_auth)
