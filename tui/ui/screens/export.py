"""Export a request as curl, Python (runpod SDK) or httpx; import a pasted curl command.

The key is never in an export: it reads ``$RUNPOD_API_KEY``. Copying uses OSC 52, which works
over SSH in most terminals; where it does not, save the text to a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, TabbedContent, TabPane, TextArea

from ...export import CurlImportError, ExportRequest, ParsedCurl, parse_curl, to_curl, to_httpx
from ...export import to_python_sdk as to_python

FORMATS = (
    ("curl", "curl", "sh"),
    ("python", "Python (runpod SDK)", "py"),
    ("httpx", "Python (httpx)", "py"),
)

_CSS = """
{name} {{ align: center middle; }}
{name} > Vertical {{
    width: 96%; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
}}
{name} .title {{ text-style: bold; padding: 1 0 0 0; }}
{name} .hint {{ color: $text-muted; height: auto; }}
{name} .problem {{ color: $error; height: auto; }}
{name} TabbedContent, {name} TextArea {{ height: 1fr; }}
{name} Horizontal {{ height: auto; align-horizontal: right; }}
{name} Button {{ margin-left: 1; }}
"""


class ExportScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss", "Close"),
        Binding("y", "copy", "Copy (OSC 52)"),
        Binding("s", "save", "Save to a file"),
    ]
    DEFAULT_CSS = _CSS.format(name="ExportScreen")

    def __init__(self, request: ExportRequest, title: str) -> None:
        super().__init__()
        self.request = request
        self.title_text = title
        self.texts = {
            "curl": to_curl(request),
            "python": to_python(request),
            "httpx": to_httpx(request),
        }

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.title_text), classes="title")
            yield Label(
                "The key is read from $RUNPOD_API_KEY; it is never written here.", classes="hint"
            )
            with TabbedContent(id="export-tabs"):
                for key, label, _ in FORMATS:
                    with TabPane(label, id=f"export-{key}"):
                        yield TextArea(
                            self.texts[key],
                            read_only=True,
                            id=f"text-{key}",
                            soft_wrap=True,
                        )
            with Horizontal():
                yield Button("Copy  y", id="export-copy", variant="primary")
                yield Button("Save  s", id="export-save")
                yield Button("Close", id="export-close")

    @property
    def current(self) -> str:
        active = self.query_one(TabbedContent).active or "export-curl"
        return active.removeprefix("export-")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        {"export-copy": self.action_copy, "export-save": self.action_save}.get(
            event.button.id or "", self.dismiss
        )()

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.texts[self.current])
        self.notify(
            "Copied through the terminal (OSC 52). If nothing was copied, save it to a file with s."
        )

    def action_save(self) -> None:
        suffix = dict((k, ext) for k, _, ext in FORMATS)[self.current]
        path = Path.cwd() / f"flash-tui-request-{self.current}.{suffix}"
        try:
            path.write_text(self.texts[self.current] + "\n")
        except OSError as err:
            self.notify(f"Cannot save {path}: {err.strerror}", severity="error", markup=False)
            return
        self.notify(f"Saved to {path}", markup=False)


class ImportCurlScreen(ModalScreen[ParsedCurl | None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "dismiss(None)", "Cancel"),
        Binding("ctrl+s", "import_it", "Import", priority=True),
    ]
    DEFAULT_CSS = _CSS.format(name="ImportCurlScreen")

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Paste a curl command (for example from Runpod's docs)", classes="title")
            yield Label(
                "Its URL picks the endpoint; its body goes to the editor or the route "
                "panel. A pasted key is dropped: flash-tui uses $RUNPOD_API_KEY.",
                classes="hint",
            )
            yield TextArea("", id="curl-text", soft_wrap=True)
            yield Label("", id="curl-problem", classes="problem")
            with Horizontal():
                yield Button("Cancel", id="curl-cancel")
                yield Button("Import  ^S", id="curl-import", variant="primary")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "curl-import":
            self.action_import_it()
        else:
            self.dismiss(None)

    def action_import_it(self) -> None:
        try:
            parsed = parse_curl(self.query_one(TextArea).text)
        except CurlImportError as err:
            self.query_one("#curl-problem", Label).update(Text(str(err)))
            return
        self.dismiss(parsed)
