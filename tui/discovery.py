"""Finding endpoints the user did not type in: a Flash project's manifest, and the account.

Two sources, both read-only and free of Textual:

- ``.flash/flash_manifest.json``, written by ``flash build``/``flash deploy``: the project's
  endpoints by their Flash names, with their routes (``load_manifest``, ``project_endpoints``);
- the account behind the API key: ``GET /v2/serverless``, falling back to the older REST
  ``GET /v1/endpoints`` (``list_account_endpoints``).

Both are tolerant: an entry that cannot be used is skipped with a warning, never the end of
the listing. Only a manifest that is not JSON at all is an error (``ManifestError``).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .api import errors as E
from .api.models import Endpoint, EndpointKind, Route, guess_kind, is_loopback

if TYPE_CHECKING:
    from .api.client import ClientPool

log = logging.getLogger(__name__)

MANIFEST_DIR = ".flash"
MANIFEST_NAME = "flash_manifest.json"

API_URL_ENV = "FLASH_TUI_API_URL"
REST_URL_ENV = "FLASH_TUI_REST_URL"
DEFAULT_API_URL = "https://api.runpod.io"
DEFAULT_REST_URL = "https://rest.runpod.io"

#: What an endpoint id may hold before it is put in a URL (Runpod's ids are [a-z0-9]).
_SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})


class ManifestError(E.FlashError):
    """The Flash manifest cannot be read at all (missing, unreadable, not JSON)."""

    exit_code = 2

    def __init__(
        self, message: str, path: Path, line: int | None = None, column: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.line = line
        self.column = column


class MissingKey(E.FlashError):
    """No API key anywhere the Runpod tools look: the account cannot be asked."""

    exit_code = 3


def queue_url(endpoint_id: str) -> str:
    return f"https://api.runpod.ai/v2/{endpoint_id}"


def lb_url(endpoint_id: str) -> str:
    return f"https://{endpoint_id}.api.runpod.ai"


def default_url(kind: EndpointKind, endpoint_id: str) -> str:
    return lb_url(endpoint_id) if kind is EndpointKind.LB else queue_url(endpoint_id)


def _warn(warnings: list[str] | None, message: str) -> None:
    if warnings is None:
        log.warning("%s", message)
    else:
        warnings.append(message)


def _is_http_url(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(("http://", "https://"))


# --- the Flash manifest ---------------------------------------------------------------------


def manifest_path(project_dir: Path) -> Path:
    """The manifest of a project; ``project_dir`` may also be its ``.flash`` dir or the file."""
    if project_dir.is_file():
        return project_dir
    if project_dir.name == MANIFEST_DIR and (project_dir / MANIFEST_NAME).is_file():
        return project_dir / MANIFEST_NAME
    return project_dir / MANIFEST_DIR / MANIFEST_NAME


def load_manifest(project_dir: Path, warnings: list[str] | None = None) -> list[Endpoint]:
    """The endpoints of a Flash project, from its ``.flash/flash_manifest.json``.

    Entries that cannot be used (not deployed yet, wrong types) are skipped; why goes to
    ``warnings`` when given, else to the log. Raises ``ManifestError`` when the file is
    missing, unreadable or not JSON.
    """
    path = manifest_path(project_dir)
    data = _read_manifest(path)
    resources = data.get("resources")
    if resources is None:
        _warn(warnings, f"{path}: no 'resources': the project declares no endpoints")
        return []
    if not isinstance(resources, dict):
        _warn(warnings, f"{path}: 'resources' is not an object; ignored")
        return []
    urls = _section(data, "resources_endpoints", path, warnings)
    routes = _section(data, "routes", path, warnings)
    endpoints: list[Endpoint] = []
    for name, resource in resources.items():
        endpoint = _manifest_endpoint(str(name), resource, urls, routes, path, warnings)
        if endpoint is not None:
            endpoints.append(endpoint)
    return endpoints


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ManifestError(
            f"No Flash manifest at {path}: run `flash build` or `flash deploy` in the project.",
            path,
        ) from None
    except OSError as err:
        raise ManifestError(f"Cannot read {path}: {err.strerror}", path) from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ManifestError(f"{path} is not UTF-8 text, so not a Flash manifest.", path) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise ManifestError(
            f"{path} is not valid JSON: {err.msg} at line {err.lineno}, column {err.colno}.",
            path,
            err.lineno,
            err.colno,
        ) from None
    except RecursionError:
        raise ManifestError(f"{path} is nested too deeply to read.", path) from None
    if not isinstance(data, dict):
        raise ManifestError(
            f"{path} holds a JSON {type(data).__name__}, not the object a Flash manifest is.",
            path,
        )
    return data


def _section(
    data: dict[str, Any], key: str, path: Path, warnings: list[str] | None
) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        _warn(warnings, f"{path}: '{key}' is not an object; ignored")
        return {}
    return value


def _manifest_endpoint(
    name: str,
    resource: Any,
    urls: Mapping[str, Any],
    routes: Mapping[str, Any],
    path: Path,
    warnings: list[str] | None,
) -> Endpoint | None:
    where = f"{path}: resource {name!r}"
    if not name.strip():
        _warn(warnings, f"{path}: a resource with an empty name; skipped")
        return None
    if not isinstance(resource, dict):
        _warn(warnings, f"{where} is not an object; skipped")
        return None
    flag = resource.get("is_load_balanced")
    if flag is None:
        # Older manifests: the resource type or a routes entry tells it.
        resource_type = str(resource.get("resource_type", ""))
        flag = "LoadBalancer" in resource_type or name in routes
    if not isinstance(flag, bool):
        _warn(warnings, f"{where}: 'is_load_balanced' is {flag!r}, not true or false; skipped")
        return None
    kind = EndpointKind.LB if flag else EndpointKind.QUEUE

    url = urls.get(name)
    if url is not None and not _is_http_url(url):
        _warn(warnings, f"{where}: its URL {url!r} is not http(s); using its endpoint id")
        url = None
    if url is None:
        endpoint_id = resource.get("endpoint_id")
        if isinstance(endpoint_id, str) and _SAFE_ID.match(endpoint_id):
            url = default_url(kind, endpoint_id)
        elif endpoint_id is not None:
            _warn(warnings, f"{where}: 'endpoint_id' {endpoint_id!r} is not an id; skipped")
            return None
        else:
            _warn(warnings, f"{where}: not deployed yet (no URL, no endpoint id); skipped")
            return None

    endpoint_routes: list[Route] = []
    if kind is EndpointKind.LB:
        endpoint_routes = _manifest_routes(routes.get(name), resource, where, warnings)
    return Endpoint(name=name, kind=kind, url=url, routes=endpoint_routes, source="manifest")


def _manifest_routes(
    table: Any, resource: dict[str, Any], where: str, warnings: list[str] | None
) -> list[Route]:
    """``{"POST /path": "function"}``; without it, the functions' ``http_method/http_path``."""
    pairs: list[tuple[Any, Any, Any]] = []
    if isinstance(table, dict):
        for key, function in table.items():
            method, _, route_path = str(key).strip().partition(" ")
            pairs.append((method, route_path.strip(), function))
    elif table is not None:
        _warn(warnings, f"{where}: its routes are not an object; ignored")
    else:
        functions = resource.get("functions")
        for function in functions if isinstance(functions, list) else []:
            if isinstance(function, dict) and function.get("http_path"):
                pairs.append(
                    (function.get("http_method"), function.get("http_path"), function.get("name"))
                )
    out: list[Route] = []
    for method, route_path, function in pairs:
        method = str(method or "").upper()
        if method not in _METHODS or not isinstance(route_path, str) or not route_path:
            _warn(warnings, f"{where}: route {method} {route_path} is not METHOD /path; skipped")
            continue
        if not route_path.startswith("/"):
            route_path = "/" + route_path
        out.append(Route(method, route_path, None, function if isinstance(function, str) else ""))
    return out


