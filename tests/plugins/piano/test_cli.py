"""``connectord check`` explains Piano configuration and credential problems."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from .conftest import API_KEY, DOMAIN, SITE

ROOT = Path(__file__).resolve().parents[3]


def check(tmp_path, connectors: str, *args: str) -> subprocess.CompletedProcess:
    path = tmp_path / "connectors.toml"
    path.write_text(f'[daemon]\nstate = "state.db"\n\n{connectors}\n', encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "connectord", "check", "-c", str(path), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def segments(api_key: str, base_url: str = "https://api.atinternet.io") -> str:
    return f"""
[connectors.piano_segments]
schedule = "every 1h"
source = {{ type = "piano.segment", site_id = {SITE}, api_key = "{api_key}", \
segments = ["seg-a"], base_url = "{base_url}" }}
destination = {{ type = "warehouse", url = "sqlite:///w.db" }}
"""


def collect(domain: str, base_url: str | None = None) -> str:
    extra = f', base_url = "{base_url}"' if base_url else ""
    return f"""
[connectors.to_piano]
source = {{ type = "http.webhook", token = "t0ken" }}
destination = {{ type = "piano.collect", site_id = {SITE}, collection_domain = "{domain}"{extra} }}
"""


def test_collection_domain_with_scheme_is_explained(tmp_path):
    done = check(tmp_path, collect("https://abcdefg.pa-cd.com"))
    assert done.returncode == 1
    assert (
        "connectors.to_piano.destination.collection_domain: collection_domain is a host "
        "name, not a URL: write 'abcdefg.pa-cd.com' without https://"
    ) in done.stderr
    assert "found 'https://abcdefg.pa-cd.com' (string)" in done.stderr


def test_collection_domain_with_path_is_explained(tmp_path):
    done = check(tmp_path, collect("abcdefg.pa-cd.com/event"))
    assert done.returncode == 1
    assert "collection_domain must not carry a path: write 'abcdefg.pa-cd.com'" in done.stderr


def test_malformed_api_key_is_explained_without_showing_it(tmp_path):
    done = check(tmp_path, segments("justonepart"))
    assert done.returncode == 1
    assert "connectors.piano_segments.source.api_key: api_key must be " in done.stderr
    assert "'<access key>_<secret key>'" in done.stderr
    assert "found a value (hidden: it is a secret)" in done.stderr
    assert "justonepart" not in done.stdout + done.stderr


def test_both_problems_are_reported_at_once(tmp_path):
    done = check(tmp_path, segments("justonepart") + collect("https://x.pa-cd.com/event"))
    assert done.returncode == 1
    assert "2 errors" in done.stderr
    assert "api_key must be" in done.stderr and "collection_domain is a host name" in done.stderr


def test_a_valid_configuration_passes(tmp_path):
    done = check(tmp_path, segments(API_KEY) + collect(DOMAIN))
    assert done.returncode == 0, done.stderr
    assert "valid — 2 connectors, 2 enabled" in done.stdout


def test_online_check_names_the_refused_key(tmp_path, piano, piano_url):
    piano.set_segment("seg-a", ["u1"])
    wrong = "ACCESS1_wrongSecret"
    done = check(tmp_path, segments(wrong, piano_url), "--online")
    assert done.returncode == 1
    assert (
        "error: piano_segments: source piano.segment: api_key was refused: Piano Analytics "
        "Data API answered HTTP 401: Unauthorized: invalid or missing API key"
    ) in done.stderr
    assert wrong not in done.stdout + done.stderr


def test_online_check_names_a_missing_segment(tmp_path, piano, piano_url):
    done = check(tmp_path, segments(API_KEY, piano_url), "--online")
    assert done.returncode == 1
    assert "segment 'seg-a' cannot be read" in done.stderr
    assert "SegmentNotFound: segment seg-a does not exist" in done.stderr


def test_online_check_passes_with_good_credentials(tmp_path, piano, piano_url):
    piano.set_segment("seg-a", ["u1", "u2"])
    done = check(tmp_path, segments(API_KEY, piano_url) + collect(DOMAIN, piano_url), "--online")
    assert done.returncode == 0, done.stderr
    assert "ok   piano_segments: source piano.segment: api_key accepted" in done.stdout
    assert "ok   to_piano: destination piano.collect: collection endpoint" in done.stdout


def test_online_check_names_an_unreachable_collection_host(tmp_path):
    from connectord.testing import free_port

    done = check(tmp_path, collect(DOMAIN, f"http://127.0.0.1:{free_port()}"), "--online")
    assert done.returncode == 1
    assert "to_piano: destination piano.collect: cannot reach the collection endpoint" in (
        done.stderr
    )


def test_the_shipped_connectors_toml_still_checks():
    done = subprocess.run(
        [sys.executable, "-m", "connectord", "check", "-c", str(ROOT / "connectors.toml")],
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "CONNECTORD_LOAD_PLUGINS": ""},
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_integration_guide_snippets_are_valid(tmp_path):
    import re

    guide = (ROOT / "docs/integrations/pushwoosh-piano.md").read_text(encoding="utf-8")
    blocks = [
        b for b in re.findall(r"```toml\n(.*?)```", guide, re.S) if b.startswith("[connectors.")
    ]
    assert len(blocks) >= 6
    path = tmp_path / "connectors.toml"
    path.write_text('[daemon]\nstate = "state.db"\n\n' + "\n".join(blocks), encoding="utf-8")
    env = {
        "PATH": "/usr/bin:/bin",
        "CONNECTORD_LOAD_PLUGINS": "",
        "PIANO_SITE_ID": "123456",
        "PIANO_COLLECTION_DOMAIN": DOMAIN,
        "PIANO_API_KEY": API_KEY,
        "PIANO_SEGMENT_KEY": "seg-a",
        "EVENTS_TO_PIANO_TOKEN": "t0ken",
        "PUSHWOOSH_APPLICATION": "ABCDE-12345",
        "PUSHWOOSH_API_TOKEN": "server-token",
        "PUSHWOOSH_DEVICE_TOKEN": "device-token",
    }
    done = subprocess.run(
        [sys.executable, "-m", "connectord", "check", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(blocks)} connectors, {len(blocks)} enabled" in done.stdout
