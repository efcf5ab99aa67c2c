"""Reading and validating ``connectors.toml`` as a whole: `load_config`.

Validation collects every problem before anything runs; `load_config` raises one
`ConfigError` holding them all.
"""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from pathlib import Path
from typing import Any

import orjson
from pydantic import TypeAdapter, ValidationError

from ..registry import Registry
from ..schedule import make_trigger
from .collector import secret_values
from .issues import ConfigError, ConfigIssue, Path_, describe_value, did_you_mean
from .models import (
    CONFIG_ENV,
    CONNECTOR_NAME,
    Config,
    ConnectorConfig,
    ConnectorTable,
    DaemonSettings,
    DeliverySettings,
)
from .plugin_tables import PluginChecks


def load_config(
    path: str | os.PathLike[str],
    registry: Registry,
    *,
    environ: dict[str, str] | None = None,
) -> Config:
    """Read and validate the whole file; raise `ConfigError` with every problem found."""
    path = Path(path).absolute()
    env = dict(os.environ if environ is None else environ)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            path,
            [
                ConfigIssue(
                    (),
                    "config file not found",
                    hint=f"pass -c FILE or set ${CONFIG_ENV}",
                )
            ],
        ) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(path, [ConfigIssue((), f"cannot read config file: {err}")]) from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(path, [_toml_issue(err)]) from None
    return _Validator(path, text, registry, env).run(raw)


def _toml_issue(err: tomllib.TOMLDecodeError) -> ConfigIssue:
    message = str(err)
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    line = int(match.group(1)) if match else getattr(err, "lineno", None)
    message = re.sub(r"\s*\(at line \d+, column \d+\)", "", message)
    return ConfigIssue(
        (),
        f"not valid TOML: {message}",
        line=line,
        hint="strings need quotes; inline tables must stay on one line",
    )


