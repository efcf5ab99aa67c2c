"""The real daemon writing into S3 (moto in server mode): an endpoint that is down is
retried and nothing is lost; ``connectord check --online`` names what is missing."""

from __future__ import annotations

import gzip
import subprocess
import sys
import uuid

import pytest
from moto.server import ThreadedMotoServer

from tests.storage.servers import REGION, S3_KEY, S3Server, free_port, s3_server

__all__ = ["s3_server"]

pytestmark = pytest.mark.e2e

TOKEN = "token-for-bucket-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def connector(endpoint: str, bucket: str) -> str:
    return f"""
[connectors.to_bucket]
source = {{ type = "http.webhook", token = "{TOKEN}" }}
delivery = {{ retry_initial = 0.2, retry_max = 1.0 }}

[connectors.to_bucket.destination]
type = "files"
url = "s3://{bucket}/events"
endpoint_url = "{endpoint}"
region = "{REGION}"
access_key_id = "{S3_KEY["access_key_id"]}"
secret_access_key = "{S3_KEY["secret_access_key"]}"
"""


def events(count: int, start: int = 0) -> list[dict]:
    return [
        {
            "type": "track",
            "userId": f"u{i}",
            "event": "Charged",
            "messageId": f"m-{i}",
            "timestamp": "2024-01-01T10:00:00Z",
            "properties": {"n": i},
        }
        for i in range(start, start + count)
    ]


def delivered_ids(server: S3Server, bucket: str) -> list[str]:
    client = server.client()
    ids = []
    for key in server.keys(bucket):
        body = gzip.decompress(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        ids += [line.split(",", 1)[0] for line in body.decode().splitlines()[1:]]
    return ids


def test_endpoint_down_is_retried_and_nothing_is_lost(connectord_daemon):
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    bucket = f"bi-{uuid.uuid4().hex[:10]}"
    daemon = connectord_daemon(connector(endpoint, bucket))
    for chunk in range(3):
        status, _ = daemon.post("/ingest/to_bucket/", events(20, chunk * 20), headers=AUTH)
        assert status == 200
    daemon.wait_for(lambda: "cannot reach s3://" in daemon.logs(), message="a retried upload")
    store = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    store.start()
    try:
        server = S3Server(endpoint)
        server.client().create_bucket(Bucket=bucket)
        daemon.wait_for(
            lambda: len(delivered_ids(server, bucket)) >= 60, timeout=60, message="60 events"
        )
        ids = delivered_ids(server, bucket)
        assert sorted(ids) == sorted(f"m-{i}" for i in range(60))
        assert all(
            k.startswith("events/") and "-Charged-20240101-" in k for k in server.keys(bucket)
        )
    finally:
        store.stop()
    assert TOKEN not in daemon.logs() and S3_KEY["secret_access_key"] not in daemon.logs()


def check_online(tmp_path, endpoint: str, bucket: str) -> subprocess.CompletedProcess:
    config = tmp_path / "connectors.toml"
    config.write_text(connector(endpoint, bucket))
    return subprocess.run(
        [sys.executable, "-m", "connectord", "check", "--online", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_online_names_what_is_missing(tmp_path, s3_server):
    bucket = f"bi-{uuid.uuid4().hex[:10]}"
    missing = check_online(tmp_path, s3_server.endpoint, bucket)
    assert missing.returncode != 0
    assert f"bucket '{bucket}' does not exist" in missing.stdout + missing.stderr
    down = check_online(tmp_path, f"http://127.0.0.1:{free_port()}", bucket)
    assert down.returncode != 0 and "cannot reach s3://" in down.stdout + down.stderr
    s3_server.client().create_bucket(Bucket=bucket)
    fine = check_online(tmp_path, s3_server.endpoint, bucket)
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "can create and delete objects" in fine.stdout + fine.stderr
    assert s3_server.keys(bucket) == []
    assert S3_KEY["secret_access_key"] not in missing.stdout + missing.stderr + fine.stdout
