"""mParticle names, paths and limits.

Three wire formats reach the ``mparticle.http`` source:

- the Events API (``POST /v2/events``, ``/v2/bulkevents``): what mParticle's server
  SDKs (PyPI ``mparticle``) and any S2S client send; ``user_identities`` is an object;
- the generic Webhook event output: mParticle's outbound batch, where
  ``user_identities`` is an array of ``{identity_type, identity}``;
- Firehose partner messages (``event_processing_request``,
  ``audience_membership_change_request``, ...): how mParticle feeds event and audience
  outputs, each answered with the matching ``*_response`` message.
"""

from __future__ import annotations

# --- paths under /ingest/<connector>/ ---------------------------------------------------

EVENTS_PATH = "v2/events"
BULK_EVENTS_PATH = "v2/bulkevents"
FIREHOSE_PATH = "firehose"
WEBHOOK_PATH = "webhook"
KINESIS_PATH = "kinesis"

# --- Events API limits (mParticle "Default Service Limits") ------------------------------

MAX_REQUEST_BYTES = 256 * 1024
"""The whole request, for /v2/events and /v2/bulkevents."""
MAX_BULK_BATCHES = 100
MAX_NAME_CHARS = 256
"""Event names and event attribute names; mParticle's S2S API truncates longer ones."""
MAX_VALUE_CHARS = 4096
"""Event attribute values and user attribute values."""
MAX_EVENT_ATTRIBUTES = 100
MAX_USER_ATTRIBUTES = 100
MAX_LIST_ENTRIES = 1000
MAX_LIST_ENTRY_CHARS = 512

# --- Firehose and webhook bodies ------------------------------------------------------

DEFAULT_PARTNER_MAX_BYTES = 4 * 1024 * 1024
"""Firehose and webhook bodies carry many users at once; the default wire cap."""
MAX_DECOMPRESSED_BYTES = 32 * 1024 * 1024
BODY_SECRET_MAX_BYTES = 1024 * 1024
"""What a Firehose request without ``Authorization`` may cost before its in-body secret
is checked: this much on the wire and after inflating, then parsed."""
MAX_REPORTED_ERRORS = 25
"""Error entries in one error body; the rest are counted."""

FIREHOSE_VERSION = "3.2.0"
"""Answered when a request does not say which Firehose version it speaks."""
DEFAULT_FIREHOSE_SETTING = "connectord_secret"
"""The account setting (set in mParticle's UI) that carries the shared secret."""

# --- error codes in mParticle's error body {"errors": [{"code", "message"}]} -------------

ERROR_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    413: "REQUEST_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "TOO_MANY_REQUESTS",
    503: "SERVICE_UNAVAILABLE",
}

# --- Events API vocabulary --------------------------------------------------------------

ENVIRONMENTS = frozenset({"production", "development"})

EVENT_TYPES = frozenset(
    {
        "session_start",
        "session_end",
        "screen_view",
        "custom_event",
        "crash_report",
        "opt_out",
        "first_run",
        "pre_attribution",
        "push_registration",
        "application_state_transition",
        "push_message",
        "network_performance",
        "breadcrumb",
        "profile",
        "push_reaction",
        "commerce_event",
        "user_attribute_change",
        "user_identity_change",
        "uninstall",
    }
)

CUSTOM_EVENT_TYPES = frozenset(
    {
        "navigation",
        "location",
        "search",
        "transaction",
        "user_content",
        "user_preference",
        "social",
        "other",
        "media",
        "attribution",
        "unknown",
    }
)

PRODUCT_ACTIONS = frozenset(
    {
        "add_to_cart",
        "remove_from_cart",
        "checkout",
        "checkout_option",
        "click",
        "view_detail",
        "purchase",
        "refund",
        "add_to_wishlist",
        "remove_from_wish_list",
        "remove_from_wishlist",
        "unknown",
    }
)

EVENT_COMMON_FIELDS = frozenset(
    {
        "timestamp_unixtime_ms",
        "source_message_id",
        "message_id",
        "message_type",
        "session_id",
        "session_uuid",
        "session_start_unixtime",
        "event_start_unixtime_ms",
        "event_id",
        "event_num",
        "location",
        "device_current_state",
        "custom_flags",
        "custom_attributes",
        "media_info",
    }
)

# --- Firehose vocabulary ----------------------------------------------------------------

FIREHOSE_EVENT_TYPES = frozenset(
    {
        "session_start",
        "session_end",
        "custom_event",
        "screen_view",
        "error",
        "privacy_setting_change",
        "user_attribute_change",
        "user_identity_change",
        "push_subscription",
        "application_state_transition",
        "push_message_receipt",
        "product_action",
        "promotion_action",
        "impression",
        "attribution",
        "push_message_open",
    }
)

FIREHOSE_EVENT_COMMON_FIELDS = frozenset(
    {
        "type",
        "id",
        "timestamp_ms",
        "source_id",
        "session_id",
        "location",
        "active_time_on_site_ms",
        "attributes",
        "custom_flags",
    }
)

# --- identities -------------------------------------------------------------------------

USER_IDENTITIES = (
    "customer_id",
    "email",
    "other",
    "other_id_2",
    "other_id_3",
    "other_id_4",
    "other_id_5",
    "other_id_6",
    "other_id_7",
    "other_id_8",
    "other_id_9",
    "other_id_10",
    "mobile_number",
    "phone_number_2",
    "phone_number_3",
    "facebook",
    "twitter",
    "google",
    "microsoft",
    "yahoo",
    "alias",
    "facebook_custom_audience_id",
)
"""Identity names as the Events API spells them; ``mpid`` may also be chosen as userId."""

IDENTITY_ALIASES = {
    "customerid": "customer_id",  # what the PyPI `mparticle` package sends
    "customer": "customer_id",  # Firehose
    **{f"other{n}": f"other_id_{n}" for n in range(2, 11)},  # Firehose
    **{f"otherid{n}": f"other_id_{n}" for n in range(2, 11)},
    **{f"other_id{n}": f"other_id_{n}" for n in range(2, 11)},
}
"""Other spellings of the same identities, mapped to the Events API name."""

DEVICE_ID_FIELDS = ("ios_idfv", "android_uuid")
"""Events API ``device_info`` fields that identify the device the way push SDKs do."""
ADVERTISING_ID_FIELDS = (
    "ios_advertising_id",
    "android_advertising_id",
    "fire_advertising_id",
    "roku_advertising_id",
    "microsoft_advertising_id",
)

FIREHOSE_DEVICE_IDS = ("ios_vendor_id", "android_id")
FIREHOSE_ADVERTISING_IDS = (
    "ios_advertising_id",
    "google_advertising_id",
    "fire_advertising_id",
    "roku_advertising_id",
    "microsoft_advertising_id",
)
FIREHOSE_PUSH_TOKENS = ("apple_push_notification_token", "google_cloud_messaging_token")

# --- reserved user attributes -------------------------------------------------------------

RESERVED_ATTRIBUTES = {
    "age": "Age",
    "gender": "Gender",
    "country": "Country",
    "zip": "Zip",
    "city": "City",
    "state": "State",
    "address": "Address",
    "firstname": "First Name",
    "lastname": "Last Name",
    "mobile": "Mobile",
}
"""mParticle's ``$``-attributes (lower-cased, without ``$``) → their Pushwoosh tag name.

The Events API spells them ``$firstname``, Firehose ``$FirstName``: both are the same
attribute and land on the same tag.
"""

NUMERIC_RESERVED = frozenset({"age"})
"""Reserved attributes whose values are numbers; the others stay strings (zip codes and
phone numbers must keep their leading zeros and ``+``)."""
