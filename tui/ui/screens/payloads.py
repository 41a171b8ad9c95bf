"""Save the payload under a name, or pick a saved one, per endpoint."""

from __future__ import annotations

from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList
from textual.widgets.option_list import Option

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 64; max-width: 95%; height: auto; max-height: 80%;
    border: thick $primary; background: $surface; padding: 1 2;
}}
{name} .title {{ text-style: bold; }}
{name} .hint {{ color: $text-muted; }}
{name} OptionList {{ height: auto; max-height: 16; }}
"""


class SavePayloadScreen(ModalScreen[str | None]):
    """Ask for a name; the app saves the editor's text under it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss(None)", "Cancel")]
    DEFAULT_CSS = _CSS.format(name="SavePayloadScreen")

    def __init__(self, endpoint: str, existing: list[str]) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.existing = existing

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Save the payload of {self.endpoint} as…"), classes="title")
            yield Input(placeholder="a name, e.g. small-image", id="payload-name")
            yield Label("enter saves (a name in use is replaced) · esc cancels", classes="hint")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        name = event.value.strip()
        if name:
            self.dismiss(name)


class PickPayloadScreen(ModalScreen[str | None]):
    """Pick a saved payload; ``delete`` removes one."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("delete", "delete", "Delete"),
    ]
    DEFAULT_CSS = _CSS.format(name="PickPayloadScreen")

    def __init__(self, endpoint: str, names: list[str]) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.names = names
        self.deleted: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(f"Saved payloads of {self.endpoint}"), classes="title")
            yield OptionList(*(Option(Text(n), id=n) for n in self.names), id="payload-names")
            yield Label(
                "enter loads it into the editor · delete removes it · esc cancels", classes="hint"
            )

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)

    def action_delete(self) -> None:
        names = self.query_one(OptionList)
        option = names.highlighted_option
        if option is not None and option.id is not None:
            self.deleted.append(option.id)
            names.remove_option(option.id)
