"""The TOML config: where it lives, how it is read and written, where the key comes from.

Read with ``tomllib``, written with ``tomli-w`` atomically (a temp file, then rename), private
to the owner. Imports no Textual.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from .api.errors import FlashError
from .api.models import Endpoint, EndpointKind, Route, guess_kind

APP_NAME = "flash-tui"
CONFIG_ENV = "FLASH_TUI_CONFIG"
KEY_ENV = "RUNPOD_API_KEY"


class ConfigError(FlashError):
    """The config file cannot be used as it is; it is never overwritten then."""

    exit_code = 2


def default_config_path() -> Path:
    env = os.environ.get(CONFIG_ENV)
    if env:
        return Path(env).expanduser()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def default_data_dir() -> Path:
    from platformdirs import user_data_path

    return user_data_path(APP_NAME)


@dataclass
class Config:
    path: Path
    endpoints: list[Endpoint] = field(default_factory=list)
    drafts: dict[str, str] = field(default_factory=dict)
    theme: str | None = None
    #: An API key the user asked to keep in the file: the last place ``key()`` looks.
    api_key: str | None = field(default=None, repr=False)
    #: Set when the file exists but could not be read; saving is then refused.
    error: str | None = None
    #: History retention: keep the newest N jobs, none older than this many days.
    history_keep: int = 10_000
    history_max_age_days: float = 30.0

    def endpoint(self, name: str) -> Endpoint | None:
        for endpoint in self.endpoints:
            if endpoint.name == name:
                return endpoint
        return None

    def key(self) -> str | None:
        """The API key, looked up as the Runpod tools do (see ``find_key``)."""
        return find_key(self).key

    def key_source(self) -> str:
        """Where ``key()`` came from, fit to show ("$RUNPOD_API_KEY", ".env (/path)", ...)."""
        return find_key(self).source


# --- the API key ---------------------------------------------------------------------------

RUNPOD_CONFIG_SOURCE = "~/.runpod/config.toml"


@dataclass(frozen=True)
class KeyLookup:
    """An API key and where it was found; ``source`` is safe to show, ``key`` never is."""

    key: str | None = field(repr=False)
    source: str


def find_key(config: Config | None = None) -> KeyLookup:
    """The key in Flash's order: ``$RUNPOD_API_KEY``, ``./.env``, ``~/.runpod/config.toml``
    (``[default] api_key``, written by ``runpod config``), then flash-tui's own config.

    Read afresh on each call (the files are tiny), so a key set or rotated while the app
    runs is picked up. A file that cannot be read or parsed is skipped, never fatal.
    """
    env = os.environ.get(KEY_ENV, "").strip()
    if env:
        return KeyLookup(env, f"${KEY_ENV}")
    try:
        dotenv: Path | None = Path.cwd() / ".env"
    except OSError:  # the working directory was removed
        dotenv = None
    key = dotenv_key(dotenv) if dotenv is not None else None
    if key:
        return KeyLookup(key, f".env ({dotenv})")
    try:
        runpod_config: Path | None = Path.home() / ".runpod" / "config.toml"
    except RuntimeError:  # no home directory to be found
        runpod_config = None
    key = runpod_config_key(runpod_config) if runpod_config is not None else None
    if key:
        return KeyLookup(key, RUNPOD_CONFIG_SOURCE)
    if config is not None and config.api_key:
        return KeyLookup(config.api_key, str(config.path))
    return KeyLookup(None, "none")


def dotenv_key(path: Path, name: str = KEY_ENV) -> str | None:
    """``name`` from a ``.env`` file (``KEY=VALUE``, ``export``, quotes, comments).

    The last assignment wins, as with python-dotenv. None when the file is absent or
    unreadable.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError):
        return None
    found: str | None = None
    for line in text.splitlines():
        parsed = parse_dotenv_line(line)
        if parsed is not None and parsed[0] == name:
            found = parsed[1]
    if found is None:
        return None
    return found.strip() or None


def parse_dotenv_line(line: str) -> tuple[str, str] | None:
    """One ``.env`` line as (name, value), or None for blanks, comments and junk."""
    line = line.strip()
    if not line or line.startswith("#"):
        return None
    if line.startswith("export ") or line.startswith("export\t"):
        line = line[len("export") :].lstrip()
    name, sep, rest = line.partition("=")
    name = name.strip()
    if not sep or not name or not name.replace("_", "").replace(".", "").isalnum():
        return None
    rest = rest.strip()
    if rest[:1] in ("'", '"'):
        quote = rest[0]
        end = _closing_quote(rest, quote)
        if end < 0:
            return None  # an unterminated quote: do not guess where the value ends
        value = rest[1:end]
        if quote == '"':
            value = _unescape(value)
        return name, value
    # Unquoted: a " #" starts a comment.
    for i, char in enumerate(rest):
        if char == "#" and (i == 0 or rest[i - 1] in " \t"):
            rest = rest[:i]
            break
    return name, rest.strip()


def _closing_quote(text: str, quote: str) -> int:
    i = 1
    while i < len(text):
        if text[i] == "\\" and quote == '"':
            i += 2
            continue
        if text[i] == quote:
            return i
        i += 1
    return -1


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "'": "'"}


