"""The state database: queue, dead letters, checkpoints, runs, plugin state, locks.

One SQLite file in WAL mode, opened through sqlite-utils. `Store` is the synchronous
interface (used by the CLI and by the daemon's database threads); `AsyncStore` runs it
off the event loop on one writer thread and one reader thread, and commits concurrent
enqueues together (group commit), so a burst of push requests costs one fsync.

One module per concern (`queue_ops`, `dead_letters`, `checkpoints`, `runs`,
`counters`, `kv`, `locks`), combined into `Store` in `store`; import from here.
"""

from .async_store import AsyncStore, MemoryKeyValue, state_namespace
from .locks import process_token
from .rows import DeadLetter, Json, QueueRow, RunInfo
from .store import Store

__all__ = [
    "AsyncStore",
    "DeadLetter",
    "Json",
    "MemoryKeyValue",
    "QueueRow",
    "RunInfo",
    "Store",
    "process_token",
    "state_namespace",
]