class _Validator(PluginChecks):
    """Walks the parsed file once, collecting issues instead of stopping at the first."""

    def run(self, raw: dict[str, Any]) -> Config:
        for key in raw:
            if key not in ("daemon", "connectors"):
                self.issue(
                    (key,),
                    "unknown top-level table",
                    expected="[daemon] or [connectors.NAME]",
                    found=repr(key),
                    hint=did_you_mean(key, ["daemon", "connectors"]),
                )
        daemon = self.daemon(raw.get("daemon", {}))
        connectors: dict[str, ConnectorConfig] = {}
        tables = raw.get("connectors", {})
        if not isinstance(tables, dict):
            self.issue(
                ("connectors",),
                "must be a table of connectors",
                expected="[connectors.NAME] tables",
                found=describe_value(tables),
            )
            tables = {}
        if not tables:
            self.notes.append("no connectors are configured")
        for name, table in tables.items():
            connector = self.connector(name, table, daemon)
            if connector is not None:
                connectors[name] = connector
        if self.issues:
            raise ConfigError(self.path, self.issues)
        for name, variables in self.unset.items():
            self.notes.append(
                f"{name} (disabled): options checked for shape only until "
                f"{', '.join(sorted(variables))} {'is' if len(variables) == 1 else 'are'} set"
            )
        return Config(self.path, daemon, connectors, frozenset(self.secrets), self.notes)

    def daemon(self, table: Any) -> DaemonSettings:
        if not isinstance(table, dict):
            self.issue(
                ("daemon",), "must be a table", expected="[daemon]", found=describe_value(table)
            )
            return DaemonSettings()
        table, _ = self.interpolate(("daemon",), table, strict=True)
        table = self.read_secret_files(("daemon",), table, DaemonSettings)
        try:
            settings = DaemonSettings.model_validate(table)
        except ValidationError as err:
            self.pydantic_issues(("daemon",), err, DaemonSettings, noun="setting")
            return DaemonSettings()
        self.secrets.update(secret_values(settings))
        self.secrets.update(_url_passwords(settings.state))
        try:
            make_trigger("every 1m", settings.timezone)
        except Exception:
            self.issue(
                ("daemon", "timezone"),
                "unknown time zone",
                expected='an IANA name such as "UTC" or "Europe/Paris"',
                found=repr(settings.timezone),
            )
        return settings

    # --- one connector ---------------------------------------------------------------

    def connector(self, name: str, table: Any, daemon: DaemonSettings) -> ConnectorConfig | None:
        where: Path_ = ("connectors", name)
        if not CONNECTOR_NAME.match(name):
            self.issue(
                where,
                "invalid connector name",
                expected="lowercase letters, digits, '_' or '-' (it becomes a URL path)",
                found=repr(name),
            )
        if not isinstance(table, dict):
            self.issue(
                where,
                "must be a table",
                expected=f"[connectors.{name}]",
                found=describe_value(table),
            )
            return None
        table = dict(table)
        if isinstance(table.get("mapping"), dict):
            table["mapping"] = [table["mapping"]]
        count = len(self.issues)
        shape = self.connector_shape(where, table)
        strict = bool(shape.get("enabled", True))
        source = self.plugin_table(where, "source", shape.get("source"), strict)
        mappings = [
            self.plugin_table((*where, "mapping"), i, m, strict, kind="mapping")
            for i, m in enumerate(shape.get("mapping", []))
        ]
        destination = self.plugin_table(where, "destination", shape.get("destination"), strict)
        source_type = self.source_type(shape.get("source"))
        if source_type is not None:
            self.check_schedule(where, source_type, shape.get("schedule"), daemon)
        if len(self.issues) > count or source is None or destination is None:
            return None
        settings = ConnectorTable.model_construct(**shape)
        fingerprint = hashlib.sha256(
            orjson.dumps(_plain(table), option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
            + orjson.dumps(sorted(self.env.items()))
        ).hexdigest()[:16]
        return ConnectorConfig(
            name=name,
            enabled=settings.enabled,
            source=source,
            mappings=tuple(m for m in mappings if m is not None),
            destination=destination,
            schedule=settings.schedule,
            delivery=settings.delivery,
            description=settings.description,
            fingerprint=fingerprint,
        )

    def connector_shape(self, where: Path_, table: dict[str, Any]) -> dict[str, Any]:
        """Check the connector-level keys one by one, so that a problem in one does not
        hide problems in the others; return the values that passed."""
        fields = ConnectorTable.model_fields
        shape: dict[str, Any] = {}
        for key, value in table.items():
            if key not in fields:
                self.issue(
                    (*where, key),
                    "unknown key",
                    expected=f"one of {', '.join(fields)}",
                    found=repr(key),
                    hint=did_you_mean(key, list(fields)),
                )
            elif key in ("source", "destination"):
                shape[key] = value
            elif key == "mapping":
                if isinstance(value, list):
                    shape[key] = value
                else:
                    self.issue(
                        (*where, key),
                        "must be a list of mapping tables",
                        expected='[{ type = "..." }, ...]',
                        found=describe_value(value),
                    )
            elif key == "delivery":
                try:
                    shape[key] = DeliverySettings.model_validate(value)
                except ValidationError as err:
                    self.pydantic_issues((*where, key), err, DeliverySettings, noun="setting")
            else:
                try:
                    shape[key] = TypeAdapter(fields[key].annotation).validate_python(
                        value, strict=True
                    )
                except ValidationError as err:
                    self.pydantic_issues((*where, key), err, ConnectorTable, noun="key")
        for key in ("source", "destination"):
            if key not in table:
                self.issue(
                    (*where, key),
                    f"every connector needs a {key}",
                    expected=f'{key} = {{ type = "..." }}',
                    found="nothing",
                )
        shape.setdefault("delivery", DeliverySettings())
        return shape


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _url_passwords(url: str) -> set[str]:
    """A password written into a PostgreSQL ``state`` URL, so that logs redact it."""
    from urllib.parse import parse_qs, urlsplit

    if not url.startswith(("postgresql://", "postgres://")):
        return set()
    parts = urlsplit(url)
    found = {parts.password} if parts.password else set()
    return found | set(parse_qs(parts.query).get("password", []))
