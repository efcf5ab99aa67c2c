"""mParticle Firehose partner messages → records and response messages. Pure: no I/O.

mParticle calls a partner endpoint synchronously with one message and expects the
matching response message back (``event_processing_request`` →
``event_processing_response``, ...). Every response carries an ``id`` (we answer with
the request's), ``timestamp_ms`` and ``firehose_version``.

Firehose spells things differently from the Events API: events have ``name`` and
``attributes``, times are ``timestamp_ms``, identities are arrays of ``{type,
encoding, value}`` with types such as ``customer`` and ``other2``, and the device lives
in ``runtime_environment``. Only ``raw``-encoded identities can become a ``userId``;
hashed ones are kept out of records.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from connectord import IngestError, Record
from connectord.records import stable_message_id

from . import const
from .commerce import impression_part, product_action_part, promotion_part
from .common import (
    SOURCE,
    Invalid,
    Parsed,
    Settings,
    User,
    as_text,
    attribute_map,
    canonical_identity,
    drop_empty,
    epoch_ms_to_iso,
    kind_of,
    one_of,
    parse_mpid,
    put_if,
    resolve_user,
    scalar_fields,
    segment_context,
)
from .registration import registration_response, response

MESSAGE_TYPES = (
    "module_registration_request",
    "event_processing_request",
    "audience_subscription_request",
    "audience_membership_change_request",
)
SUBSCRIPTION_ACTIONS = frozenset({"add", "update", "remove"})
MEMBERSHIP_ACTIONS = {"add": "add", "delete": "remove"}


@dataclass
class FirehoseResult:
    """Records to commit, messages for invalid parts, and the response to answer with."""

    response: dict[str, Any]
    parsed: Parsed = field(default_factory=Parsed)
    subscription: dict[str, Any] | None = None
    """For ``audience_subscription_request``: ``{audience_id, name, action}``."""


def handle_message(message: Any, settings: Settings, *, setting_id: str) -> FirehoseResult:
    """Dispatch one Firehose message on its ``type``.

    Raises `IngestError` (400) when the message itself cannot be understood.
    """
    if not isinstance(message, dict):
        raise IngestError(
            400, "invalid_message", f"a Firehose message is a JSON object; found {kind_of(message)}"
        )
    kind = message.get("type")
    if kind not in MESSAGE_TYPES:
        raise IngestError(
            400,
            "unsupported_message",
            f"unsupported Firehose message type {kind!r:.60}; this endpoint answers "
            + ", ".join(MESSAGE_TYPES),
        )
    message_id = message.get("id")
    if not isinstance(message_id, str) or not message_id:
        raise IngestError(400, "invalid_message", 'a Firehose message needs an "id" (a UUID)')
    if kind == "module_registration_request":
        return FirehoseResult(registration_response(message, setting_id))
    if kind == "event_processing_request":
        return FirehoseResult(
            response(message, "event_processing_response"), event_processing(message, settings)
        )
    if kind == "audience_subscription_request":
        return audience_subscription(message)
    return FirehoseResult(
        response(message, "audience_membership_change_response", suspend_subscription=False),
        membership_change(message, settings),
    )


def account_secret(message: Any, setting_id: str) -> str | None:
    """The shared secret mParticle sends in ``account.account_settings``, if any."""
    if not isinstance(message, dict):
        return None
    account = message.get("account")
    settings = account.get("account_settings") if isinstance(account, dict) else None
    value = settings.get(setting_id) if isinstance(settings, dict) else None
    return value if isinstance(value, str) else None


# --- events -------------------------------------------------------------------------------


def event_processing(message: dict[str, Any], settings: Settings) -> Parsed:
    """One user's events. A request without events is mParticle's verification call:
    it is answered and produces nothing."""
    parsed = Parsed()
    events = message.get("events")
    if events is None or events == []:
        return parsed
    if not isinstance(events, list):
        parsed.reject(f'"events" must be an array; found {kind_of(events)}', events)
        return parsed
    try:
        user = firehose_user(message, settings)
    except Invalid as err:
        parsed.reject(f"request: {err}", without_account(message))
        return parsed
    request_id = message["id"]
    try:
        traits = firehose_user_attributes(message)
    except Invalid as err:
        parsed.reject(f"user_attributes: {err}", message.get("user_attributes"))
    else:
        if traits:
            record = user.stamp({"type": "identify", "traits": traits})
            record["messageId"] = stable_message_id(SOURCE, "firehose", request_id, "attributes")
            put_if(record, "timestamp", epoch_ms_to_iso(message.get("timestamp_ms")))
            parsed.records.append(record)
    for index, event in enumerate(events):
        try:
            records = firehose_event(event, user, settings, request_id, index)
        except Invalid as err:
            parsed.reject(f"event {index}{_hint(event)}: {err}", event)
            continue
        if records is None:
            parsed.ignored += 1
        else:
            parsed.records.extend(records)
    return parsed


def firehose_event(
    event: Any, user: User, settings: Settings, request_id: str, index: int
) -> list[Record] | None:
    if not isinstance(event, dict):
        raise Invalid(f"an event must be a JSON object; found {kind_of(event)}")
    kind = event.get("type")
    if not isinstance(kind, str) or kind not in const.FIREHOSE_EVENT_TYPES:
        raise Invalid(f'event "type" {kind!r:.40} is not a Firehose event type')
    attributes = attribute_map(event.get("attributes"), "attributes", False)
    if kind == "custom_event":
        bodies = [{"type": "track", "event": _required(event, "name"), "properties": attributes}]
    elif kind == "screen_view":
        bodies = [
            {"type": "screen", "name": _required(event, "screen_name"), "properties": attributes}
        ]
    elif kind == "product_action":
        name, props = product_action_part(event, as_text(event.get("currency_code")), attributes)
        bodies = [{"type": "track", "event": name, "properties": props}]
    elif kind == "promotion_action":
        name, props = promotion_part(event.get("action"), event.get("promotions"), attributes)
        bodies = [{"type": "track", "event": name, "properties": props}]
    elif kind == "impression":
        name, props = impression_part(
            event.get("impressions") or [], "impression_list_name", attributes
        )
        bodies = [{"type": "track", "event": name, "properties": props}]
    elif kind == "user_attribute_change":
        bodies = [{"type": "identify", "traits": attribute_changes(event)}]
    elif settings.other_events == "track":
        props = {**scalar_fields(event, const.FIREHOSE_EVENT_COMMON_FIELDS), **attributes}
        bodies = [{"type": "track", "event": kind, "properties": props}]
    else:
        return None
    own_id = as_text(event.get("id"))
    key = ("event", own_id) if own_id else ("firehose", request_id, "event", index)
    timestamp = epoch_ms_to_iso(event.get("timestamp_ms"))
    records = []
    for body in bodies:
        record = user.stamp(body)
        record["context"]["mparticle"] = {**record["context"]["mparticle"], "event_type": kind}
        if kind == "custom_event" and isinstance(event.get("custom_event_type"), str):
            record["context"]["mparticle"]["custom_event_type"] = event["custom_event_type"]
        record["messageId"] = stable_message_id(SOURCE, *key)
        put_if(record, "timestamp", timestamp)
        records.append(record)
    return records


def attribute_changes(event: dict[str, Any]) -> dict[str, Any]:
    """Firehose ``user_attribute_change``: ``added`` values, ``removed`` become ``None``."""
    added, removed = event.get("added"), event.get("removed")
    for name, value in (("added", added), ("removed", removed)):
        if value is not None and not isinstance(value, dict):
            raise Invalid(f'"{name}" must be an object; found {kind_of(value)}')
    traits: dict[str, Any] = {name: None for name in (removed or {})}
    for name, value in (added or {}).items():
        traits[name] = _attribute_value(name, value)
    if not traits:
        raise Invalid('a user_attribute_change needs "added" or "removed" attributes')
    return traits


def _hint(event: Any) -> str:
    if isinstance(event, dict) and isinstance(event.get("type"), str):
        name = event.get("name") or event.get("screen_name")
        return (
            f' ({event["type"]:.40} "{name:.60}")'
            if isinstance(name, str)
            else (f" ({event['type']:.40})")
        )
    return ""


# --- audiences ----------------------------------------------------------------------------


def audience_subscription(message: dict[str, Any]) -> FirehoseResult:
    """A customer connected, changed or disconnected an audience. Nothing to deliver
    (membership arrives in membership change requests); answered with empty settings."""
    result = FirehoseResult(
        response(message, "audience_subscription_response", audience_subscription_settings={})
    )
    action, audience_id = message.get("action"), message.get("audience_id")
    if not one_of(action, SUBSCRIPTION_ACTIONS):
        result.parsed.reject(
            f'"action" must be add, update or remove; found {action!r:.40}',
            without_account(message),
        )
    elif _audience_id(audience_id) is None:
        result.parsed.reject('"audience_id" is missing', without_account(message))
    else:
        result.subscription = {
            "audience_id": _audience_id(audience_id),
            "name": as_text(message.get("audience_name")),
            "action": action,
        }
    return result


def membership_change(message: dict[str, Any], settings: Settings) -> Parsed:
    """One ``audience`` record per user and audience (``add`` / ``delete`` → ``remove``);
    ``attribute_update`` becomes an ``identify``. No profiles: a verification call."""
    parsed = Parsed()
    profiles = message.get("user_profiles")
    if profiles is None or profiles == []:
        return parsed
    if not isinstance(profiles, list):
        parsed.reject(f'"user_profiles" must be an array; found {kind_of(profiles)}', profiles)
        return parsed
    timestamp = epoch_ms_to_iso(message.get("timestamp_ms"))
    for index, profile in enumerate(profiles):
        try:
            user = firehose_user(profile, settings, devices="device_identities")
            audiences = profile.get("audiences") or []
            if not isinstance(audiences, list):
                raise Invalid(f'"audiences" must be an array; found {kind_of(audiences)}')
        except Invalid as err:
            parsed.reject(f"user_profiles[{index}]: {err}", profile)
            continue
        who = user.context["mparticle"].get("mpid") or user.user_id or index
        for position, audience in enumerate(audiences):
            try:
                parsed.records.extend(
                    audience_records(audience, user, (message["id"], who), timestamp)
                )
            except Invalid as err:
                parsed.reject(f"user_profiles[{index}].audiences[{position}]: {err}", audience)
    return parsed


def audience_records(
    audience: Any, user: User, key: tuple[Any, ...], timestamp: str | None
) -> list[Record]:
    if not isinstance(audience, dict):
        raise Invalid(f"an audience must be an object; found {kind_of(audience)}")
    audience_id = _audience_id(audience.get("audience_id"))
    if audience_id is None:
        raise Invalid('"audience_id" is missing')
    action = audience.get("action")
    if action not in (*MEMBERSHIP_ACTIONS, "attribute_update"):
        raise Invalid(f'"action" must be add, delete or attribute_update; found {action!r:.40}')
    name = as_text(audience.get("audience_name"))
    records: list[Record] = []
    if action in MEMBERSHIP_ACTIONS:
        record = user.stamp(
            {
                "type": "audience",
                "action": MEMBERSHIP_ACTIONS[action],
                "audience": drop_empty({"id": audience_id, "name": name, "source": SOURCE}),
            }
        )
        record["messageId"] = stable_message_id(SOURCE, "audience", *key, audience_id, action)
        put_if(record, "timestamp", timestamp)
        records.append(record)
    traits = audience_attributes(audience.get("user_attributes"))
    if traits:
        record = user.stamp({"type": "identify", "traits": traits})
        record["context"]["mparticle"] = {
            **record["context"]["mparticle"],
            "audience_id": audience_id,
        }
        record["messageId"] = stable_message_id(
            SOURCE, "audience", *key, audience_id, action, "attributes"
        )
        put_if(record, "timestamp", timestamp)
        records.append(record)
    elif action == "attribute_update":
        raise Invalid('an attribute_update needs "user_attributes"')
    return records


def audience_attributes(value: Any) -> dict[str, Any]:
    """``[{"key", "value", "action": "upsert"|"delete"}]`` → traits (``None`` deletes)."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise Invalid(f'"user_attributes" must be an array; found {kind_of(value)}')
    traits: dict[str, Any] = {}
    for entry in value:
        if entry == {}:
            continue  # mParticle's own sample carries an empty entry
        if not isinstance(entry, dict) or not isinstance(entry.get("key"), str):
            raise Invalid('each user_attributes entry needs a "key"')
        action = entry.get("action", "upsert")
        if action == "delete":
            traits[entry["key"]] = None
        elif action == "upsert":
            traits[entry["key"]] = _attribute_value(entry["key"], entry.get("value"))
        else:
            raise Invalid(f'user attribute "action" must be upsert or delete; found {action!r:.40}')
    return traits


