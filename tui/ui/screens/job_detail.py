"""Job detail: input, output, decoded error, timings and the raw answer; cancel, retry, copy."""

from __future__ import annotations

import json
import time
from typing import ClassVar

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Footer, Label, Log, Static, TabbedContent, TabPane, TextArea

from ...api.models import Job
from ..jsontext import pretty, visible
from ..status_style import format_age, format_ms, glyph

#: Text longer than this is shown without soft wrap or syntax colours.
PLAIN_ABOVE = 64 * 1024


class JobDetailScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "dismiss", "Close"),
        Binding("c", "app.cancel_job", "Cancel job"),
        Binding("r", "app.retry_job", "Retry job"),
        Binding("y", "app.copy_job_id", "Copy id"),
        Binding("s", "save_output", "Save output"),
        Binding("e", "app.export_job", "Export"),
    ]

    DEFAULT_CSS = """
    JobDetailScreen { align: center middle; }
    JobDetailScreen > Vertical {
        width: 92%; height: 90%; border: thick $primary; background: $surface; padding: 0 1;
    }
    JobDetailScreen #detail-title { height: 1; text-style: bold; }
    JobDetailScreen #detail-facts { height: auto; color: $text-muted; }
    JobDetailScreen TabbedContent { height: 1fr; }
    JobDetailScreen TextArea { height: 1fr; }
    """

    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    @property
    def selected_job(self) -> Job:
        return self.job

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("", id="detail-title")
            yield Static("", id="detail-facts")
            with TabbedContent(id="detail-tabs"):
                with TabPane("Output", id="tab-output"):
                    yield TextArea.code_editor(
                        "", language="json", read_only=True, id="detail-output", soft_wrap=True
                    )
                with TabPane("Error", id="tab-error"):
                    yield TextArea("", read_only=True, id="detail-error", soft_wrap=True)
                with TabPane("Input", id="tab-input"):
                    yield TextArea.code_editor(
                        "", language="json", read_only=True, id="detail-input", soft_wrap=True
                    )
                with TabPane("Stream", id="tab-stream"):
                    yield Log(id="detail-stream", highlight=False)
                with TabPane("Raw", id="tab-raw"):
                    yield TextArea.code_editor(
                        "", language="json", read_only=True, id="detail-raw", soft_wrap=True
                    )
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_job(first=True)
        if self.job.output_pending:
            self.load_output()
        log = self.query_one("#detail-stream", Log)
        for chunk in self.job.stream_chunks:
            log.write_line(_chunk_line(chunk))
        endpoint = getattr(self.app, "endpoint_named", lambda _: None)(self.job.endpoint)
        # A finished job may still hold chunks nobody read (the server hands each out once
        # and keeps the rest until the result expires): read them too.
        unread = not self.job.is_final or not self.job.stream_chunks
        if endpoint is not None and endpoint.kind.value == "queue" and unread:
            log.write_line("… following /stream while this view is open")
            self.follow_stream()

    @work(group="stream", exclusive=True, exit_on_error=False)
    async def follow_stream(self) -> None:
        """Read /stream chunks as they come; each is kept on the job (the server gives it once)."""
        from ...api.errors import FlashError

        client = self.app.client_for(self.job.endpoint)  # type: ignore[attr-defined]
        if client is None:
            return
        log = self.query_one("#detail-stream", Log)
        state: dict[str, object] = {}
        try:
            async for chunk in client.iter_stream(self.job.id, interval=0.5, state=state):
                self.job.stream_chunks.append(chunk)
                log.write_line(_chunk_line(chunk))
        except FlashError as err:
            log.write_line(f"stream stopped: {visible(str(err))}")
            return
        log.write_line(f"stream ended: {visible(str(state.get('status')))}")

    @work(thread=True, exit_on_error=False)
    def load_output(self) -> None:
        """A big output from the history is read off the UI thread."""
        store = getattr(self.app, "store", None)
        if store is None:
            return
        output = store.load_output(self.job.endpoint, self.job.id)
        self.app.call_from_thread(self._output_loaded, output)

    def _output_loaded(self, output: object) -> None:
        self.job.raw["output"] = output
        self.job.output = output
        self.job.output_size = 0
        self.refresh_job()

    def refresh_job(self, first: bool = False) -> None:
        job = self.job
        mark, colour = glyph(job.status)
        title = self.query_one("#detail-title", Label)
        title.update(
            Content.assemble((f"{mark} {job.status}", f"bold ${colour}"), "  ", visible(job.id))
        )
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.submitted_at))
        if job.ended_at is None:
            when = f"submitted {started} ({format_age(time.time() - job.submitted_at)} ago)"
        else:
            when = f"submitted {started}, ended after {format_age(job.ended_at - job.submitted_at)}"
        facts = [
            f"endpoint {job.endpoint}",
            when,
            f"delay {format_ms(job.delay_ms)}",
            f"execution {format_ms(job.execution_ms)}",
            f"worker {visible(job.worker_id or '–')}",
        ]
        if job.retries:
            facts.append(f"retries {job.retries}")
        if job.sync:
            facts.append("via /runsync")
        text = " · ".join(facts)
        hint = getattr(self.app, "job_hint", lambda _: "")(job)
        if hint:
            text += "\n" + hint
        if job.note:
            text += "\n" + visible(job.note)
        self.query_one("#detail-facts", Static).update(Content(text))
        pending = f"(loading the output, {job.output_size:,} bytes…)" if job.output_pending else ""
        self._set(
            "#detail-output",
            pending
            or ("output" in job.raw and pretty(job.output))
            or ("(no output yet)" if not job.is_final else "(no output)"),
        )
        self._set("#detail-error", self._error_text())
        self._set("#detail-input", pretty(job.input) if job.input is not None else "(not kept)")
        self._set("#detail-raw", pretty(job.raw) if job.raw else "{}")
        if first:
            tabs = self.query_one("#detail-tabs", TabbedContent)
            if job.error is not None and job.output is None:
                tabs.active = "tab-error"

    def _set(self, selector: str, text: str) -> None:
        area = self.query_one(selector, TextArea)
        if area.text == text:
            return
        # A TextArea wraps, bracket-matches and highlights its whole text on every load and
        # resize: past 64 KB that is seconds, so big text shows plain and unwrapped.
        big = len(text) > PLAIN_ABOVE
        language = None if big or selector == "#detail-error" else "json"
        if not big:
            area.load_text(text)  # before colours come back, so the old big text gets none
        if area.soft_wrap == big:
            area.soft_wrap = not big
        if area.language != language:
            area.language = language
        if big:
            area.load_text(text)

    def _error_text(self) -> str:
        job = self.job
        if job.error is None:
            return "(no error)"
        decoded = job.worker_error
        if decoded is None:
            return pretty(job.error)
        parts = [f"Type:    {decoded.type}", f"Message: {decoded.message}"]
        for key, value in decoded.extra.items():
            parts.append(f"{key}: {value}")
        if decoded.traceback:
            parts += ["", "Traceback:", decoded.traceback.rstrip()]
        return visible("\n".join(parts))

    def action_save_output(self) -> None:
        from pathlib import Path

        job = self.job
        if job.output is None:
            self.notify("This job has no output to save.", severity="warning")
            return
        name = f"flash-tui-{job.id[:24]}-output.json".replace("/", "_")
        path = Path.cwd() / name
        try:
            path.write_text(json.dumps(job.output, indent=2, ensure_ascii=False))
        except OSError as err:
            self.notify(f"Cannot save {path}: {err.strerror}", severity="error")
            return
        self.notify(f"Output saved to {path}")


def _chunk_line(chunk: object) -> str:
    """One chunk on one line: JSON, long ones cut, control characters made visible."""
    text = chunk if isinstance(chunk, str) else json.dumps(chunk, ensure_ascii=False, default=str)
    if len(text) > 2000:
        text = text[:2000] + f"… ({len(text):,} characters)"
    return visible(text)
