"""The validated configuration: daemon settings, connectors and their plugin tables.

The pydantic models also feed the generated configuration reference (`docgen`), so their
field descriptions are user documentation.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from ..registry import PluginType

CONFIG_ENV = "CONNECTORD_CONFIG"
DEFAULT_CONFIG = "connectors.toml"
CONNECTOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


class DaemonSettings(BaseModel):
    """The ``[daemon]`` table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: str = Field(
        "connectord.db",
        description="Where the daemon keeps its queue, checkpoints and runs: an SQLite file "
        "(a path relative to the config file, or sqlite:///path), or a PostgreSQL URL "
        "(postgresql://user@host:5432/db) shared by several daemons (docs/scale-out.md). "
        "Put no password in the URL: use state_password_file, PGPASSWORD or ~/.pgpass.",
    )
    state_password_file: str | None = Field(
        None,
        description="File holding the PostgreSQL password of `state` (a systemd credential, "
        "for example); relative to the config file.",
    )
    node: str | None = Field(
        None,
        description="This daemon's name among the daemons sharing `state`; unique per "
        "process. Default: hostname:pid.",
    )
    lease_ttl: float = Field(
        10.0,
        ge=1.0,
        le=300.0,
        description='Seconds (or "10s") a connector\'s owner may stay silent before another '
        "daemon sharing `state` takes the connector over. Renewed every third of it.",
    )
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes of this daemon on this machine, sharing `listen` "
        "(SO_REUSEPORT) and `state`, so that push ingest uses every core.",
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

    @field_validator("state")
    @classmethod
    def _state(cls, value: str) -> str:
        from ..backends.factory import check_state_value

        return check_state_value(value)

    @field_validator("lease_ttl", mode="before")
    @classmethod
    def _lease_ttl(cls, value: Any) -> Any:
        if isinstance(value, str) and re.fullmatch(r"\s*\d+(\.\d+)?\s*s\s*", value):
            return float(value.strip()[:-1])
        return value

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
        "latency) and also paces requests per second at a rate learned from its 429s; a "
        "number fixes it, unpaced. Both stay under the plugin's declared maximum.",
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
        """The SQLite state file (meaningless when `shared_state` is True)."""
        from ..backends.factory import sqlite_path

        return (self.base_dir / sqlite_path(self.daemon.state)).resolve()

    @property
    def shared_state(self) -> bool:
        """True when ``[daemon] state`` is a PostgreSQL URL."""
        from ..backends.factory import is_postgres

        return is_postgres(self.daemon.state)

    @property
    def state_shown(self) -> str:
        """The state's location for logs and messages, any password hidden."""
        from ..backends.factory import shown

        return shown(self.daemon.state) if self.shared_state else str(self.state_path)

    def state_backend(self) -> Any:
        """The daemon's `StateBackend` (not opened yet)."""
        from ..backends.factory import backend_from_url

        if not self.shared_state:
            return backend_from_url(self.state_path, durability=self.daemon.durability)
        password_file = self.daemon.state_password_file
        return backend_from_url(
            self.daemon.state,
            password_file=self.base_dir / password_file if password_file else None,
        )

    def enabled(self) -> list[ConnectorConfig]:
        return [c for c in self.connectors.values() if c.enabled]


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """``-c FILE`` if given, else ``$CONNECTORD_CONFIG``, else ``./connectors.toml``."""
    return Path(explicit or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).absolute()
