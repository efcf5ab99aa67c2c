"""Helpers for testing connectord plugins, shipped with connectord.

- `EmulatorServer` runs a vendor emulator (any aiohttp app) on 127.0.0.1 in a thread,
  so blocking clients (official SDKs) and async code can both talk to it.
- `VendorEmulator` is a base for emulators: it records requests, checks credentials
  (`require_bearer`, `require_basic`, `require_header`, `require_query`) and injects
  faults (429 with ``Retry-After``, 5xx, timeouts, hung or dropped connections).
- `paginate` / `Page` serve a list page by page (cursor, offset or page number).
- `run_source` / `deliver` / `map_records` exercise one plugin class without a daemon;
  `push_source` serves a push source's routes over real HTTP and collects what it
  committed.
- `DaemonProcess` starts the real ``connectord run`` on a free port with a config.
- `wait_for` polls a condition in async tests; `track`, `identify`, … build valid
  records and `assert_valid_records` checks a source's output against the record model.
- `ThrowawayPlugin`, `plugin_manager` and `validate_config` test registration and
  option validation the way ``connectord check`` reports it; `validate_config` raises
  `ConfigError`, whose ``issues`` say where, what was expected and what was found.

The pytest plugin in `connectord.testing.pytest_plugin` wraps these in fixtures:
``connectord_daemon``, ``emulator_server`` and ``register_plugin``.
"""

from ..config import ConfigError
from .daemon import DaemonProcess, free_port, write_config
from .emulator import EmulatorServer, Fault, RecordedRequest, VendorEmulator, json_response
from .harness import SourceRun, deliver, make_context, map_records, run_source
from .paging import Page, decode_cursor, encode_cursor, paginate
from .plugins import PluginRegistrar, ThrowawayPlugin, plugin_manager, validate_config
from .push import PushHarness, push_source
from .records import assert_valid_records, audience, identify, metric, page, track
from .waiting import wait_for

__all__ = [
    "ConfigError",
    "DaemonProcess",
    "EmulatorServer",
    "Fault",
    "Page",
    "PluginRegistrar",
    "PushHarness",
    "RecordedRequest",
    "SourceRun",
    "ThrowawayPlugin",
    "VendorEmulator",
    "assert_valid_records",
    "audience",
    "decode_cursor",
    "deliver",
    "encode_cursor",
    "free_port",
    "identify",
    "json_response",
    "make_context",
    "map_records",
    "metric",
    "page",
    "paginate",
    "plugin_manager",
    "push_source",
    "run_source",
    "track",
    "validate_config",
    "wait_for",
    "write_config",
]
