"""Named process locks in the state file, so that one connector never runs twice at once."""

from __future__ import annotations

import os

from .rows import Connected, now


class LockOps(Connected):
    def acquire_lock(self, name: str) -> bool:
        """Take a named lock unless another live process holds it.

        Used so that one connector never runs twice at once, e.g. the daemon and a
        `connectord sync` started by hand. A lock left by a dead process is taken over.
        """
        pid, token = os.getpid(), process_token(os.getpid())
        with self.db.atomic():
            row = self.conn.execute(
                "SELECT pid, owner FROM locks WHERE name = ?", [name]
            ).fetchone()
            if row and row[0] != pid and process_token(row[0]) == row[1]:
                return False
            self.conn.execute(
                "INSERT INTO locks (name, owner, pid, acquired_at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, pid = excluded.pid, "
                "acquired_at = excluded.acquired_at",
                [name, token, pid, now()],
            )
        return True

    def release_lock(self, name: str) -> None:
        with self.db.atomic():
            self.conn.execute("DELETE FROM locks WHERE name = ? AND pid = ?", [name, os.getpid()])

    def lock_holder(self, name: str) -> int | None:
        """The pid of the live process holding the lock, if any."""
        row = self.conn.execute("SELECT pid, owner FROM locks WHERE name = ?", [name]).fetchone()
        if row and process_token(row[0]) == row[1]:
            return int(row[0])
        return None


def process_token(pid: int) -> str | None:
    """Identify a process across pid reuse: pid plus its start time (Linux), else pid.

    ``None`` when no such process exists.
    """
    if os.path.isdir("/proc/self"):
        try:
            with open(f"/proc/{pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
            return f"{pid}:{int(fields[19])}"
        except (OSError, IndexError, ValueError):
            return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return str(pid)
