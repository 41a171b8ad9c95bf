"""The live job table: every job submitted, updated cell by cell as polls come in."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import ClassVar

from rich.text import Text
from textual.binding import Binding, BindingType
from textual.widgets import DataTable
from textual.widgets.data_table import Row, RowKey

from ...api.models import Job
from ..status_style import format_age, format_ms, glyph

COLUMNS = (
    ("status", "Status", 13),
    ("id", "Job id", 13),
    ("endpoint", "Endpoint", 10),
    ("delay", "Delay", 7),
    ("exec", "Exec", 7),
    ("worker", "Worker", 12),
    ("age", "Age", 6),
)
#: Which table columns a changed job field touches.
FIELD_COLUMNS = {
    "status": ("status", "age"),
    "delay_ms": ("delay",),
    "execution_ms": ("exec",),
    "worker_id": ("worker",),
    "ended_at": ("age",),
}
#: Sort keys by column; "age" (newest first) is the default order.
SORT_KEYS = {
    "status": lambda j: j.status,
    "id": lambda j: j.id,
    "endpoint": lambda j: j.endpoint,
    "delay": lambda j: -1.0 if j.delay_ms is None else j.delay_ms,
    "exec": lambda j: -1.0 if j.execution_ms is None else j.execution_ms,
    "worker": lambda j: j.worker_id or "",
    "age": lambda j: -j.submitted_at,
}
COUNTED = ("COMPLETED", "FAILED", "IN_PROGRESS", "IN_QUEUE", "CANCELLED", "TIMED_OUT")


def job_key(job: Job) -> str:
    return f"{job.endpoint}\x00{job.id}"


def matches(job: Job, text: str) -> bool:
    """The ``/`` filter: every word must appear in the status, endpoint, id or worker."""
    if not text:
        return True
    haystack = f"{job.status} {job.endpoint} {job.id} {job.worker_id or ''}".lower()
    return all(word in haystack for word in text.lower().split())


class JobTable(DataTable[Text]):
    """Jobs newest first. Cells are rich ``Text``: server strings never parse as markup."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "open_job", "Details", show=True),
        Binding("c", "app.cancel_job", "Cancel job"),
        Binding("r", "app.retry_job", "Retry job"),
        Binding("y", "app.copy_job_id", "Copy job id"),
        Binding("delete", "app.delete_job", "Delete from history", show=False),
        Binding("slash", "app.filter_jobs", "Filter"),
    ]

    # Read by DataTable.__init__ already (through ``ordered_rows``): class-level defaults.
    _order_mark: tuple[int, object] | None = None
    _order: list[Row] = []
    _offsets: list[tuple[RowKey, int]] = []

    def __init__(self, **kwargs: object) -> None:
        super().__init__(cursor_type="row", zebra_stripes=False, **kwargs)  # type: ignore[arg-type]
        #: Every job, shown or filtered out.
        self.jobs: dict[str, Job] = {}
        self.filter_text = ""
        self.sort_column = "age"
        self.sort_reverse = False
        self._title_pending = False
        self._colours: dict[str, str] = {}
        #: Unfinished jobs by endpoint, kept as jobs change (the sidebar's live counts).
        self._active: dict[str, str] = {}
        #: Rows added since the last reorder, oldest first: they go to the top together.
        self._rows_to_top: list[RowKey] = []

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self.add_column(label, key=key, width=width)
        self._load_colours()
        self.watch(self.app, "theme", lambda _: self.recolour(), init=False)
        self.set_interval(1.0, self._tick_ages)
        self.update_title()

    def _load_colours(self) -> None:
        variables = self.app.theme_variables
        self._colours = {
            name: variables.get(name, "")
            for name in (
                "success",
                "error",
                "warning",
                "secondary",
                "accent",
                "foreground-darken-1",
            )
        }

    def recolour(self) -> None:
        self._load_colours()
        for key, job in self.jobs.items():
            if self._shown(key):
                self.update_cell(key, "status", self.status_cell(job))

    def status_cell(self, job: Job) -> Text:
        mark, colour_name = glyph(job.status)
        colour = self._colours.get(colour_name) or ""
        return Text(f"{mark} {job.status}", style=colour, no_wrap=True, overflow="ellipsis")

    def _cells(self, job: Job) -> dict[str, Text]:
        return {
            "status": self.status_cell(job),
            "id": Text(job.id, no_wrap=True, overflow="ellipsis"),
            "endpoint": Text(job.endpoint, no_wrap=True, overflow="ellipsis"),
            "delay": Text(format_ms(job.delay_ms), justify="right"),
            "exec": Text(format_ms(job.execution_ms), justify="right"),
            "worker": Text(job.worker_id or "–", no_wrap=True, overflow="ellipsis"),
            "age": Text(self._age(job), justify="right"),
        }

    def _row(self, job: Job) -> list[Text]:
        cells = self._cells(job)
        return [cells[c[0]] for c in COLUMNS]

    @staticmethod
    def _age(job: Job) -> str:
        # A finished job's age stops at its end, so the column says how long it took.
        end = job.ended_at if job.ended_at is not None else time.time()
        return format_age(end - job.submitted_at)

    def _shown(self, key: str) -> bool:
        return key in self._row_locations

    # DataTable caches its row order and line offsets by an update counter that every
    # ``update_cell`` bumps, so each frame after a poll batch walked all 10,000 rows twice.
    # Rows here are one line each and a cell update never moves one, so both are kept until
    # rows are added, removed or reordered (the count changes, or ``_row_locations`` is
    # replaced: ``remove_row``, ``sort``, ``clear`` and ``_flush_rows_to_top`` all replace it).

    @property
    def ordered_rows(self) -> list[Row]:
        locations = self._row_locations
        mark = self._order_mark
        if mark is None or mark[0] != self.row_count or mark[1] is not locations:
            rows = self.rows
            self._order = [rows[locations.get_key(i)] for i in range(len(rows))]  # type: ignore[index]
            self._offsets = [(row.key, 0) for row in self._order]
            self._order_mark = (self.row_count, locations)
        return self._order

    @property
    def _y_offsets(self) -> list[tuple[RowKey, int]]:
        _ = self.ordered_rows
        return self._offsets

    def _note_active(self, key: str, job: Job) -> None:
        if job.is_final:
            self._active.pop(key, None)
        else:
            self._active[key] = job.endpoint

    def active_counts(self) -> dict[str, int]:
        """Unfinished jobs per endpoint: walks the active ones only, not the whole history
        (a job changed in place without ``update_job`` drops out here)."""
        for key in [k for k in self._active if (j := self.jobs.get(k)) is None or j.is_final]:
            del self._active[key]
        return dict(Counter(self._active.values()))

    # -- changes

    def add_job(self, job: Job) -> None:
        key = job_key(job)
        if key in self.jobs:
            self.update_job(job, set(FIELD_COLUMNS))
            return
        self.jobs[key] = job
        self._note_active(key, job)
        if matches(job, self.filter_text):
            row_key = self.add_row(*self._row(job), key=key)
            if self.sort_column == "age" and not self.sort_reverse:
                self._move_to_top(row_key)
        self.update_title()

    def load_jobs(self, jobs: Iterable[Job]) -> None:
        """Many jobs at once (the history at start): one rebuild, not a move per row."""
        for job in jobs:
            key = job_key(job)
            if key not in self.jobs:
                self.jobs[key] = job
                self._note_active(key, job)
        self.rebuild()

    def rebuild(self) -> None:
        """Show the jobs that pass the filter, newest first, keeping the cursor's job."""
        selected = self.selected_job
        self._rows_to_top = []  # the rebuild puts every row in its place
        self.clear()
        ordered = sorted(
            self.jobs.values(),
            key=SORT_KEYS[self.sort_column],
            reverse=self.sort_reverse,
        )
        for job in ordered:
            if matches(job, self.filter_text):
                self.add_row(*self._row(job), key=job_key(job))
        if selected is not None and self._shown(job_key(selected)):
            self.move_cursor(row=self.get_row_index(job_key(selected)), animate=False)
        self.update_title()

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.rebuild()

    def _move_to_top(self, row_key: RowKey) -> None:
        """Newest first: the new row goes to index 0. A burst of new rows (a batch
        submitted) is moved in one reorder after the burst, not one walk of the table each."""
        self._rows_to_top.append(row_key)
        if len(self._rows_to_top) == 1:
            self.call_later(self._flush_rows_to_top)

    def _flush_rows_to_top(self) -> None:
        from textual._two_way_dict import TwoWayDict

        # A key added, removed and added again is listed twice: once is enough.
        fresh = list(
            dict.fromkeys(k for k in reversed(self._rows_to_top) if k in self._row_locations)
        )
        self._rows_to_top = []
        if not fresh or self.sort_column != "age" or self.sort_reverse:
            return  # sorted by another column meanwhile: the sort placed them
        order: dict[RowKey, int] = {k: i for i, k in enumerate(fresh)}
        locations = self._row_locations
        for index in range(len(locations)):
            row_key = locations.get_key(index)
            if row_key is not None and row_key not in order:
                order[row_key] = len(order)
        cursor = self.cursor_row
        self._row_locations = TwoWayDict(order)
        self._update_count += 1
        if 0 < cursor < self.row_count - len(fresh):
            # Keep the cursor on the row it was on.
            self.move_cursor(row=cursor + len(fresh), animate=False)
        self.refresh()

    def update_job(self, job: Job, fields: set[str]) -> None:
        key = job_key(job)
        if key not in self.jobs:
            self.add_job(job)
            return
        self.jobs[key] = job
        self._note_active(key, job)
        if not self._shown(key):
            return
        cells = self._cells(job)
        for field in fields:
            for column in FIELD_COLUMNS.get(field, ()):
                self.update_cell(key, column, cells[column])
        if "status" in fields:
            self.update_title()

    def remove_job(self, job: Job) -> None:
        key = job_key(job)
        self._active.pop(key, None)
        if self.jobs.pop(key, None) is not None:
            if self._shown(key):
                self.remove_row(key)
            self.update_title()

    def update_title(self) -> None:
        """Status counts in view; a burst of changes recounts once, after the burst."""
        if not self._title_pending:
            self._title_pending = True
            self.call_later(self._write_title)

    def _write_title(self) -> None:
        self._title_pending = False
        counts = Counter(j.status for j in self.jobs.values())
        parts = [f"{glyph(s)[0]}{counts[s]}" for s in COUNTED if counts[s]]
        title = f"Jobs ({len(self.jobs)})"
        if parts:
            title += " " + " ".join(parts)
        if self.filter_text:
            title += f" · filter: {self.filter_text} ({self.row_count} shown)"
        if self.sort_column != "age" or self.sort_reverse:
            label = dict((k, v) for k, v, _ in COLUMNS)[self.sort_column]
            title += f" · by {label.lower()} {'↓' if self.sort_reverse else '↑'}"
        self.border_title = title

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """Click a column's header to sort by it; again to reverse."""
        event.stop()
        column = str(event.column_key.value)
        if column == self.sort_column:
            self.sort_reverse = not self.sort_reverse
        else:
            self.sort_column, self.sort_reverse = column, False
        self.rebuild()

    def action_sort(self, column: str) -> None:
        if column in SORT_KEYS:
            self.sort_column, self.sort_reverse = column, False
            self.rebuild()

    # -- reading

    @property
    def selected_job(self) -> Job | None:
        if not self.row_count:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except Exception:
            return None
        return self.jobs.get(str(row_key.value))

    def _tick_ages(self) -> None:
        """Refresh the age of the rows on screen that are still running."""
        if not self.jobs:
            return
        top = self.scroll_offset.y
        bottom = top + self.size.height
        for index in range(max(0, top - 1), min(self.row_count, bottom + 1)):
            row_key = self._row_locations.get_key(index)
            if row_key is None:
                continue
            job = self.jobs.get(str(row_key.value))
            if job is not None and job.ended_at is None:
                self.update_cell(row_key, "age", Text(self._age(job), justify="right"))

    async def action_open_job(self) -> None:
        if self.selected_job is not None:
            await self.app.run_action("open_job")
