"""Read, interpolate and validate ``connectors.toml``.

Validation collects every problem before anything runs, and each problem says where
it is (file, line when it can be found, dotted key), what was expected and what was
found. `load_config` raises one `ConfigError` holding them all.

The package is split by concern (`models`, `validation`, `interpolation`, `locations`,
`issues`); every public name is importable from ``connectord.config`` itself.
"""

from .collector import secret_values
from .issues import ConfigError, ConfigIssue, Path_, describe_value, dotted
from .locations import locate
from .models import (
    CONFIG_ENV,
    CONNECTOR_NAME,
    DEFAULT_CONFIG,
    Config,
    ConnectorConfig,
    ConnectorTable,
    DaemonSettings,
    DeliverySettings,
    PluginSpec,
    config_path,
)
from .validation import load_config

__all__ = [
    "CONFIG_ENV",
    "CONNECTOR_NAME",
    "DEFAULT_CONFIG",
    "Config",
    "ConfigError",
    "ConfigIssue",
    "ConnectorConfig",
    "ConnectorTable",
    "DaemonSettings",
    "DeliverySettings",
    "Path_",
    "PluginSpec",
    "config_path",
    "describe_value",
    "dotted",
    "load_config",
    "locate",
    "secret_values",
]
