"""The CleverTap emulator's data set: computed from a seed, never stored.

Event ``i`` of a day and event name is a pure function of the seed, so 1,000,000 events
cost no memory and tests can ask for any event's expected values (`Dataset.event`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

EVENT_NAMES = ("App Launched", "Product Viewed", "Added To Cart", "Charged")
EVENT_WEIGHTS = (0.40, 0.30, 0.18, 0.12)
CATEGORIES = ("Shoes", "Bags", "Shirts", "Hats", "Socks", "Coats")
SOURCES = ("Direct", "Organic", "Paid", "Referral")
PLATFORMS = ("Android", "iOS", "Web")
PLANS = ("free", "pro", "team")
MAX_BATCH = 5000


def day_key(day: date) -> str:
    return day.strftime("%Y%m%d")


def parse_day(value: Any) -> date:
    text = str(value)
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def epoch(day: date, seconds: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) + seconds


@dataclass(frozen=True)
class Dataset:
    """A deterministic CleverTap account: users, events per day and name, campaigns.

    Schema changes built in, to exercise the warehouse: ``Charged`` gains a ``Coupon``
    property from day index ``new_property_day`` on, and ``Added To Cart``'s ``Ref``
    turns from an integer into text on day index ``text_ref_day``.
    """

    seed: int = 7
    start: date = date(2024, 1, 1)
    days: int = 5
    events_per_day: int = 22_000
    users: int = 2_000
    campaigns: int = 6
    new_property_day: int = 2
    text_ref_day: int = 4

    # --- shape ----------------------------------------------------------------------

    def day_list(self) -> list[date]:
        return [self.start + timedelta(days=n) for n in range(self.days)]

    def day_index(self, day: date) -> int | None:
        index = (day - self.start).days
        return index if 0 <= index < self.days else None

    def count(self, day: date, event: str) -> int:
        """How many ``event`` events happened on ``day``."""
        index = self.day_index(day)
        if index is None or event not in EVENT_NAMES:
            return 0
        e = EVENT_NAMES.index(event)
        base = int(self.events_per_day * EVENT_WEIGHTS[e])
        return base + (index * 37 * (e + 1) + self.seed) % 101

    def total(self, event: str | None = None) -> int:
        names = [event] if event else EVENT_NAMES
        return sum(self.count(day, name) for day in self.day_list() for name in names)

    # --- users ----------------------------------------------------------------------

    def object_id(self, k: int) -> str:
        digest = hashlib.sha1(f"{self.seed}:{k}".encode()).hexdigest()
        return f"__{digest[:30]}"

    def identity(self, k: int) -> str | None:
        """Every tenth user never logged in: CleverTap knows only its objectId."""
        return None if k % 10 == 0 else f"cust-{k:06d}"

    def user_of(self, day_index: int, e: int, i: int) -> int:
        return (i * 7919 + day_index * 104_729 + e * 31 + self.seed) % self.users

    def profile(self, k: int, *, app: bool = False, profile: bool = True) -> dict[str, Any]:
        """The ``profile`` object of an event record (and the base of a profile record)."""
        identity = self.identity(k)
        out: dict[str, Any] = {"objectId": self.object_id(k)}
        if identity:
            out.update(
                identity=identity,
                all_identities=[identity, f"user{k}@example.com"],
                name=f"User {k}",
                email=f"user{k}@example.com",
                phone=4915100000000 + k,
            )
        else:
            out["all_identities"] = []
        out["platform"] = PLATFORMS[k % 3]
        out["push_token"] = f"fcm:tok{k:06d}"
        if app:
            out.update(os_version=f"{13 + k % 4}", app_version=f"9.{k % 5}.0", make="Samsung")
            out["model"] = f"SM-S{900 + k % 30}"
        if profile:
            out["profileData"] = self.profile_data(k)
        return out

    def profile_data(self, k: int) -> dict[str, Any]:
        signup = epoch(self.start, -86400 * (30 + k % 300))
        return {"Plan": PLANS[k % 3], "Signup Date": f"$D_{signup}", "Loyalty Points": k * 3 % 1000}

    def profile_record(self, k: int, *, app: bool, profile: bool, events: bool) -> dict[str, Any]:
        """A Get User Profiles record: the event record's profile plus ``platformInfo``."""
        record = self.profile(k, app=app, profile=profile)
        record["platformInfo"] = [
            {
                "platform": record["platform"],
                "objectId": record["objectId"],
                "push_token": record["push_token"],
                "os_version": f"{13 + k % 4}",
                "app_version": f"9.{k % 5}.0",
            }
        ]
        if events:
            record["events"] = {"App Launched": {"count": 3 + k % 40, "first_seen": 1704067200}}
        return record

    def users_with(self, event: str, days: list[date]) -> list[int]:
        e = EVENT_NAMES.index(event)
        seen: set[int] = set()
        for day in days:
            index = self.day_index(day)
            if index is None:
                continue
            seen.update(self.user_of(index, e, i) for i in range(self.count(day, event)))
        return sorted(seen)

    # --- events ---------------------------------------------------------------------

    def event(
        self,
        day: date,
        event: str,
        i: int,
        *,
        app: bool = False,
        profile: bool = True,
    ) -> dict[str, Any]:
        """Event ``i`` (0-based, in time order) of ``event`` on ``day``, as the API returns it."""
        index = self.day_index(day)
        assert index is not None
        e = EVENT_NAMES.index(event)
        count = self.count(day, event)
        second = i * 86400 // count
        moment = datetime(day.year, day.month, day.day) + timedelta(seconds=second)
        user = self.user_of(index, e, i)
        record: dict[str, Any] = {
            "profile": self.profile(user, app=app, profile=profile),
            "ts": int(moment.strftime("%Y%m%d%H%M%S")),
            "event_props": self.event_props(index, day, e, i),
            "session_props": {
                "session_source": SOURCES[(user + index) % 4],
                "utm_source": f"camp{(i + index) % 7}",
            },
        }
        if e == 3:
            record["items"] = [
                {"Items|product": f"P{(i * 13) % 500:03d}", "Items|price": 10 + i % 90}
            ]
        return record

    def event_props(self, index: int, day: date, e: int, i: int) -> dict[str, Any]:
        session = (index + 1) * 10_000_000 + e * 1_000_000 + i
        if e == 0:
            return {
                "CT Source": "Mobile" if i % 3 else "Web",
                "CT App Version": f"9.{i % 5}.0",
                "CT Session Id": session,
            }
        if e == 1:
            return {
                "Product": f"P{(i * 13) % 500:03d}",
                "Category": CATEGORIES[i % 6],
                "Price": 5 + (i * 17) % 200,
                "CT Session Id": session,
            }
        if e == 2:
            ref: int | str = 1000 + i % 97
            if index >= self.text_ref_day:
                ref = f"R-{ref}"
            return {
                "Product": f"P{(i * 7) % 500:03d}",
                "Quantity": 1 + i % 3,
                "Ref": ref,
                "CT Session Id": session,
            }
        props: dict[str, Any] = {
            "Amount": round(10 + (i * 7) % 490 + 0.5, 2),
            "Currency": "EUR" if i % 2 else "USD",
            "Payment Mode": ("Card", "COD", "Wallet")[i % 3],
            "Delivery Date": f"$D_{epoch(day, 3 * 86400)}",
            "CT Session Id": session,
        }
        if index >= self.new_property_day:
            props["Coupon"] = f"SAVE{i % 4 * 5}" if i % 4 else ""
        return props

    # --- campaigns ------------------------------------------------------------------

    def campaign_list(self) -> list[dict[str, Any]]:
        out = []
        for n in range(self.campaigns):
            day = self.start + timedelta(days=n % self.days)
            out.append(
                {
                    "id": 1_700_000_000 + n * 1111,
                    "name": f"Campaign {n}",
                    "scheduled_on": int(day.strftime("%Y%m%d")) * 10_000 + 900 + n,
                    "status": "running" if n == self.campaigns - 1 else "completed",
                    "channel": ("push", "email", "sms")[n % 3],
                }
            )
        return out

    def campaign_result(self, campaign_id: int) -> dict[str, Any]:
        n = (campaign_id - 1_700_000_000) // 1111
        sent = 1000 + n * 250
        return {
            "status": "completed",
            "sent": sent,
            "viewed": sent * 6 // 10,
            "clicked": sent // 10 + n,
            "converted": sent // 40,
            "platform": {"android": {"sent": sent // 2}, "ios": {"sent": sent - sent // 2}},
        }


def iter_all_events(data: Dataset, **flags: Any) -> Iterator[tuple[date, str, dict[str, Any]]]:
    """Every event of the data set, in export order (day, then name, then time)."""
    for day in data.day_list():
        for name in EVENT_NAMES:
            for i in range(data.count(day, name)):
                yield day, name, data.event(day, name, i, **flags)
