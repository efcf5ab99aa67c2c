"""The installed package is found through its ``connectord`` entry point."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson


def test_plugin_is_installed():
    env = {**os.environ, "CONNECTORD_LOAD_PLUGINS": "amplitude"}
    result = subprocess.run(
        [sys.executable, "-m", "connectord", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    types = {t["type"]: t for t in orjson.loads(result.stdout) if t["provider"] == "amplitude"}
    assert set(types) == {"amplitude", "amplitude.export"}
    assert types["amplitude"]["package"] == "connectord-amplitude"
    assert types["amplitude.export"]["mode"] == "pull"
    endpoint = next(o for o in types["amplitude"]["options"] if o["name"] == "endpoint")
    assert endpoint["choices"] == ["httpapi", "batch"]