def project_endpoints(flash_project: Path | None) -> tuple[list[Endpoint], list[str]]:
    """The manifest endpoints of ``flash_project`` (or the working directory), and warnings.

    Never raises: with no ``--flash-project`` a directory without a manifest is simply not a
    Flash project; a manifest that cannot be read becomes a warning.
    """
    warnings: list[str] = []
    try:
        project = flash_project if flash_project is not None else Path.cwd()
    except OSError:  # the working directory was removed
        return [], warnings
    path = manifest_path(project)
    if not path.is_file():
        if flash_project is not None:
            warnings.append(
                f"No Flash manifest at {path}: run `flash build` or `flash deploy` there."
            )
        return [], warnings
    try:
        return load_manifest(path, warnings), warnings
    except ManifestError as err:
        return [], [*warnings, str(err)]


# --- the account ----------------------------------------------------------------------------


def account_urls(api_url: str | None = None, rest_url: str | None = None) -> tuple[str, str]:
    """The bases for ``/v2/serverless`` and ``/v1/endpoints``.

    From the arguments, else ``$FLASH_TUI_API_URL`` and ``$FLASH_TUI_REST_URL``. A custom API
    base with no REST base serves both (a sandbox, a proxy).
    """
    api = api_url or os.environ.get(API_URL_ENV) or ""
    rest = rest_url or os.environ.get(REST_URL_ENV) or ""
    if not rest:
        rest = api or DEFAULT_REST_URL
    return (api or DEFAULT_API_URL).rstrip("/"), rest.rstrip("/")


