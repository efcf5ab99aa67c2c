"""Fixtures for the Pendo destination: the emulator on 127.0.0.1 and matching options."""

from __future__ import annotations

import pytest

from tests.plugins.pendo.emulator import INTEGRATION_KEY, TRACK_SECRET, PendoEmulator


@pytest.fixture
def pendo(emulator_server):
    emulator = PendoEmulator(custom_fields={"visitor": {"crm_tier"}, "account": {"arr"}})
    emulator.url = emulator_server(emulator).url
    return emulator


@pytest.fixture
def options(pendo):
    return {
        "track_secret": TRACK_SECRET,
        "integration_key": INTEGRATION_KEY,
        "base_url": pendo.url,
        "page_events": True,
        "visitor_custom_fields": ["crm_tier"],
        "account_custom_fields": ["arr"],
    }


def track(user="u1", event="Signed Up", **extra):
    return {
        "type": "track",
        "userId": user,
        "event": event,
        "properties": {"plan": "pro"},
        "timestamp": "2026-11-23T10:00:00.000Z",
        "messageId": f"m-{user}-{event}",
        **extra,
    }


def identify(user="u1", **traits):
    return {"type": "identify", "userId": user, "traits": traits, "messageId": f"i-{user}"}


def group(account="a1", user="u1", **traits):
    return {
        "type": "group",
        "userId": user,
        "groupId": account,
        "traits": traits,
        "messageId": f"g-{account}",
    }
