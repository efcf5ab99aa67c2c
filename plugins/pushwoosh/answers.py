"""Pushwoosh answers: the envelope and v2 checks, and the errors they raise (pure).

Legacy ``/json/1.3`` answers carry ``{"status_code", "status_message", "response"}``;
the envelope's ``status_code`` matters as much as the HTTP status (210 is an argument
error on an HTTP 200). v2 answers use plain HTTP statuses with ``{"message": ...}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from connectord import AuthError, PermanentError, RetryableError
from connectord.http import raise_for_status, retry_after_seconds

from .const import (
    DEVICE_API_METHODS,
    PLAN_LIMITED_METHODS,
    STATUS_ARGUMENT_ERROR,
    STATUS_OK,
    VENDOR,
)


class ArgumentError(PermanentError):
    """Pushwoosh refused the arguments of a call (envelope ``status_code`` 210)."""

    def __init__(self, method: str, status_message: str) -> None:
        super().__init__(f"{VENDOR} {method}: argument error: {status_message}")
        self.method = method
        self.status_message = status_message


class PlanLimited(PermanentError):
    """Pushwoosh refused a method the account's plan does not include (a 403 on a
    method documented as "Custom Plan only", e.g. listTags/addTag)."""

    def __init__(self, method: str, status_message: str) -> None:
        super().__init__(f"{VENDOR} {method} refused (not in this plan?): {status_message}")
        self.method = method


class DeviceTokenMissing(PermanentError):
    """A Device API method was asked for, but no Device API token is configured.

    Pushwoosh accepts only the Device API token there; the server token is refused
    (https://docs.pushwoosh.com/developer/api-reference/api-access-token), so it is never
    sent in its place.
    """

    def __init__(self, method: str) -> None:
        super().__init__(
            f"{VENDOR} {method} is a Device API method and takes the Device API token; "
            "set device_token (the server token is refused there)"
        )


def api_family(method: str) -> str:
    """``"Device API"`` or ``"server API"``: which token a legacy method takes."""
    return "Device API" if method in DEVICE_API_METHODS else "server API"


@dataclass
class Answer:
    """One HTTP answer: status, headers, raw body and its JSON (``None`` if not JSON)."""

    status: int
    headers: Any
    body: bytes
    payload: Any

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


def check_envelope(method: str, answer: Answer) -> Any:
    """The ``response`` of a legacy answer, or the delivery error it stands for.

    Both layers count: HTTP 429/5xx/401/403 and envelope ``status_code`` 401/403 (token
    refused), 210 (argument error), 429/5xx (transient) map to connectord's errors.
    """
    envelope = answer.payload if isinstance(answer.payload, dict) else None
    code = _envelope_code(envelope)
    message = str(envelope.get("status_message") or "") if envelope else ""
    if method in PLAN_LIMITED_METHODS and 403 in (answer.status, code):
        raise PlanLimited(method, message or answer.text)
    retry_after = retry_after_seconds(answer.headers.get("Retry-After"))
    if answer.status >= 400 or code is None:
        detail = message or answer.text
        if answer.status < 400:  # an HTTP success that is not Pushwoosh's envelope
            raise RetryableError(
                f"{VENDOR} {method} answered HTTP {answer.status} without a status envelope"
            )
        if code == STATUS_ARGUMENT_ERROR:
            raise ArgumentError(method, message)
        raise_for_status(answer.status, answer.headers, detail, vendor=f"{VENDOR} {method}")
    if code == STATUS_OK:
        return envelope.get("response") if envelope else None
    if code == STATUS_ARGUMENT_ERROR:
        raise ArgumentError(method, message)
    text = f"{VENDOR} {method}: status {code}: {message}"
    if code in (401, 403):
        raise AuthError(text, retry_after=retry_after)
    if code in (408, 429) or code >= 500:
        raise RetryableError(text, retry_after=retry_after)
    raise PermanentError(text)


def _envelope_code(envelope: dict | None) -> int | None:
    if envelope is None or "status_code" not in envelope:
        return None
    try:
        return int(envelope["status_code"])
    except (TypeError, ValueError):
        return None


def check_v2(operation: str, answer: Answer) -> Any:
    """The JSON of a v2 answer (plain HTTP status semantics), or the matching error."""
    if answer.status >= 400:
        detail = ""
        if isinstance(answer.payload, dict):
            error = answer.payload.get("error")
            detail = str(
                answer.payload.get("message")
                or (error.get("message") if isinstance(error, dict) else error)
                or ""
            )
        raise_for_status(
            answer.status, answer.headers, detail or answer.text, vendor=f"{VENDOR} {operation}"
        )
    if answer.payload is None and answer.body.strip():
        raise RetryableError(f"{VENDOR} {operation} answered something that is not JSON")
    return answer.payload
