"""Checking a plugin table (source, mapping or destination) and a connector's schedule.

A plugin table names its type; the registered plugin's options model validates the rest.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from ..registry import PluginType
from ..schedule import MANUAL, ScheduleError, make_trigger
from .collector import secret_values
from .interpolation import Interpolation
from .issues import Path_, describe_value, did_you_mean
from .models import DaemonSettings, PluginSpec


class PluginChecks(Interpolation):
    """Validates plugin tables against the registry and their options models."""

    def plugin_table(
        self, where: Path_, key: str | int, table: Any, strict: bool, kind: str | None = None
    ) -> PluginSpec | None:
        kind = kind or str(key)
        path = (*where, key)
        if table is None:
            return None
        if not isinstance(table, dict):
            self.issue(
                path,
                f"a {kind} must be a table",
                expected='{ type = "...", ... }',
                found=describe_value(table),
            )
            return None
        return self.plugin_spec(path, kind, table, strict)

    def source_type(self, table: Any) -> PluginType | None:
        name = table.get("type") if isinstance(table, dict) else None
        return self.registry.get("source", name) if isinstance(name, str) else None

    def check_schedule(
        self, where: Path_, source: PluginType, schedule: str | None, daemon: DaemonSettings
    ) -> None:
        if source.mode == "push":
            if schedule is not None:
                self.issue(
                    (*where, "schedule"),
                    "push sources deliver continuously",
                    expected="no schedule",
                    found=repr(schedule),
                    hint="remove `schedule` from this connector",
                )
            return
        if schedule is None:
            self.issue(
                (*where, "schedule"),
                f"pull source {source.name!r} needs a schedule",
                expected='a cron expression ("0 2 * * *"), "every 15m" or "manual"',
                found="nothing",
            )
            return
        try:
            make_trigger(schedule, daemon.timezone)
        except ScheduleError as err:
            self.issue(
                (*where, "schedule"),
                str(err),
                hint=f'or "{MANUAL}" to run only with `connectord sync`',
            )

    def plugin_spec(
        self, where: Path_, kind: str, table: dict[str, Any], strict: bool
    ) -> PluginSpec | None:
        type_name = table.get("type")
        known = sorted(self.registry.types[kind])
        if not isinstance(type_name, str):
            self.issue(
                (*where, "type"),
                f"every {kind} needs a type",
                expected=f"one of {', '.join(known)}",
                found="nothing" if type_name is None else describe_value(type_name),
            )
            return None
        plugin = self.registry.get(kind, type_name)
        if plugin is None:
            self.issue(
                (*where, "type"),
                f"unknown {kind} type",
                expected=f"one of {', '.join(known)}",
                found=repr(type_name),
                hint=did_you_mean(type_name, known)
                or "is the plugin that provides it installed? see `connectord plugins`",
            )
            return None
        model = plugin.options_model
        options = {k: v for k, v in table.items() if k != "type"}
        options, unresolved = self.interpolate(where, options, strict=strict)
        options = self.read_secret_files(where, options, model)
        if unresolved and not strict:
            self.check_unknown_keys(where, options, model)
            self.unset.setdefault(str(where[1]), set()).update(unresolved)
            return PluginSpec(plugin, model.model_construct(**options))
        try:
            validated = model.model_validate(options)
        except ValidationError as err:
            self.pydantic_issues(where, err, model)
            return None
        self.secrets.update(secret_values(validated))
        return PluginSpec(plugin, validated)

    def check_unknown_keys(
        self, where: Path_, options: dict[str, Any], model: type[BaseModel]
    ) -> None:
        fields = [field.alias or name for name, field in model.model_fields.items()]
        for key in options:
            if key not in fields:
                self.issue(
                    (*where, key),
                    "unknown option",
                    expected=f"one of {', '.join(fields)}",
                    found=repr(key),
                    hint=did_you_mean(key, fields),
                )
