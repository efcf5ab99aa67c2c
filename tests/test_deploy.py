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


# What systemd-analyze still marks as exposed, and why each stays: anything else it
# flags is a regression of the unit's hardening.
ACCEPTED_EXPOSURE = {
    "RootDirectory=/RootImage=": "runs from the host's /opt/connectord virtualenv",
    "PrivateMounts=": "the daemon makes no mounts (no CAP_SYS_ADMIN); kept simple",
    "RestrictAddressFamilies=~AF_UNIX": "sd_notify and journald use AF_UNIX sockets",
    "RestrictAddressFamilies=~AF_(INET|INET6)": "it is a network daemon",
    "PrivateNetwork=": "it talks to vendor APIs",
    "DeviceAllow=": "systemd's default ACL under PrivateDevices",
    "IPAddressDeny=": "vendor API addresses are not known in advance",
    "UMask=": "0027 so that operators' group can read outputs; state files are 0600",
}


def test_systemd_analyze_flags_nothing_unexpected():
    tool = shutil.which("systemd-analyze")
    if tool is None:  # no systemd here: the static checks above are what can be verified
        assert settings()["UMask"] == ["0027"]
        return
    result = subprocess.run(
        [tool, "security", "--offline=true", str(UNIT)], capture_output=True, text=True, timeout=60
    )
    flagged = {
        line.split()[1] for line in result.stdout.splitlines() if line.lstrip().startswith("✗")
    }
    assert flagged, result.stdout + result.stderr
    assert flagged <= set(ACCEPTED_EXPOSURE), f"newly exposed: {flagged - set(ACCEPTED_EXPOSURE)}"


def test_unit_never_binds_beyond_loopback_or_runs_as_root():
    found = settings()
    text = UNIT.read_text()
    assert "0.0.0.0" not in text and "[::]" not in text
    assert found.get("User", ["root"]) != ["root"]
    assert found["UMask"] == ["0027"]
    assert found["StateDirectoryMode"] == ["0700"]
