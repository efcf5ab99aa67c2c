"""CleverTap emulator → ``connectord sync`` (a real process) → ``files`` → moto's S3
server, killed -9 mid-run and run again, watched by a lister; then the objects load with
CleverTap's BI-guide wildcard into DuckDB, standing in for BigQuery's wildcard load."""

from __future__ import annotations

import csv
import gzip
import io
import uuid
from collections import Counter

import duckdb
import pytest

from connectord.testing import write_config
from tests.plugins.clevertap.common import source_options, toml_inline
from tests.plugins.clevertap.emulator import EVENT_NAMES, CleverTapEmulator, Dataset
from tests.plugins.files.interrupted import sync_killed_and_rerun
from tests.plugins.files.test_buckets import OBJECT
from tests.storage.servers import gcs_server, s3_server

__all__ = ["gcs_server", "s3_server"]


def rows_of(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(gzip.decompress(data).decode())))


@pytest.mark.e2e
@pytest.mark.slow
def test_kill_and_rerun_into_s3_every_event_exactly_once(tmp_path, emulator_server, s3_server):
    data = Dataset(days=2, events_per_day=20_000, users=500)
    emulator = CleverTapEmulator(data)
    server = emulator_server(emulator)
    bucket = f"bi-{uuid.uuid4().hex[:10]}"
    s3 = s3_server.client()
    s3.create_bucket(Bucket=bucket)
    source = source_options(emulator, server.url, events=list(EVENT_NAMES), batch_size=5000)
    destination = {"type": "files", "export_id": 1663664837, **s3_server.options(bucket)}
    config = write_config(
        tmp_path,
        f"""
[connectors.clevertap_bucket]
schedule = "manual"
source = {{ type = "clevertap.events", {toml_inline(source)[2:-2]} }}
destination = {toml_inline(destination)}
""",
    )

    def objects() -> list[str]:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]

    def whole(key: str) -> bool:
        return len(rows_of(s3.get_object(Bucket=bucket, Key=key)["Body"].read())) > 1

    run = sync_killed_and_rerun(config, "clevertap_bucket", outputs=objects, whole=whole)
    seen = run.seen
    assert run.seen_before_kill >= 1 and seen and all(seen.values())
    keys = [
        o["Key"]
        for p in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
        for o in p.get("Contents", [])
    ]
    assert all(OBJECT.match(k.split("/", 1)[1]) for k in keys), keys[:5]
    ids: Counter[str] = Counter()
    local = tmp_path / "downloaded"
    local.mkdir()
    for key in keys:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        ids.update(row[0] for row in rows_of(body)[1:])
        (local / key.split("/")[-1]).write_bytes(body)
    assert len(ids) == data.total()
    assert max(ids.values()) == 1, [i for i, n in ids.items() if n > 1][:5]
    charged = sum(1 for k in keys if "-Charged-" in k)
    assert charged
    [(count,)] = duckdb.sql(
        f"SELECT count(*) FROM read_csv('{local}/*-Charged-*.csv.gz', union_by_name = true)"
    ).fetchall()
    assert count == data.total("Charged")


@pytest.mark.e2e
@pytest.mark.slow
def test_daemon_killed_and_restarted_into_gcs_every_event_exactly_once(
    emulator_server, connectord_daemon, gcs_server
):
    """The same through the running daemon (scheduled runs), into the GCS emulator."""
    data = Dataset(days=2, events_per_day=10_000, users=300)
    emulator = CleverTapEmulator(data)
    server = emulator_server(emulator)
    bucket = f"bi-{uuid.uuid4().hex[:10]}"
    gcs = gcs_server.client()
    gcs.create_bucket(bucket)
    source = source_options(emulator, server.url, events=list(EVENT_NAMES), batch_size=2000)
    destination = {"type": "files", "export_id": 1663664837, **gcs_server.options(bucket)}
    daemon = connectord_daemon(
        f"""
[connectors.clevertap_gcs]
schedule = "every 1s"
source = {{ type = "clevertap.events", {toml_inline(source)[2:-2]} }}
destination = {toml_inline(destination)}
"""
    )
    seen: dict[str, bool] = {}

    def listed() -> int:
        for blob in gcs.list_blobs(bucket):
            if blob.name not in seen:
                try:
                    seen[blob.name] = len(rows_of(blob.download_as_bytes())) > 1
                except Exception:
                    seen[blob.name] = False
        return len(seen)

    daemon.wait_for(lambda: listed() >= 3, timeout=120, message="three objects")
    daemon.kill()
    daemon.start()
    ids: Counter[str] = Counter()

    def complete() -> bool:
        listed()
        ids.clear()
        for blob in gcs.list_blobs(bucket):
            ids.update(row[0] for row in rows_of(blob.download_as_bytes())[1:])
        return len(ids) >= data.total()

    daemon.wait_for(complete, timeout=240, interval=1, message="every event")
    assert all(seen.values()), [k for k, ok in seen.items() if not ok]
    assert all(OBJECT.match(k.split("/", 1)[1]) for k in seen)
    assert len(ids) == data.total() and max(ids.values()) == 1
