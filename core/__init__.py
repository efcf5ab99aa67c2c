"""connectord: move customer data between engagement and analytics platforms.

What a plugin needs is importable from here::

    from connectord import hookimpl, PullSource, Destination, Mapping, Options, Secret
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("connectord")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

from .api import (
    Batch,
    DeliveryResult,
    Destination,
    KeyValueStore,
    Mapping,
    Options,
    PluginContext,
    PullSource,
    PushSource,
    Record,
    Route,
    Secret,
    Source,
    as_record_list,
)
from .errors import (
    AuthError,
    ConnectordError,
    IngestError,
    PermanentError,
    QueueFull,
    RecordRejected,
    RetryableError,
)
from .hookspecs import hookimpl

__all__ = [
    "AuthError",
    "Batch",
    "ConnectordError",
    "DeliveryResult",
    "Destination",
    "IngestError",
    "KeyValueStore",
    "Mapping",
    "Options",
    "PermanentError",
    "PluginContext",
    "PullSource",
    "PushSource",
    "QueueFull",
    "Record",
    "RecordRejected",
    "RetryableError",
    "Route",
    "Secret",
    "Source",
    "__version__",
    "as_record_list",
    "hookimpl",
]
