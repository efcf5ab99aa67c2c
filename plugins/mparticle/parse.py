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

from typing import Any, Literal

from connectord import IngestError, Record
from connectord.records import stable_message_id

from . import const
from .commerce import commerce_parts
from .common import (
    SOURCE,
    Invalid,
    Parsed,
    Settings,
    User,
    as_text,
    attribute_map,
    canonical_identity,
    epoch_ms_to_iso,
    first_text,
    kind_of,
    one_of,
    parse_mpid,
    required_text,
    resolve_user,
    scalar_fields,
    segment_context,
)


def parse_events_request(payload: Any, settings: Settings, *, bulk: bool) -> Parsed:
    """``POST /v2/events`` (one batch) or ``/v2/bulkevents`` (an array of batches)."""
    parsed = Parsed()
    for _, batch_parsed in events_request_batches(payload, settings, bulk=bulk):
        parsed.add(batch_parsed)
    return parsed


def events_request_batches(
    payload: Any, settings: Settings, *, bulk: bool
) -> list[tuple[Any, Parsed]]:
    """Each batch of an Events API request with what it became: mParticle accepts or
    refuses bulk requests batch by batch, so the caller needs them apart."""
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
    return [
        (batch, parse_batch(batch, settings, label, identities="object"))
        for label, batch in batches
    ]


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


def parse_batch(
    batch: Any, settings: Settings, label: str, *, identities: Literal["object", "array"]
) -> Parsed:
    """One batch: an identify for its user attributes, then one record per event."""
    parsed = Parsed()
    try:
        user, events = _batch_head(batch, settings, identities)
    except Invalid as err:
        parsed.reject(f"{label}: {err}", batch)
        return parsed
    key = _batch_key(batch)
    batch_time = _optional_time(batch.get("timestamp_unixtime_ms"))
    try:
        identify = _batch_identify(batch, user, settings, key, batch_time)
    except Invalid as err:
        parsed.reject(f"{label}, user_attributes: {err}", _attributes_part(batch))
    else:
        if identify is not None:
            parsed.records.append(identify)
    for index, event in enumerate(events):
        where = f"{label}, event {index}"
        try:
            records = event_records(event, user, settings, key, index, batch_time)
        except Invalid as err:
            parsed.reject(f"{where}{_event_hint(event)}: {err}", event)
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


def _attributes_part(batch: dict[str, Any]) -> dict[str, Any]:
    """The user-attribute part of a batch, as a dead letter keeps it."""
    return {
        k: batch[k]
        for k in ("mpid", "user_identities", "user_attributes", "deleted_user_attributes")
        if k in batch
    }


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


def batch_context(batch: dict[str, Any], ids: dict[str, str], mpid: str | None) -> dict[str, Any]:
    """Where a batch keeps its context facts: ``device_info``, ``application_info``."""
    device_info = batch.get("device_info") if isinstance(batch.get("device_info"), dict) else {}
    app_info = batch.get("application_info")
    app_info = app_info if isinstance(app_info, dict) else {}
    return segment_context(
        device={
            "id": first_text(device_info, const.DEVICE_ID_FIELDS),
            "advertisingId": first_text(device_info, const.ADVERTISING_ID_FIELDS),
            "token": as_text(device_info.get("push_token")),
            "manufacturer": as_text(device_info.get("device_manufacturer")),
            "model": as_text(device_info.get("device_model")),
            "name": as_text(device_info.get("device")),
            "type": _platform(device_info.get("platform")),
        },
        os={
            "name": as_text(device_info.get("platform")),
            "version": as_text(device_info.get("os_version")),
        },
        app={
            "name": as_text(app_info.get("application_name")),
            "version": as_text(app_info.get("application_version")),
            "build": as_text(app_info.get("application_build_number")),
            "namespace": as_text(app_info.get("package")),
        },
        ip=as_text(batch.get("ip")),
        user_agent=as_text(device_info.get("http_header_user_agent")),
        locale=_locale(device_info.get("locale_language"), device_info.get("locale_country")),
        mparticle={
            "mpid": mpid,
            "identities": dict(ids) or None,
            "device_id": as_text(batch.get("mp_deviceid")),
            "environment": as_text(batch.get("environment")),
            "source_request_id": as_text(batch.get("source_request_id")),
        },
    )


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
    own_id = first_text(data, ("source_message_id", "message_id"))
    base_id: tuple[Any, ...] | None
    if own_id is not None:
        base_id = ("event", own_id)
    elif batch_key is not None:
        base_id = (batch_key, "event", index)
    else:
        base_id = None
    meta: dict[str, Any] = {"event_type": event_type}

    if event_type == "custom_event":
        name = required_text(data, "event_name")
        kind = data.get("custom_event_type")
        if kind is None or kind == "":
            if limits:  # mParticle's own outputs leave it out (its Kinesis sample does)
                raise Invalid('Required event field "custom_event_type" is missing or empty.')
        elif not one_of(kind, const.CUSTOM_EVENT_TYPES):
            raise Invalid(f'"custom_event_type" {kind!r:.40} is not one of mParticle\'s types.')
        else:
            meta["custom_event_type"] = kind
        bodies = [{"type": "track", "event": _name(name, limits), "properties": properties}]
    elif event_type == "screen_view":
        name = required_text(data, "screen_name")
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
    name = required_text(data, "user_attribute_name")
    if limits and len(name) > const.MAX_NAME_CHARS:
        raise Invalid(f"user attribute name is longer than {const.MAX_NAME_CHARS} characters")
    if data.get("deleted") is True:
        return {name: None}
    value = data.get("new")
    return {name: _user_value(name, value, limits, tag=True)}


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


def _json_scalar_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
