"""Add or edit an endpoint: a form that validates what it is given."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select

from ...api.models import Endpoint, EndpointKind, Route, guess_kind

KIND_CHOICES = [
    ("queue (/run, /runsync, /status)", EndpointKind.QUEUE.value),
    ("load-balanced (custom routes)", EndpointKind.LB.value),
    ("local worker (--rp_serve_api)", EndpointKind.WORKER.value),
]
METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}


def parse_routes(text: str) -> list[Route]:
    """``GET /ping, POST /echo`` → routes; raises ValueError naming the bad part."""
    routes = []
    for part in filter(None, (p.strip() for p in text.replace("\n", ",").split(","))):
        method, _, path = part.partition(" ")
        method, path = method.upper(), path.strip()
        if method not in METHODS or not path.startswith("/"):
            raise ValueError(f"route {part!r}: write it as METHOD /path, e.g. POST /generate")
        routes.append(Route(method, path))
    return routes


def check_endpoint(
    name: str, kind: str, url: str, routes: str, taken: set[str]
) -> tuple[Endpoint | None, dict[str, str]]:
    """Validate the form's values: an endpoint, or problems by field."""
    problems: dict[str, str] = {}
    name = name.strip()
    url = url.strip().rstrip("/")
    if not name:
        problems["name"] = "A name is required."
    elif name in taken:
        problems["name"] = f"{name!r} is already an endpoint's name."
    elif any(c in name for c in "\n\t"):
        problems["name"] = "The name cannot hold tabs or newlines."
    if not url:
        problems["url"] = "A URL is required, e.g. https://api.runpod.ai/v2/ENDPOINT_ID."
    elif (
        not url.startswith(("http://", "https://"))
        or "://" not in url
        or not url.split("://", 1)[1]
    ):
        problems["url"] = "The URL must start with http:// or https:// and name a host."
    elif " " in url:
        problems["url"] = "The URL cannot contain spaces."
    looks_lb = guess_kind(url) is EndpointKind.LB if url else False
    if kind == EndpointKind.QUEUE.value and looks_lb and "url" not in problems:
        problems["url"] = "This URL looks load-balanced (ID.api.runpod.ai); pick that kind."
    parsed: list[Route] = []
    try:
        parsed = parse_routes(routes)
    except ValueError as err:
        problems["routes"] = str(err)
    if problems:
        return None, problems
    return Endpoint(name=name, kind=EndpointKind(kind), url=url, routes=parsed), {}


class EndpointForm(ModalScreen[Endpoint | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Save", priority=True),
    ]

    DEFAULT_CSS = """
    EndpointForm { align: center middle; }
    EndpointForm > Vertical {
        width: 76; max-width: 95%; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    EndpointForm .title { text-style: bold; margin-bottom: 1; }
    EndpointForm .field-label { margin-top: 1; }
    EndpointForm .problem { color: $error; height: auto; }
    EndpointForm .hint { color: $text-muted; width: 100%; }
    EndpointForm #form-buttons { height: auto; margin-top: 1; align-horizontal: right; }
    EndpointForm #form-buttons Button { margin-left: 1; }
    """

    def __init__(
        self, endpoint: Endpoint | None, taken: set[str], prefill: Endpoint | None = None
    ) -> None:
        """Edit ``endpoint``, or add one (starting from ``prefill``, e.g. an imported curl)."""
        super().__init__()
        self.editing = endpoint
        self.prefill = prefill
        self.taken = taken - ({endpoint.name} if endpoint else set())

    def compose(self) -> ComposeResult:
        e = self.editing or self.prefill
        with Vertical():
            yield Label("Edit endpoint" if self.editing else "Add an endpoint", classes="title")
            yield Label("Name", classes="field-label")
            yield Input(value=e.name if e else "", placeholder="my-endpoint", id="form-name")
            yield Label("", id="problem-name", classes="problem")
            yield Label("Kind", classes="field-label")
            yield Select(
                KIND_CHOICES,
                value=(e.kind.value if e else EndpointKind.QUEUE.value),
                allow_blank=False,
                id="form-kind",
            )
            yield Label("URL", classes="field-label")
            yield Input(
                value=e.url if e else "",
                id="form-url",
                placeholder="https://api.runpod.ai/v2/ENDPOINT_ID",
            )
            yield Label(
                "queue: https://api.runpod.ai/v2/ID · load-balanced: https://ID.api."
                "runpod.ai · worker: http://localhost:8000",
                classes="hint",
            )
            yield Label("", id="problem-url", classes="problem")
            yield Label("Routes (load-balanced, optional)", classes="field-label")
            yield Input(
                value=", ".join(f"{r.method} {r.path}" for r in e.routes) if e else "",
                placeholder="GET /ping, POST /generate",
                id="form-routes",
            )
            yield Label("", id="problem-routes", classes="problem")
            with Horizontal(id="form-buttons"):
                yield Button("Cancel", id="form-cancel")
                yield Button("Save  ^S", id="form-save", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#form-name", Input).focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        # A URL's shape often says the kind: choose it for the user.
        if event.input.id == "form-url":
            kind = guess_kind(event.value.strip())
            if kind is not None:
                self.query_one("#form-kind", Select).value = kind.value
            elif "localhost" in event.value or "127.0.0.1" in event.value:
                pass

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "form-save":
            self.action_save()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        endpoint, problems = check_endpoint(
            self.query_one("#form-name", Input).value,
            str(self.query_one("#form-kind", Select).value),
            self.query_one("#form-url", Input).value,
            self.query_one("#form-routes", Input).value,
            self.taken,
        )
        for field in ("name", "url", "routes"):
            self.query_one(f"#problem-{field}", Label).update(problems.get(field, ""))
        if endpoint is None:
            first = next(iter(problems))
            self.query_one(f"#form-{first}", Input).focus()
            return
        if self.editing is not None:
            endpoint.example_input = self.editing.example_input
            if not endpoint.routes and endpoint.kind is self.editing.kind:
                endpoint.routes = list(self.editing.routes)
        self.dismiss(endpoint)
