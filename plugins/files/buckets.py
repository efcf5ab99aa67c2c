"""Object storage for the ``files`` destination: S3 (and S3-compatible stores) and Google
Cloud Storage, each behind the same three calls.

Library choice. S3 goes through ``obstore`` (Python bindings of the Rust ``object_store``
crate used by Arrow, DataFusion and Polars): one 5.4 MB wheel (16 MB installed), no
dependency but typing_extensions, native asyncio, conditional PUT (``mode="create"``
sends ``If-None-Match: *``) and multipart uploads, and the AWS credential chain
(environment, web identity, ECS and EC2 instance roles). fsspec+s3fs+gcsfs pulls 47
packages (35 MB of wheels, 114 MB installed) through aiobotocore; boto3 with
google-cloud-storage 27 packages (25 MB, 76 MB installed), and boto3 is synchronous.

Google Cloud Storage goes through Google's own ``google-cloud-storage``: it speaks the
JSON API (``ifGenerationMatch=0`` for create-only uploads) and Application Default
Credentials (``GOOGLE_APPLICATION_CREDENTIALS``, workload identity, the metadata server).
``obstore``'s GCS store uploads through the XML API, which the GCS emulators the tests
run cannot answer, so it could not be proven here. The blocking client runs on the
destination's worker thread.

An object becomes visible only when its single PUT completes, so no reader ever lists a
partial object: batches are at most ``max_batch_size`` records (a few MB of gzip CSV),
far below the 5 GB single-PUT limit of both stores, so no multipart upload is needed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectord import AuthError, PermanentError, RetryableError

SCHEMES = ("s3", "gs")


@dataclass(frozen=True)
class BucketUrl:
    scheme: str
    bucket: str
    prefix: str

    @classmethod
    def parse(cls, url: str) -> BucketUrl:
        """``s3://bucket/prefix`` or ``gs://bucket/prefix``; anything else is an error
        (a local path belongs in ``directory``)."""
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES or not parts.netloc:
            raise ValueError(f"expected s3://bucket/prefix or gs://bucket/prefix, found {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"expected no ?query or #fragment in a bucket URL, found {url!r}")
        return cls(parts.scheme, parts.netloc, parts.path.strip("/"))

    def key(self, name: str) -> str:
        return f"{self.prefix}/{name}" if self.prefix else name

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.prefix}".rstrip("/")


class Bucket:
    """Create-only uploads, deletes and listings under one bucket URL."""

    def __init__(self, url: BucketUrl) -> None:
        self.url = url

    async def put_new(self, key: str, data: bytes) -> bool:
        """Upload ``data`` under ``key`` unless an object has that key: ``False`` then."""
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class S3Bucket(Bucket):
    def __init__(self, url: BucketUrl, options: Any) -> None:
        super().__init__(url)
        from obstore.store import S3Store

        config: dict[str, Any] = {}
        if options.region:
            config["region"] = options.region
        if options.endpoint_url:
            config["endpoint"] = options.endpoint_url
        if options.access_key_id:
            config["access_key_id"] = options.access_key_id
        if options.secret_access_key is not None:
            config["secret_access_key"] = options.secret_access_key.get_secret_value()
        endpoint = options.endpoint_url or ""
        self.store = S3Store(
            url.bucket,
            config=config,
            client_options={"allow_http": endpoint.startswith("http://"), "timeout": "60s"},
            # A few quick retries here; longer outages are the daemon's retry schedule.
            retry_config={
                "max_retries": 2,
                "backoff": {"init_backoff": dt.timedelta(milliseconds=200)},
                "retry_timeout": dt.timedelta(seconds=30),
            },
        )

    async def put_new(self, key: str, data: bytes) -> bool:
        import obstore

        try:
            await obstore.put_async(self.store, key, data, mode="create", use_multipart=False)
        except obstore.exceptions.AlreadyExistsError:
            return False
        except Exception as err:
            raise s3_error(self.url, err) from err
        return True

    async def delete(self, key: str) -> None:
        import obstore

        try:
            await obstore.delete_async(self.store, key)
        except Exception as err:
            raise s3_error(self.url, err) from err


def s3_error(url: BucketUrl, err: Exception) -> Exception:
    """Name what is missing: the bucket, the permission, or the endpoint."""
    from obstore import exceptions as ox

    code = re.search(r"<Code>([^<]{1,64})</Code>", str(err))
    text = (f"{code.group(1)}: " if code else "") + str(err).split("\n", 1)[0][:300]
    if code and code.group(1) in ("PermanentRedirect", "AuthorizationHeaderMalformed"):
        return PermanentError(f"bucket {url.bucket!r} is in another region: set `region` ({text})")
    if isinstance(err, ox.NotFoundError) or "NoSuchBucket" in str(err):
        return PermanentError(f"bucket {url.bucket!r} does not exist ({url}): {text}")
    if isinstance(err, ox.PermissionDeniedError | ox.UnauthenticatedError) or (
        "403 Forbidden" in str(err) or "AccessDenied" in str(err)
    ):
        return AuthError(
            f"permission denied on {url} (credentials, s3:PutObject/s3:DeleteObject, "
            f"or the bucket's region): {text}"
        )
    return RetryableError(f"cannot reach {url}: {text}")


class GCSBucket(Bucket):
    def __init__(self, url: BucketUrl, options: Any, run: Callable[..., Any]) -> None:
        super().__init__(url)
        from google.cloud import storage

        kwargs: dict[str, Any] = {}
        if options.endpoint_url:
            kwargs["client_options"] = {"api_endpoint": options.endpoint_url}
        if options.anonymous:
            from google.auth.credentials import AnonymousCredentials

            kwargs.update(credentials=AnonymousCredentials(), project="anonymous")
        elif options.credentials_file:
            self.client = storage.Client.from_service_account_json(
                options.credentials_file, **kwargs
            )
        if not hasattr(self, "client"):
            self.client = storage.Client(**kwargs)
        self.bucket = self.client.bucket(url.bucket)
        self._run = run

    async def put_new(self, key: str, data: bytes) -> bool:
        return await self._call(self._put_new, key, data)

    def _put_new(self, key: str, data: bytes) -> bool:
        from google.api_core import exceptions as gx

        try:
            self.bucket.blob(key).upload_from_string(
                data,
                content_type="application/octet-stream",
                if_generation_match=0,
                retry=quick_retry(),
                timeout=60,
            )
        except gx.PreconditionFailed:
            return False
        return True

    async def delete(self, key: str) -> None:
        await self._call(self._delete, key)

    def _delete(self, key: str) -> None:
        from google.api_core import exceptions as gx

        with contextlib.suppress(gx.NotFound):
            self.bucket.blob(key).delete(retry=quick_retry(), timeout=60)

    async def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        from google.api_core import exceptions as gx

        try:
            return await self._run(fn, *args)
        except gx.NotFound as err:
            raise PermanentError(f"bucket {self.url.bucket!r} does not exist ({self.url})") from err
        except (gx.Forbidden, gx.Unauthorized) as err:
            raise AuthError(
                f"permission denied on {self.url} (credentials or "
                f"storage.objects.create/delete): {str(err)[:200]}"
            ) from err
        except (gx.GoogleAPIError, OSError) as err:
            raise RetryableError(f"cannot reach {self.url}: {str(err)[:300]}") from err
        except Exception as err:  # requests' connection errors
            if type(err).__module__.startswith(("requests", "urllib3", "google.auth")):
                raise RetryableError(f"cannot reach {self.url}: {str(err)[:300]}") from err
            raise


def quick_retry() -> Any:
    """A few seconds of the client's own retries; longer outages are the daemon's retry
    schedule (the default would block a worker for two minutes)."""
    from google.cloud.storage.retry import DEFAULT_RETRY

    return DEFAULT_RETRY.with_timeout(10)


def open_bucket(url: BucketUrl, options: Any, run: Callable[..., Any]) -> Bucket:
    """The store for ``url``; a missing optional dependency is a clear error."""
    try:
        if url.scheme == "s3":
            return S3Bucket(url, options)
        return GCSBucket(url, options, run)
    except ImportError as err:
        extra = "s3" if url.scheme == "s3" else "gcs"
        raise PermanentError(
            f"{url.scheme}:// needs {err.name}: pip install 'connectord[{extra}]'"
        ) from err
