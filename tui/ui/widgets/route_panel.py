"""The route panel for load-balanced endpoints: method, path, JSON body; the whole answer."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    OptionList,
    Select,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.widgets.option_list import Option

from ...api.errors import FlashError, PayloadError
from ...api.models import Endpoint, RouteAnswer
from ...api.payload import check_size, encode, human_size, parse_json
from ..jsontext import pretty, visible

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
BODYLESS = ("GET", "HEAD", "OPTIONS", "DELETE")


class RoutePanel(Vertical):
    """Request on the left, answer on the right."""

    DEFAULT_CSS = """
    RoutePanel { height: 1fr; }
    RoutePanel #route-columns { height: 1fr; }
    RoutePanel #route-request, RoutePanel #route-response { width: 1fr; height: 1fr; }
    RoutePanel #route-line { height: 1; }
    RoutePanel #route-method { width: 14; }
    RoutePanel #route-path { width: 1fr; }
    RoutePanel #route-send { min-width: 10; margin-left: 1; }
    RoutePanel #route-path { margin-left: 1; }
    RoutePanel #route-known { height: auto; max-height: 6; }
    RoutePanel #route-body { height: 1fr; }
    RoutePanel #route-body-status { height: 1; padding: 0 1; }
    RoutePanel #route-body-status.-error { color: $error; text-style: bold; }
    RoutePanel #route-body-status.-ok { color: $text-muted; }
    RoutePanel #route-answer-line { height: 1; padding: 0 1; text-style: bold; }
    RoutePanel #route-answer-line.-ok { color: $success; }
    RoutePanel #route-answer-line.-error { color: $error; }
    RoutePanel TabbedContent { height: 1fr; }
    RoutePanel #route-answer-body { height: 1fr; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint: Endpoint | None = None
        self.answer: RouteAnswer | None = None
        self.border_title = "Route"

    def compose(self) -> ComposeResult:
        with Horizontal(id="route-columns"):
            with Vertical(id="route-request"):
                with Horizontal(id="route-line"):
                    yield Select(
                        [(m, m) for m in METHODS],
                        value="POST",
                        allow_blank=False,
                        id="route-method",
                        compact=True,  # the line is one row high: a bordered select shows
                        # only its top border there, and not the method
                    )
                    yield Input(placeholder="/path", value="/", id="route-path", compact=True)
                    yield Button("Send ^R", id="route-send", variant="primary", compact=True)
                yield OptionList(id="route-known")
                yield TextArea.code_editor("", language="json", id="route-body", soft_wrap=True)
                yield Label("", id="route-body-status")
            with Vertical(id="route-response"):
                yield Label(
                    "No answer yet: choose a route and send (ctrl+r).", id="route-answer-line"
                )
                with TabbedContent(id="route-tabs"):
                    with TabPane("Body", id="route-tab-body"):
                        yield TextArea(
                            "",
                            read_only=True,
                            id="route-answer-body",
                            soft_wrap=True,
                            show_line_numbers=False,
                        )
                    with TabPane("Headers", id="route-tab-headers"):
                        yield DataTable(id="route-answer-headers", cursor_type="row")

    def on_mount(self) -> None:
        headers = self.query_one("#route-answer-headers", DataTable)
        headers.add_columns("Header", "Value")

    # -- what to call

    def load(self, endpoint: Endpoint, body_text: str | None = None) -> None:
        self.endpoint = endpoint
        self.border_title = f"Routes · {endpoint.name} · {endpoint.url}"
        known = self.query_one("#route-known", OptionList)
        known.clear_options()
        for index, route in enumerate(endpoint.routes):
            label = Content.assemble(
                (f"{route.method:<6}", "bold"),
                " ",
                route.path,
                (f"  {route.title}" if route.title else "", "$text-muted"),
            )
            known.add_option(Option(label, id=str(index)))
        known.display = bool(endpoint.routes)
        if endpoint.routes:
            preferred = next((r for r in endpoint.routes if r.method == "POST"), endpoint.routes[0])
            self.use_route(endpoint.routes.index(preferred), body_text)
        else:
            self.query_one("#route-body", TextArea).load_text(body_text or "")
        self.validate()

    def use_route(self, index: int, body_text: str | None = None) -> None:
        if self.endpoint is None:
            return
        route = self.endpoint.routes[index]
        self.query_one("#route-method", Select).value = route.method
        self.query_one("#route-path", Input).value = route.path
        text = (
            body_text
            if body_text is not None
            else (
                json.dumps(route.example_body, indent=2) if route.example_body is not None else ""
            )
        )
        self.query_one("#route-body", TextArea).load_text(text)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id is not None:
            self.use_route(int(event.option.id))
            self.query_one("#route-path", Input).focus()

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        if event.text_area.id == "route-body":
            event.stop()
            self.validate()

    def on_select_changed(self, event: Select.Changed) -> None:
        event.stop()
        self.validate()

    @property
    def method(self) -> str:
        return str(self.query_one("#route-method", Select).value)

    @property
    def path(self) -> str:
        return self.query_one("#route-path", Input).value.strip() or "/"

    @property
    def body_text(self) -> str:
        return self.query_one("#route-body", TextArea).text

    def validate(self) -> tuple[bool, Any]:
        """(can send, body): an empty body sends none; anything else must be valid JSON."""
        status = self.query_one("#route-body-status", Label)
        text = self.body_text
        if not text.strip():
            status.update("no body" if self.method in BODYLESS else "no body (empty)")
            status.set_classes("-ok")
            return True, None
        try:
            body = parse_json(text)
            check_size(encode(body), "lb")
        except PayloadError as err:
            status.update(Content.assemble("✗ ", err.message))
            status.set_classes("-error")
            return False, None
        status.update(f"✓ valid JSON body · {human_size(len(encode(body)))}")
        status.set_classes("-ok")
        return True, body

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        await self.app.run_action("send")

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        await self.app.run_action("send")

    # -- what came back

    def show_sending(self) -> None:
        line = self.query_one("#route-answer-line", Label)
        line.update(f"… {self.method} {self.path}")
        line.set_classes("")

    def show_answer(self, answer: RouteAnswer) -> None:
        self.answer = answer
        line = self.query_one("#route-answer-line", Label)
        line.update(
            Content(
                f"{answer.status_code} {visible(answer.reason)} · "
                f"{answer.elapsed_s * 1000:.0f} ms · "
                f"{human_size(answer.size)} · {answer.method} {visible(answer.url)}"
            )
        )
        line.set_classes("-ok" if answer.ok else "-error")
        body = self.query_one("#route-answer-body", TextArea)
        if answer.is_json:
            body.language = "json"
            body.load_text(pretty(answer.json))
        else:
            body.language = None
            body.load_text(visible(answer.text) if answer.text else "(empty body)")
        headers = self.query_one("#route-answer-headers", DataTable)
        headers.clear()
        for name, value in answer.headers:
            headers.add_row(Text(visible(name)), Text(visible(value)))

    def show_error(self, error: FlashError) -> None:
        line = self.query_one("#route-answer-line", Label)
        line.update(Content.assemble("✗ ", visible(str(error))))
        line.set_classes("-error")
