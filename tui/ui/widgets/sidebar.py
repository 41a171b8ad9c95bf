"""The endpoint sidebar: endpoints grouped by kind, each with a health mark and live counts."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass, field
from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.content import Content
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...api.errors import FlashError
from ...api.models import Endpoint, EndpointKind, Health, RouteAnswer
from ...poller import EndpointLink
from ..messages import EndpointSelected

GROUPS = (
    (EndpointKind.QUEUE, "QUEUE"),
    (EndpointKind.LB, "LOAD-BALANCED"),
    (EndpointKind.WORKER, "LOCAL WORKER"),
)


@dataclass
class EndpointState:
    """What the sidebar knows of an endpoint's health."""

    health: Health | None = None
    ping: RouteAnswer | None = None
    error: str | None = None
    link_state: str = "ok"  # ok | retrying | down, from the poller
    active_jobs: int = 0
    starting: bool = False
    #: (time, health) samples for the trend lines of the health view: ten minutes at 5 s.
    samples: deque[tuple[float, Health]] = field(default_factory=lambda: deque(maxlen=120))


def health_mark(kind: EndpointKind, state: EndpointState) -> tuple[str, str, str]:
    """(glyph, style, words) for an endpoint's state."""
    if state.link_state != "ok":
        return "✗", "$error", state.link_state
    if state.error:
        return "✗", "$error", "unreachable"
    if state.starting:
        return "○", "$text-muted", "starting"
    if kind is EndpointKind.LB:
        if state.ping is None:
            return "○", "$text-muted", "checking"
        if state.ping.status_code == 200:
            return "●", "$success", "healthy"
        if state.ping.status_code == 204:
            return "◐", "$warning", "initializing"
        return "✗", "$error", f"ping {state.ping.status_code}"
    if kind is EndpointKind.WORKER:
        return "◇", "$secondary", "local · no /health"
    if state.health is None:
        return "○", "$text-muted", "checking"
    w = state.health.workers
    if state.health.diagnosis():
        return "◐", "$warning", "jobs waiting on workers"
    if w.get("unhealthy", 0) and not (w.get("idle", 0) + w.get("running", 0)):
        return "✗", "$error", "workers unhealthy"
    if w.get("throttled", 0) or w.get("unhealthy", 0):
        return "◐", "$warning", "degraded"
    return "●", "$success", "healthy"


def counts_line(kind: EndpointKind, state: EndpointState) -> str:
    """Short enough for a 22-column sidebar: what is queued and how busy the workers are."""
    parts = []
    if kind is EndpointKind.QUEUE and state.health is not None:
        j, w = state.health.jobs, state.health.workers
        busy, total = w.get("running", 0), w.get("running", 0) + w.get("idle", 0)
        if j.get("inQueue", 0):
            parts.append(f"{j['inQueue']} queued")
        parts.append(f"{busy}/{total} busy" if busy else f"{total} idle")
    if state.active_jobs:
        parts.append(f"{state.active_jobs} mine")
    return " · ".join(parts)


class EndpointSidebar(OptionList):
    """Endpoints by kind. Selecting one posts ``EndpointSelected``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("h", "app.show_health", "Health"),
        Binding("a", "app.add_endpoint", "Add", show=False),
        Binding("e", "app.edit_endpoint", "Edit", show=False),
        Binding("delete,x", "app.remove_endpoint", "Remove", show=False),
    ]

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.endpoints: dict[str, Endpoint] = {}
        self.states: dict[str, EndpointState] = {}
        self.border_title = "Endpoints"

    def set_endpoints(self, endpoints: list[Endpoint], select: str | None = None) -> None:
        current = select or (self.selected.name if self.selected else None)
        self.endpoints = {e.name: e for e in endpoints}
        for name in list(self.states):
            if name not in self.endpoints:
                del self.states[name]
        options: list[Option] = []
        for kind, title in GROUPS:
            members = [e for e in endpoints if e.kind is kind]
            if not members:
                continue
            options.append(Option(Content.styled(title, "bold $text-muted"), disabled=True))
            options.extend(Option(self._prompt(e), id=e.name) for e in members)
        self.set_options(options)
        if not self.endpoints:
            return
        name = current if current in self.endpoints else next(iter(self.endpoints))
        self.highlighted = self.get_option_index(name)

    def _prompt(self, endpoint: Endpoint) -> Content:
        state = self.states.setdefault(endpoint.name, EndpointState())
        mark, style, words = health_mark(endpoint.kind, state)
        counts = counts_line(endpoint.kind, state)
        # The mark already says healthy; the words matter when something is wrong.
        shown = [] if words == "healthy" and counts else [words]
        second = "  " + " · ".join([*shown, counts] if counts else shown)
        return Content.assemble(
            (mark, style), " ", (endpoint.name, "bold"), "\n", (second, "$text-muted")
        )

    def refresh_endpoint(self, name: str) -> None:
        endpoint = self.endpoints.get(name)
        if endpoint is None:
            return
        try:
            self.replace_option_prompt(name, self._prompt(endpoint))
        except Exception:  # the option is being rebuilt
            pass

    def update_health(
        self,
        name: str,
        health: Health | None,
        ping: RouteAnswer | None,
        error: FlashError | None,
    ) -> None:
        state = self.states.setdefault(name, EndpointState())
        state.starting = False
        state.error = str(error) if error else None
        if health is not None:
            state.health = health
            state.samples.append((time.time(), health))
        if ping is not None:
            state.ping = ping
        self.refresh_endpoint(name)

    def update_links(self, links: dict[str, EndpointLink]) -> None:
        for name, link in links.items():
            state = self.states.setdefault(name, EndpointState())
            if state.link_state != link.state:
                state.link_state = link.state
                self.refresh_endpoint(name)

    def set_active_jobs(self, counts: dict[str, int]) -> None:
        for name in self.endpoints:
            state = self.states.setdefault(name, EndpointState())
            value = counts.get(name, 0)
            if state.active_jobs != value:
                state.active_jobs = value
                self.refresh_endpoint(name)

    def set_starting(self, starting: bool) -> None:
        for name in self.endpoints:
            self.states.setdefault(name, EndpointState()).starting = starting
            self.refresh_endpoint(name)

    @property
    def selected(self) -> Endpoint | None:
        option = self.highlighted_option
        if option is None or option.id is None:
            return None
        return self.endpoints.get(option.id)

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        event.stop()
        endpoint = self.selected
        if endpoint is not None:
            self.post_message(EndpointSelected(endpoint))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.app.action_focus_next()
