"""Fixtures for the Pendo destination: the emulator on 127.0.0.1 and matching options."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import pytest
from aiohttp import ClientResponse

from tests.emulators.pendo import INTEGRATION_KEY, TRACK_SECRET, PendoEmulator


class _MockedResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp
    3.14 requires; give it a stand-in that reports nothing written."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_on_new_aiohttp(monkeypatch):
    if "stream_writer" not in inspect.signature(ClientResponse.__init__).parameters:
        return
    from aioresponses.core import RequestMatch

    build = RequestMatch._build_response

    def build_response(self, *args, response_class=None, **kwargs):
        return build(self, *args, response_class=response_class or _MockedResponse, **kwargs)

    monkeypatch.setattr(RequestMatch, "_build_response", build_response)


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
