"""The installed package is found through its entry point (like datasette plugins'
``test_plugin_is_installed``)."""

from __future__ import annotations

import os
import subprocess
import sys

import orjson


def test_plugin_is_installed():
    env = {**os.environ, "CONNECTORD_LOAD_PLUGINS": "myvendor"}
    result = subprocess.run(
        [sys.executable, "-m", "connectord", "plugins", "--json"],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    types = {t["type"]: t for t in orjson.loads(result.stdout) if t["provider"] == "myvendor"}
    assert set(types) == {"myvendor.events", "myvendor.rename_events", "myvendor"}
    assert types["myvendor"]["package"] == "connectord-myvendor"
    assert types["myvendor.events"]["mode"] == "pull"
    api_key = next(o for o in types["myvendor"]["options"] if o["name"] == "api_key")
    assert api_key["secret"] is True
