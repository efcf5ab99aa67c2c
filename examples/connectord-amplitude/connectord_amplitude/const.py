"""Amplitude's hosts, paths and documented limits (sources in README.md)."""

VENDOR = "amplitude"

# Event ingestion: HTTP V2 API and Batch Event Upload API share request and answer formats.
DEFAULT_BASE_URL = "https://api2.amplitude.com"
EU_BASE_URL = "https://api.eu.amplitude.com"
ENDPOINT_PATHS = {"httpapi": "/2/httpapi", "batch": "/batch"}

MAX_EVENTS_PER_REQUEST = 2000
"""Both endpoints: at most 2000 events per request (more is a 413)."""
MAX_PAYLOAD_BYTES = {"httpapi": 1024 * 1024, "batch": 20 * 1024 * 1024}
"""HTTP V2: under 1 MB; Batch: at most 20 MB (more is a 413)."""

DEFAULT_MIN_ID_LENGTH = 5
"""user_id and device_id shorter than this are dropped by Amplitude (then a 400)."""
INVALID_IDS = frozenset(
    {
        "anonymous",
        "nil",
        "none",
        "null",
        "n/a",
        "na",
        "undefined",
        "unknown",
        '""',
        "00000000-0000-0000-0000-000000000000",
        "{}",
        "lmy47d",
        "0",
        "-1",
    }
)
"""IDs Amplitude refuses with a 400."""
RESERVED_EVENT_TYPES = frozenset(
    {
        "[Amplitude] Start Session",
        "[Amplitude] End Session",
        "[Amplitude] Revenue",
        "[Amplitude] Revenue (Verified)",
        "[Amplitude] Revenue (Unverified)",
        "[Amplitude] Merged User",
    }
)
MAX_STRING_LENGTH = 1024

THROTTLE_PAUSE_SECONDS = 30.0
"""After a 429, Amplitude asks to pause the throttled users/devices for 30 s."""
MAX_IMMEDIATE_RESENDS = 2
"""Rounds of "drop the refused events, resend the rest" within one delivery."""

# Export API: zipped, gzipped JSON lines of one project's events, by upload hour.
EXPORT_BASE_URL = "https://amplitude.com"
EU_EXPORT_BASE_URL = "https://analytics.eu.amplitude.com"
EXPORT_PATH = "/api/2/export"
EXPORT_HOUR_FORMAT = "%Y%m%dT%H"
EXPORT_DELAY_HOURS = 2
"""Data becomes exportable at the earliest 2 hours after Amplitude received it."""
EXPORT_MAX_HOURS = 365 * 24
"""The longest range one export request may cover."""
