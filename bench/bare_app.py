"""A bare Textual app for the start-up baseline: a header, a table and a footer, nothing
else. What any Textual app costs to start on this machine, next to flash-tui's figure."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header


class Bare(App[None]):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable()
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("Endpoint", "Kind", "Health")
        table.add_row("echo", "queue", "ok")


if __name__ == "__main__":
    Bare().run()
