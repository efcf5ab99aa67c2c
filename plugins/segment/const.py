"""Segment Tracking API facts: routes, limits and the codes our error bodies carry."""

from __future__ import annotations

SEGMENT_TYPES = ("identify", "track", "page", "screen", "group", "alias")
"""The single-message endpoints, ``POST /v1/<type>``; the path sets the message type."""

BATCH_PATHS = ("v1/batch", "v1/import", "v1/b")
"""``/v1/import`` is an alias of ``/v1/batch``; ``/v1/b`` is what analytics.js posts
batches to."""

SHORT_PATHS = {
    "identify": "v1/i",
    "track": "v1/t",
    "page": "v1/p",
    "screen": "v1/s",
    "group": "v1/g",
    "alias": "v1/a",
}
"""The short single-message routes analytics.js (the browser library) uses."""

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization",
    "Access-Control-Max-Age": "86400",
}
"""Browsers post from any site; the write key, not a cookie, authenticates, so any
origin may read the answer."""

MAX_MESSAGE_BYTES = 32 * 1024
"""Largest single message (and single-message request body)."""

MAX_BATCH_BYTES = 500 * 1024
"""Largest batch request body, after decompression."""

MAX_BATCH_MESSAGES = 2500
"""Most messages one batch request may carry."""

MAX_MESSAGE_ID_LENGTH = 100

# Error codes in {"success": false, "code": ..., "message": ...} bodies.
INVALID_JSON = "invalid_json"
INVALID_BATCH = "invalid_batch"
TOO_LARGE = "payload_too_large"
TOO_MANY_MESSAGES = "too_many_messages"
UNAUTHORIZED = "invalid_write_key"
INVALID_MESSAGE = "invalid_message"
INVALID_TYPE = "invalid_type"
INVALID_TIMESTAMP = "invalid_timestamp"
INVALID_MESSAGE_ID = "invalid_message_id"
MESSAGE_TOO_LARGE = "message_too_large"
NO_USER = "no_user_anon_id"
NO_EVENT = "no_event"
NO_GROUP_ID = "no_group_id"
NO_PREVIOUS_ID = "no_previous_id"
