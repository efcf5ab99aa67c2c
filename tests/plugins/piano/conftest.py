"""Fixtures for the Piano Analytics plugin: the emulator and plugin options."""

from __future__ import annotations

import pytest

from tests.plugins.piano.emulator import PianoEmulator

SITE = 123456
API_KEY = "ACCESS1_s3cretKey"
DOMAIN = "abcdefg.pa-cd.com"


@pytest.fixture
def piano():
    return PianoEmulator(api_keys={API_KEY: {SITE}})


@pytest.fixture
def piano_url(piano, emulator_server):
    return emulator_server(piano).url


@pytest.fixture
def collect_options(piano_url):
    return {"site_id": SITE, "collection_domain": DOMAIN, "base_url": piano_url}


@pytest.fixture
def segment_options(piano_url):
    return {"site_id": SITE, "api_key": API_KEY, "segments": ["seg-a"], "base_url": piano_url}
