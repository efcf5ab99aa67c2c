"""Turn mParticle batches (Events API and Webhook output) into records. Pure: no I/O.

A request is made of *parts*: each batch's user attributes and each of its events.
A part that is invalid is reported with a message in mParticle's words and skipped;
its valid neighbours still become records. Only a request that cannot be read at all
(wrong JSON shape, more batches than the limit) raises `IngestError`.

The two formats differ only in ``user_identities``: an object in the Events API
(``{"customer_id": "42"}``, or ``customerid`` as the PyPI ``mparticle`` package spells
it), an array in the Webhook output (``[{"identity_type": "customer_id", "identity":
"42"}]``). Everything else goes through the same code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from connectord import IngestError, Record
from connectord.records import iso, stable_message_id

from . import const

SOURCE = "mparticle"
_INT = re.compile(r"^-?[0-9]{1,20}$")


class Invalid(Exception):
    """One part of a request is invalid; the message says why, in mParticle's words."""


@dataclass(frozen=True)
class Settings:
    """How batches become records (from the source's options).

    :param user_id: the identity that becomes ``userId`` (an Events API identity name
        such as ``customer_id``, or ``mpid``).
    :param mpid_fallback: use the mpid as ``userId`` when that identity is absent.
    :param other_events: what to do with events that are not custom events, screen
        views, commerce events or attribute changes: drop them, or forward them as
        ``track`` records named after their mParticle type.
    :param enforce_limits: apply the Events API's name/value limits (mParticle's own
        outputs were already checked by mParticle).
    """

    user_id: str = "customer_id"
    mpid_fallback: bool = True
    other_events: Literal["drop", "track"] = "drop"
    enforce_limits: bool = True


@dataclass
class Parsed:
    """What a request became: records, messages for the parts that were invalid, and
    how many events were deliberately not forwarded."""

    records: list[Record] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    ignored: int = 0

    def add(self, other: Parsed) -> None:
        self.records.extend(other.records)
        self.errors.extend(other.errors)
        self.ignored += other.ignored


@dataclass
class User:
    """Who a batch is about, and the context shared by all its records."""

    user_id: str | None
    anonymous_id: str | None
    context: dict[str, Any]

    def stamp(self, record: Record) -> Record:
        if self.user_id is not None:
            record["userId"] = self.user_id
        if self.anonymous_id is not None:
            record["anonymousId"] = self.anonymous_id
        record["context"] = _copy_context(self.context)
        return record


# --- requests ---------------------------------------------------------------------------


def parse_events_request(payload: Any, settings: Settings, *, bulk: bool) -> Parsed:
    """``POST /v2/events`` (one batch) or ``/v2/bulkevents`` (an array of batches)."""
    if bulk:
        if not isinstance(payload, list):
            raise IngestError(
                400,
                "invalid_body",
                "bulkevents expects a JSON array of batches; found "
                f"{kind_of(payload)}. Send a single batch to v2/events",
            )
        if len(payload) > const.MAX_BULK_BATCHES:
            raise IngestError(
                400,
                "too_many_batches",
                f"{len(payload)} batches in one request; the limit is {const.MAX_BULK_BATCHES}",
            )
        batches = [(f"batch {i}", b) for i, b in enumerate(payload)]
    else:
        if not isinstance(payload, dict):
            raise IngestError(
                400,
                "invalid_body",
                f"events expects one batch object; found {kind_of(payload)}. "
                "Send arrays of batches to v2/bulkevents",
            )
        batches = [("batch", payload)]
    parsed = Parsed()
    for label, batch in batches:
        parsed.add(parse_batch(batch, settings, label, identities="object"))
    return parsed


def parse_webhook_request(payload: Any, settings: Settings) -> Parsed:
    """mParticle's Webhook output: one outbound batch, or an array of them."""
    if isinstance(payload, dict):
        batches = [("batch", payload)]
    elif isinstance(payload, list):
        batches = [(f"batch {i}", b) for i, b in enumerate(payload)]
    else:
        raise IngestError(
            400,
            "invalid_body",
            f"expected a batch object or an array of batches; found {kind_of(payload)}",
        )
    outbound = Settings(settings.user_id, settings.mpid_fallback, settings.other_events, False)
    parsed = Parsed()
    for label, batch in batches:
        parsed.add(parse_batch(batch, outbound, label, identities="array"))
    return parsed


