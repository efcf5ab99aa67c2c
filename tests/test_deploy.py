"""The systemd unit: hardened, notify-type, and rated well by systemd-analyze."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

UNIT = Path(__file__).parent.parent / "deploy" / "connectord.service"
REQUIRED = {
    "Type": "notify",
    "User": "connectord",
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "CapabilityBoundingSet": "",
    "RestrictSUIDSGID": "yes",
    "StateDirectory": "connectord",
}


def settings() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for line in UNIT.read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def test_unit_has_the_hardening_and_lifecycle_settings():
    found = settings()
    for key, value in REQUIRED.items():
        assert value in found.get(key, []), f"{key}={value} missing"
    assert found["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
    assert any(v.startswith("segment-write-key:") for v in found["LoadCredential"])


def test_systemd_analyze_rates_the_unit_ok():
    tool = shutil.which("systemd-analyze")
    if tool is None:  # no systemd here: the static check above is what can be verified
        assert settings()["SystemCallFilter"]
        return
    result = subprocess.run(
        [tool, "security", "--offline=true", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Overall exposure level for connectord\.service: ([\d.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    score = float(match.group(1))
    print(f"systemd-analyze security exposure: {score}")
    assert score <= 2.0, f"exposure {score} is worse than 2.0"
