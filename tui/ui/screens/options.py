"""Submission options for a queue endpoint: webhook, executionTimeout, ttl, lowPriority."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label

from ...api.models import SubmitOptions


def _seconds(text: str) -> int | None:
    """Seconds as typed (``90``, ``1.5``) to ms; empty is None; raises ValueError."""
    text = text.strip()
    if not text:
        return None
    return int(float(text) * 1000)


class OptionsScreen(ModalScreen[SubmitOptions | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+s", "save", "Use these options", priority=True),
    ]
    DEFAULT_CSS = """
    OptionsScreen { align: center middle; }
    OptionsScreen > Vertical {
        width: 72; max-width: 95%; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 1 2;
    }
    OptionsScreen .title { text-style: bold; }
    OptionsScreen .hint { color: $text-muted; }
    OptionsScreen .problem { color: $error; height: auto; }
    OptionsScreen Horizontal { height: auto; margin-top: 1; align-horizontal: right; }
    OptionsScreen Button { margin-left: 1; }
    """

    def __init__(self, endpoint: str, options: SubmitOptions) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.options = options

    def compose(self) -> ComposeResult:
        o = self.options
        with Vertical():
            yield Label(f"Submission options · {self.endpoint}", classes="title")
            yield Label("Sent with every /run and /runsync to this endpoint.", classes="hint")
            yield Label("Webhook URL (Runpod POSTs the result there)")
            yield Input(o.webhook or "", placeholder="https://example.com/hook", id="opt-webhook")
            yield Label("", id="problem-webhook", classes="problem")
            yield Label("Execution timeout, seconds (5 s – 7 days; default 600)")
            yield Input(
                "" if o.execution_timeout_ms is None else f"{o.execution_timeout_ms / 1000:g}",
                id="opt-execution_timeout",
                type="number",
            )
            yield Label("", id="problem-execution_timeout", classes="problem")
            yield Label("ttl, seconds: queue + run time before the job is deleted (10 s – 7 days)")
            yield Input(
                "" if o.ttl_ms is None else f"{o.ttl_ms / 1000:g}", id="opt-ttl", type="number"
            )
            yield Label("", id="problem-ttl", classes="problem")
            yield Checkbox(
                "Low priority (does not trigger scaling up)", o.low_priority, id="opt-low"
            )
            with Horizontal():
                yield Button("Clear", id="opt-clear")
                yield Button("Cancel", id="opt-cancel")
                yield Button("Use  ^S", id="opt-save", variant="primary")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "opt-save":
            self.action_save()
        elif event.button.id == "opt-clear":
            self.dismiss(SubmitOptions())
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_save()

    def action_cancel(self) -> None:
        self.dismiss(None)

    def action_save(self) -> None:
        problems: dict[str, str] = {}
        values: dict[str, int | None] = {}
        for name in ("execution_timeout", "ttl"):
            try:
                values[name] = _seconds(self.query_one(f"#opt-{name}", Input).value)
            except ValueError:
                problems[name] = "Write a number of seconds."
        options = SubmitOptions(
            webhook=self.query_one("#opt-webhook", Input).value.strip() or None,
            execution_timeout_ms=values.get("execution_timeout"),
            ttl_ms=values.get("ttl"),
            low_priority=self.query_one("#opt-low", Checkbox).value,
        )
        problems = {**options.problems(), **problems}
        for name in ("webhook", "execution_timeout", "ttl"):
            self.query_one(f"#problem-{name}", Label).update(problems.get(name, ""))
        if not problems:
            self.dismiss(options)
