"""CleverTap hosts, limits and names (see docs/integrations/clevertap-bi.md)."""

from __future__ import annotations

API_VERSION_PATH = "/1"
REGIONS = ("eu1", "in1", "us1", "sg1", "aps3", "mec1", "sk1")
"""Region codes of CleverTap's data centres; the API host is ``<region>.api.clevertap.com``."""
DEFAULT_REGION = "eu1"

ACCOUNT_HEADER = "X-CleverTap-Account-Id"
PASSCODE_HEADER = "X-CleverTap-Passcode"

MAX_BATCH_SIZE = 5000
"""The most records one cursor page may hold (Get Events and Get Profiles)."""
PROFILE_BATCH_MULTIPLE = 23
"""CleverTap asks for profile batch sizes in multiples of 23 (its memory buckets)."""
DEFAULT_CONCURRENCY = 3
"""Concurrent read calls per account: the documented limit of CleverTap's read APIs."""

IN_PROGRESS_CODE = 2
"""``code`` of a cursor answer whose query is still being computed: ask again later."""

EVENTS_PATH = "events.json"
PROFILES_PATH = "profiles.json"
EVENT_COUNT_PATH = "counts/events.json"
PROFILE_COUNT_PATH = "counts/profiles.json"
CAMPAIGN_LIST_PATH = "targets/list.json"
CAMPAIGN_RESULT_PATH = "targets/result.json"

DATE_PREFIX = "$D_"
"""CleverTap encodes date properties as ``"$D_<epoch seconds>"``."""

VENDOR = "CleverTap"


def region_url(region: str) -> str:
    return f"https://{region}.api.clevertap.com"
