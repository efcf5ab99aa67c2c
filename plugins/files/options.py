"""Options of the ``files`` destination: one directory or one bucket, and the format."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from connectord import Options, Secret

from .buckets import BucketUrl


class FilesOptions(Options):
    """Where the files go (a directory or a bucket) and how they are named and encoded."""

    directory: str | None = Field(
        None,
        description="Local directory for the files (relative to the config file); "
        "created if missing. Exactly one of `directory` and `url`.",
    )
    url: str | None = Field(
        None,
        description="Bucket instead of a directory: `s3://bucket/prefix` (S3, MinIO, R2: "
        "needs the `s3` extra) or `gs://bucket/prefix` (needs the `gcs` extra).",
    )
    endpoint_url: str | None = Field(
        None, description="S3-compatible endpoint (MinIO, R2) or a GCS API endpoint."
    )
    region: str | None = Field(None, description="S3 region (default: AWS_REGION).")
    access_key_id: str | None = Field(
        None, description="S3 key id (default: the AWS credential chain)."
    )
    secret_access_key: Secret | None = Field(
        None, description="S3 secret key (or `secret_access_key_file`)."
    )
    credentials_file: str | None = Field(
        None,
        description="GCS service-account JSON (default: Application Default Credentials).",
    )
    anonymous: bool = Field(False, description="GCS without credentials (an emulator).")
    layout: Literal["flat", "stream", "stream-date"] = Field(
        "flat",
        description='"flat", "stream" (`<Stream>/<name>`) or "stream-date" '
        "(`<Stream>/<yyyy>/<mm>/<dd>/<name>`).",
    )
    format: Literal["csv", "jsonl", "parquet"] = Field(
        "csv",
        description='"csv" (gzip CSV with a header), "jsonl" (JSON lines) or "parquet" '
        "(needs the `parquet` extra).",
    )
    compression: Literal["gzip", "none"] = Field(
        "gzip", description="For csv and jsonl: gzip (`.csv.gz`, `.json.gz`) or none."
    )
    export_id: int | None = Field(
        None,
        ge=0,
        description="First part of every file name (CleverTap's export request id). "
        "Default: a number derived from the connector name.",
    )
    database_id: int = Field(0, ge=0, description="Last part of every file name.")
    subfolders: bool = Field(
        False, description="One sub-folder per stream, as CleverTap's S3 export lays out."
    )
    max_columns: int = Field(
        200,
        ge=10,
        le=10_000,
        description="Columns per stream at most; the values of further keys go, by "
        "column name, into one JSON column `_extra` (appended once).",
    )

    @model_validator(mode="after")
    def _one_target(self) -> Any:
        """A URL is not a file name and a path is not a URL: never reinterpret one."""
        if (self.directory is None) == (self.url is None):
            raise ValueError("expected exactly one of `directory` and `url`")
        if self.directory is not None and "://" in self.directory:
            raise ValueError(
                f"directory: expected a local path, found a URL {self.directory!r} "
                "(a bucket goes in `url`)"
            )
        if self.url is not None:
            BucketUrl.parse(self.url)
        return self
