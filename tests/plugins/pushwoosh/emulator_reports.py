"""The Pushwoosh emulator's reports: the push tracking log (getTrackingLog, then
getResults polled until ready, then a ZIP) and the messages ``messages:list`` lists.

Mixed into `tests.plugins.pushwoosh.emulator.PushwooshEmulator`; see that module for the
contract (https://docs.pushwoosh.com/developer/api-reference/statistics-api/push-tracking,
https://docs.pushwoosh.com/developer/api-reference/scheduled-requests).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import orjson
from aiohttp import web

from tests.plugins.pushwoosh.emulator_v2 import ArgumentError
from tests.plugins.pushwoosh.emulator_values import tracking_zip


class InternalError(Exception):
    """Answered as HTTP 500 with ``status_code`` 500."""


class ReportsMixin:
    """Test-side setup of tracking lines and messages, and the scheduled-request methods."""

    application: str
    pending_polls: int
    tracking: dict[str, list[dict[str, str]]]
    messages: list[dict[str, Any]]
    scheduled: dict[str, dict[str, Any]]
    files: dict[str, bytes]
    held_days: set[str]
    unavailable_days: set[str]

    def add_tracking(
        self,
        timestamp: datetime,
        tracking_code: str,
        target_id: str,
        hwid: str,
        status: str,
        description: str = "",
        payload: dict[str, Any] | None = None,
    ) -> None:
        """A push tracking-log line (status: created, sent, delivered, failed, opened);
        ``target_id`` is the device id the push was addressed to (hwid or push token)."""
        moment = timestamp.astimezone(UTC)
        self.tracking.setdefault(moment.date().isoformat(), []).append(
            {
                "timestamp": moment.strftime("%Y-%m-%d %H:%M:%S"),
                "tracking_code": tracking_code,
                "target_id": target_id,
                "hwid": hwid,
                "status": status,
                "description": description,
                "appCode": self.application,
                "payload": orjson.dumps(payload).decode() if payload is not None else "",
            }
        )

    def add_message(
        self,
        code: str,
        send_date: datetime,
        metrics: dict[int, dict[str, int]],
        *,
        campaign: str | None = None,
        source: str = "API",
        title: str = "",
    ) -> dict[str, Any]:
        """A sent message with per-platform metrics, as ``messages:list`` lists it."""
        message = {
            "id": len(self.messages) + 1,
            "code": code,
            "created_date": send_date.strftime("%Y-%m-%d %H:%M:%S"),
            "send_date": send_date.strftime("%Y-%m-%d %H:%M:%S"),
            "status": "DONE",
            "platforms": sorted(metrics),
            "source": source,
            "campaign": campaign,
            "push_info": {
                "details": {"title": title, "campaign": campaign},
                "metrics": [
                    {
                        "platform": platform,
                        "sends": 0,
                        "opens": 0,
                        "deliveries": 0,
                        "inbox_opens": 0,
                        "unshowable_sends": 0,
                        "errors": 0,
                        **values,
                    }
                    for platform, values in sorted(metrics.items())
                ],
            },
        }
        self.messages.append(message)
        return message

    # --- scheduled requests -----------------------------------------------------------

    def m_getTrackingLog(self, fields: dict[str, Any], request: web.Request) -> dict:
        try:  # "date" is optional in the docs; without it, today
            day = date.fromisoformat(str(fields.get("date") or datetime.now(UTC).date()))
        except ValueError:
            raise ArgumentError("date must be YYYY-MM-DD") from None
        today = datetime.now(UTC).date()
        if day > today or day < today - timedelta(days=14):
            raise ArgumentError("The tracking log covers the last 14 days only")
        if day.isoformat() in self.unavailable_days:
            raise InternalError("Internal error, try again later")
        request_id = uuid.uuid4().hex
        rows = list(self.tracking.get(day.isoformat(), []))
        self.scheduled[request_id] = {"polls": 0, "day": day.isoformat(), "rows": rows}
        return {"request_id": request_id}

    def m_getResults(self, fields: dict[str, Any], request: web.Request) -> Any:
        self._require(fields, "request_id")
        job = self.scheduled.get(str(fields["request_id"]))
        if job is None:
            raise ArgumentError("Request not found")
        if job["polls"] < self.pending_polls or job.get("day") in self.held_days:
            job["polls"] += 1
            raise ArgumentError("Request is not ready yet, try again later")
        name = f"{fields['request_id']}.zip"
        if name not in self.files:
            self.files[name] = tracking_zip(job["rows"])
        return {"fileName": f"{request.scheme}://{request.host}/static/{name}"}
