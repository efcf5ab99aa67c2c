"""The ``files`` destination into buckets: S3 (moto in server mode) and GCS
(gcp-storage-emulator), both real HTTP servers on 127.0.0.1, read back with boto3 and
google-cloud-storage."""

from __future__ import annotations

import csv
import gzip
import io
import re
import uuid

import pytest
from pydantic import ValidationError

from connectord import AuthError, PermanentError, RetryableError
from connectord.plugins.files.destination import FilesDestination
from connectord.testing import deliver, make_context
from tests.plugins.files.test_destination import track
from tests.storage.servers import GCSServer, S3Server, free_port, gcs_server, s3_server

__all__ = ["gcs_server", "s3_server"]

# CleverTap's export naming, with the day's epoch and a batch key (see objects.py).
OBJECT = re.compile(
    r"^(?P<export>\d+)-(?P<epoch>\d{10})-(?P<stream>.+)-(?P<day>\d{8})-(?P<part>\d{1,15})"
    r"-(?P<db>\d+)\.csv\.gz$"
)


@pytest.fixture(params=["s3", "gcs"])
def store(request) -> tuple[S3Server | GCSServer, str]:
    """A server and a new, empty bucket on it."""
    bucket = f"exports-{uuid.uuid4().hex[:10]}"
    if request.param == "s3":
        server = request.getfixturevalue("s3_server")
        server.client().create_bucket(Bucket=bucket)
    else:
        server = request.getfixturevalue("gcs_server")
        server.client().create_bucket(bucket)
    return server, bucket


def read_object(server: S3Server | GCSServer, bucket: str, key: str) -> list[list[str]]:
    if isinstance(server, S3Server):
        data = server.client().get_object(Bucket=bucket, Key=key)["Body"].read()
    else:
        data = server.client().bucket(bucket).blob(key).download_as_bytes()
    return list(csv.reader(io.StringIO(gzip.decompress(data).decode())))


async def send(options: dict, batches: list[list[dict]]) -> None:
    async with make_context("exports") as context:
        for batch in batches:
            await deliver(
                FilesDestination, {"export_id": 1663664837, **options}, batch, context=context
            )


async def test_parts_land_under_clevertap_names_with_stable_headers(store):
    server, bucket = store
    first = [track(i) for i in range(3)] + [track(0, "App Launched", "2024-01-02")]
    second = [track(i, coupon="SAVE5") for i in range(3, 5)]
    await send(server.options(bucket), [first, second])
    keys = server.keys(bucket)
    assert all(k.startswith("clevertap/") for k in keys)
    names = [OBJECT.match(k.split("/")[-1]).groupdict() for k in keys]
    assert sorted((n["stream"], n["day"]) for n in names) == [
        ("App-Launched", "20240102"),
        ("Order-Placed", "20240101"),
        ("Order-Placed", "20240101"),
    ]
    assert {n["epoch"] for n in names if n["day"] == "20240101"} == {"1704067200"}
    parts = sorted((read_object(server, bucket, k) for k in keys if "-Order-Placed-" in k), key=len)
    short, long = parts  # the second batch (2 rows) and the first (3 rows)
    assert long[0][-1] == "amount" and short[0][: len(long[0])] == long[0]
    assert short[0][-1] == "coupon"
    assert sorted(row[0] for p in parts for row in p[1:]) == sorted(
        r["messageId"] for r in first[:3] + second
    )


async def test_a_batch_delivered_again_meets_its_own_object(store):
    """After a crash between upload and acknowledgement the same records come again:
    same name, create-only upload refused (or the same records rewritten), no duplicate."""
    server, bucket = store
    batch = [track(i) for i in range(5)]
    await send(server.options(bucket), [batch])
    await send(server.options(bucket), [list(reversed(batch))])
    [key] = server.keys(bucket)
    assert len(read_object(server, bucket, key)) == 6


async def test_stream_date_layout(store):
    server, bucket = store
    await send({**server.options(bucket), "layout": "stream-date"}, [[track(1, "Charged")]])
    [key] = server.keys(bucket)
    assert re.match(r"^clevertap/Charged/2024/01/01/1663664837-\d{10}-Charged-20240101-", key)


async def check(options: dict) -> str:
    async with make_context("exports") as context:
        model = FilesDestination.Options.model_validate(options)
        return await FilesDestination(model, context).check()


async def test_check_writes_and_deletes_a_probe(store):
    server, bucket = store
    assert "can create and delete objects" in await check(server.options(bucket))
    assert server.keys(bucket) == []


async def test_check_names_a_missing_bucket(store):
    server, _ = store
    with pytest.raises(PermanentError, match="bucket 'no-such-bucket' does not exist"):
        await check(server.options("no-such-bucket"))


async def test_check_names_an_endpoint_that_is_down(store):
    server, bucket = store
    options = {**server.options(bucket), "endpoint_url": f"http://127.0.0.1:{free_port()}"}
    with pytest.raises(RetryableError, match="cannot reach"):
        await check(options)


async def test_s3_refuses_wrong_credentials(s3_server, monkeypatch):
    """moto checks signatures once auth is on (INITIAL_NO_AUTH_ACTION_COUNT=0)."""
    bucket = f"exports-{uuid.uuid4().hex[:10]}"
    s3_server.client().create_bucket(Bucket=bucket)
    from moto.core.config import default_user_config

    monkeypatch.setitem(default_user_config, "iam", {"load_aws_managed_policies": False})
    monkeypatch.setenv("INITIAL_NO_AUTH_ACTION_COUNT", "0")
    import moto.core.responses as responses

    monkeypatch.setattr(responses.settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0, raising=False)
    with pytest.raises(AuthError, match="permission denied") as refused:
        await check(s3_server.options(bucket))
    assert "InvalidAccessKeyId" in str(refused.value)  # moto's refusal, not ours
    assert "test-secret" not in str(refused.value)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"directory": "s3://bucket/prefix"}, "expected a local path, found a URL"),
        ({"url": "/srv/exports"}, "expected s3://bucket/prefix or gs://bucket/prefix"),
        ({"url": "file:///srv/exports"}, "found 'file:///srv/exports'"),
        ({"directory": "out", "url": "s3://b/p"}, "exactly one of"),
        ({}, "exactly one of"),
    ],
)
def test_a_value_of_the_wrong_kind_is_an_error(options, message):
    with pytest.raises(ValidationError, match=re.escape(message)):
        FilesDestination.Options.model_validate(options)


def test_a_bucket_in_another_region_is_named():
    """AWS answers a request sent to the wrong region with ``PermanentRedirect`` (moto
    does not reproduce it): the message says to set ``region``."""
    from obstore import exceptions as ox

    from connectord.plugins.files.buckets import BucketUrl, s3_error

    answer = "301 Moved Permanently: <Error><Code>PermanentRedirect</Code></Error>"
    error = s3_error(BucketUrl.parse("s3://acme/exports"), ox.GenericError(answer))
    assert isinstance(error, PermanentError)
    assert "bucket 'acme' is in another region: set `region`" in str(error)
