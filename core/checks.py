"""``connectord check --online``: ask each plugin to verify its credentials.

Each plugin goes through the same lifecycle as in the daemon: ``start()``, then
``check()``, then ``close()`` (always, once ``start`` was called), so a plugin that opens
its client in ``start`` works unchanged here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from .api import Plugin, PluginContext
from .config import Config, PluginSpec
from .errors import ConnectordError
from .http import new_session
from .state import MemoryKeyValue

CHECK_TIMEOUT = 60.0
"""Seconds each of ``start`` and ``check`` may take before the check fails."""


async def check_online(config: Config, echo: Callable[[str], None]) -> list[str]:
    """Run every enabled connector's plugin checks; echo one line per check that passed
    and return the failures, for the caller to print once each (on stderr)."""
    problems: list[str] = []
    session = new_session(timeout=20)
    try:
        for connector in config.enabled():
            specs = [
                ("source", connector.source),
                *(("mapping", m) for m in connector.mappings),
                ("destination", connector.destination),
            ]
            for role, spec in specs:
                label = f"{connector.name}: {role} {spec.type}"
                outcome = await _check_one(spec, connector.name, config.base_dir, session)
                if outcome is None:
                    continue
                ok, text = outcome
                if ok:
                    echo(f"  ok   {label}: {text}")
                else:
                    problems.append(f"{label}: {text}")
    finally:
        await session.close()
    return problems


async def _check_one(
    spec: PluginSpec, connector: str, base_dir: Path, session: Any
) -> tuple[bool, str] | None:
    context = PluginContext(
        connector=connector,
        log=structlog.get_logger().bind(connector=connector, plugin=spec.type),
        state=MemoryKeyValue(),
        base_dir=base_dir,
        http=lambda: session,
    )
    plugin: Plugin = spec.build(context)
    try:
        await asyncio.wait_for(plugin.start(), timeout=CHECK_TIMEOUT)
    except Exception as err:
        await _close(plugin)
        return False, f"start failed: {_describe(err)}"
    try:
        result = await asyncio.wait_for(plugin.check(), timeout=CHECK_TIMEOUT)
    except Exception as err:
        return False, _describe(err)
    finally:
        await _close(plugin)
    return None if result is None else (True, result)


async def _close(plugin: Plugin) -> None:
    """Close the plugin; a failure here is logged, never hides the check's outcome."""
    try:
        await asyncio.wait_for(plugin.close(), timeout=CHECK_TIMEOUT)
    except Exception as err:
        plugin.log.warning("check.close_failed", error=_describe(err))


def _describe(err: BaseException) -> str:
    """What failed, worded so that a plugin bug does not read like refused credentials."""
    if isinstance(err, TimeoutError):
        return f"no answer within {CHECK_TIMEOUT:g}s"
    if isinstance(err, ConnectordError):
        return str(err) or repr(err)
    if isinstance(err, (aiohttp.ClientError, OSError)):
        return f"network error: {err!r}"
    return f"{type(err).__name__}: {err} (an error in the plugin, not a credential problem)"
