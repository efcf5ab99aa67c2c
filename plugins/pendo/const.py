"""Pendo hosts, endpoints, headers and the data rules its APIs enforce."""

from __future__ import annotations

import re

REGION_HOSTS = {
    "us": "https://app.pendo.io",
    "us1": "https://us1.app.pendo.io",
    "eu": "https://app.eu.pendo.io",
    "jpn": "https://app.jpn.pendo.io",
    "au": "https://app.au.pendo.io",
}

TRACK_PATH = "/data/track"
METADATA_PATH = "/api/v1/metadata/{kind}/{group}/value"
VERIFY_PATH = "/api/v1/token/verify"

KEY_HEADER = "x-pendo-integration-key"
"""Carries the Track Event shared secret on ``/data/track`` and the integration key on
the REST API."""

VISITOR = "visitor"
ACCOUNT = "account"
ID_FIELDS = {VISITOR: "visitorId", ACCOUNT: "accountId"}
AGENT = "agent"
CUSTOM = "custom"

# Track event rules (Pendo's "Track Events Configuration"): property names are letters,
# digits and underscores, do not start with a digit, are not wrapped in double
# underscores, and have at most 32 characters; the properties JSON should stay within
# 512 bytes (larger shows as "event properties JSON too large").
PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_PROPERTY_NAME = 32
MAX_PROPERTIES_BYTES = 512

METADATA_SEPARATOR = "_"
"""Nested traits are flattened: ``address.city`` becomes ``address_city``."""

DEFAULT_METADATA_BATCH = 500
DEFAULT_TRACK_CONCURRENCY = 16
