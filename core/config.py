"""Read, interpolate and validate ``connectors.toml``.

Validation collects every problem before anything runs, and each problem says where
it is (file, line when it can be found, dotted key), what was expected and what was
found. `load_config` raises one `ConfigError` holding them all.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    TypeAdapter,
    ValidationError,
    field_validator,
)

from .errors import ConnectordError
from .registry import PluginType, Registry
from .schedule import MANUAL, ScheduleError, make_trigger

CONFIG_ENV = "CONNECTORD_CONFIG"
DEFAULT_CONFIG = "connectors.toml"
CONNECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

Path_ = tuple[str | int, ...]


# --- errors ------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in the config file."""

    path: Path_
    message: str
    expected: str | None = None
    found: str | None = None
    hint: str | None = None
    line: int | None = None

    def render(self, filename: str) -> str:
        where = f"{filename}:{self.line}" if self.line else filename
        key = dotted(self.path) or "(file)"
        text = f"{where}: {key}: {self.message}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        if self.found is not None:
            text += f", found {self.found}"
        if self.hint:
            text += f". Hint: {self.hint}"
        return text


class ConfigError(ConnectordError):
    """The configuration is invalid."""

    def __init__(self, path: Path, issues: list[ConfigIssue]) -> None:
        self.path = path
        self.issues = issues
        lines = [issue.render(str(path)) for issue in issues]
        count = f"{len(issues)} error{'s' if len(issues) != 1 else ''}"
        super().__init__(f"{count} in {path}:\n  " + "\n  ".join(lines))


def dotted(path: Path_) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def describe_value(value: Any) -> str:
    """How a found value is shown in an error: its repr (shortened) and TOML type."""
    kind = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
    }.get(type(value), type(value).__name__)
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{text} ({kind})"


# --- configuration model --------------------------------------------------------------


class DaemonSettings(BaseModel):
    """The ``[daemon]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = Field(
        "connectord.db", description="SQLite state file, relative to the config file."
    )
    listen: str = Field(
        "127.0.0.1:8787", description="host:port for push sources, /healthz and /metrics."
    )
    durability: Literal["process", "power"] = Field(
        "process",
        description='"process": survive a crash of the daemon (SQLite synchronous=NORMAL); '
        '"power": also survive power loss (synchronous=FULL, slower).',
    )
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Log level."
    )
    log_format: Literal["auto", "json", "console"] = Field(
        "auto", description='"auto": readable on a terminal, JSON lines otherwise.'
    )
    shutdown_timeout: float = Field(
        10.0, gt=0, le=600, description="Seconds to let in-flight deliveries finish on stop."
    )
    max_body_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest request body any push endpoint reads."
    )
    header_timeout: float = Field(
        10.0,
        gt=0,
        le=600,
        description="Seconds a client has to send a request's headers, counted from when it "
        "connects or from the previous answer on the connection (also how long an idle "
        "keep-alive connection stays open); slower connections are closed.",
    )
    body_timeout: float = Field(
        30.0,
        gt=0,
        le=3600,
        description="Seconds a push endpoint waits for a whole request body; a slower "
        "client is answered 408 and the connection closed. Nothing of it is stored.",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open client connections at most; more are answered 503 and closed at "
        "once (keep it below the process's file-descriptor limit).",
    )
    timezone: str = Field("UTC", description="Time zone for cron schedules.")
    admin_token: SecretStr | None = Field(
        None,
        description="Token the status page (/ui/), `connectord top` and `connectord tap` "
        "require off loopback (listener or client not on 127.0.0.1/::1). Unset: off "
        "loopback they are refused. Or admin_token_file.",
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, _, port = value.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError('expected host:port such as "127.0.0.1:8787"')
        return value


class DeliverySettings(BaseModel):
    """A connector's optional ``delivery`` table: batching, concurrency, retries, bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_size: int = Field(
        500,
        ge=1,
        le=50_000,
        description="Records read from the queue per delivery batch (the destination may split "
        "further to its own limit).",
    )
    concurrency: int = Field(
        2,
        ge=1,
        le=64,
        description="Batches in flight at once. 1 keeps strict order per connector.",
    )
    request_concurrency: Literal["adaptive"] | Annotated[int, Field(ge=1, le=1024)] = Field(
        "adaptive",
        description="Destination requests in flight at once, for destinations that send one "
        'request per record or small batch (Pendo, Pushwoosh): "adaptive" finds the vendor\'s '
        "speed limit (more while answers are fast and 2xx, fewer on 429, 5xx or rising "
        "latency), a number fixes it. Both stay under the plugin's declared maximum.",
    )
    max_queue: int = Field(
        1_000_000,
        ge=1,
        description="Undelivered records kept on disk; beyond it push endpoints answer 503.",
    )
    retry_initial: float = Field(1.0, gt=0, description="First retry delay in seconds.")
    retry_max: float = Field(300.0, gt=0, description="Longest delay between retries, seconds.")
    request_timeout: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds one destination request may take in all before it is abandoned "
        "and retried (a hung or very slow destination).",
    )
    pull_retry_budget: float = Field(
        900.0,
        gt=0,
        description="How long a pull run keeps retrying one batch before the run fails "
        "(the next run resumes from the checkpoint).",
    )
    isolate_after: int = Field(
        5,
        ge=1,
        le=1000,
        description="Retryable failures in a row after which a batch is split to find "
        "the record at fault; a single record is dead-lettered after failing this many "
        "times while the destination accepted other records between its attempts "
        "(docs/guarantees.md). A destination down for everyone is only ever retried.",
    )


