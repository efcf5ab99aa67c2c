"""Start the real ``connectord run`` process for end-to-end tests."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_config(
    directory: Path, connectors: str, *, port: int | None = None, daemon: str = ""
) -> Path:
    """Write ``connectors.toml`` with a ``[daemon]`` table on ``port`` and the given
    ``[connectors.*]`` TOML text; return its path."""
    port = port or free_port()
    path = directory / "connectors.toml"
    path.write_text(
        f'[daemon]\nstate = "state.db"\nlisten = "127.0.0.1:{port}"\n'
        f'log_format = "json"\nlog_level = "debug"\nshutdown_timeout = 5\n{daemon}\n\n'
        f"{connectors}\n",
        encoding="utf-8",
    )
    return path


def _connectors_up(health: bytes) -> bool:
    try:
        connectors = orjson.loads(health).get("connectors", {})
    except orjson.JSONDecodeError:
        return False
    return all(c.get("running") or c.get("start_failed") for c in connectors.values())


class DaemonProcess:
    """The real daemon in a subprocess, with its config file and log.

    >>> with DaemonProcess(config_path) as daemon:
    ...     daemon.post("/ingest/demo/", {...}, headers={...})
    """

    def __init__(
        self,
        config: Path,
        *,
        env: dict[str, str] | None = None,
        ready_timeout: float = 20.0,
        python: str | os.PathLike[str] | None = None,
    ) -> None:
        """
        :param env: added to (or, with a ``None`` value, removed from) this process's
            environment for the daemon.
        :param python: the interpreter to run ``-m connectord`` with, e.g. the one of a
            virtualenv where the plugin under test is installed; default: this one.
        """
        self.config = Path(config)
        self.python = str(python or sys.executable)
        merged: dict[str, str | None] = {**os.environ, **(env or {})}
        self.env = {k: v for k, v in merged.items() if v is not None}
        self.env.setdefault("PYTHONUNBUFFERED", "1")
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log_start = 0
        self.log_path = self.config.parent / "daemon.log"
        self.listen = self._listen()

    def _listen(self) -> str:
        import tomllib

        settings = tomllib.loads(self.config.read_text()).get("daemon", {})
        return str(settings.get("listen", "127.0.0.1:8787"))

    @property
    def url(self) -> str:
        """Where to reach the daemon; a wildcard listener is reached on loopback."""
        host, _, port = self.listen.rpartition(":")
        loopback = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "[::]": "[::1]"}  # noqa: S104
        return f"http://{loopback.get(host, host)}:{port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self, *, wait: bool = True) -> DaemonProcess:
        # Readiness is judged on this process's part of the log: after a restart, the
        # previous process's "daemon.ready" must not count.
        self._log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        log = open(self.log_path, "ab")  # noqa: SIM115 - owned by the child process
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [self.python, "-m", "connectord", "run", "-c", str(self.config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            cwd=self.config.parent,
        )
        log.close()
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self) -> None:
        """Wait for ``daemon.ready`` and for every connector to be running (or to have
        failed to start): connectors start in the background after the daemon is ready,
        and a push endpoint answers 404 until its connector runs."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.process.returncode}:\n{self.logs()}")
            try:
                status, body = self.get("/healthz")
                # 503 too: a connector that cannot start makes the daemon unhealthy.
                up = status in (200, 503) and _connectors_up(body)
                if up and b'"daemon.ready"' in self._own_log():
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"daemon not ready after {self.ready_timeout}s:\n{self.logs()}")

    def _own_log(self) -> bytes:
        """The log written since the last `start` (the file is shared across restarts)."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(self._log_start)
                return log.read()
        except FileNotFoundError:
            return b""

    def logs(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_events(self) -> list[dict[str, Any]]:
        events = []
        for line in self.logs().splitlines():
            try:
                events.append(orjson.loads(line))
            except orjson.JSONDecodeError:
                continue
        return events

    # --- HTTP ----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        timeout: float = 30,
    ) -> tuple[int, bytes]:
        request = urllib.request.Request(  # noqa: S310 - http://127.0.0.1 only
            self.url + path, data=body, method=method, headers=headers or {}
        )
        try:
            with urllib.request.urlopen(  # noqa: S310 - http://127.0.0.1 only
                request, timeout=timeout
            ) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def get(self, path: str) -> tuple[int, bytes]:
        return self.request("GET", path)

    def post(
        self, path: str, payload: Any, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """POST JSON; return the status and the decoded JSON answer (or raw bytes)."""
        data = payload if isinstance(payload, bytes) else orjson.dumps(payload)
        status, body = self.request(
            "POST", path, data, {"Content-Type": "application/json", **(headers or {})}
        )
        try:
            return status, orjson.loads(body)
        except orjson.JSONDecodeError:
            return status, body

    def health(self) -> dict[str, Any]:
        _, body = self.get("/healthz")
        return orjson.loads(body)

    def metric(self, name: str, **labels: str) -> float | None:
        """A value from ``GET /metrics``, e.g. ``metric("connectord_records_out",
        connector="demo")`` (a counter's ``_total`` suffix may be left out); ``None`` when
        the series does not exist (yet)."""
        _, body = self.get("/metrics")
        for line in body.decode().splitlines():
            if line.startswith("#") or not line.strip():
                continue
            series, _, value = line.rpartition(" ")
            metric_name, _, label_text = series.partition("{")
            if metric_name not in (name, f"{name}_total"):  # counters end in _total
                continue
            found = dict(_LABEL.findall(label_text))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(value)
        return None

    def cli(
        self, *args: str, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run ``connectord <args>`` with the daemon's interpreter, environment and
        directory, e.g. ``daemon.cli("status", "--json", "-c", str(daemon.config))``."""
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [self.python, "-m", "connectord", *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.config.parent,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"connectord {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result

    # --- life -------------------------------------------------------------------------------

    def signal(self, sig: signal.Signals) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait; the exit code."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def restart(self) -> DaemonProcess:
        self.kill()
        return self.start()

    def wait_for(
        self,
        predicate: Callable[[], Any],
        timeout: float = 30,
        interval: float = 0.05,
        message: str = "condition",
    ) -> Any:
        """Poll until ``predicate()`` is truthy; return its value or raise with the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(interval)
        raise TimeoutError(
            f"{message} not met within {timeout}s\n--- daemon log ---\n{self.logs()[-5000:]}"
        )

    def __enter__(self) -> DaemonProcess:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.stop()
        except Exception:
            self.kill()