def _audience_id(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.strip()):
        return str(value).strip()
    return None


# --- users ----------------------------------------------------------------------------------


def firehose_user(
    message: Any, settings: Settings, *, devices: str = "runtime_environment"
) -> User:
    """The user of an event request or of one audience profile."""
    if not isinstance(message, dict):
        raise Invalid(f"a user profile must be an object; found {kind_of(message)}")
    ids = identities(message.get("user_identities"), "user_identities", user=True)
    mpid_text = parse_mpid(message.get("mpid"))
    if devices == "runtime_environment":
        env = message.get("runtime_environment")
        if env is not None and not isinstance(env, dict):
            raise Invalid(f'"runtime_environment" must be an object; found {kind_of(env)}')
        env = env or {}
        device_ids = identities(env.get("identities"), "runtime_environment.identities")
    else:
        env = {}
        device_ids = identities(message.get(devices), devices)
    context = firehose_context(message, env, ids, device_ids, mpid_text)
    return resolve_user(ids, mpid_text, context, settings)


def identities(value: Any, where: str, *, user: bool = False) -> dict[str, str]:
    """Raw identities as ``{name: value}``; user identity names in Events API spelling."""
    if value is None:
        return {}
    if not isinstance(value, list):
        raise Invalid(f'"{where}" must be an array; found {kind_of(value)}')
    out: dict[str, str] = {}
    for index, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("type"), str):
            raise Invalid(f'{where}[{index}] must be an object with a "type"')
        raw = item.get("value")
        if item.get("encoding", "raw") != "raw" or not isinstance(raw, str) or not raw:
            continue
        name = canonical_identity(item["type"]) if user else item["type"]
        out.setdefault(name, raw)
    return out


