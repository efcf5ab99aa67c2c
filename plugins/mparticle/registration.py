"""Firehose response messages: the envelope every answer shares, and the
``module_registration_response``, what a partner integration asks mParticle for
(identities, attributes, settings)."""

from __future__ import annotations

import time
from typing import Any

from connectord import __version__

from . import const


def response(request: dict[str, Any], kind: str, **extra: Any) -> dict[str, Any]:
    """The response message matching ``request``: same id, our time, its version."""
    version = request.get("firehose_version")
    return {
        "type": kind,
        "id": request["id"],
        "timestamp_ms": int(time.time() * 1000),
        "firehose_version": version if isinstance(version, str) else const.FIREHOSE_VERSION,
        **extra,
    }


def registration_response(request: dict[str, Any], setting_id: str) -> dict[str, Any]:
    """What connectord asks mParticle for: raw customer ids, device ids and push tokens,
    the mpid, user attributes (also on audience messages) and one confidential account
    setting that carries the shared secret."""
    secret_setting = {
        "type": "text",
        "id": setting_id,
        "name": "connectord shared secret",
        "description": "The firehose_secret configured for this connector in connectord.",
        "visible": True,
        "required": True,
        "confidential": True,
    }
    identities = [
        {"type": t, "encoding": "raw", "required": False}
        for t in ("customer", "email", "other", "mobile_number")
    ]
    devices = [
        {"type": t, "encoding": "raw", "required": False}
        for t in (
            *const.FIREHOSE_DEVICE_IDS,
            *const.FIREHOSE_ADVERTISING_IDS[:2],
            *const.FIREHOSE_PUSH_TOKENS,
        )
    ]
    return response(
        request,
        "module_registration_response",
        sdk_version=const.FIREHOSE_VERSION,
        name="connectord",
        version=__version__,
        description="Forwards mParticle events, user attributes and audiences to any "
        "connectord destination.",
        permissions={
            "user_identities": identities,
            "device_identities": devices,
            "allow_access_mpid": True,
            "allow_user_attributes": True,
            "allow_audience_user_attribute_sharing": True,
            "allow_access_ip_address": True,
            "allow_access_http_user_agent": True,
            "allow_access_device_application_stamp": True,
        },
        event_processing_registration={
            "account_settings": [secret_setting],
            "supported_event_types": sorted(const.FIREHOSE_EVENT_TYPES),
            "supported_runtime_environments": [
                "android",
                "ios",
                "tvos",
                "mobileweb",
                "unknown",
            ],
            "max_data_age_hours": 24,
        },
        audience_processing_registration={"account_settings": [secret_setting]},
    )
