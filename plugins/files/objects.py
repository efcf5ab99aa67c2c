"""Names and uploads of part files in a bucket.

A bucket has no ``link`` that refuses to replace, and a crash between an upload and the
acknowledgement makes the source deliver the same batch again. So an object's name is a
function of its batch, not of the moment it is written::

    <export id>-<day epoch>-<Stream-Name>-<yyyymmdd>-<batch key>-<database id>.csv.gz

``day epoch`` is the UTC midnight of ``yyyymmdd`` (where the local writer puts the run's
start) and ``batch key`` is a number made of the SHA-256 of the batch's record ids for
that stream and day (48 bits, up to 15 digits; where the local writer counts 0, 1, 2…).
The same records give the same name, so a batch delivered again after a crash meets
its own earlier object: the create-only upload (``If-None-Match: *`` on S3,
``ifGenerationMatch=0`` on GCS) is refused and the batch counts as written, and where a
store ignores the condition it rewrites the same records under the same name. Either
way no duplicate. BigQuery's wildcard ``*-Charged-*.csv.gz`` matches these names as it
matches CleverTap's own.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from .buckets import Bucket, BucketUrl

KEY_BITS = 48


def batch_key(rows: Sequence[dict[str, Any]]) -> int:
    """The same record ids, in any order, give the same number."""
    digest = hashlib.sha256("\n".join(sorted(str(r.get("id")) for r in rows)).encode())
    return int(digest.hexdigest()[: KEY_BITS // 4], 16)


def day_epoch(day: str) -> int:
    """``20240101`` → the Unix time of its UTC midnight."""
    return int(datetime.strptime(day, "%Y%m%d").replace(tzinfo=UTC).timestamp())


def folder_parts(layout: str, label: str, day: str) -> list[str]:
    """Sub-folders of one stream and day: none, ``<Stream>``, or ``<Stream>/yyyy/mm/dd``."""
    if layout == "stream":
        return [label]
    if layout == "stream-date":
        return [label, day[:4], day[4:6], day[6:]]
    return []


def object_key(url: BucketUrl, layout: str, label: str, day: str, name: str) -> str:
    return url.key("/".join([*folder_parts(layout, label, day), name]))


class Spool:
    """A private local directory where a part is encoded before its upload."""

    def __init__(self) -> None:
        self.path = tempfile.mkdtemp(prefix="connectord-files-")

    def file(self, name: str) -> str:
        return os.path.join(self.path, f"{time.monotonic_ns()}-{name}")

    def close(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


async def probe(bucket: Bucket) -> str:
    """Write and delete one object: proves the bucket exists and that we may create and
    delete objects in it (errors name which)."""
    key = bucket.url.key(f".connectord-check-{time.time_ns()}")
    await bucket.put_new(key, b"connectord check\n")
    await bucket.delete(key)
    return f"can create and delete objects in {bucket.url}"