# --- one batch --------------------------------------------------------------------------


def parse_batch(
    batch: Any, settings: Settings, label: str, *, identities: Literal["object", "array"]
) -> Parsed:
    """One batch: an identify for its user attributes, then one record per event."""
    parsed = Parsed()
    try:
        user, events = _batch_head(batch, settings, identities)
    except Invalid as err:
        parsed.errors.append(f"{label}: {err}")
        return parsed
    key = _batch_key(batch)
    batch_time = _optional_time(batch.get("timestamp_unixtime_ms"))
    try:
        identify = _batch_identify(batch, user, settings, key, batch_time)
    except Invalid as err:
        parsed.errors.append(f"{label}, user_attributes: {err}")
    else:
        if identify is not None:
            parsed.records.append(identify)
    for index, event in enumerate(events):
        where = f"{label}, event {index}"
        try:
            records = event_records(event, user, settings, key, index, batch_time)
        except Invalid as err:
            parsed.errors.append(f"{where}{_event_hint(event)}: {err}")
            continue
        if records is None:
            parsed.ignored += 1
        else:
            parsed.records.extend(records)
    return parsed


def _batch_head(
    batch: Any, settings: Settings, identities: Literal["object", "array"]
) -> tuple[User, list[Any]]:
    if not isinstance(batch, dict):
        raise Invalid(f"a batch must be a JSON object; found {kind_of(batch)}")
    environment = batch.get("environment")
    if environment is not None and not one_of(environment, const.ENVIRONMENTS):
        raise Invalid(f'"environment" must be "production" or "development"; found {environment!r}')
    events = batch.get("events")
    if events is None:
        events = []
    if not isinstance(events, list):
        raise Invalid(f'"events" must be an array; found {kind_of(events)}')
    raw_ids = batch.get("user_identities")
    ids = (
        identities_from_object(raw_ids)
        if identities == "object"
        else identities_from_array(raw_ids)
    )
    mpid = parse_mpid(batch.get("mpid"))
    device = batch.get("device_info")
    if device is not None and not isinstance(device, dict):
        raise Invalid(f'"device_info" must be an object; found {kind_of(device)}')
    context = batch_context(batch, ids, mpid)
    user = resolve_user(ids, mpid, context, settings)
    return user, events


def _batch_key(batch: dict[str, Any]) -> str | None:
    """mParticle's id of the batch, if it carries one (for stable messageIds)."""
    for name in ("source_request_id", "batch_id", "message_id"):
        value = batch.get(name)
        if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "":
            return f"{name}:{value}"
    return None


def _batch_identify(
    batch: dict[str, Any], user: User, settings: Settings, key: str | None, at: str | None
) -> Record | None:
    traits = user_attributes(batch.get("user_attributes"), settings.enforce_limits)
    deleted = batch.get("deleted_user_attributes")
    if deleted is not None:
        if not isinstance(deleted, list) or not all(isinstance(n, str) for n in deleted):
            raise Invalid('"deleted_user_attributes" must be an array of attribute names')
        for name in deleted:
            traits[name] = None
    if not traits:
        return None
    record = user.stamp({"type": "identify", "traits": traits})
    if key is not None:
        record["messageId"] = stable_message_id(SOURCE, key, "user_attributes")
    if at is not None:
        record["timestamp"] = at
    return record


# --- identities and users ----------------------------------------------------------------


def canonical_identity(name: str) -> str:
    """The Events API name of an identity, whichever way it was spelled."""
    lowered = name.strip().lower()
    return const.IDENTITY_ALIASES.get(lowered, lowered)


