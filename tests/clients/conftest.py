"""Fixtures for the vendors' official client libraries.

The JavaScript clients are pinned in ``package.json``/``package-lock.json`` beside this
file and installed with ``npm ci`` the first time a test needs them (again whenever the
lock file changes). Browser libraries run in the system's Chromium (Debian's
``chromium`` package), driven headless by Playwright with ``executable_path``: no
browser is ever downloaded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CLIENTS = Path(__file__).parent
LOCK = CLIENTS / "package-lock.json"
STAMP = CLIENTS / "node_modules" / ".lock-sha256"


def _lock_digest() -> str:
    return hashlib.sha256(LOCK.read_bytes()).hexdigest()


@pytest.fixture(scope="session")
def node_modules() -> Path:
    """``node_modules`` with the pinned official clients, installed on first use."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is required for the official-client tests (.ci/run installs nodejs)")
    if not STAMP.exists() or STAMP.read_text() != _lock_digest():
        subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=CLIENTS,
            check=True,
            capture_output=True,
        )
        STAMP.write_text(_lock_digest())
    return CLIENTS / "node_modules"


@pytest.fixture(scope="session")
def node(node_modules: Path) -> str:
    """The ``node`` executable, with the pinned clients installed."""
    return shutil.which("node") or pytest.fail("node is required for the official-client tests")


def chromium_path() -> str:
    for name in (os.environ.get("CONNECTORD_CHROMIUM", ""), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    pytest.fail("Debian's chromium package is required for the browser tests (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    """A headless Chromium (the system's binary) driven by Playwright's sync API.

    Module-scoped on purpose: while the sync API is open it leaves its event loop marked
    running in this thread, so asyncio tests cannot run beside it. Keep browser tests in
    modules of their own (sync tests), and the browser closes when the module ends.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=["--no-sandbox"]
        )
        try:
            yield chromium
        finally:
            chromium.close()