async def list_account_endpoints(
    api_key: str | None,
    *,
    api_url: str | None = None,
    pool: ClientPool | None = None,
    rest_url: str | None = None,
    warnings: list[str] | None = None,
) -> list[Endpoint]:
    """The serverless endpoints of the key's account, ``source="account"``.

    ``GET {api}/v2/serverless``; when that route is missing (404), the older
    ``GET {rest}/v1/endpoints``, whose entries carry no kind (queue assumed). Errors are the
    client's typed ``FlashError``s (401 ``Unauthorized``, transport trouble, ``BadAnswer``).
    """
    from .api.client import ClientPool

    if not api_key:
        raise MissingKey(
            "No API key: set RUNPOD_API_KEY, put it in a .env file, or run `runpod config`."
        )
    api, rest = account_urls(api_url, rest_url)
    own_pool = pool is None
    client_pool = ClientPool() if pool is None else pool
    try:
        listing = await _get_json(client_pool, f"{api}/v2/serverless", api_key, allow_404=True)
        if listing is None:
            listing = await _get_json(client_pool, f"{rest}/v1/endpoints", api_key)
        return endpoints_from_listing(listing, warnings)
    finally:
        if own_pool:
            await client_pool.aclose()


async def _get_json(pool: ClientPool, url: str, api_key: str, allow_404: bool = False) -> Any:
    """GET with the key; None for a 404 when ``allow_404``."""
    import httpx

    from .api.client import error_for, transport_error

    parts = urlsplit(url)
    if parts.scheme != "https" and not is_loopback(parts.hostname or ""):
        raise E.UsageError(
            f"Refusing to send the API key over plain http to {parts.hostname}: use https."
        )
    headers = {"Authorization": f"Bearer {api_key}", "Accept": "application/json"}
    try:
        response = await pool.get(url).get(url, headers=headers)
    except httpx.HTTPError as exc:
        raise transport_error(exc, url) from None
    if response.status_code == 404 and allow_404:
        return None
    if response.status_code >= 400:
        raise error_for(response)
    try:
        return response.json()
    except ValueError:
        text = " ".join(response.text.split())[:120]
        raise E.BadAnswer(
            f"GET {parts.path}: the server answered {response.status_code} with something that "
            f"is not JSON: {text!r}"
        ) from None


_LB_TYPES = frozenset({"LOAD_BALANCER", "LOAD_BALANCED", "LOADBALANCER", "LB"})
_QUEUE_TYPES = frozenset({"QUEUE", "QUEUE_BASED", "SERVERLESS", ""})


def endpoints_from_listing(listing: Any, warnings: list[str] | None = None) -> list[Endpoint]:
    """Endpoints from ``{"endpoints": [...]}`` (``/v2/serverless``) or a bare array (REST)."""
    entries = listing.get("endpoints") if isinstance(listing, dict) else listing
    if not isinstance(entries, list):
        raise E.BadAnswer(
            'The endpoint listing is neither {"endpoints": [...]} nor an array: '
            f"{json.dumps(listing)[:120]}"
        )
    endpoints: list[Endpoint] = []
    names: set[str] = set()
    for i, entry in enumerate(entries, 1):
        endpoint = _account_endpoint(entry, i, warnings)
        if endpoint is None:
            continue
        if endpoint.name in names:  # two endpoints named alike: the id tells them apart
            endpoint.name = f"{endpoint.name} ({endpoint.endpoint_id})"
        names.add(endpoint.name)
        endpoints.append(endpoint)
    return endpoints


def _account_endpoint(entry: Any, index: int, warnings: list[str] | None) -> Endpoint | None:
    if not isinstance(entry, dict):
        _warn(warnings, f"account endpoint #{index} is not an object; skipped")
        return None
    endpoint_id = entry.get("id")
    if not isinstance(endpoint_id, str) or not _SAFE_ID.match(endpoint_id):
        _warn(warnings, f"account endpoint #{index} has no usable id ({endpoint_id!r}); skipped")
        return None
    name = entry.get("name")
    name = name.strip() if isinstance(name, str) and name.strip() else endpoint_id
    base = _request_base(entry.get("requestUrls"))
    kind_value = entry.get("type")
    kind_text = kind_value.strip().upper() if isinstance(kind_value, str) else ""
    if kind_value is None or (isinstance(kind_value, str) and kind_text in _QUEUE_TYPES):
        kind = EndpointKind.QUEUE
    elif kind_text in _LB_TYPES:
        kind = EndpointKind.LB
    else:
        guessed = guess_kind(base) if base else None
        kind = guessed if guessed is not None else EndpointKind.QUEUE
        _warn(warnings, f"account endpoint {name!r}: unknown type {kind_value!r}; taken as {kind}")
    return Endpoint(
        name=name,
        kind=kind,
        url=base or default_url(kind, endpoint_id),
        source="account",
    )


def _request_base(urls: Any) -> str | None:
    """The endpoint's base URL from ``requestUrls``: its ``base``, or one route's parent."""
    if not isinstance(urls, dict):
        return None
    base = urls.get("base")
    if _is_http_url(base):
        return str(base).rstrip("/")
    for route in ("run", "runsync", "health", "ping"):
        url = urls.get(route)
        if _is_http_url(url) and str(url).rstrip("/").endswith("/" + route):
            return str(url).rstrip("/")[: -len(route) - 1]
    return None