def identities_from_object(value: Any) -> dict[str, str]:
    """Events API: ``{"customer_id": "42", "email": "a@b.c"}``."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f'"user_identities" must be an object; found {kind_of(value)}')
    ids: dict[str, str] = {}
    for name, identity in value.items():
        if identity is None or identity == "":
            continue
        if not isinstance(identity, (str, int)) or isinstance(identity, bool):
            raise Invalid(f'user identity "{name}" must be a string; found {kind_of(identity)}')
        ids.setdefault(canonical_identity(name), str(identity))
    return ids


def identities_from_array(value: Any) -> dict[str, str]:
    """Webhook output: ``[{"identity_type": "customer_id", "identity": "42"}]``."""
    if value is None:
        return {}
    if isinstance(value, dict):  # tolerate an Events API shaped batch
        return identities_from_object(value)
    if not isinstance(value, list):
        raise Invalid(f'"user_identities" must be an array; found {kind_of(value)}')
    ids: dict[str, str] = {}
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise Invalid(f"user_identities[{index}] must be an object; found {kind_of(item)}")
        kind, identity = item.get("identity_type"), item.get("identity")
        if not isinstance(kind, str) or not kind:
            raise Invalid(f'user_identities[{index}] needs an "identity_type"')
        if identity is None or identity == "":
            continue
        if not isinstance(identity, (str, int)) or isinstance(identity, bool):
            raise Invalid(f'user_identities[{index}] "identity" must be a string')
        ids.setdefault(canonical_identity(kind), str(identity))
    return ids


def parse_mpid(value: Any) -> str | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise Invalid('"mpid" must be a 64-bit integer')
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str) and _INT.match(value.strip()):
        return value.strip()
    raise Invalid(f'"mpid" must be a 64-bit integer; found {value!r:.40}')


def resolve_user(
    ids: dict[str, str], mpid: str | None, context: dict[str, Any], settings: Settings
) -> User:
    """``userId`` from the configured identity (else the mpid); ``anonymousId`` from the
    device when there is no user id. A batch with neither cannot be attributed."""
    user_id = mpid if settings.user_id == "mpid" else ids.get(settings.user_id)
    if user_id is None and settings.mpid_fallback:
        user_id = mpid
    anonymous_id = None
    if user_id is None:
        device = context.get("device", {})
        anonymous_id = device.get("id") or context.get("mparticle", {}).get("device_id")
    if user_id is None and anonymous_id is None:
        wanted = "mpid" if settings.user_id == "mpid" else f"user_identities.{settings.user_id}"
        raise Invalid(
            f"the batch names no user: set {wanted}"
            + (", mpid" if settings.user_id != "mpid" and settings.mpid_fallback else "")
            + " or a device id (device_info.ios_idfv / android_uuid, mp_deviceid)"
        )
    return User(user_id, anonymous_id, context)


# --- context ------------------------------------------------------------------------------


def batch_context(batch: dict[str, Any], ids: dict[str, str], mpid: str | None) -> dict[str, Any]:
    """Segment-style ``context`` from device_info, application_info and the batch."""
    device_info = batch.get("device_info") if isinstance(batch.get("device_info"), dict) else {}
    app_info = batch.get("application_info")
    app_info = app_info if isinstance(app_info, dict) else {}
    context: dict[str, Any] = {}
    device = drop_empty(
        {
            "id": _first_str(device_info, const.DEVICE_ID_FIELDS),
            "advertisingId": _first_str(device_info, const.ADVERTISING_ID_FIELDS),
            "token": as_text(device_info.get("push_token")),
            "manufacturer": as_text(device_info.get("device_manufacturer")),
            "model": as_text(device_info.get("device_model")),
            "name": as_text(device_info.get("device")),
            "type": _platform(device_info.get("platform")),
        }
    )
    if device:
        context["device"] = device
    os_info = drop_empty(
        {
            "name": as_text(device_info.get("platform")),
            "version": as_text(device_info.get("os_version")),
        }
    )
    if os_info:
        context["os"] = os_info
    app = drop_empty(
        {
            "name": as_text(app_info.get("application_name")),
            "version": as_text(app_info.get("application_version")),
            "build": as_text(app_info.get("application_build_number")),
            "namespace": as_text(app_info.get("package")),
        }
    )
    if app:
        context["app"] = app
    put_if(context, "ip", as_text(batch.get("ip")))
    put_if(context, "userAgent", as_text(device_info.get("http_header_user_agent")))
    put_if(
        context,
        "locale",
        _locale(device_info.get("locale_language"), device_info.get("locale_country")),
    )
    mparticle = drop_empty(
        {
            "mpid": mpid,
            "identities": dict(ids) or None,
            "device_id": as_text(batch.get("mp_deviceid")),
            "environment": as_text(batch.get("environment")),
            "source_request_id": as_text(batch.get("source_request_id")),
        }
    )
    context["mparticle"] = mparticle
    return context


def _platform(value: Any) -> str | None:
    text = as_text(value)
    return text.lower() if text else None


def _locale(language: Any, country: Any) -> str | None:
    lang, region = as_text(language), as_text(country)
    if not lang:
        return None
    if region and "_" not in region and "-" not in region:
        return f"{lang}-{region}"
    return lang


def _copy_context(context: dict[str, Any]) -> dict[str, Any]:
    return {k: dict(v) if isinstance(v, dict) else v for k, v in context.items()}


# --- events -------------------------------------------------------------------------------


def event_records(
    event: Any,
    user: User,
    settings: Settings,
    batch_key: str | None,
    index: int,
    batch_time: str | None,
) -> list[Record] | None:
    """The records for one Events API event; ``None`` when its type is not forwarded."""
    if not isinstance(event, dict):
        raise Invalid(f"an event must be a JSON object; found {kind_of(event)}")
    event_type = event.get("event_type")
    if not isinstance(event_type, str) or not event_type:
        raise Invalid('Required event field "event_type" is missing or empty.')
    if event_type not in const.EVENT_TYPES:
        raise Invalid(f'Unknown event_type "{event_type:.60}".')
    data = event.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Invalid(f'event "data" must be an object; found {kind_of(data)}')
    limits = settings.enforce_limits
    properties = attribute_map(data.get("custom_attributes"), "custom_attributes", limits)
    timestamp = _event_time(data.get("timestamp_unixtime_ms")) or batch_time
    own_id = _first_str(data, ("source_message_id", "message_id"))
    base_id: tuple[Any, ...] | None
    if own_id is not None:
        base_id = ("event", own_id)
    elif batch_key is not None:
        base_id = (batch_key, "event", index)
    else:
        base_id = None
    meta: dict[str, Any] = {"event_type": event_type}

    if event_type == "custom_event":
        name = _required_str(data, "event_name")
        kind = data.get("custom_event_type")
        if kind is None or kind == "":
            raise Invalid('Required event field "custom_event_type" is missing or empty.')
        if not one_of(kind, const.CUSTOM_EVENT_TYPES):
            raise Invalid(f'"custom_event_type" {kind!r:.40} is not one of mParticle\'s types.')
        meta["custom_event_type"] = kind
        bodies = [{"type": "track", "event": _name(name, limits), "properties": properties}]
    elif event_type == "screen_view":
        name = _required_str(data, "screen_name")
        bodies = [{"type": "screen", "name": _name(name, limits), "properties": properties}]
    elif event_type == "commerce_event":
        bodies = [
            {"type": "track", "event": name, "properties": props}
            for name, props in commerce_parts(data, properties, limits)
        ]
    elif event_type == "user_attribute_change":
        bodies = [{"type": "identify", "traits": attribute_change(data, limits)}]
    elif settings.other_events == "track":
        props = {**scalar_fields(data, const.EVENT_COMMON_FIELDS), **properties}
        bodies = [{"type": "track", "event": event_type, "properties": props}]
    else:
        return None

    records = []
    for part, body in enumerate(bodies):
        record = user.stamp(body)
        record["context"]["mparticle"] = {**record["context"].get("mparticle", {}), **meta}
        if base_id is not None:
            suffix = () if len(bodies) == 1 else (part,)
            record["messageId"] = stable_message_id(SOURCE, *base_id, *suffix)
        if timestamp is not None:
            record["timestamp"] = timestamp
        records.append(record)
    return records


def _event_hint(event: Any) -> str:
    if not isinstance(event, dict):
        return ""
    data = event.get("data") if isinstance(event.get("data"), dict) else {}
    name = data.get("event_name") or data.get("screen_name")
    kind = event.get("event_type")
    if isinstance(kind, str) and isinstance(name, str):
        return f' ({kind:.40} "{name:.60}")'
    return f" ({kind:.40})" if isinstance(kind, str) and kind else ""


def attribute_change(data: dict[str, Any], limits: bool) -> dict[str, Any]:
    """A ``user_attribute_change`` event: the new value, or ``None`` when deleted."""
    name = _required_str(data, "user_attribute_name")
    if limits and len(name) > const.MAX_NAME_CHARS:
        raise Invalid(f"user attribute name is longer than {const.MAX_NAME_CHARS} characters")
    if data.get("deleted") is True:
        return {name: None}
    value = data.get("new")
    return {name: _user_value(name, value, limits, tag=True)}


# --- commerce -----------------------------------------------------------------------------


def commerce_parts(
    data: dict[str, Any], custom: dict[str, Any], limits: bool
) -> list[tuple[str, dict[str, Any]]]:
    """A commerce event as one or more flat ``track`` bodies:
    ``eCommerce - <action>`` for product actions, ``eCommerce - promotion_<action>``
    for promotions and ``eCommerce - impression`` for impressions."""
    currency = as_text(data.get("currency_code"))
    parts: list[tuple[str, dict[str, Any]]] = []
    product_action = data.get("product_action")
    if product_action is not None:
        parts.append(product_action_part(product_action, currency, custom))
    promotion = data.get("promotion_action")
    if promotion is not None:
        if not isinstance(promotion, dict):
            raise Invalid('"promotion_action" must be an object')
        parts.append(promotion_part(promotion.get("action"), promotion.get("promotions"), custom))
    impressions = data.get("product_impressions")
    if impressions is not None:
        parts.append(impression_part(impressions, "product_impression_list", custom))
    if not parts:
        raise Invalid(
            'A commerce_event needs "product_action", "promotion_action" or "product_impressions".'
        )
    return parts


def product_action_part(
    action_data: Any, currency: str | None, custom: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    """Shared by the Events API (``product_action`` object) and Firehose (fields on the
    event itself)."""
    if not isinstance(action_data, dict):
        raise Invalid('"product_action" must be an object')
    action = action_data.get("action")
    if not isinstance(action, str) or not action:
        raise Invalid('Required product_action field "action" is missing or empty.')
    if action not in const.PRODUCT_ACTIONS:
        raise Invalid(f'product_action "action" {action!r:.40} is not one of mParticle\'s actions.')
    products = _products(action_data.get("products"))
    props: dict[str, Any] = {
        "action": action,
        "transaction_id": as_text(action_data.get("transaction_id")),
        "revenue": _number(action_data.get("total_amount"), "total_amount"),
        "currency": currency or as_text(action_data.get("currency_code")),
        "tax_amount": _number(action_data.get("tax_amount"), "tax_amount"),
        "shipping_amount": _number(action_data.get("shipping_amount"), "shipping_amount"),
        "coupon_code": as_text(action_data.get("coupon_code")),
        "affiliation": as_text(action_data.get("affiliation")),
        "checkout_step": action_data.get("checkout_step"),
        "checkout_options": as_text(action_data.get("checkout_options")),
        "product_list": as_text(action_data.get("product_action_list")),
        **_product_summary(products),
    }
    return f"eCommerce - {action}", {**drop_empty(props), **custom}


def promotion_part(
    action: Any, promotions: Any, custom: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    if not isinstance(action, str) or not action:
        raise Invalid('Required promotion_action field "action" is missing or empty.')
    if promotions is None:
        promotions = []
    if not isinstance(promotions, list) or not all(isinstance(p, dict) for p in promotions):
        raise Invalid('"promotions" must be an array of objects')
    items = [
        drop_empty({k: _scalar(p.get(k)) for k in ("id", "name", "creative", "position", "slot")})
        for p in promotions
    ]
    props = {
        "action": action,
        "promotion_ids": [str(p["id"]) for p in items if "id" in p],
        "promotion_names": [str(p["name"]) for p in items if "name" in p],
        "promotions": items,
    }
    return f"eCommerce - promotion_{action}", {**drop_empty(props), **custom}


def impression_part(
    impressions: Any, list_field: str, custom: dict[str, Any]
) -> tuple[str, dict[str, Any]]:
    if not isinstance(impressions, list) or not all(isinstance(i, dict) for i in impressions):
        raise Invalid("impressions must be an array of objects")
    lists, products = [], []
    for impression in impressions:
        name = as_text(impression.get(list_field))
        if name:
            lists.append(name)
        for product in _products(impression.get("products")):
            products.append({**product, "impression_list": name} if name else product)
    props = {"impression_lists": lists, **_product_summary(products)}
    return "eCommerce - impression", {**drop_empty(props), **custom}


_PRODUCT_FIELDS = (
    "id",
    "name",
    "brand",
    "category",
    "variant",
    "position",
    "price",
    "quantity",
    "coupon_code",
)


def _products(value: Any) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise Invalid('"products" must be an array of objects')
    out = []
    for product in value:
        item = {k: _scalar(product.get(k)) for k in _PRODUCT_FIELDS}
        total = product.get("total_product_amount", product.get("total_amount"))
        item["total_amount"] = _scalar(total)
        attrs = product.get("custom_attributes", product.get("attributes"))
        if isinstance(attrs, dict):
            item["attributes"] = {k: _scalar(v) for k, v in attrs.items()}
        out.append(drop_empty(item))
    return out


def _product_summary(products: list[dict[str, Any]]) -> dict[str, Any]:
    """Scalars and lists of scalars a flat event store can keep, plus the products."""
    if not products:
        return {}
    quantities = [p["quantity"] for p in products if _is_number(p.get("quantity"))]
    return {
        "product_count": len(products),
        "product_quantity": sum(quantities) if quantities else None,
        "product_ids": [str(p["id"]) for p in products if "id" in p],
        "product_names": [str(p["name"]) for p in products if "name" in p],
        "products": products,
    }


# --- attributes ---------------------------------------------------------------------------


def attribute_map(value: Any, where: str, limits: bool) -> dict[str, Any]:
    """Event attributes: names (truncated at the S2S limit) → scalar values."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f'"{where}" must be an object; found {kind_of(value)}')
    if limits and len(value) > const.MAX_EVENT_ATTRIBUTES:
        raise Invalid(
            f"{len(value)} {where}; an event may carry at most {const.MAX_EVENT_ATTRIBUTES}"
        )
    out: dict[str, Any] = {}
    for name, item in value.items():
        if isinstance(item, (dict, list)):
            raise Invalid(f'{where} "{name:.60}" must be a string, number or boolean')
        if limits:
            if isinstance(item, str) and len(item) > const.MAX_VALUE_CHARS:
                raise Invalid(
                    f'{where} "{name:.60}" is {len(item)} characters long; the limit is '
                    f"{const.MAX_VALUE_CHARS}"
                )
            name = name[: const.MAX_NAME_CHARS]
        out[name] = item
    return out


