"""One ``connectord sync`` killed -9 mid-run and run again, with a watcher that reads
every output the moment it appears under its final name.

Shared by the local-directory and bucket tests of the ``files`` destination: both
promise that no reader ever sees a partial file, and that a run killed at any moment
loses nothing when run again; only how outputs are listed and read differs.
"""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

from tests.plugins.clevertap.common import sync, sync_command

Key = TypeVar("Key", bound=Hashable)


@dataclass
class Interrupted(Generic[Key]):
    """What the watcher saw: each output, whole or not when first read."""

    seen: dict[Key, bool] = field(default_factory=dict)
    seen_before_kill: int = 0


def sync_killed_and_rerun(
    config: Path,
    connector: str,
    *,
    outputs: Callable[[], Iterable[Key]],
    whole: Callable[[Key], bool],
    kill_after: int = 3,
    timeout: float = 120,
) -> Interrupted[Key]:
    """Run the sync, kill it once ``kill_after`` outputs were seen (or after
    ``timeout``), run it again to completion, and return what the watcher read.

    :param outputs: lists the outputs under their final names (files, object keys).
    :param whole: reads one output as a loader would; an exception counts as partial.
    """
    found: Interrupted[Key] = Interrupted()
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for key in outputs():
                if key not in found.seen:
                    try:
                        found.seen[key] = whole(key)
                    except Exception:
                        found.seen[key] = False

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    process = subprocess.Popen(sync_command(config, connector), cwd=config.parent)
    try:
        deadline = time.monotonic() + timeout
        while len(found.seen) < kill_after and time.monotonic() < deadline:
            if process.poll() is not None:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        found.seen_before_kill = len(found.seen)
        result = sync(config, connector)
        assert result.returncode == 0, result.stderr[-3000:]
    finally:
        stop.set()
        watcher.join(30)
        if process.poll() is None:
            process.kill()
    return found
