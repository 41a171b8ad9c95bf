"""How a job status looks: a single-width glyph and a theme colour, readable without colour."""

from __future__ import annotations

STATUS_GLYPHS = {
    "COMPLETED": ("✓", "success"),
    "FAILED": ("✗", "error"),
    "IN_PROGRESS": ("●", "warning"),
    "IN_QUEUE": ("○", "secondary"),
    "CANCELLED": ("⊘", "foreground-darken-1"),
    "TIMED_OUT": ("◷", "error"),
    "EXPIRED": ("–", "foreground-darken-1"),
    "UNKNOWN": ("?", "warning"),
    "SUBMITTING": ("…", "secondary"),
}
UNKNOWN_STATUS = ("◌", "accent")


def glyph(status: str) -> tuple[str, str]:
    """(glyph, theme variable) for a status; an unknown one keeps its own name."""
    return STATUS_GLYPHS.get(status, UNKNOWN_STATUS)


def format_ms(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def format_age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600}h"