def firehose_context(
    message: dict[str, Any],
    env: dict[str, Any],
    ids: dict[str, str],
    device_ids: dict[str, str],
    mpid: str | None,
) -> dict[str, Any]:
    """Where a Firehose message keeps its context facts: ``runtime_environment``."""
    return segment_context(
        device={
            "id": _first(device_ids, const.FIREHOSE_DEVICE_IDS),
            "advertisingId": _first(device_ids, const.FIREHOSE_ADVERTISING_IDS),
            "token": _first(device_ids, const.FIREHOSE_PUSH_TOKENS),
            "manufacturer": as_text(env.get("manufacturer")),
            "model": as_text(env.get("model")),
            "type": as_text(env.get("type")),
        },
        os={"name": as_text(env.get("type")), "version": as_text(env.get("os_version"))},
        app={
            "name": as_text(env.get("application_name")),
            "version": as_text(env.get("application_version")),
            "build": as_text(env.get("build_id")),
            "namespace": as_text(env.get("application_package")),
        },
        ip=as_text(env.get("client_ip_address")),
        user_agent=as_text(env.get("http_header_user_agent")),
        locale=as_text(env.get("locale_language")),
        mparticle={
            "mpid": mpid,
            "identities": dict(ids) or None,
            "device_id": as_text(message.get("device_application_stamp")),
            "source_channel": as_text(message.get("source_channel")),
        },
    )