def user_attributes(value: Any, limits: bool) -> dict[str, Any]:
    """Batch ``user_attributes``: strings, numbers, booleans or lists of strings."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Invalid(f'"user_attributes" must be an object; found {kind_of(value)}')
    if limits and len(value) > const.MAX_USER_ATTRIBUTES:
        raise Invalid(
            f"{len(value)} user attributes; a batch may carry at most {const.MAX_USER_ATTRIBUTES}"
        )
    traits: dict[str, Any] = {}
    for name, item in value.items():
        if limits and len(name) > const.MAX_NAME_CHARS:
            raise Invalid(
                f'user attribute name "{name:.60}…" is longer than {const.MAX_NAME_CHARS} '
                "characters"
            )
        traits[name] = _user_value(name, item, limits, tag=True)
    return traits


def _user_value(name: str, value: Any, limits: bool, *, tag: bool) -> Any:
    """A user attribute value. mParticle "user tags" are attributes without a value;
    they arrive as ``true`` (``None`` is kept for deletions)."""
    if value is None:
        return True if tag else None
    if isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        if limits and len(value) > const.MAX_VALUE_CHARS:
            raise Invalid(
                f'user attribute "{name:.60}" is {len(value)} characters long; the limit is '
                f"{const.MAX_VALUE_CHARS}"
            )
        return value
    if isinstance(value, list):
        if limits and len(value) > const.MAX_LIST_ENTRIES:
            raise Invalid(
                f'user attribute list "{name:.60}" has {len(value)} entries; the limit is '
                f"{const.MAX_LIST_ENTRIES}"
            )
        items = []
        for entry in value:
            if isinstance(entry, (dict, list)) or entry is None:
                raise Invalid(f'user attribute list "{name:.60}" may hold only strings')
            text = entry if isinstance(entry, str) else _json_scalar_text(entry)
            if limits and len(text) > const.MAX_LIST_ENTRY_CHARS:
                raise Invalid(
                    f'an entry of user attribute list "{name:.60}" is longer than '
                    f"{const.MAX_LIST_ENTRY_CHARS} characters"
                )
            items.append(text)
        return items
    raise Invalid(f'user attribute "{name:.60}" must be a string, number, boolean or list')


def scalar_fields(data: dict[str, Any], skip: frozenset[str]) -> dict[str, Any]:
    """The scalar fields of an event's data, for events forwarded by their type."""
    return {
        k: v
        for k, v in data.items()
        if k not in skip and (v is None or isinstance(v, (str, int, float, bool)))
    }


