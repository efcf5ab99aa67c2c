"""My Vendor's hosts, paths and limits, in one place."""

VENDOR = "myvendor"
"""How errors and logs name the vendor."""

DEFAULT_BASE_URL = "https://api.example.com"  # My Vendor's production host
EVENTS_PATH = "/v1/events"
TRACK_PATH = "/v1/track"

PAGE_SIZE = 100
"""Events per page when reading; the API allows up to MAX_PAGE_SIZE."""
MAX_PAGE_SIZE = 1000

MAX_BATCH = 500
"""Events per upload request: the vendor's batch limit."""
