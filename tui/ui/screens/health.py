"""An endpoint's health over time: queue depth and the six worker states, with trend lines."""

from __future__ import annotations

import time
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Sparkline, Static

from ...api.models import WORKER_STATES, Endpoint
from ..widgets.sidebar import EndpointState

SERIES = [("jobs", name) for name in ("inQueue", "inProgress")] + [
    ("workers", name) for name in WORKER_STATES
]
LABELS = {"inQueue": "queued", "inProgress": "running jobs"}


class HealthScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,h", "dismiss", "Close")]

    DEFAULT_CSS = """
    HealthScreen { align: center middle; }
    HealthScreen > Vertical {
        width: 90; max-width: 95%; height: auto; max-height: 95%;
        border: thick $primary; background: $surface; padding: 0 1;
    }
    HealthScreen #health-title { text-style: bold; padding: 1 0 0 0; }
    HealthScreen #health-diagnosis { color: $warning; text-style: bold; height: auto; }
    HealthScreen #health-note { color: $text-muted; height: auto; }
    HealthScreen Grid { grid-size: 3; grid-columns: 16 8 1fr; grid-rows: 1; height: auto;
                        grid-gutter: 0 1; margin: 1 0; }
    HealthScreen Sparkline { height: 1; }
    HealthScreen .count { text-align: right; }
    """

    def __init__(self, endpoint: Endpoint, state: EndpointState) -> None:
        super().__init__()
        self.endpoint = endpoint
        self.state = state

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                Text(f"Health · {self.endpoint.name} · {self.endpoint.url}"), id="health-title"
            )
            yield Static("", id="health-diagnosis")
            with Grid():
                for section, name in SERIES:
                    yield Label(
                        LABELS.get(name, f"workers {name}" if section == "workers" else name)
                    )
                    yield Label("–", id=f"count-{name}", classes="count")
                    yield Sparkline([], id=f"trend-{name}", summary_function=max)
            yield Static("", id="health-note")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_health()

    def refresh_health(self) -> None:
        state = self.state
        samples = list(state.samples)
        health = state.health
        for section, name in SERIES:
            values = [float(getattr(h, section).get(name, 0)) for _, h in samples]
            self.query_one(f"#trend-{name}", Sparkline).data = values or [0.0]
            count = getattr(health, section).get(name, 0) if health is not None else "–"
            self.query_one(f"#count-{name}", Label).update(str(count))
        diagnosis = health.diagnosis() if health is not None else None
        self.query_one("#health-diagnosis", Static).update(Text(diagnosis or ""))
        if health is None:
            note = state.error or "No /health answer yet."
        else:
            first = time.strftime("%H:%M:%S", time.localtime(samples[0][0])) if samples else ""
            j = health.jobs
            note = (
                f"{len(samples)} samples since {first}, every 5 s · totals: "
                f"{j.get('completed', 0)} completed, {j.get('failed', 0)} failed, "
                f"{j.get('retried', 0)} retried"
            )
        self.query_one("#health-note", Static).update(Text(note))