# --- small helpers ------------------------------------------------------------------------


def _required_str(data: dict[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f'Required event field "{name}" is missing or empty.')
    return value


def _name(name: str, limits: bool) -> str:
    return name[: const.MAX_NAME_CHARS] if limits else name


def _event_time(value: Any) -> str | None:
    if value is None:
        return None
    moment = epoch_ms_to_iso(value)
    if moment is None:
        raise Invalid('"timestamp_unixtime_ms" must be a Unix time in milliseconds')
    return moment


def _optional_time(value: Any) -> str | None:
    return epoch_ms_to_iso(value) if value is not None else None


def epoch_ms_to_iso(value: Any) -> str | None:
    """Milliseconds since 1970 as an ISO 8601 UTC string; ``None`` if it is not one."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        if isinstance(value, str) and _INT.match(value.strip()):
            value = int(value.strip())
        else:
            return None
    if value != value or not -62135596800000 < value < 253402300800000:  # NaN, year 1..9999
        return None
    return iso(datetime.fromtimestamp(value / 1000, UTC))


def _number(value: Any, name: str) -> int | float | None:
    if value is None or value == "":
        return None
    if _is_number(value):
        return value
    if isinstance(value, str):
        try:
            return float(value) if "." in value else int(value)
        except ValueError:
            pass
    raise Invalid(f'"{name}" must be a number; found {value!r:.40}')


def one_of(value: Any, allowed: frozenset[str]) -> bool:
    """Membership that tolerates unhashable JSON values (lists, objects)."""
    return isinstance(value, str) and value in allowed


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (str, int, float, bool)) else None


def _json_scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def as_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value if value != "" else None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _first_str(data: dict[str, Any], names: tuple[str, ...]) -> str | None:
    for name in names:
        value = as_text(data.get(name))
        if value is not None:
            return value
    return None


def put_if(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


def drop_empty(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None and v != [] and v != {}}


def kind_of(value: Any) -> str:
    return {
        dict: "an object",
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "null",
    }.get(type(value), type(value).__name__)


def iter_errors(errors: list[str]) -> Iterator[str]:
    """At most `const.MAX_REPORTED_ERRORS` messages, then a count of the rest."""
    yield from errors[: const.MAX_REPORTED_ERRORS]
    if len(errors) > const.MAX_REPORTED_ERRORS:
        yield f"… and {len(errors) - const.MAX_REPORTED_ERRORS} more invalid parts"
