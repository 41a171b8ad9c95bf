"""The flash-tui app: the screen, the actions, and the workers that talk to endpoints."""

from __future__ import annotations

import contextlib
import functools
import secrets
import socket
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult, ScreenStackError, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import ContentSwitcher, Footer, Header, Input, Select, Static, TextArea
from textual.worker import Worker, WorkerState

from ..api import errors as E
from ..api.models import (
    RETRYABLE_STATUSES,
    UNKNOWN,
    Endpoint,
    EndpointKind,
    Job,
    Route,
    SubmitOptions,
)
from ..config import Config, ConfigError, load_config, save_config
from .messages import (
    EndpointSelected,
    HealthChecked,
    JobAdded,
    JobsPolled,
    RouteAnswered,
    SandboxFailed,
    SandboxReady,
)
from .widgets.job_table import JobTable
from .widgets.payload import PayloadEditor
from .widgets.route_panel import RoutePanel
from .widgets.sidebar import EndpointSidebar

if TYPE_CHECKING:
    from textual.widget import AwaitMount

    from ..api.client import ClientPool, EndpointClient
    from ..export import ParsedCurl
    from ..payloads import PayloadLibrary
    from ..poller import EndpointLink, JobChange, StatusPoller
    from ..sandbox import RunningSandbox
    from ..store import JobStore

#: Health is checked this often while jobs run (or the health view is open), and every
#: HEALTH_IDLE_S otherwise: an idle app should cost next to nothing over SSH.
HEALTH_EVERY_S = 5.0
HEALTH_IDLE_S = 30.0

EMPTY_HELP = """\
[b]No endpoints yet.[/b]

  • press [b]d[/b] to open the demo: a local sandbox that speaks the Runpod API
    (queue endpoints echo, sleepy, flaky, streamer and a load-balanced api),
  • press [b]ctrl+n[/b] to add one of your endpoints (queue, load-balanced or a local worker),
  • or start with [b]flash-tui --demo[/b].

The API key comes from $RUNPOD_API_KEY and is never shown or stored."""


def demo_endpoints(base_url: str, api_key: str) -> list[Endpoint]:
    from ..sandbox.demo import DEMO_ENDPOINTS

    endpoints = []
    for demo in DEMO_ENDPOINTS:
        kind = EndpointKind.QUEUE if demo.kind == "queue" else EndpointKind.LB
        url = (
            f"{base_url}/v2/{demo.id}" if kind is EndpointKind.QUEUE else f"{base_url}/lb/{demo.id}"
        )
        endpoints.append(
            Endpoint(
                name=demo.id,
                kind=kind,
                url=url,
                routes=[Route(r.method, r.path, r.example_body, r.title) for r in demo.routes],
                example_input=demo.example_input,
                api_key=api_key,
                source="demo",
            )
        )
    return endpoints


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _while_mounted(handler: Callable[[Any, Any], None]) -> Callable[[Any, Any], None]:
    """Answers can land while the app shuts down and its widgets are gone: drop them then."""

    @functools.wraps(handler)
    def guarded(self: Any, message: Any) -> None:
        # The panes are composed once and never removed, so a missing one means shutdown.
        with contextlib.suppress(NoMatches):
            handler(self, message)

    return guarded


