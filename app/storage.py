"""Where media files live: one small interface, kept on local disk or in S3.

By default (and in the embedded mode) files are kept under ``instance/media``;
with ``SNORQ_MEDIA_S3_BUCKET`` set they go to that bucket of an S3-compatible
store (``SNORQ_MEDIA_S3_ENDPOINT`` for one that is not AWS, credentials the usual
AWS way: ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` or an instance role),
which every web and worker process of a multi-machine deployment shares.

Keys are made by SNORQ (``attachments/<org>/<id>``), never by a customer.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import BinaryIO

from app.config import get_settings

_KEY = re.compile(r"[a-z]+(/[A-Za-z0-9_-]+(\.[a-z0-9]+)?)+")


class MissingFile(LookupError):
    """No file is kept under this key."""


class Storage:
    """Files by key. Implementations override all four methods."""

    def put(self, key: str, file: BinaryIO, content_type: str) -> None:
        """Keep ``file`` (read from its start) under ``key``, replacing what was there."""
        raise NotImplementedError

    def open(self, key: str) -> BinaryIO:
        """The file under ``key``, to read and close.

        Raises:
          MissingFile: nothing is kept under ``key``.
        """
        raise NotImplementedError

    def delete(self, key: str) -> None:
        """Forget the file under ``key`` (nothing happens if there is none)."""
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        """The whole file under ``key`` (for files small enough to send on)."""
        with self.open(key) as file:
            return file.read()


def checked_key(key: str) -> str:
    """``key`` if it is one SNORQ makes (no ``..``, no absolute path), else ValueError."""
    if not _KEY.fullmatch(key):
        raise ValueError(f"not a storage key: {key!r}")
    return key


class LocalStorage(Storage):
    """Files under a folder; each is written to a temporary file, then renamed into place."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        return self.root / checked_key(key)

    def put(self, key: str, file: BinaryIO, content_type: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        file.seek(0)
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as target:
                shutil.copyfileobj(file, target)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise MissingFile(key) from None

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)


class S3Storage(Storage):
    """Files in one bucket of S3 or an S3-compatible store (MinIO, Ceph, R2…)."""

    def __init__(self, bucket: str, endpoint: str = "", region: str = "") -> None:
        import boto3
        from botocore.config import Config

        # Stores other than AWS rarely serve bucket names as host names.
        addressing = "path" if endpoint else "auto"
        self.bucket = bucket
        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint or None,
            region_name=region or None,
            config=Config(s3={"addressing_style": addressing}, retries={"mode": "standard"}),
        )

    def put(self, key: str, file: BinaryIO, content_type: str) -> None:
        file.seek(0)
        self.client.upload_fileobj(
            file, self.bucket, checked_key(key), ExtraArgs={"ContentType": content_type}
        )

    def open(self, key: str) -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            return self.client.get_object(Bucket=self.bucket, Key=checked_key(key))["Body"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise MissingFile(key) from None
            raise

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=checked_key(key))


def get_storage() -> Storage:
    """The storage the settings name (one per configuration, shared by every thread)."""
    settings = get_settings()
    return _storage(
        settings.media_s3_bucket,
        settings.media_s3_endpoint,
        settings.media_s3_region,
        settings.media_path,
    )


@functools.cache
def _storage(bucket: str, endpoint: str, region: str, root: Path) -> Storage:
    if bucket:
        return S3Storage(bucket, endpoint, region)
    return LocalStorage(root)
