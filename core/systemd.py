"""systemd service notifications (``Type=notify``) and the watchdog.

The protocol is one datagram to ``$NOTIFY_SOCKET``; this is the whole of it, so no
dependency is needed. Outside systemd every call is a no-op.
"""

from __future__ import annotations

import os
import socket
import time


def notify(*states: str) -> bool:
    """Send ``READY=1``, ``STOPPING=1``, ``STATUS=...`` etc.; return whether it was sent."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address or not states:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    message = "\n".join(states).encode()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall(message)
    except OSError:
        return False
    return True


def reloading() -> bool:
    """Tell systemd a reload started (``Type=notify-reload`` needs the timestamp)."""
    return notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")


def watchdog_interval() -> float | None:
    """Seconds between ``WATCHDOG=1`` pings when the unit sets ``WatchdogSec=``."""
    usec = os.environ.get("WATCHDOG_USEC")
    pid = os.environ.get("WATCHDOG_PID")
    if not usec or (pid and pid != str(os.getpid())):
        return None
    try:
        return int(usec) / 1_000_000 / 2
    except ValueError:
        return None