def _unescape(value: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        if char == "\\" and i + 1 < len(value) and value[i + 1] in _ESCAPES:
            out.append(_ESCAPES[value[i + 1]])
            i += 2
            continue
        out.append(char)
        i += 1
    return "".join(out)


def runpod_config_key(path: Path, profile: str = "default") -> str | None:
    """``[profile] api_key`` of the runpod CLI's config; None if absent or malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    section = data.get(profile)
    if not isinstance(section, dict):
        return None
    key = section.get("api_key")
    if not isinstance(key, str):
        return None
    return key.strip() or None


# --- endpoints ---------------------------------------------------------------------------


def _route(data: Any, where: str) -> Route:
    if isinstance(data, str):  # "POST /echo"
        method, _, path = data.partition(" ")
        return Route(method.upper(), path.strip() or "/")
    if not isinstance(data, dict) or "path" not in data:
        raise ConfigError(
            f'{where}: a route needs a path (e.g. {{ method = "GET", path = "/ping" }})'
        )
    body = data.get("body")
    return Route(
        str(data.get("method", "GET")).upper(),
        str(data["path"]),
        body if isinstance(body, dict) else None,
        str(data.get("title", "")),
    )


def endpoint_from_dict(data: Any, where: str) -> Endpoint:
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: an endpoint must be a table")
    name = data.get("name")
    url = data.get("url")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"{where}: missing 'name'")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConfigError(f"{where} ({name}): 'url' must start with http:// or https://")
    kind_value = data.get("kind") or guess_kind(url)
    try:
        kind = EndpointKind(str(kind_value))
    except ValueError:
        raise ConfigError(
            f"{where} ({name}): kind must be queue, lb or worker, not {kind_value!r}"
        ) from None
    routes = [_route(r, f"{where} ({name}) route") for r in data.get("routes", [])]
    example = data.get("example_input")
    return Endpoint(
        name=name.strip(),
        kind=kind,
        url=url,
        routes=routes,
        example_input=example if isinstance(example, dict) else None,
        allow_insecure=bool(data.get("allow_insecure", False)),
    )


def endpoint_to_dict(endpoint: Endpoint) -> dict[str, Any]:
    out: dict[str, Any] = {"name": endpoint.name, "kind": endpoint.kind.value, "url": endpoint.url}
    if endpoint.allow_insecure:
        out["allow_insecure"] = True
    if endpoint.routes:
        routes = []
        for r in endpoint.routes:
            route: dict[str, Any] = {"method": r.method, "path": r.path}
            if r.example_body is not None:
                route["body"] = r.example_body
            if r.title:
                route["title"] = r.title
            routes.append(route)
        out["routes"] = routes
    if endpoint.example_input:
        out["example_input"] = endpoint.example_input
    return out


def load_config(path: Path | None = None) -> Config:
    """Read the config. A file that does not parse gives a Config with ``error`` set."""
    path = path or default_config_path()
    config = Config(path=path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return config
    except OSError as err:
        config.error = f"Cannot read {path}: {err.strerror}"
        return config
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        config.error = f"{path} is not UTF-8 text"
        return config
    except tomllib.TOMLDecodeError as err:
        config.error = f"{path}: {err}"  # tomllib names the line and column
        return config
    try:
        endpoints = data.get("endpoints", [])
        if not isinstance(endpoints, list):
            raise ConfigError(f"{path}: 'endpoints' must be an array of tables ([[endpoints]])")
        seen: set[str] = set()
        for i, item in enumerate(endpoints, 1):
            endpoint = endpoint_from_dict(item, f"{path}: endpoint #{i}")
            if endpoint.name in seen:
                raise ConfigError(f"{path}: two endpoints are named {endpoint.name!r}")
            seen.add(endpoint.name)
            config.endpoints.append(endpoint)
        drafts = data.get("drafts", {})
        if isinstance(drafts, dict):
            config.drafts = {str(k): str(v) for k, v in drafts.items()}
        ui = data.get("ui", {})
        if isinstance(ui, dict) and isinstance(ui.get("theme"), str):
            config.theme = ui["theme"]
        history = data.get("history", {})
        if isinstance(history, dict):
            keep, age = history.get("keep"), history.get("max_age_days")
            if keep is not None:
                if not isinstance(keep, int) or isinstance(keep, bool) or keep < 1:
                    raise ConfigError(f"{path}: [history] keep must be a positive integer")
                config.history_keep = keep
            if age is not None:
                if not isinstance(age, int | float) or isinstance(age, bool) or age <= 0:
                    raise ConfigError(f"{path}: [history] max_age_days must be a positive number")
                config.history_max_age_days = float(age)
        key = data.get("api_key")
        config.api_key = key if isinstance(key, str) and key else None
    except ConfigError as err:
        config.endpoints = []
        config.error = str(err)
    return config


def config_to_dict(config: Config) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if config.api_key:
        data["api_key"] = config.api_key
    if config.theme:
        data["ui"] = {"theme": config.theme}
    if config.history_keep != 10_000 or config.history_max_age_days != 30.0:
        data["history"] = {"keep": config.history_keep, "max_age_days": config.history_max_age_days}
    saved = [e for e in config.endpoints if e.source == "config"]
    if saved:
        data["endpoints"] = [endpoint_to_dict(e) for e in saved]
    drafts = {k: v for k, v in config.drafts.items() if any(e.name == k for e in saved)}
    if drafts:
        data["drafts"] = drafts
    return data


def save_config(config: Config) -> None:
    """Write atomically, readable by the owner only. Refused if the file did not parse."""
    if config.error:
        raise ConfigError(f"Not saving: {config.error}. Fix the file first; it was left as it is.")
    write_private(config.path, tomli_w.dumps(config_to_dict(config)).encode())


def write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
