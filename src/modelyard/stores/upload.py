"""Writing S3 objects atomically: one multipart upload per object, completed only when the writer
says the object is whole, and aborted otherwise.

pyarrow's S3 output stream cannot be aborted from Python (pyarrow 26 does not expose Abort), and it
completes its upload when it is closed or collected, also on an error path: a failed job would
publish half an object. So writes go through boto3's multipart calls, which say exactly when an
object appears. A process killed mid-upload leaves an incomplete upload, which no reader sees;
`abort_stale` removes those of a job's keys when the job is run again or discarded.
"""

import hashlib
import io
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, suppress
from functools import cache
from typing import TYPE_CHECKING, Any

from modelyard.stores.connections import S3Connection
from modelyard.stores.s3 import retried
from modelyard.stores.uris import ObjectUri

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client  # pragma: no cover
else:
    S3Client = Any

PART_BYTES = 16 << 20
"""Bytes per uploaded part: S3 takes 5 MiB to 5 GiB and at most 10,000 parts (160 GB here)."""


@cache
def _client(endpoint: str, region: str, access_key: str, secret_key: str) -> S3Client:
    import boto3  # only where something is written: the API and the scheduler never load it
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint or None,
        region_name=region,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"}),
    )


def warm() -> None:
    """Import boto3 and load its S3 model now: a worker calls this before it forks, so that each
    job's work horse makes its client in milliseconds instead of a quarter of a second. The client
    made here sends nothing and holds no connection."""
    import boto3

    boto3.client("s3", region_name="us-east-1", aws_access_key_id="warm", aws_secret_access_key="warm")


def client(name: str, connection: S3Connection) -> S3Client:
    access = connection.access_key.value(name, "access key").get_secret_value()
    secret = connection.secret_key.value(name, "secret key").get_secret_value()
    return _client(connection.endpoint, connection.region, access, secret)


class ObjectWriter(io.RawIOBase):
    """A file-like sink whose bytes become one object only at `commit()`: parts are uploaded as
    they fill, on a thread of their own while scoring goes on (one part in flight at most);
    `close()` commits nothing (a Parquet writer closes its sink on an error path too)."""

    def __init__(self, s3: S3Client, name: str, uri: ObjectUri) -> None:
        self.s3, self.name, self.uri = s3, name, uri
        self.digest = hashlib.sha256()
        self.size = 0
        self._buffer = bytearray()
        self._parts: list[dict[str, Any]] = []
        self._sending: Future[None] | None = None
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="upload")
        created = self._call(lambda: s3.create_multipart_upload(Bucket=uri.bucket, Key=uri.key))
        self._upload_id: str | None = created["UploadId"]

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        self._buffer += view
        self.size += len(view)
        if len(self._buffer) >= PART_BYTES:
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()
        return len(view)

    def tell(self) -> int:
        return self.size

    def _upload_part(self, body: bytes) -> None:
        """Send a part on the upload thread while the caller goes on: one part in flight at most."""
        self._wait()
        self._sending = self._pool.submit(self._send_part, body)

    def _wait(self) -> None:
        sending, self._sending = self._sending, None
        if sending is not None:
            sending.result()

    def _send_part(self, body: bytes) -> None:
        number = len(self._parts) + 1
        answer = self._call(
            lambda: self.s3.upload_part(
                Bucket=self.uri.bucket,
                Key=self.uri.key,
                UploadId=self._upload_id,
                PartNumber=number,
                Body=body,
            )
        )
        self._parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    def commit(self) -> None:
        """Upload what is left and complete the upload: the object appears whole, at once."""
        if self._buffer or not self.size:  # what is left, or an empty object's one part
            self._upload_part(bytes(self._buffer))
            self._buffer.clear()
        self._wait()
        self._pool.shutdown()
        upload_id, self._upload_id = self._upload_id, None
        self._call(
            lambda: self.s3.complete_multipart_upload(
                Bucket=self.uri.bucket,
                Key=self.uri.key,
                UploadId=upload_id,
                MultipartUpload={"Parts": self._parts},
            )
        )

    def abort(self) -> None:
        with suppress(Exception):
            self._wait()
        self._pool.shutdown()
        if self._upload_id is not None:
            upload_id, self._upload_id = self._upload_id, None
            # best effort: an incomplete upload is invisible, and abort_stale finds it
            with suppress(Exception):
                self.s3.abort_multipart_upload(Bucket=self.uri.bucket, Key=self.uri.key, UploadId=upload_id)

    @property
    def sha256(self) -> str:
        return self.digest.hexdigest()

    def _call(self, call: Any) -> Any:
        return _called(call, self.name, self.uri, "writing")


def _called(call: Any, name: str, uri: ObjectUri | str, doing: str) -> Any:
    """The call, retried as every store call is; boto3's errors are read as pyarrow's are."""

    def plain_errors() -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return call()
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", "")).upper()
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            raise OSError(f"{code} {status}") from None  # the code and status only: no text
        except BotoCoreError as exc:
            raise OSError(f"NETWORK {type(exc).__name__}") from None

    return retried(plain_errors, name, uri, doing)


@contextmanager
def object_writer(s3: S3Client, name: str, uri: ObjectUri) -> Iterator[ObjectWriter]:
    """An object written whole or not at all: committed if the block ends normally, else aborted."""
    writer = ObjectWriter(s3, name, uri)
    try:
        yield writer
        writer.commit()
    except BaseException:
        writer.abort()
        raise


def put(s3: S3Client, name: str, uri: ObjectUri, body: bytes) -> None:
    """A small object (a manifest), in one request: it appears whole or not at all."""
    _called(lambda: s3.put_object(Bucket=uri.bucket, Key=uri.key, Body=body), name, uri, "writing")


def delete(s3: S3Client, name: str, bucket: str, keys: list[str]) -> None:
    """Remove objects, a thousand at a time (a missing one is no error)."""
    for start in range(0, len(keys), 1000):
        batch = {"Objects": [{"Key": key} for key in keys[start : start + 1000]], "Quiet": True}
        _called(
            lambda b=batch: s3.delete_objects(Bucket=bucket, Delete=b), name, f"s3://{bucket}/", "deleting in"
        )


def keys_under(s3: S3Client, name: str, uri: ObjectUri) -> list[str]:
    """Every key under a prefix, hidden ones too."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=uri.bucket, Prefix=uri.key)
    listed = _called(lambda: list(pages), name, uri, "listing")
    return [item["Key"] for page in listed for item in page.get("Contents", [])]


def abort_stale(s3: S3Client, name: str, uri: ObjectUri, match: str) -> None:
    """Abort the incomplete uploads under a prefix whose key holds `match` (a killed job's)."""
    answer = _called(
        lambda: s3.list_multipart_uploads(Bucket=uri.bucket, Prefix=uri.key), name, uri, "listing"
    )
    for stale in answer.get("Uploads", []):
        if match in stale["Key"]:
            _called(
                lambda u=stale: s3.abort_multipart_upload(
                    Bucket=uri.bucket, Key=u["Key"], UploadId=u["UploadId"]
                ),
                name,
                uri,
                "cleaning up",
            )
