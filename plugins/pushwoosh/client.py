"""Pushwoosh HTTP: auth, envelopes, async request polling and error mapping.

Three API styles live side by side (see docs/integrations/pushwoosh.md; answers are
checked in `answers`):

- legacy ``POST /json/1.3/<method>`` with ``{"request": {...}}``: Device API methods take
  ``Authorization: Token <device token>``, every other method the server token in
  ``request.auth``. The answer is an envelope ``{"status_code", "status_message",
  "response"}`` whose ``status_code`` matters as much as the HTTP status (210 is an
  argument error on an HTTP 200);
- Audience API v2 ``/api/v2/audience/<op>``: a flat body with ``auth``;
  ``bulkSetTags`` answers a request id whose status is polled until done;
- Statistics v2 ``/api/v2/messages:list``: ``Authorization: Token <server token>``.

`PushwooshClient` is the one entry: the HTTP itself is in `transport`, the calls are
grouped by what they act on in `user_calls` (one user or device), `audience_calls`
(tags, segments, bulk updates) and `report_calls` (what the pull sources read).
Nothing here logs or repeats a token.
"""

from __future__ import annotations

from .answers import (  # noqa: F401  (ArgumentError & co. are imported from here too)
    Answer,
    ArgumentError,
    DeviceTokenMissing,
    PlanLimited,
)
from .audience_calls import AudienceCalls
from .const import APPLICATION_CODE
from .report_calls import ReportCalls
from .tracking import TRACKING_COLUMNS, iter_tracking_rows  # noqa: F401  (moved there)
from .user_calls import UserCalls


def validate_application(code: str) -> str:
    """Check an application code (``XXXXX-XXXXX``, digits and capitals)."""
    if not APPLICATION_CODE.match(code):
        raise ValueError(
            f"{code!r} is not a Pushwoosh application code; expected XXXXX-XXXXX "
            "(5 + 5 digits or capital letters, e.g. ABCDE-12345)"
        )
    return code


class PushwooshClient(UserCalls, AudienceCalls, ReportCalls):
    """Calls the Pushwoosh APIs for one application.

    :param http: returns the aiohttp session to use (the connector's).
    :param api_token: the server token (``auth`` in bodies, statistics header).
    :param device_token: the Device API token. Without it Device API methods raise
        `DeviceTokenMissing`: the server token is never sent in its place.
    :param poll_interval: seconds between polls of asynchronous requests.
    :param max_wait: seconds to wait for an asynchronous request before giving up.
    """
