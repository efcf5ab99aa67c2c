"""Shared fixtures. The connectord pytest plugin (connectord.testing.pytest_plugin)
provides ``connectord_daemon`` and ``emulator_server``."""

from __future__ import annotations

import inspect
import os
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import ClientResponse

# Installed third-party plugins must not leak into the suite: only built-ins load,
# unless a test asks for a plugin explicitly.
os.environ.setdefault("CONNECTORD_LOAD_PLUGINS", "")


@pytest.fixture
def registry():
    from connectord.registry import load_registry

    return load_registry()


def pytest_report_header(config):
    import sqlite3
    from importlib.metadata import version

    return [f"SQLite {sqlite3.sqlite_version}, sqlite-utils {version('sqlite-utils')}"]


class _MockedResponse(ClientResponse):
    """aioresponses 0.7.9 builds responses without the ``stream_writer`` that aiohttp
    3.14 requires; give it a stand-in that reports nothing written."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("stream_writer", SimpleNamespace(output_size=0))
        super().__init__(*args, **kwargs)


@pytest.fixture(autouse=True)
def _aioresponses_on_new_aiohttp(monkeypatch):
    if "stream_writer" not in inspect.signature(ClientResponse.__init__).parameters:
        return
    from aioresponses.core import RequestMatch

    build = RequestMatch._build_response

    def build_response(self, *args, response_class=None, **kwargs):
        return build(self, *args, response_class=response_class or _MockedResponse, **kwargs)

    monkeypatch.setattr(RequestMatch, "_build_response", build_response)


# --- a fresh virtualenv for installed-from-outside plugins (slow tests) -----------------

REPO = Path(__file__).resolve().parent.parent


class PluginVenv:
    """A new virtualenv where connectord and plugins are pip-installed from local paths.

    Packages are built and installed for real (``pip install --no-deps``); their
    dependencies are shared with the running environment through a ``.pth`` file, so
    nothing is downloaded again.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.python = root / "bin" / "python"
        self.sources = REPO

    def create(self) -> PluginVenv:
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(self.root)], check=True)
        purelib = self.run_python("import sysconfig; print(sysconfig.get_paths()['purelib'])")
        shared = [p for p in sys.path if p.endswith(("site-packages", "dist-packages"))]
        # Plain paths: the running environment's .pth files (its editable connectord)
        # are not processed, so `import connectord` finds only what is installed here.
        (Path(purelib) / "_shared_dependencies.pth").write_text("\n".join(shared) + "\n")
        return self

    def run_python(self, code: str) -> str:
        return subprocess.run(
            [str(self.python), "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()

    def pip_install(self, *paths: Path) -> None:
        command = [sys.executable, "-m", "pip", "--python", str(self.python), "install"]
        result = subprocess.run(
            [*command, "--no-deps", "--quiet", *map(str, paths)],
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr

    def run(
        self,
        *args: str,
        env: dict[str, str | None] | None = None,
        cwd: Path | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``python <args>`` in the venv; ``env`` values of ``None`` unset a variable."""
        merged: dict[str, str | None] = {**os.environ, **(env or {})}
        return subprocess.run(
            [str(self.python), *args],
            capture_output=True,
            text=True,
            env={k: v for k, v in merged.items() if v is not None},
            cwd=cwd,
            timeout=timeout,
        )


# --- PostgreSQL (the state backend tests and the cluster suite) -----------------------


@pytest.fixture(scope="session")
def pg_admin_url():
    """The local server on 127.0.0.1:5432 if it answers, else a throwaway one."""
    from tests.backends.pgserver import LOCAL_ADMIN, ensure_server

    with ensure_server(LOCAL_ADMIN) as url:
        yield url


@pytest.fixture
def pg_url(pg_admin_url):
    """A fresh database on that server, dropped after the test."""
    from tests.backends.pgserver import database

    with database(pg_admin_url) as url:
        yield url


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


_NOT_SOURCE = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.db*"
)


@pytest.fixture(scope="session")
def plugin_venv(tmp_path_factory) -> PluginVenv:
    """connectord and examples/connectord-amplitude, installed from their directories.

    Both are copied first: building a package writes ``build/`` and ``*.egg-info`` into
    its directory, which must not happen in this checkout. ``plugin_venv.sources`` is
    the copy (the example's tests run from there).
    """
    root = tmp_path_factory.mktemp("plugin-venv")
    sources = root / "src"
    shutil.copytree(REPO, sources / "connectord", ignore=_NOT_SOURCE)
    venv = PluginVenv(root / "venv").create()
    venv.sources = sources / "connectord"
    venv.pip_install(venv.sources, venv.sources / "examples" / "connectord-amplitude")
    return venv
