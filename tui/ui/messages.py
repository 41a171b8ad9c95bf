"""The small vocabulary between workers, widgets and the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from ..api.errors import FlashError
    from ..api.models import Endpoint, Health, Job, RouteAnswer
    from ..poller import EndpointLink, JobChange


@dataclass
class EndpointSelected(Message):
    endpoint: Endpoint


@dataclass
class JobsPolled(Message):
    """One poll round's changes; the table applies them together."""

    changes: list[JobChange]
    links: dict[str, EndpointLink]


@dataclass
class JobAdded(Message):
    job: Job


@dataclass
class HealthChecked(Message):
    """An endpoint's health (queue) or ping (load-balanced) answer, or why there is none."""

    endpoint: str
    health: Health | None
    ping: RouteAnswer | None = None
    error: FlashError | None = None


@dataclass
class RouteAnswered(Message):
    endpoint: str
    answer: RouteAnswer | None
    error: FlashError | None = None


@dataclass
class SandboxReady(Message):
    base_url: str


@dataclass
class SandboxFailed(Message):
    reason: str
