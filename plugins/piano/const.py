"""Piano Analytics hosts, limits and vocabulary."""

from __future__ import annotations

import re

VENDOR = "Piano Analytics"

# --- Collection API ------------------------------------------------------------------

COLLECT_PATH = "event"
COLLECTION_DOMAIN = re.compile(
    r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]$"
)
"""A bare host name such as ``abcdefg.pa-cd.com`` (or the organisation's own CNAME)."""

MAX_EVENTS_PER_REQUEST = 50
MAX_REQUEST_BYTES = 64 * 1024
"""Piano documents no limit; the SDKs send every queued event at once. We stay small."""

PARALLEL_POSTS = 8
"""Collection requests in flight at once within one delivery batch."""

COLLECTION_PLATFORM = "connectord"

# Property keys: letters, digits and '_', starting with a letter, at most 40 characters,
# lowercased on the wire; `m_` and `visit_` are reserved for metrics and visit scope.
PROPERTY_KEY = re.compile(r"^[a-z]\w*$", re.ASCII)
MAX_KEY_LENGTH = 40
RESERVED_KEY_PREFIXES = ("m_", "visit_")
MAX_STRING_LENGTH = 255
MAX_ARRAY_ITEMS = 20
MAX_NESTING = 3
EVENT_NAME = re.compile(r"^[a-z0-9_.]+$")

PAGE_DISPLAY = "page.display"

# --- Privacy modes --------------------------------------------------------------------

PRIVACY_MODES = ("optin", "optout", "exempt", "no-consent", "no-storage")

ALWAYS_ALLOWED = frozenset(
    {"connection_type", "device_timestamp_utc", "visitor_privacy_consent", "visitor_privacy_mode"}
)
ALWAYS_ALLOWED_PREFIXES = ("ch_ua",)

VISITOR_ID_BY_MODE = {"optout": "OPT-OUT", "no-consent": "no-consent", "no-storage": "no-storage"}
"""Modes that replace the visitor id with a fixed value (the SDKs do the same)."""

EXEMPT_EVENTS = frozenset(
    {"page.display", "click.action", "click.navigation", "click.download", "click.exit"}
)
_EXEMPT_PROPERTY_NAMES = """
    app_crash app_crash_class app_crash_screen app_version
    browser browser_cookie_acceptance browser_group browser_version
    click click_chapter1 click_chapter2 click_chapter3 click_full_name
    connection_monitor connection_organisation cookie_creation_date
    date date_day date_daynumber date_month date_monthnumber date_week date_year date_yearofweek
    device_brand device_display_height device_display_width device_name device_name_tech
    device_screen_diagonal device_screen_height device_screen_width device_type
    event_collection_platform event_collection_version event_hour event_id event_minute
    event_position event_second event_time event_time_utc event_url event_url_domain
    event_url_full exclusion_cause exclusion_type
    geo_city geo_continent geo_country geo_metro geo_region goal_type hit_time_utc
    os os_group os_version os_version_name
    page page_chapter1 page_chapter2 page_chapter3 page_duration page_full_name page_position
    page_title_html page_url pageview_id previous_url privacy_status
    site site_env site_id site_platform
    src src_detail src_direct_access src_organic src_organic_detail src_portal_domain
    src_portal_site src_portal_site_id src_portal_url src_referrer_site_domain
    src_referrer_site_url src_referrer_url src_se src_se_category src_se_country src_type
    src_url src_url_domain src_webmail
"""
EXEMPT_PROPERTIES = frozenset(_EXEMPT_PROPERTY_NAMES.split())
"""What exempt mode may send without consent (the JS SDK's allow-list)."""

# --- Data Query / Reporting API v3 ---------------------------------------------------

DATA_API_URL = "https://api.atinternet.io"
DATA_API_PATH = "/v3/data"
MAX_RESULTS = 10_000
"""Rows per getData call."""
MAX_ROWS = 200_000
"""Rows one query can page through (``page-num`` times ``max-results``)."""
MAX_CONCURRENT_CALLS = 5
"""Piano allows 5 concurrent calls per user (20 per organisation); more get HTTP 429."""
SEGMENT_SCOPES = (
    "visitor_id",
    "user_id",
    "visit_id",
    "event_id",
    "av_session_id",
    "cart_id",
    "pageview_id",
)
DEFAULT_MEMBER_COLUMN = "pushwooshid"
AUDIENCE_SOURCE = "piano"
RECORDS_PER_BATCH = 1000
