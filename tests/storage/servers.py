"""Real object-storage servers on 127.0.0.1 for the tests: S3 from ``moto`` in server
mode, Google Cloud Storage from ``gcp-storage-emulator``; and their vendors' own clients
(``boto3``, ``google-cloud-storage``) to read back what was written."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

S3_KEY = {"access_key_id": "AKIATESTKEY", "secret_access_key": "test-secret"}
REGION = "us-east-1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class S3Server:
    endpoint: str

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=S3_KEY["access_key_id"],
            aws_secret_access_key=S3_KEY["secret_access_key"],
        )

    def options(self, bucket: str, prefix: str = "clevertap") -> dict[str, Any]:
        return {
            "url": f"s3://{bucket}/{prefix}",
            "endpoint_url": self.endpoint,
            "region": REGION,
            **S3_KEY,
        }

    def keys(self, bucket: str) -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@dataclass
class GCSServer:
    endpoint: str

    def client(self) -> Any:
        from google.auth.credentials import AnonymousCredentials
        from google.cloud import storage

        return storage.Client(
            project="test",
            credentials=AnonymousCredentials(),
            client_options={"api_endpoint": self.endpoint},
        )

    def options(self, bucket: str, prefix: str = "clevertap") -> dict[str, Any]:
        return {"url": f"gs://{bucket}/{prefix}", "endpoint_url": self.endpoint, "anonymous": True}

    def keys(self, bucket: str) -> list[str]:
        return sorted(b.name for b in self.client().list_blobs(bucket))


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="session")
def gcs_server() -> Iterator[GCSServer]:
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    try:
        yield GCSServer(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