def without_account(message: Any) -> Any:
    """A message as a dead letter may keep it: ``account`` carries the customer's
    account settings, the shared secret among them."""
    if isinstance(message, dict):
        return {k: v for k, v in message.items() if k != "account"}
    return message


def firehose_user_attributes(message: dict[str, Any]) -> dict[str, Any]:
    """``user_attributes`` (strings) and ``user_attribute_lists`` (lists of strings)."""
    traits: dict[str, Any] = {}
    for field_name in ("user_attributes", "user_attribute_lists"):
        value = message.get(field_name)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise Invalid(f'"{field_name}" must be an object; found {kind_of(value)}')
        for name, item in value.items():
            traits[name] = _attribute_value(name, item)
    return traits


def _attribute_value(name: str, value: Any) -> Any:
    if value is None:
        return True  # an mParticle "user tag": an attribute without a value
    if isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, list) and all(
        isinstance(v, (str, int, float)) and not isinstance(v, bool) for v in value
    ):
        return [str(v) for v in value]
    raise Invalid(f'user attribute "{name:.60}" must be a string or a list of strings')


def _required(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    if not isinstance(value, str) or not value.strip():
        raise Invalid(f'Required event field "{name}" is missing or empty.')
    return value


def _first(values: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in values:
            return values[name]
    return None
