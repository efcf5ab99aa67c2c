"""Helpers for testing connectord plugins, shipped with connectord.

- `EmulatorServer` runs a vendor emulator (any aiohttp app) on 127.0.0.1 in a thread,
  so blocking clients (official SDKs) and async code can both talk to it.
- `VendorEmulator` is a base for emulators: it records requests and injects faults
  (429 with ``Retry-After``, 5xx, timeouts, hung connections).
- `run_source` / `deliver` / `map_records` exercise one plugin class without a daemon.
- `DaemonProcess` starts the real ``connectord run`` on a free port with a config.

The pytest plugin in `connectord.testing.pytest_plugin` wraps these in fixtures.
"""

from .daemon import DaemonProcess, free_port, write_config
from .emulator import EmulatorServer, Fault, RecordedRequest, VendorEmulator
from .harness import deliver, make_context, map_records, run_source

__all__ = [
    "DaemonProcess",
    "EmulatorServer",
    "Fault",
    "RecordedRequest",
    "VendorEmulator",
    "deliver",
    "free_port",
    "make_context",
    "map_records",
    "run_source",
    "write_config",
]
