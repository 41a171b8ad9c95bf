"""The JSON payload editor for queue endpoints: highlighted, validated as you type."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, Label, Static, TextArea

from ...api.errors import PayloadError
from ...api.models import Endpoint
from ...api.payload import LIMITS, check_input, check_size, encode, human_size, parse_json


class PayloadEditor(Vertical):
    """Editor, validation line and the two send buttons. The app does the sending."""

    DEFAULT_CSS = """
    PayloadEditor { height: 1fr; }
    PayloadEditor #payload-target { height: 1; color: $text-muted; padding: 0 1; }
    PayloadEditor TextArea { height: 1fr; }
    PayloadEditor #payload-status { height: 1; padding: 0 1; }
    PayloadEditor #payload-status.-ok { color: $success; }
    PayloadEditor #payload-status.-error { color: $error; text-style: bold; }
    PayloadEditor #payload-actions { height: auto; padding: 0 1; }
    PayloadEditor #payload-actions Button { margin-right: 2; min-width: 12; }
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.endpoint: Endpoint | None = None
        self.error: PayloadError | None = None
        self.border_title = "Payload"

    def compose(self) -> ComposeResult:
        yield Static("", id="payload-target")
        yield TextArea.code_editor(
            "", language="json", id="payload-text", soft_wrap=True, tab_behavior="indent"
        )
        yield Label("", id="payload-status")
        with Horizontal(id="payload-actions"):
            yield Button(
                "Run ^R",
                id="run",
                variant="primary",
                compact=True,
                tooltip="POST /run: queue the job and watch it in the table",
            )
            yield Button(
                "Run sync ^S",
                id="run-sync",
                compact=True,
                tooltip="POST /runsync: wait for the result",
            )
            yield Button("Format", id="format", compact=True, tooltip="Pretty-print the JSON")

    @property
    def text_area(self) -> TextArea:
        return self.query_one("#payload-text", TextArea)

    @property
    def text(self) -> str:
        return self.text_area.text

    def load(self, endpoint: Endpoint, text: str) -> None:
        self.endpoint = endpoint
        self.border_title = f"Payload · {endpoint.name}"
        self.set_options("")
        self.text_area.load_text(text)
        self.validate()

    def set_options(self, described: str) -> None:
        """Show the submission options in force (webhook, policy), if any."""
        if self.endpoint is None:
            return
        target = f'POST {self.endpoint.url}/run or /runsync · sends {{"input": <this>}}'
        if described:
            target += f" · options: {described}"
        self.query_one("#payload-target", Static).update(Content(target))

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self.validate()

    def validate(self) -> dict[str, Any] | None:
        """Check the payload; show the verdict; return the input if it can be sent."""
        status = self.query_one("#payload-status", Label)
        try:
            value = parse_json(self.text)
            check_input(value)
            body = encode({"input": value})
            check_size(body, "runsync")  # the larger limit; /run's is said below
            size = len(body)
        except PayloadError as err:
            self.error = err
            status.update(Content.assemble("✗ ", err.message))
            status.set_classes("-error")
            return None
        self.error = None
        if size > LIMITS["run"]:
            status.update(
                Content(
                    f"✓ valid JSON · {human_size(size)}: over the 10 MB limit of "
                    "/run, only /runsync (20 MB) takes it"
                )
            )
        else:
            status.update(Content(f"✓ valid JSON · {human_size(size)} to send"))
        status.set_classes("-ok")
        assert isinstance(value, dict)
        return value

    def format_json(self) -> None:
        import json

        value = self.validate()
        if value is not None:
            self.text_area.load_text(json.dumps(value, indent=2, ensure_ascii=False))

    async def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        action = {"run": "run_async", "run-sync": "run_sync", "format": "format_payload"}
        name = action.get(event.button.id or "")
        if name:
            await self.app.run_action(name)
