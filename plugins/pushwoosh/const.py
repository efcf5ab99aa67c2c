"""Pushwoosh hosts, paths, codes and limits (see docs/integrations/pushwoosh.md)."""

from __future__ import annotations

import re
from enum import IntEnum

VENDOR = "Pushwoosh"

DEFAULT_BASE_URL = "https://api.pushwoosh.com"
"""Production API host; regional hosts, proxies and emulators are set with ``base_url``."""

DEFAULT_EVENTS_URL = "https://integration-segment.svc-nue.pushwoosh.com"
"""Host of Pushwoosh's server-integration service that takes events in batches."""

LEGACY_PATH = "/json/1.3/"
AUDIENCE_PATH = "/api/v2/audience/"
MESSAGES_LIST_PATH = "/api/v2/messages:list"
BATCH_EVENTS_PATH = "/integration-segment/v1/post-events"

APPLICATION_CODE = re.compile(r"^[0-9A-Z]{5}-[0-9A-Z]{5}$")
"""Application (and filter/event) codes look like ``XXXXX-XXXXX``."""

# Envelope ``status_code`` values of the legacy /json/1.3 methods.
STATUS_OK = 200
STATUS_ARGUMENT_ERROR = 210

PLAN_LIMITED_METHODS = frozenset({"addTag", "deleteTag", "listTags"})
"""The Tags API: "For Custom Plan subscriptions only"
(https://docs.pushwoosh.com/platform-docs/api-reference/tags). Nothing else the plugin
needs may depend on them."""

DOCS = "https://docs.pushwoosh.com/developer/api-reference"
WEB_SDK = "npm web-push-notifications 3.55.0, modules/ApiClient/ApiClient.d.ts"
WEB_SDK_TYPES = "npm web-push-notifications 3.55.0, modules/ApiClient/ApiClient.types.d.ts"
PYPUSHWOOSH = "PyPI pypushwoosh 0.3.1, pypushwoosh/command.py"

DEVICE_API_METHODS: dict[str, str] = {
    # Device API page
    "registerDevice": f"{DOCS}/device-api",
    "unregisterDevice": f"{DOCS}/device-api",
    "setTags": f"{DOCS}/device-api",
    "getTags": f"{DOCS}/device-api",
    "setBadge": f"{DOCS}/device-api; {PYPUSHWOOSH} (SetBadgeCommand)",
    "applicationOpen": f"{DOCS}/device-api; {WEB_SDK}",
    "pushStat": f"{DOCS}/device-api; {PYPUSHWOOSH} (PushStatCommand)",
    "messageDeliveryEvent": f"{DOCS}/device-api; {WEB_SDK}",
    # User-centric API page
    "registerUser": f"{DOCS}/user-centric-api",
    "postEvent": f"{DOCS}/user-centric-api",
    # Email API page, called by the Web SDK for email channels
    "registerEmail": f"{DOCS}/email-api; {WEB_SDK}",
    "registerEmailUser": f"{DOCS}/email-api; {WEB_SDK}",
    "setEmailTags": f"{DOCS}/email-api; {WEB_SDK}",
    # Called by the SDKs, not in the public reference
    "getConfig": WEB_SDK,
    "checkDevice": WEB_SDK,
    "deleteDevice": WEB_SDK,
    "getInboxMessages": WEB_SDK,
    "inboxStatus": WEB_SDK,
    "getPopupFormContent": WEB_SDK,
    "recordPopupFormEvent": WEB_SDK,
    "setPurchase": WEB_SDK,
    "multiRegisterDevice": WEB_SDK,
    "registerSmsNumber": WEB_SDK_TYPES,
    "registerWhatsappNumber": WEB_SDK_TYPES,
    "getNearestZone": f"{PYPUSHWOOSH} (GetNearestZoneCommand)",
}
"""Device-side ``/json/1.3/`` methods → the source that shows each one. They take the
Device API token (``Authorization: Token``); every other method takes the server token
in the body's ``auth``, and a token used outside its scope is refused. The relay serves
all of them."""

RELAY_METHODS = ("postEvent", "setTags", "registerUser", "registerDevice")
"""Device API methods whose accepted calls the ``pushwoosh.relay`` source records."""


class TagType(IntEnum):
    """Pushwoosh tag type ids (``addTag``/``listTags``)."""

    INTEGER = 1
    STRING = 2
    LIST = 3
    DATE = 4
    BOOLEAN = 5
    DECIMAL = 6
    VERSION = 7

    @property
    def label(self) -> str:
        return _TAG_LABELS[self]


_TAG_LABELS = {
    TagType.INTEGER: "Integer",
    TagType.STRING: "String",
    TagType.LIST: "List",
    TagType.DATE: "Date",
    TagType.BOOLEAN: "Boolean",
    TagType.DECIMAL: "Decimal",
    TagType.VERSION: "Version",
}

PLATFORMS: dict[int, str] = {
    1: "iOS",
    2: "BlackBerry",
    3: "Android",
    5: "Windows Phone",
    7: "OS X",
    8: "Windows",
    9: "Amazon",
    10: "Safari",
    11: "Chrome",
    12: "Firefox",
    13: "IE11",
    14: "Email",
    17: "Huawei",
    18: "SMS",
    19: "Xiaomi",
    21: "WhatsApp",
}
"""``device_type`` / PlatformID → readable platform name."""

PLATFORM_IDS: dict[str, int] = {name.lower(): code for code, name in PLATFORMS.items()}
PLATFORM_IDS.update({"macos": 7, "mac os x": 7, "web": 11, "huawei android": 17})

BATCH_EVENTS_MAX = 100
"""Events per request on the batch events path."""

BULK_SET_TAGS_MIN = 50
"""bulkSetTags wants at least 50 devices; fewer go one by one through setTags
(https://help.pushwoosh.com/hc/en-us/articles/36360128237213)."""

SET_TAGS_MAX = 50
"""Tags per setTags call that Pushwoosh asks clients not to exceed."""

TRACKING_LOG_DAYS = 14
"""How far back the push tracking log goes."""

RATE_LIMITS_DOC = "https://docs.pushwoosh.com/developer/api-reference"
"""API overview, "Rate Limits": "While most API requests in Pushwoosh are not limited,
/createMessage API requests are capped at 600 per minute"."""

TRACKING_LOG_CONCURRENCY = 4
"""Default tracking-log days in flight per application. Pushwoosh is silent on a cap for
getTrackingLog and getResults: its only documented limit is 600 createMessage calls a
minute (`RATE_LIMITS_DOC`), and the push-tracking page
(https://docs.pushwoosh.com/developer/api-reference/statistics-api/push-tracking) names
none. So this is our bound, not the vendor's: each day in flight is one export job on
Pushwoosh's side and, at the default 10 s poll interval, about six getResults calls a
minute, so four days stay far below any rate Pushwoosh states while a 14-day backfill
takes four rounds instead of fourteen. 429s and 5xx are still retried with backoff."""

STATS_PAGE_SIZE_MAX = 1000
"""Largest ``per_page`` of ``messages:list``."""