class ConnectorTable(BaseModel):
    """The keys a ``[connectors.NAME]`` table may have (plugin tables checked separately)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        True,
        description="false keeps the connector in the file without running it; its "
        "${VAR} placeholders may then stay unset.",
    )
    description: str = Field("", description="What the connector is for, shown by `status`.")
    source: dict[str, Any] = Field(
        description='Where records come from: `{ type = "...", <options> }`.'
    )
    mapping: list[dict[str, Any]] = Field(
        [],
        description='Mappings applied in order, each `{ type = "...", <options> }`; '
        "one table or a list of them.",
    )
    destination: dict[str, Any] = Field(
        description='Where records go: `{ type = "...", <options> }`.'
    )
    schedule: str | None = Field(
        None,
        description='Pull sources only: a cron expression ("0 2 * * *", in the daemon\'s '
        'timezone), "every 15m" or "manual" (only `connectord sync`).',
    )
    delivery: DeliverySettings = Field(
        DeliverySettings(), description="Batching, concurrency, retries and queue bound."
    )


@dataclass(frozen=True)
class PluginSpec:
    """A validated plugin table: its type and options."""

    plugin: PluginType
    options: BaseModel

    @property
    def type(self) -> str:
        return self.plugin.name

    def build(self, context: Any) -> Any:
        return self.plugin.cls(self.options, context)


@dataclass(frozen=True)
class ConnectorConfig:
    """One validated connector."""

    name: str
    enabled: bool
    source: PluginSpec
    mappings: tuple[PluginSpec, ...]
    destination: PluginSpec
    schedule: str | None
    delivery: DeliverySettings
    description: str = ""
    fingerprint: str = ""

    @property
    def is_push(self) -> bool:
        return self.source.plugin.mode == "push"


@dataclass
class Config:
    """A validated ``connectors.toml``."""

    path: Path
    daemon: DaemonSettings
    connectors: dict[str, ConnectorConfig]
    secrets: frozenset[str] = frozenset()
    notes: list[str] = field(default_factory=list)

    @property
    def base_dir(self) -> Path:
        return self.path.parent

    @property
    def state_path(self) -> Path:
        return (self.base_dir / self.daemon.state).resolve()

    def enabled(self) -> list[ConnectorConfig]:
        return [c for c in self.connectors.values() if c.enabled]


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``-c FILE`` if given, else ``$CONNECTORD_CONFIG``, else ``./connectors.toml``."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).absolute()


# --- loading ------------------------------------------------------------------------


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


class _Validator:
    """Walks the parsed file once, collecting issues instead of stopping at the first."""

    def __init__(self, path: Path, text: str, registry: Registry, env: dict[str, str]) -> None:
        self.path = path
        self.lines = text.splitlines()
        self.registry = registry
        self.env = env
        self.issues: list[ConfigIssue] = []
        self.secrets: set[str] = set()
        self.notes: list[str] = []
        self.unset: dict[str, set[str]] = {}
        """Disabled connector → environment variables it uses that are not set."""

    def issue(self, path: Path_, message: str, **kw: Any) -> None:
        self.issues.append(ConfigIssue(path, message, line=locate(self.lines, path), **kw))

    def run(self, raw: dict[str, Any]) -> Config:
        for key in raw:
            if key not in ("daemon", "connectors"):
                self.issue(
                    (key,),
                    "unknown top-level table",
                    expected="[daemon] or [connectors.NAME]",
                    found=repr(key),
                    hint=_did_you_mean(key, ["daemon", "connectors"]),
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
                    hint=_did_you_mean(key, list(fields)),
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
                hint=_did_you_mean(type_name, known)
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
                    hint=_did_you_mean(key, fields),
                )

    # --- values ---------------------------------------------------------------------

    def interpolate(self, where: Path_, value: Any, *, strict: bool) -> tuple[Any, set[str]]:
        """Replace ``${VAR}`` / ``${VAR:-default}``; return the value and unset names."""
        unresolved: set[str] = set()

        def walk(path: Path_, item: Any) -> Any:
            if isinstance(item, str):
                return self.expand(path, item, strict, unresolved)
            if isinstance(item, dict):
                return {k: walk((*path, k), v) for k, v in item.items()}
            if isinstance(item, list):
                return [walk((*path, i), v) for i, v in enumerate(item)]
            return item

        return walk(where, value), unresolved

    def expand(self, path: Path_, text: str, strict: bool, unresolved: set[str]) -> str:
        def replace(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if name in self.env and self.env[name] != "":
                return self.env[name]
            if default is not None:
                return default
            unresolved.add(name)
            if strict:
                self.issue(
                    path,
                    f"environment variable {name} is not set",
                    hint=f"export {name}=..., give a default with ${{{name}:-value}}, "
                    "or set enabled = false on this connector",
                )
            return match.group(0)

        return _VAR.sub(replace, text)

    def read_secret_files(
        self, where: Path_, options: dict[str, Any], model: type[BaseModel]
    ) -> dict[str, Any]:
        """``<name>_file = "path"`` reads option ``<name>`` from a file (systemd credentials)."""
        out = dict(options)
        for key, value in options.items():
            if not key.endswith("_file") or key in model.model_fields:
                continue
            target = key[: -len("_file")]
            if target not in model.model_fields:
                continue
            del out[key]
            if target in options:
                self.issue(
                    (*where, key),
                    f"both {target} and {key} are set",
                    hint=f"keep one: {key} reads {target} from a file",
                )
                continue
            if not isinstance(value, str):
                self.issue(
                    (*where, key),
                    "must be a file path",
                    expected="a string",
                    found=describe_value(value),
                )
                continue
            file = (self.path.parent / value).resolve()
            try:
                out[target] = file.read_text(encoding="utf-8").strip()
            except OSError as err:
                self.issue(
                    (*where, key),
                    f"cannot read secret file {str(file)!r}: {err.strerror or err}",
                    hint="check the path and that the connectord user may read it",
                )
                out[target] = "(unreadable)"  # one error for one mistake: not also 'missing'
        return out

    def pydantic_issues(
        self, where: Path_, err: ValidationError, model: type[BaseModel], noun: str = "option"
    ) -> None:
        fields = list(model.model_fields)
        for error in err.errors(include_url=False):
            loc = tuple(error["loc"])
            path = (*where, *loc)
            kind = error["type"]
            found = describe_value(error["input"]) if "input" in error and loc else None
            if kind == "extra_forbidden":
                self.issue(
                    path,
                    f"unknown {noun}",
                    expected=f"one of {', '.join(fields)}",
                    found=repr(loc[-1]),
                    hint=_did_you_mean(str(loc[-1]), fields),
                )
            elif kind == "missing":
                info = model.model_fields.get(str(loc[0])) if len(loc) == 1 else None
                desc = f" ({info.description})" if info and info.description else ""
                self.issue(path, f"required {noun} is missing{desc}", found="nothing")
            else:
                self.issue(path, _pydantic_message(error), found=_mask(path, found, model))


def secret_values(value: Any) -> set[str]:
    """Every `Secret` value inside validated options: fields, lists, tables, nested models."""
    if isinstance(value, SecretStr):
        secret = value.get_secret_value()
        return {secret} if secret else set()
    if isinstance(value, BaseModel):
        return set().union(*(secret_values(getattr(value, n)) for n in type(value).model_fields))
    if isinstance(value, dict):
        return set().union(*(secret_values(v) for v in value.values()))
    if isinstance(value, (list, tuple, set, frozenset)):
        return set().union(*(secret_values(v) for v in value))
    return set()


def _pydantic_message(error: Any) -> str:
    message = str(error["msg"])
    message = message.replace("Input should be", "expected").replace("Value error, ", "")
    return message[0].lower() + message[1:] if message else message


def _mask(path: Path_, found: str | None, model: type[BaseModel]) -> str | None:
    """Never echo a value given for a secret option."""
    name = next((p for p in path if isinstance(p, str) and p in model.model_fields), None)
    if name is not None:
        from .schema import is_secret

        if is_secret(model.model_fields[name]):
            return "a value (hidden: it is a secret)"
    return found


def _did_you_mean(word: str, choices: list[str]) -> str | None:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}?" if close else None


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


# --- finding lines ------------------------------------------------------------------

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def locate(lines: list[str], path: Path_) -> int | None:
    """Best-effort 1-based line of a dotted key (tomllib reports no positions)."""
    names = [p for p in path if isinstance(p, str)]
    if not names:
        return None
    for prefix_len in range(len(names), 0, -1):
        header = ".".join(_quote_key(n) for n in names[:prefix_len])
        start = _find_header(lines, header)
        if start is None:
            continue
        rest = names[prefix_len:]
        if not rest:
            return start + 1
        found = _find_keys(lines, start + 1, rest)
        return found if found is not None else start + 1
    return _find_keys(lines, 0, names)  # a key before the first table header


def _quote_key(name: str) -> str:
    return name if re.fullmatch(r"[A-Za-z0-9_-]+", name) else f'"{name}"'


def _find_header(lines: list[str], header: str) -> int | None:
    for i, line in enumerate(lines):
        match = _HEADER.match(line)
        if match and re.sub(r"\s+", "", match.group(1)) == header:
            return i
    return None


def _section(lines: list[str], start: int) -> Iterator[tuple[int, str]]:
    for i in range(start, len(lines)):
        if _HEADER.match(lines[i]):
            return
        yield i, lines[i]


def _find_keys(lines: list[str], start: int, keys: list[str]) -> int | None:
    """Line of ``keys[-1]`` inside the value of ``keys[0]`` (inline tables, dotted keys)."""
    first = re.compile(rf"^\s*{re.escape(keys[0])}\s*[=.]")
    last = re.compile(rf"(^|[\s{{,.]){re.escape(keys[-1])}\s*=")
    next_key = re.compile(r"^\s*[A-Za-z0-9_\"-]+\s*=")
    for i, line in _section(lines, start):
        match = first.search(line)
        if match is None:
            continue
        if len(keys) == 1:
            return i + 1
        for j, candidate in _section(lines, i):
            if j > i and next_key.match(candidate):
                break
            if last.search(candidate if j > i else line[match.end() - 1 :]):
                return j + 1
        return i + 1
    return None
