"""The exceptions connectord and its plugins raise.

Each class's docstring is its default message. Plugins raise the delivery errors
(`RetryableError`, `PermanentError`, `AuthError`) from `Destination.send` and from vendor
clients; the framework decides what to do with them: retry with backoff, dead-letter, or
pause the connector until credentials work again.
"""

from __future__ import annotations


class ConnectordError(Exception):
    """connectord failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.__doc__)


class PluginError(ConnectordError):
    """A plugin could not be loaded or registered."""


class StateError(ConnectordError):
    """The state database cannot be used."""


# --- delivery outcomes -------------------------------------------------------------


class DeliveryError(ConnectordError):
    """Delivery to the destination failed."""


class RetryableError(DeliveryError):
    """A transient failure (timeout, connection error, 429, 5xx): try again later.

    :param retry_after: seconds the vendor asked us to wait (``Retry-After``), if any.
    """

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthError(RetryableError):
    """The vendor refused our credentials (401/403).

    Records are kept and retried slowly: fixing the credentials and reloading the
    configuration resumes delivery without losing anything.
    """


class PermanentError(DeliveryError):
    """The vendor rejected the request and repeating it cannot help (a 4xx).

    Raised for a whole batch, the framework splits the batch to find the records at
    fault; a single record that still fails becomes a dead letter with this message.
    """


class RecordRejected(ConnectordError):
    """A mapping or destination refuses one record; it becomes a dead letter."""


# --- push ingest ---------------------------------------------------------------------


class IngestError(ConnectordError):
    """The request cannot be accepted.

    :param status: the HTTP status to answer with (4xx for the caller's mistakes,
        503 when the daemon cannot take more right now).
    :param code: a short machine-readable code, e.g. ``invalid_json``.
    :param retry_after: seconds for a ``Retry-After`` header (with 429/503).
    """

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class QueueFull(IngestError):
    """The connector's queue reached its bound; the caller should retry later."""

    def __init__(self, connector: str, limit: int, retry_after: float = 30) -> None:
        super().__init__(
            503,
            "queue_full",
            f"connector {connector!r} has {limit} undelivered records queued; retry later",
            retry_after=retry_after,
        )


def describe_error(err: Exception) -> str:
    """An error as stored in the state file (a run's error): our own errors by their
    message, anything else with its type; no configured secret in it."""
    from .log import redact

    text = str(err)
    own = text and isinstance(err, ConnectordError)
    return redact(text if own else f"{type(err).__name__}: {text or repr(err)}")
