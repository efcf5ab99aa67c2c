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
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, Authorization, X-Retry-Count",
    "Access-Control-Expose-Headers": "Retry-After, X-RateLimit-Reset",
    "Access-Control-Max-Age": "86400",
}
"""Browsers post from any site; the write key, not a cookie, authenticates, so any
origin may read the answer. The allowed request headers are what analytics.js
(``@segment/analytics-next``) sends: ``Content-Type: text/plain``, ``Authorization:
Basic`` with the write key, and ``X-Retry-Count`` on every retry
(``src/plugins/segmentio/fetch-dispatcher.ts`` and ``batched-dispatcher.ts``). The
library reads ``Retry-After`` on 429s, so it is exposed."""

MAX_MESSAGE_BYTES = 32 * 1024
"""Largest single message (and single-message request body)."""

MAX_BATCH_BYTES = 500 * 1024
"""Largest batch request body, after decompression."""

MAX_BATCH_MESSAGES = 2500
"""Segment's documented count per batch; more "returns 200 but the events are
rejected". connectord stores them all instead (the body is within 500 KB anyway)."""

# Error codes in {"success": false, "code": ..., "message": ...} bodies.
INVALID_JSON = "invalid_json"
INVALID_BATCH = "invalid_batch"
TOO_LARGE = "payload_too_large"
MESSAGE_TOO_LARGE = "message_too_large"
UNAUTHORIZED = "invalid_write_key"