class FlashApp(App[int]):
    """Endpoints on the left, the payload editor or route panel, and the live job table."""

    CSS_PATH = "app.tcss"
    TITLE = "flash-tui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (30, "-tall")]

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "run_async", "Run", priority=True, tooltip="POST /run"),
        Binding("ctrl+r", "send", "Send", priority=True, tooltip="Call the route"),
        Binding("ctrl+s", "run_sync", "Run sync", priority=True, tooltip="POST /runsync"),
        Binding(
            "ctrl+o",
            "submit_options",
            "Options",
            priority=True,
            tooltip="webhook, executionTimeout, ttl, lowPriority",
        ),
        Binding("f2", "focus('sidebar')", "Endpoints", show=False),
        Binding("f3", "focus_editor", "Editor", show=False),
        Binding("f4", "focus('jobs')", "Jobs", show=False),
        Binding("f6", "save_payload", "Save payload", show=False),
        Binding("f7", "pick_payload", "Saved payloads", show=False),
        Binding("f8", "export_request", "Export", show=False),
        Binding("f9", "import_curl", "Import curl", show=False),
        Binding("ctrl+n", "add_endpoint", "Add endpoint", show=False, priority=True),
        Binding("p", "toggle_polling", "Pause polls"),
        Binding("d", "start_demo", "Open demo", show=False),
        Binding("f1,question_mark", "help", "Help"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("ctrl+q", "quit", "Quit", priority=True),
    ]

    def __init__(
        self,
        config: Config | None = None,
        *,
        demo: bool = False,
        sandbox_options: dict[str, Any] | None = None,
        history_path: Path | None = None,
        flash_project: Path | None = None,
    ) -> None:
        super().__init__()
        self.history_path = history_path
        self.store: JobStore | None = None
        #: Endpoints known only from the history (e.g. a URL the CLI was given), for polling.
        self._history_endpoints: dict[str, Endpoint] = {}
        self._resume: list[Job] = []
        self.submit_options: dict[str, SubmitOptions] = {}
        self._payloads: PayloadLibrary | None = None
        self._pending_import: tuple[ParsedCurl, str] | None = None
        self.config = config or load_config()
        self.demo = demo
        self.sandbox_options = sandbox_options or {}
        self.sandbox: RunningSandbox | None = None
        self.endpoints: list[Endpoint] = list(self.config.endpoints)
        self.drafts: dict[str, str] = dict(self.config.drafts)
        self.current: Endpoint | None = None
        self._pool: ClientPool | None = None
        self._clients: dict[str, EndpointClient] = {}
        self._poller: StatusPoller | None = None
        self._sending = 0
        self._config_dirty = False
        self._manifest_warnings: list[str] = []
        self._add_manifest_endpoints(flash_project)
        if demo:
            self._add_demo_endpoints()

    # -- building the screen

    def compose(self) -> ComposeResult:
        yield Header(icon="⚡")
        with Horizontal(id="body"):
            yield EndpointSidebar(id="sidebar")
            with Vertical(id="main"):
                with ContentSwitcher(id="work", initial="empty"):
                    yield Static(Content.from_markup(EMPTY_HELP), id="empty")
                    yield PayloadEditor(id="payload")
                    # The route panel is mounted the first time a load-balanced endpoint is
                    # chosen: it is a fifth of the widgets, and the first screen shows none.
                yield Input(
                    placeholder="filter jobs: words in status, endpoint, id or worker "
                    "(enter keeps it, esc clears)",
                    id="job-filter",
                )
                yield JobTable(id="jobs")
        yield Footer()

    def on_mount(self) -> None:
        if self.config.theme and self.config.theme in self.available_themes:
            self.theme = self.config.theme
        self.query_one(JobTable).border_title = "Jobs"
        self._update_subtitle()
        sidebar = self.query_one(EndpointSidebar)
        sidebar.set_endpoints(self.endpoints)
        if self.demo:
            sidebar.set_starting(True)
        for warning in self._manifest_warnings:
            self.notify(warning, title="Flash manifest", severity="warning", markup=False)
        if self.config.error:
            self.notify(
                f"Config not loaded: {self.config.error}. The file was left as it is.",
                severity="error",
                timeout=15,
                markup=False,
            )
        if self.endpoints:
            sidebar.focus()
        self.set_interval(HEALTH_EVERY_S, self._health_tick)
        self.call_after_refresh(self._start_background)

    def _start_background(self) -> None:
        """After the first paint: nothing here may delay the first usable screen."""
        if self.demo:
            self._start_sandbox()
        self._open_history()
        self.run_worker(self._poll_forever(), group="poller", name="poller", exit_on_error=False)
        if not self.demo:
            self.check_health()

    def _add_manifest_endpoints(self, flash_project: Path | None) -> None:
        """A Flash project's endpoints (.flash/flash_manifest.json), routes ready to call."""
        from ..discovery import project_endpoints

        found, self._manifest_warnings = project_endpoints(flash_project)
        taken = {e.name for e in self.endpoints}
        self.endpoints.extend(e for e in found if e.name not in taken)

    def _add_demo_endpoints(self) -> None:
        self._demo_key = secrets.token_urlsafe(24)
        self._demo_port = int(self.sandbox_options.get("port") or free_port())
        base = f"http://127.0.0.1:{self._demo_port}"
        taken = {e.name for e in self.endpoints}
        for endpoint in demo_endpoints(base, self._demo_key):
            if endpoint.name in taken:
                endpoint.name = f"demo-{endpoint.name}"
            self.endpoints.append(endpoint)
            if endpoint.example_input is not None:
                self.drafts.setdefault(endpoint.name, _dumps(endpoint.example_input))
            elif endpoint.routes:
                body = next((r.example_body for r in endpoint.routes if r.example_body), None)
                if body is not None:
                    self.drafts.setdefault(endpoint.name, _dumps(body))

    def _update_subtitle(self) -> None:
        parts = []
        if self.demo:
            parts.append(f"demo sandbox on 127.0.0.1:{self._demo_port}")
        if self.config.key():
            parts.append(f"key from {self.config.key_source()}")
        elif any(e.source == "config" for e in self.endpoints):
            parts.append("no API key: set RUNPOD_API_KEY")
        if self._poller is not None and self._poller.paused:
            parts.append("polling paused")
        self.sub_title = " · ".join(parts)

    # -- the sandbox (demo mode)

    @work(thread=True, group="sandbox", exit_on_error=False)
    def _start_sandbox(self) -> None:
        from ..sandbox import SandboxConfig, start_sandbox

        options = {k: v for k, v in self.sandbox_options.items() if k != "port"}
        try:
            self.sandbox = start_sandbox(
                SandboxConfig(port=self._demo_port, api_key=self._demo_key, **options)
            )
        except Exception as err:  # a port taken meanwhile, or anything else
            self.post_message(SandboxFailed(f"{type(err).__name__}: {err}"))
            return
        self.post_message(SandboxReady(self.sandbox.base_url))

    @_while_mounted
    def on_sandbox_ready(self, message: SandboxReady) -> None:
        self.query_one(EndpointSidebar).set_starting(False)
        self.check_health()

    def on_sandbox_failed(self, message: SandboxFailed) -> None:
        self.notify(
            f"The demo sandbox did not start: {message.reason}",
            severity="error",
            timeout=20,
            markup=False,
        )

    def action_start_demo(self) -> None:
        if self.demo:
            self.notify("The demo sandbox is already running.")
            return
        self.demo = True
        self._add_demo_endpoints()
        sidebar = self.query_one(EndpointSidebar)
        sidebar.set_endpoints(self.endpoints)
        sidebar.set_starting(True)
        self._update_subtitle()
        self._start_sandbox()
        sidebar.focus()

    # -- clients and polling

    def client_for(self, name: str) -> EndpointClient | None:
        client = self._clients.get(name)
        if client is None:
            endpoint = self.endpoint_named(name)
            if endpoint is None:
                return None
            from ..api.client import ClientPool, EndpointClient

            if self._pool is None:
                self._pool = ClientPool()
            client = EndpointClient(endpoint, api_key=self.config.key(), pool=self._pool)
            self._clients[name] = client
        return client

    def endpoint_named(self, name: str) -> Endpoint | None:
        found = next((e for e in self.endpoints if e.name == name), None)
        return found or self._history_endpoints.get(name)

    # -- the history

    def _open_history(self) -> None:
        import sqlite3

        from ..store import JobStore, Retention, default_history_path

        path = self.history_path or default_history_path(self.demo)
        try:
            self.store = JobStore(path)
            self.store.prune(Retention(self.config.history_keep, self.config.history_max_age_days))
            jobs = self.store.jobs(limit=self.config.history_keep)
        except (sqlite3.Error, OSError) as err:
            self.store = None
            self.notify(
                f"Job history unavailable ({path}): {err}. Jobs are kept in memory only.",
                severity="error",
                timeout=15,
                markup=False,
            )
            return
        interrupted = [j for j in jobs if j.status == "SUBMITTING"]
        for job in interrupted:
            job.mark(
                UNKNOWN,
                "A submission was sent, but the process ended before the server "
                "answered: it may or may not have been queued. Check the endpoint before "
                "sending it again.",
            )
        self._remember(interrupted)
        for job in jobs:
            if self.endpoint_named(job.endpoint) is None and job.endpoint_url:
                from ..api.models import guess_kind

                kind = job.endpoint_kind or guess_kind(job.endpoint_url) or EndpointKind.QUEUE
                self._history_endpoints[job.endpoint] = Endpoint(
                    job.endpoint, EndpointKind(kind), job.endpoint_url, source="history"
                )
        self.query_one(JobTable).load_jobs(jobs)
        self._resume = [j for j in jobs if not j.is_final]
        if self._poller is not None:
            for job in self._resume:
                self._poller.track(job)
        self._count_active()

    def _remember(self, jobs: Iterable[Job]) -> None:
        """Write jobs to the history; trouble is a notification, never a crash."""
        import sqlite3

        if self.store is None:
            return
        try:
            self.store.save_many(list(jobs))
        except sqlite3.Error as err:
            self.notify(f"Job history not updated: {err}", severity="error", markup=False)

    async def _poll_forever(self) -> None:
        from ..poller import APP_SETTINGS, StatusPoller

        self._poller = StatusPoller(self.client_for, **APP_SETTINGS)
        for job in self._resume:
            self._poller.track(job)  # unfinished jobs from the history, the CLI's included

        def on_batch(changes: list[JobChange], links: dict[str, EndpointLink]) -> None:
            self.post_message(JobsPolled(changes, dict(links)))

        await self._poller.run(on_batch)

    @_while_mounted
    def on_jobs_polled(self, message: JobsPolled) -> None:
        self._remember(c.job for c in message.changes if c.fields - {"link"})
        table = self.query_one(JobTable)
        with self.batch_update():
            for change in message.changes:
                table.update_job(change.job, change.fields)
            self.query_one(EndpointSidebar).update_links(message.links)
            self._count_active()
        self._refresh_detail({c.job.id for c in message.changes})
        self.refresh_bindings()

    def _count_active(self) -> None:
        self.query_one(EndpointSidebar).set_active_jobs(self.query_one(JobTable).active_counts())

    def _refresh_detail(self, ids: set[str]) -> None:
        from .screens.job_detail import JobDetailScreen

        screen = self.screen
        if isinstance(screen, JobDetailScreen) and screen.job.id in ids:
            screen.refresh_job()

    def action_toggle_polling(self) -> None:
        if self._poller is None:
            return
        self._poller.set_paused(not self._poller.paused)
        self._update_subtitle()
        self.notify(
            "Polling paused: press p to resume." if self._poller.paused else "Polling resumed."
        )

    # -- health

    _health_checked_at = 0.0

    def _health_tick(self) -> None:
        from .screens.health import HealthScreen

        busy = bool(self.query_one(JobTable).active_counts())
        watching = isinstance(self.screen, HealthScreen)
        if busy or watching or time.monotonic() - self._health_checked_at >= HEALTH_IDLE_S:
            self.check_health()

    @work(group="health", exclusive=True, exit_on_error=False)
    async def check_health(self) -> None:
        import asyncio

        self._health_checked_at = time.monotonic()

        async def one(endpoint: Endpoint) -> None:
            client = self.client_for(endpoint.name)
            if client is None:
                return
            try:
                if endpoint.kind is EndpointKind.QUEUE:
                    self.post_message(HealthChecked(endpoint.name, await client.health()))
                elif endpoint.kind is EndpointKind.LB:
                    self.post_message(HealthChecked(endpoint.name, None, ping=await client.ping()))
            except E.FlashError as err:
                self.post_message(HealthChecked(endpoint.name, None, error=err))

        if self.demo and self.sandbox is None:
            targets = [e for e in self.endpoints if e.source != "demo"]
        else:
            targets = list(self.endpoints)
        await asyncio.gather(*(one(e) for e in targets if e.kind is not EndpointKind.WORKER))

    def action_check_health(self) -> None:
        self.check_health()

    @_while_mounted
    def on_health_checked(self, message: HealthChecked) -> None:
        self.query_one(EndpointSidebar).update_health(
            message.endpoint, message.health, message.ping, message.error
        )
        from .screens.health import HealthScreen

        screen = self.screen
        if isinstance(screen, HealthScreen) and screen.endpoint.name == message.endpoint:
            screen.refresh_health()

    def action_show_health(self) -> None:
        from .screens.health import HealthScreen

        endpoint = self.current
        if endpoint is None or self.screen.is_modal:
            return
        if endpoint.kind is not EndpointKind.QUEUE:
            from ..api.client import unsupported_reason

            reason = unsupported_reason(endpoint.kind, "health") or ""
            self.notify(f"No health view for {endpoint.name}: {reason}", markup=False)
            return
        state = self.query_one(EndpointSidebar).states.get(endpoint.name)
        if state is not None:
            self.push_screen(HealthScreen(endpoint, state))
            self.check_health()

    # -- choosing an endpoint

    @_while_mounted
    def on_endpoint_selected(self, message: EndpointSelected) -> None:
        self.select_endpoint(message.endpoint)

    def select_endpoint(self, endpoint: Endpoint, then: Callable[[], None] | None = None) -> None:
        """Show the endpoint's editor; ``then`` runs once it is loaded (the route panel may
        need mounting first)."""
        self._keep_draft()
        self.current = endpoint
        switcher = self.query_one("#work", ContentSwitcher)
        draft = self.drafts.get(endpoint.name)
        if endpoint.kind is EndpointKind.LB:
            if self._routes_mounting is None:
                self._routes_mounting = switcher.mount(RoutePanel(id="routes"))
            switcher.current = "routes"
            mounting = self._routes_mounting
            if not self._routes_ready:

                async def load_when_mounted() -> None:
                    await mounting
                    self._routes_ready = True
                    if self.current is endpoint:
                        self.select_endpoint(endpoint, then)

                self.call_later(load_when_mounted)
                return
            self.query_one(RoutePanel).load(endpoint, draft)
        else:
            switcher.current = "payload"
            if draft is None:
                draft = _dumps(endpoint.example_input) if endpoint.example_input else "{\n  \n}"
            editor = self.query_one(PayloadEditor)
            editor.load(endpoint, draft)
            editor.set_options(self.submit_options.get(endpoint.name, SubmitOptions()).describe())
        self.refresh_bindings()
        if then is not None:
            then()

    #: The route panel's mount, started the first time a load-balanced endpoint is chosen.
    _routes_mounting: AwaitMount | None = None
    _routes_ready = False

    def _route_panel(self) -> RoutePanel | None:
        """The route panel once it shows an endpoint (it is mounted on first use)."""
        panels = self.query(RoutePanel)
        return panels.first() if panels and panels.first().endpoint is not None else None

    def _keep_draft(self) -> None:
        if self.current is None:
            return
        try:
            if self.current.kind is EndpointKind.LB:
                panel = self._route_panel()
                if panel is None or panel.endpoint is not self.current:
                    return  # not loaded with this endpoint yet: its draft is as it was
                text = panel.body_text
            else:
                text = self.query_one(PayloadEditor).text
        except NoMatches:  # shutting down: the widgets are gone, the draft was kept before
            return
        if self.drafts.get(self.current.name) != text:
            self.drafts[self.current.name] = text
            if self.current.source == "config":
                self._config_dirty = True

    def action_focus_editor(self) -> None:
        if self.current is None:
            return
        if self.current.kind is EndpointKind.LB:
            self.query_one("#route-body").focus()
        else:
            self.query_one("#payload-text").focus()

    # -- which actions apply now

    _footer_state: object = None

    def refresh_bindings(self) -> None:
        """Redraw the footer only when what it shows changed. Polls call this after every
        batch (cancel and retry depend on the selected job's status), and each footer redraw
        leaves a watcher behind (Textual #6666), so redraws that change nothing made a long
        session slower by the minute: key presses went undrawn at 10,000 jobs."""
        if not self._is_mounted:
            return
        try:
            screen = self.screen
            shown = tuple(
                (key, active.binding, active.enabled, active.tooltip)
                for key, active in screen.active_bindings.items()
            )
        except Exception:  # no screen yet, or closing: let Textual decide
            super().refresh_bindings()
            return
        state = (screen, shown)
        if state != self._footer_state:
            self._footer_state = state
            super().refresh_bindings()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        on_main = not self.screen.is_modal
        kind = self.current.kind if self.current else None
        if action in ("run_async", "run_sync", "submit_options"):
            return on_main and kind in (EndpointKind.QUEUE, EndpointKind.WORKER)
        if action == "send":
            return on_main and kind is EndpointKind.LB
        if action in ("cancel_job", "retry_job", "copy_job_id", "delete_job"):
            job = self.selected_job
            if job is None:
                return False
            if action in ("copy_job_id", "delete_job"):
                return True
            endpoint = self.endpoint_named(job.endpoint)
            if endpoint is None or endpoint.kind is EndpointKind.WORKER:
                return None  # shown, disabled: the local worker server has no such route
            if action == "cancel_job":
                return None if job.is_final else True
            return True if job.status in RETRYABLE_STATUSES else None
        if action == "clear_filter":
            return on_main and self.query_one("#job-filter", Input).display
        if action in ("edit_endpoint", "remove_endpoint"):
            return (self.current is not None and self.current.source == "config") or None
        return True

    @property
    def selected_job(self) -> Job | None:
        from .screens.job_detail import JobDetailScreen

        if isinstance(self.screen, JobDetailScreen):
            return self.screen.job
        if self.screen.is_modal:
            return None
        return self.query_one(JobTable).selected_job

    # -- submitting

    def action_run_async(self) -> None:
        self._submit(sync=False)

    def action_run_sync(self) -> None:
        self._submit(sync=True)

    def action_submit_options(self) -> None:
        from .screens.options import OptionsScreen

        endpoint = self.current
        if endpoint is None or endpoint.kind is EndpointKind.LB:
            return
        current = self.submit_options.get(endpoint.name, SubmitOptions())

        def chosen(options: SubmitOptions | None) -> None:
            if options is None:
                return
            self.submit_options[endpoint.name] = options
            self.query_one(PayloadEditor).set_options(options.describe())

        self.push_screen(OptionsScreen(endpoint.name, current), chosen)

    # -- saved payloads

    @property
    def payloads(self) -> PayloadLibrary:
        from ..payloads import PayloadLibrary

        if self._payloads is None:
            self._payloads = PayloadLibrary.load(self.config.path.parent / "payloads.toml")
        return self._payloads

    def _editor_text(self) -> str:
        if self.current is not None and self.current.kind is EndpointKind.LB:
            return self.query_one(RoutePanel).body_text
        return self.query_one(PayloadEditor).text

    def _set_editor_text(self, text: str) -> None:
        if self.current is not None and self.current.kind is EndpointKind.LB:
            self.query_one("#route-body", TextArea).load_text(text)
        else:
            self.query_one(PayloadEditor).text_area.load_text(text)

    def action_save_payload(self) -> None:
        from .screens.payloads import SavePayloadScreen

        endpoint = self.current
        if endpoint is None or self.screen.is_modal:
            return
        text = self._editor_text()

        def save(name: str | None) -> None:
            if not name:
                return
            try:
                self.payloads.put(endpoint.name, name, text)
            except (ValueError, OSError) as err:
                self.notify(f"Not saved: {err}", severity="error", markup=False)
                return
            self.notify(f"Saved payload {name!r} for {endpoint.name}", markup=False)

        self.push_screen(SavePayloadScreen(endpoint.name, self.payloads.names(endpoint.name)), save)

    def action_pick_payload(self) -> None:
        from .screens.payloads import PickPayloadScreen

        endpoint = self.current
        if endpoint is None or self.screen.is_modal:
            return
        names = self.payloads.names(endpoint.name)
        if not names:
            self.notify(
                f"No saved payloads for {endpoint.name} yet: f6 saves the current one.",
                markup=False,
            )
            return
        screen = PickPayloadScreen(endpoint.name, names)

        def picked(name: str | None) -> None:
            for gone in screen.deleted:
                with contextlib.suppress(ValueError, OSError):
                    self.payloads.delete(endpoint.name, gone)
            text = self.payloads.get(endpoint.name, name) if name else None
            if text is not None:
                self._set_editor_text(text)
                self.notify(f"Loaded payload {name!r}", markup=False)

        self.push_screen(screen, picked)

    # -- export and import

    def action_export_request(self) -> None:
        """The request the editor or route panel would send, as curl, Python or httpx."""
        from ..export import request_for_job, request_for_route
        from .screens.export import ExportScreen

        endpoint = self.current
        if endpoint is None or self.screen.is_modal:
            return
        if endpoint.kind is EndpointKind.LB:
            panel = self._route_panel()
            if panel is None:
                return
            ok, body = panel.validate()
            if not ok:
                self.notify("Fix the body first: it is not valid JSON.", severity="error")
                return
            request = request_for_route(endpoint, panel.method, panel.path, body)
            title = f"Export · {panel.method} {panel.path} on {endpoint.name}"
        else:
            job_input = self.query_one(PayloadEditor).validate()
            if job_input is None:
                self.notify(
                    "Fix the payload first: see the message under the editor.", severity="error"
                )
                return
            request = request_for_job(endpoint, job_input, sync=False)
            title = f"Export · /run on {endpoint.name}"
        self.push_screen(ExportScreen(request, title))

    def action_export_job(self) -> None:
        from ..export import request_for_job
        from .screens.export import ExportScreen

        job = self.selected_job
        endpoint = self.endpoint_named(job.endpoint) if job else None
        if job is None or endpoint is None or endpoint.kind is EndpointKind.LB:
            return
        if not isinstance(job.input, dict):
            self.notify(
                "This job's input was not kept, so it cannot be exported.", severity="warning"
            )
            return
        route = "/runsync" if job.sync else "/run"
        self.push_screen(
            ExportScreen(
                request_for_job(endpoint, job.input, job.sync),
                f"Export · job {job.id} ({route} on {endpoint.name})",
            )
        )

    def action_import_curl(self) -> None:
        from .screens.export import ImportCurlScreen

        if not self.screen.is_modal:
            self.push_screen(ImportCurlScreen(), self._imported)

    def _imported(self, parsed: ParsedCurl | None) -> None:
        if parsed is None:
            return
        kind = parsed.kind or EndpointKind.QUEUE
        base = parsed.base_url.rstrip("/")
        endpoint = next((e for e in self.endpoints if e.url.rstrip("/") == base), None)
        body = parsed.job_input if kind is not EndpointKind.LB else parsed.body_json
        text = _dumps(body) if body is not None else (parsed.body_text or "")
        if endpoint is None:
            from .screens.endpoint_form import EndpointForm

            # Not known yet: offer to add it, then load the body into it.
            name = base.rstrip("/").rsplit("/", 1)[-1].split("//")[-1].split(".")[0] or "imported"
            self._pending_import = (parsed, text)
            self.push_screen(
                EndpointForm(
                    None, {e.name for e in self.endpoints}, prefill=Endpoint(name, kind, base)
                ),
                self._added,
            )
            return
        self._load_import(endpoint, parsed, text)

    def _load_import(self, endpoint: Endpoint, parsed: ParsedCurl, text: str) -> None:
        sidebar = self.query_one(EndpointSidebar)
        sidebar.highlighted = sidebar.get_option_index(endpoint.name)

        def fill() -> None:
            if endpoint.kind is EndpointKind.LB:
                panel = self.query_one(RoutePanel)
                panel.query_one("#route-method", Select).value = parsed.method.upper()
                panel.query_one("#route-path", Input).value = parsed.route_path or "/"
            self._set_editor_text(text)
            self.notify(
                f"Imported into {endpoint.name}"
                + (" (the pasted key was dropped)" if parsed.had_auth else ""),
                markup=False,
            )

        self.select_endpoint(endpoint, then=fill)

    def action_format_payload(self) -> None:
        self.query_one(PayloadEditor).format_json()

    def _submit(self, sync: bool) -> None:
        endpoint = self.current
        if endpoint is None or endpoint.kind is EndpointKind.LB:
            return
        editor = self.query_one(PayloadEditor)
        job_input = editor.validate()
        if job_input is None:
            err = editor.error
            self.notify(f"Not sent: {err}", severity="error", markup=False)
            area = editor.text_area
            if err is not None and err.line is not None and err.column is not None:
                area.cursor_location = (err.line - 1, max(0, err.column - 1))
            area.focus()
            return
        self._keep_draft()
        self.submit_job(endpoint, job_input, sync)

    @work(group="submit", exit_on_error=False)
    async def submit_job(self, endpoint: Endpoint, job_input: dict[str, Any], sync: bool) -> None:
        client = self.client_for(endpoint.name)
        if client is None:
            return
        self._sending += 1
        table = self.query_one(JobTable)
        pending_id = f"sending-{self._sending}"
        if self.store is not None:
            # In the history before it is sent: a killed app still knows it tried.
            try:
                pending_id = self.store.add_pending(
                    endpoint.name, endpoint.url, endpoint.kind.value, job_input, sync
                )
            except Exception as err:
                self.notify(f"Job history not written: {err}", severity="warning", markup=False)
        placeholder = Job(
            endpoint.name, pending_id, status="SUBMITTING", input=job_input, sync=sync
        )
        table.add_job(placeholder)
        route = "/runsync" if sync else "/run"
        options = self.submit_options.get(endpoint.name, SubmitOptions())
        try:
            answer = await client.submit(
                job_input, sync=sync, webhook=options.webhook, policy=options.policy()
            )
        except E.FlashError as err:
            unknown = isinstance(err, E.OutcomeUnknown)
            if self.store is not None:
                with contextlib.suppress(Exception):
                    self.store.fail_pending(endpoint.name, pending_id, str(err), unknown)
            if unknown:
                placeholder.mark(UNKNOWN, str(err))
                table.update_job(placeholder, {"status", "ended_at"})
                self.notify(
                    str(err), title="Outcome unknown", severity="error", timeout=20, markup=False
                )
            else:
                table.remove_job(placeholder)
                self.notify(f"{route} failed: {err}", severity="error", timeout=10, markup=False)
            return
        job = Job(
            endpoint.name,
            answer["id"],
            input=job_input,
            sync=sync,
            submitted_at=placeholder.submitted_at,
        )
        job.apply(answer)
        if self.store is not None:
            try:
                self.store.resolve_pending(pending_id, job)
            except Exception as err:
                self.notify(f"Job history not written: {err}", severity="warning", markup=False)
        table.remove_job(placeholder)
        self.post_message(JobAdded(job))

    @_while_mounted
    def on_job_added(self, message: JobAdded) -> None:
        job = message.job
        table = self.query_one(JobTable)
        table.add_job(job)
        table.move_cursor(row=0)
        self._row_moved()
        if self._poller is not None:
            self._poller.track(job)
        self._count_active()
        self.refresh_bindings()

    # -- routes

    def action_send(self) -> None:
        endpoint = self.current
        if endpoint is None or endpoint.kind is not EndpointKind.LB:
            return
        panel = self._route_panel()
        if panel is None:
            return
        ok, body = panel.validate()
        if not ok:
            self.notify(
                "Not sent: the body is not valid JSON (see below the editor).", severity="error"
            )
            self.query_one("#route-body").focus()
            return
        self._keep_draft()
        panel.show_sending()
        self.call_route(endpoint, panel.method, panel.path, body)

    @work(group="route", exclusive=True, exit_on_error=False)
    async def call_route(self, endpoint: Endpoint, method: str, path: str, body: Any) -> None:
        client = self.client_for(endpoint.name)
        if client is None:
            return
        try:
            answer = await client.call(method, path, body)
        except E.FlashError as err:
            self.post_message(RouteAnswered(endpoint.name, None, err))
            return
        self.post_message(RouteAnswered(endpoint.name, answer))

    @_while_mounted
    def on_route_answered(self, message: RouteAnswered) -> None:
        if self.current is None or self.current.name != message.endpoint:
            return  # the user moved on: don't show a stale answer on another endpoint
        panel = self.query_one(RoutePanel)
        if message.answer is not None:
            panel.show_answer(message.answer)
        elif message.error is not None:
            panel.show_error(message.error)
            self.notify(str(message.error), severity="error", markup=False)

    # -- job actions

    def action_open_job(self) -> None:
        job = self.query_one(JobTable).selected_job
        if job is None:
            return
        from .screens.job_detail import JobDetailScreen

        self.push_screen(JobDetailScreen(job))

    def action_cancel_job(self) -> None:
        job = self.selected_job
        if job is not None:
            self.job_action(job, "cancel")

    def action_retry_job(self) -> None:
        job = self.selected_job
        if job is not None:
            self.job_action(job, "retry")

    def action_copy_job_id(self) -> None:
        job = self.selected_job
        if job is not None:
            self.copy_to_clipboard(job.id)
            self.notify(f"Copied {job.id}", markup=False)

    @work(group="job-action", exit_on_error=False)
    async def job_action(self, job: Job, op: str) -> None:
        from ..api.client import unsupported_reason

        endpoint = self.endpoint_named(job.endpoint)
        client = self.client_for(job.endpoint)
        if endpoint is None or client is None:
            self.notify(f"Endpoint {job.endpoint} is gone.", severity="error", markup=False)
            return
        reason = unsupported_reason(endpoint.kind, op)
        if reason:
            self.notify(reason, severity="warning", markup=False)
            return
        try:
            answer = await (client.cancel(job.id) if op == "cancel" else client.retry(job.id))
        except E.FlashError as err:
            self.notify(f"{op.capitalize()} failed: {err}", severity="error", markup=False)
            return
        fields = job.apply(answer)
        self._remember([job])
        self.query_one(JobTable).update_job(job, fields | {"status"})
        if self._poller is not None:
            self._poller.poll_soon(job) if not job.is_final else None
        self._refresh_detail({job.id})
        self._count_active()
        self.refresh_bindings()
        self.notify(f"{op.capitalize()}: job {job.id} is {job.status}", markup=False)

    # -- endpoints

    def action_add_endpoint(self) -> None:
        from .screens.endpoint_form import EndpointForm

        if self.screen.is_modal:
            return
        self.push_screen(EndpointForm(None, {e.name for e in self.endpoints}), self._added)

    def _added(self, endpoint: Endpoint | None) -> None:
        pending, self._pending_import = self._pending_import, None
        if endpoint is None:
            return
        self.endpoints.append(endpoint)
        self.config.endpoints.append(endpoint)
        if self._save():
            self.notify(f"Added {endpoint.name}; saved to {self.config.path}", markup=False)
        sidebar = self.query_one(EndpointSidebar)
        sidebar.set_endpoints(self.endpoints, select=endpoint.name)
        self.check_health()
        if pending is not None:
            self._load_import(endpoint, *pending)

    def action_edit_endpoint(self) -> None:
        from .screens.endpoint_form import EndpointForm

        endpoint = self.current
        if endpoint is None or endpoint.source != "config":
            self.notify("Demo endpoints cannot be edited.", severity="warning")
            return
        names = {e.name for e in self.endpoints}
        self.push_screen(EndpointForm(endpoint, names), lambda new: self._edited(endpoint, new))

    def _edited(self, old: Endpoint, new: Endpoint | None) -> None:
        if new is None:
            return
        self._replace(old, new)
        if old.name != new.name and old.name in self.drafts:
            self.drafts[new.name] = self.drafts.pop(old.name)
        self._clients.pop(old.name, None)
        self.current = None
        self._save()
        self.query_one(EndpointSidebar).set_endpoints(self.endpoints, select=new.name)
        self.check_health()

    def _replace(self, old: Endpoint, new: Endpoint | None) -> None:
        for items in (self.endpoints, self.config.endpoints):
            if old in items:
                index = items.index(old)
                if new is None:
                    items.pop(index)
                else:
                    items[index] = new

    def action_remove_endpoint(self) -> None:
        from .screens.dialogs import ConfirmDialog

        endpoint = self.current
        if endpoint is None or endpoint.source != "config":
            self.notify("Demo endpoints cannot be removed.", severity="warning")
            return

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            self._replace(endpoint, None)
            self.drafts.pop(endpoint.name, None)
            self._clients.pop(endpoint.name, None)
            self.current = None
            self._save()
            self.query_one(EndpointSidebar).set_endpoints(self.endpoints)
            if not self.endpoints:
                self.query_one("#work", ContentSwitcher).current = "empty"
            self.notify(f"Removed {endpoint.name}", markup=False)

        self.push_screen(
            ConfirmDialog(
                f"Remove endpoint {endpoint.name!r} ({endpoint.url})? Its jobs stay in the table."
            ),
            answer,
        )

    def _save(self) -> bool:
        self._keep_draft()
        self.config.drafts = self.drafts
        try:
            save_config(self.config)
        except (ConfigError, OSError) as err:
            self.notify(f"Not saved: {err}", severity="error", timeout=15, markup=False)
            return False
        self._config_dirty = False
        return True

    # -- help, palette, errors

    def action_help(self) -> None:
        from .screens.dialogs import HelpScreen
        from .screens.endpoint_form import EndpointForm
        from .screens.job_detail import JobDetailScreen

        rows: list[tuple[str, str, str]] = []
        for where, bindings in (
            ("everywhere", self.BINDINGS),
            ("endpoints", EndpointSidebar.BINDINGS),
            ("job table", JobTable.BINDINGS),
            ("job detail", JobDetailScreen.BINDINGS),
            ("endpoint form", EndpointForm.BINDINGS),
        ):
            for b in bindings:
                if isinstance(b, Binding) and b.description:
                    rows.append((b.key.replace("question_mark", "?"), b.description, where))
        rows.append(("ctrl+p", "Command palette (every action, themes)", "everywhere"))
        rows.append(("tab / shift+tab", "Move between panes", "everywhere"))
        self.push_screen(HelpScreen(rows))

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help, action in _PALETTE:
            if self.check_action(action, ()) is True:
                yield SystemCommand(title, help, lambda a=action: self.run_action(a))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """One place for a worker's unexpected failure: a notification, never a traceback."""
        if event.state is WorkerState.ERROR and event.worker.error is not None:
            err = event.worker.error
            self.notify(
                f"{event.worker.name or 'worker'} failed: {type(err).__name__}: {err}",
                severity="error",
                timeout=15,
                markup=False,
            )
            if event.worker.group == "poller":
                self.set_timer(1.0, self._restart_poller)

    def _restart_poller(self) -> None:
        old = self._poller
        self.run_worker(self._poll_forever(), group="poller", name="poller", exit_on_error=False)
        if old is not None:
            # Carry the jobs over; the new poller is created inside the worker.
            def carry() -> None:
                if self._poller is not None:
                    for job in self.query_one(JobTable).jobs.values():
                        self._poller.track(job)

            self.call_after_refresh(carry)

    @on(JobTable.RowHighlighted)
    def _row_moved(self) -> None:
        if not self.is_running:
            return
        try:
            self.refresh_bindings()
        except ScreenStackError:  # the app is closing
            return
        job = self.query_one(JobTable).selected_job
        self.query_one(JobTable).border_subtitle = self.job_hint(job) if job else ""

    def job_hint(self, job: Job) -> str:
        """Why cancel or retry are disabled for this job, if they are."""
        endpoint = self.endpoint_named(job.endpoint)
        if endpoint is not None and endpoint.kind is EndpointKind.WORKER:
            return "cancel, retry: the local worker server has no /cancel or /retry"
        return ""

    async def action_quit(self) -> None:
        self._keep_draft()
        self.exit()

    # -- filtering and deleting jobs

    def action_filter_jobs(self) -> None:
        field = self.query_one("#job-filter", Input)
        field.display = True
        field.focus()

    @on(Input.Changed, "#job-filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.query_one(JobTable).set_filter(event.value)

    @on(Input.Submitted, "#job-filter")
    def _filter_done(self, event: Input.Submitted) -> None:
        field = self.query_one("#job-filter", Input)
        field.display = bool(field.value)
        self.query_one(JobTable).focus()

    def action_clear_filter(self) -> None:
        field = self.query_one("#job-filter", Input)
        field.value = ""
        field.display = False
        self.query_one(JobTable).set_filter("")
        self.query_one(JobTable).focus()

    def action_delete_job(self) -> None:
        from .screens.dialogs import ConfirmDialog

        job = self.selected_job
        if job is None or self.screen.is_modal:
            return

        def answer(yes: bool | None) -> None:
            if not yes:
                return
            if self._poller is not None:
                self._poller.forget(job)
            self.query_one(JobTable).remove_job(job)
            if self.store is not None:
                with contextlib.suppress(Exception):
                    self.store.delete(job.endpoint, job.id)
            self._count_active()

        running = (
            ""
            if job.is_final
            else (" It is still running on the server; only flash-tui forgets it.")
        )
        self.push_screen(ConfirmDialog(f"Delete job {job.id} from the history?{running}"), answer)

    async def on_unmount(self) -> None:
        if self._config_dirty and not self.config.error:
            self._save()
        if self._pool is not None:
            await self._pool.aclose()
        if self.sandbox is not None:
            self.sandbox.stop()
        if self.store is not None:
            self.store.close()


_PALETTE = [
    ("Run (/run)", "Submit the payload to the selected queue endpoint", "run_async"),
    ("Run sync (/runsync)", "Submit and wait for the result", "run_sync"),
    ("Send route", "Call the load-balanced route", "send"),
    ("Format payload", "Pretty-print the JSON payload", "format_payload"),
    ("Submission options", "webhook, executionTimeout, ttl, lowPriority", "submit_options"),
    ("Export request", "The request as curl, Python (runpod SDK) or httpx", "export_request"),
    ("Export job", "The selected job's request as curl, Python or httpx", "export_job"),
    ("Import curl", "Paste a curl command into the editor or the route panel", "import_curl"),
    ("Save payload as…", "Keep the editor's JSON under a name, for this endpoint", "save_payload"),
    ("Saved payloads", "Load a saved payload into the editor", "pick_payload"),
    ("Open job", "Show the selected job's detail", "open_job"),
    ("Cancel job", "Cancel the selected job", "cancel_job"),
    ("Retry job", "Retry the selected failed job", "retry_job"),
    ("Copy job id", "Copy the selected job's id to the clipboard", "copy_job_id"),
    ("Filter jobs", "Show only the jobs matching some words", "filter_jobs"),
    ("Clear the job filter", "Show every job again", "clear_filter"),
    ("Delete job", "Delete the selected job from the history", "delete_job"),
    ("Add endpoint", "Add an endpoint and save it to the config", "add_endpoint"),
    ("Edit endpoint", "Edit the selected endpoint", "edit_endpoint"),
    ("Remove endpoint", "Remove the selected endpoint from the config", "remove_endpoint"),
    ("Pause or resume polling", "Stop or restart the background status polls", "toggle_polling"),
    ("Open the demo", "Start the local sandbox with demo endpoints", "start_demo"),
    ("Refresh health", "Ask every endpoint for its health now", "check_health"),
    ("Endpoint health", "Queue depth and worker states over time", "show_health"),
    ("Keys", "List every key binding", "help"),
]


def _dumps(value: Any) -> str:
    import json

    return json.dumps(value, indent=2, ensure_ascii=False)


def run_app(
    demo: bool = False, config_path: Path | None = None, flash_project: Path | None = None
) -> int:
    app = FlashApp(load_config(config_path), demo=demo, flash_project=flash_project)
    result = app.run()
    return int(result or 0)


__all__ = ["FlashApp", "run_app", "time"]
