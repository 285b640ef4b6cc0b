"""Where a job reads and writes: files on the data volume, or objects in a store named in the
connections file. Jobs carry places as text (a path relative to the data volume, or an s3:// URI);
this is the one home that turns that text into handles to read and targets to write.

A target is written whole or not at all: a file under a temporary name renamed into place, an object
through a multipart upload completed only at the end.
"""

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Protocol

from modelyard.batch.paths import data_path
from modelyard.config import Settings
from modelyard.fsutil import atomic_path
from modelyard.stores import connections as stores
from modelyard.stores import s3, upload
from modelyard.stores.uris import ObjectUri, is_object_uri, parse
from modelyard.tabular import Opener, TableWriter, as_opener


@dataclass(frozen=True)
class Store:
    """A connection, allowed for the URI it was looked up for."""

    name: str
    connection: stores.S3Connection

    def fs(self) -> Any:
        return s3.filesystem(self.name, self.connection)

    def client(self) -> Any:
        return upload.client(self.name, self.connection)


def store_for(settings: Settings, uri: ObjectUri, use: stores.Use, what: str) -> Store:
    """The connection that allows this use of the URI; refused (422) otherwise."""
    name, connection = stores.load(settings.connections).for_uri(uri, use, what)
    return Store(name, connection)


def object_uri(text: str, what: str) -> ObjectUri | None:
    """The URI a job names, or None for a path on the data volume."""
    return parse(text, what) if is_object_uri(text) else None


def opener(settings: Settings, place: str, fmt: str) -> Opener:
    """Fresh handles on one input, each at its start."""
    uri = object_uri(place, "input")
    if uri is None:
        return as_opener(data_path(settings.data_dir, place, "input"))
    store = store_for(settings, uri, "read", "input")
    fs = store.fs()
    return lambda: s3.open_object(fs, store.name, uri, buffered=fmt != "parquet")


@dataclass
class Written:
    """What a target holds once committed: for a dataset's manifest."""

    name: str
    bytes: int
    sha256: str
    """Of objects only: a file is never listed in a manifest."""


class Target(Protocol):
    written: Written | None

    def open(self) -> Any:
        """A context manager giving a binary sink; the target is committed when its block ends
        normally, and left as it was otherwise."""

    def writer(self, fmt: str) -> Any:
        """A context manager giving a sink of Arrow tables, committed as `open`'s is."""

    def opener(self) -> Opener:
        """Reads back what was committed."""

    def exists(self) -> bool: ...


@contextmanager
def formatted(target: "FileTarget | ObjectTarget", fmt: str) -> Iterator[TableWriter]:
    """Arrow tables written to a file or object in a format (CSV, Parquet, JSON Lines)."""
    with target.open() as sink, TableWriter(sink, fmt) as writer:
        yield writer


@dataclass
class FileTarget:
    path: Path
    written: Written | None = field(default=None, init=False)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        with atomic_path(self.path) as tmp:
            with tmp.open("wb") as handle:
                yield handle
            size = tmp.stat().st_size
        self.written = Written(str(self.path), size, "")  # a file needs no manifest

    def writer(self, fmt: str) -> AbstractContextManager[TableWriter]:
        return formatted(self, fmt)

    def opener(self) -> Opener:
        return lambda: self.path.open("rb")

    def exists(self) -> bool:
        return self.path.is_file()

    def __str__(self) -> str:
        return str(self.path)


@dataclass
class ObjectTarget:
    store: Store
    uri: ObjectUri
    written: Written | None = field(default=None, init=False)

    @contextmanager
    def open(self) -> Iterator[BinaryIO]:
        with upload.object_writer(self.store.client(), self.store.name, self.uri) as writer:
            yield writer  # type: ignore[misc]
        self.written = Written(self.uri.key, writer.size, writer.sha256)

    def writer(self, fmt: str) -> AbstractContextManager[TableWriter]:
        return formatted(self, fmt)

    def opener(self) -> Opener:
        fs = self.store.fs()
        return lambda: s3.open_object(fs, self.store.name, self.uri)

    def exists(self) -> bool:
        return s3.exists(self.store.fs(), self.store.name, self.uri)

    def __str__(self) -> str:
        return str(self.uri)


def target(settings: Settings, place: str) -> FileTarget | ObjectTarget:
    """One output file or object, as a job names it."""
    uri = object_uri(place, "output")
    if uri is None:
        return FileTarget(data_path(settings.data_dir, place, "output"))
    return ObjectTarget(store_for(settings, uri, "write", "output"), uri)
