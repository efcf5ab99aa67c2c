"""``connectord check --online``: ask each plugin to verify its credentials."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from .api import PluginContext
from .config import Config, PluginSpec
from .http import new_session
from .state import MemoryKeyValue


async def check_online(config: Config, echo: Callable[[str], None]) -> list[str]:
    """Run every enabled connector's plugin checks; return the failures."""
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
                echo(f"  {'ok  ' if ok else 'FAIL'} {label}: {text}")
                if not ok:
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
    plugin = spec.build(context)
    try:
        result = await asyncio.wait_for(plugin.check(), timeout=60)
    except Exception as err:
        return False, str(err) or repr(err)
    return None if result is None else (True, result)
