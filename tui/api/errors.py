"""Typed errors with messages a person understands.

Every failure the client can meet becomes one of these, so callers (the CLI, the app) show
``str(err)`` and never a traceback.
"""

from __future__ import annotations


class FlashError(Exception):
    """Base of every error flash-tui reports to a user."""

    #: CLI exit code for this class of trouble (2 bad input, 3 network or auth).
    exit_code = 3

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class PayloadError(FlashError):
    """The payload cannot be sent: invalid JSON, not an object, empty, or too large."""

    exit_code = 2

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column


class UsageError(FlashError):
    """The user asked for something that cannot be done as asked."""

    exit_code = 2


class Unsupported(FlashError):
    """The endpoint's dialect has no such operation (e.g. cancel on a local worker)."""

    exit_code = 2


# --- answers from the server -------------------------------------------------------------


class ApiError(FlashError):
    """The server answered with an error status."""

    def __init__(
        self,
        message: str,
        status_code: int,
        detail: str = "",
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.detail = detail
        self.body = body


class Unauthorized(ApiError):
    """401/403: the key is missing, wrong, or lacks access."""


class NotFound(ApiError):
    """404: for a job, expired (past its ttl or retention) or never known."""

    #: The job is gone: for a script that is like a job that ended badly, not a network fault.
    exit_code = 1


class BadRequest(ApiError):
    """400/422: the server refused the request; ``detail`` says why."""

    exit_code = 2


class RateLimited(ApiError):
    """429: too many requests; ``retry_after`` seconds when the server said."""

    def __init__(
        self,
        message: str,
        status_code: int = 429,
        detail: str = "",
        body: str = "",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, status_code, detail, body)
        self.retry_after = retry_after


class ServerError(ApiError):
    """5xx, including HTML pages from a proxy in front of the workers."""


class BadAnswer(FlashError):
    """A 2xx answer that is not what the API promises (not JSON, wrong shape)."""


# --- transport ---------------------------------------------------------------------------


class TransportError(FlashError):
    """The request did not get an answer."""

    #: True when the request may have reached the server (a POST must then not be resent).
    maybe_sent = False


class ConnectionRefused(TransportError):
    """Nothing listens at that address (server down, wrong port)."""


class DnsFailure(TransportError):
    """The host name does not resolve."""


class RequestTimeout(TransportError):
    """The server took too long to answer."""

    maybe_sent = True


class ConnectionLost(TransportError):
    """The connection broke before the answer was read."""

    maybe_sent = True


class OutcomeUnknown(FlashError):
    """A submission may or may not have reached the server; it was not sent again."""

    def __init__(self, message: str, cause: FlashError) -> None:
        super().__init__(message)
        self.cause = cause


RETRYABLE: tuple[type[FlashError], ...] = (
    RateLimited,
    ServerError,
    ConnectionRefused,
    RequestTimeout,
    ConnectionLost,
    BadAnswer,
)
"""Errors worth retrying with backoff for a read-only request (status, health, stream)."""
