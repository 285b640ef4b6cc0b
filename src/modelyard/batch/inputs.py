"""What a job reads: one file or object, every object under an s3:// prefix, or a PostgreSQL table
(batch/tables.py), chunk by chunk, and how a big input is cut into parts for several workers.

A file or a single object is split as files always were (Parquet by row groups, CSV and JSON Lines
by byte ranges), and its rows keep their numbers in the whole input. A prefix is split by object:
each part reads whole objects, consecutive in key order; rows are numbered within their object,
and each bad row names its object.
"""

import dataclasses
from collections.abc import Callable, Iterator

from modelyard.batch import parts as parting
from modelyard.batch import tables
from modelyard.batch.places import Store, object_uri, opener, store_for
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.errors import InputNotFound
from modelyard.stores import s3
from modelyard.stores.s3 import StoredObject
from modelyard.stores.uris import ObjectUri, is_table_uri
from modelyard.tabular import Chunk, read_chunks


def _objects(spec: JobSpec) -> list[ObjectUri] | None:
    """The objects of a prefix input, or None for one file or object."""
    uri = object_uri(spec.input, "input")
    if uri is None or not uri.is_prefix:
        return None
    return [ObjectUri(uri.bucket, item.key) for item in spec.objects]


def listed(store: Store, uri: ObjectUri, attempts: int = s3.RETRIES) -> tuple[StoredObject, ...]:
    """The objects an s3:// input names now: one, or those under the prefix."""
    fs = store.fs()
    if uri.is_prefix:
        return tuple(s3.listed(fs, store.name, uri, attempts))
    return (s3.head(fs, store.name, uri, attempts),)


def resolved(settings: Settings, spec: JobSpec) -> JobSpec:
    """The spec with its input's objects listed, when the store did not answer at submission."""
    uri = object_uri(spec.input, "input")
    if uri is None or spec.objects:
        return spec
    objects = listed(store_for(settings, uri, "read", "input"), uri)
    if not objects:
        raise InputNotFound(f"input {uri}: no CSV, Parquet or JSON Lines object under this prefix")
    return dataclasses.replace(spec, objects=objects)


def size(settings: Settings, spec: JobSpec) -> int:
    if spec.objects:
        return sum(item.size for item in spec.objects)
    return spec.input_path(settings.data_dir).stat().st_size


def plan(settings: Settings, spec: JobSpec, workers: int) -> list[parting.Part]:
    """The parts of an input worth splitting (more than one), else one."""
    if size(settings, spec) <= settings.split_threshold_mb * 1024 * 1024:
        return [parting.Part(0, 0, 0)]
    if _objects(spec) is not None:
        part_bytes = int(settings.split_threshold_mb * 1024 * 1024)
        return parting.plan_objects([item.size for item in spec.objects], part_bytes, workers)
    return parting.plan(
        opener(settings, spec.input, spec.input_format), spec.input_format, settings.part_rows, workers
    )


def whole(settings: Settings, spec: JobSpec, chunk_rows: int) -> Iterator[Chunk]:
    if is_table_uri(spec.input):
        return tables.read(settings, spec, None, chunk_rows)
    objects = _objects(spec)
    if objects is None:
        return read_chunks(opener(settings, spec.input, spec.input_format), spec.input_format, chunk_rows)
    return _of_objects(settings, spec, list(range(len(objects))), chunk_rows)


def part(
    settings: Settings,
    spec: JobSpec,
    piece: parting.Part,
    chunk_rows: int,
    on_begun: Callable[[], None] | None = None,
) -> Iterator[Chunk]:
    """One part's chunks; for a table, `on_begun` is called once it holds the job's snapshot."""
    if is_table_uri(spec.input):
        return tables.read(settings, spec, piece, chunk_rows, on_begun)
    if piece.objects:
        return _of_objects(settings, spec, list(piece.objects), chunk_rows)
    source = opener(settings, spec.input, spec.input_format)
    return parting.read_part(source(), spec.input_format, piece, chunk_rows, source)


def _of_objects(settings: Settings, spec: JobSpec, indices: list[int], chunk_rows: int) -> Iterator[Chunk]:
    """The chunks of some objects of a prefix, in key order; progress counts bytes over them all."""
    objects = _objects(spec)
    assert objects is not None
    total = sum(spec.objects[i].size for i in indices) or 1
    before = 0
    for index in indices:
        item, uri = spec.objects[index], objects[index]
        for chunk in read_chunks(opener(settings, str(uri), item.format), item.format, chunk_rows):
            share = (before + (chunk.progress or 0.0) * item.size) / total
            yield dataclasses.replace(chunk, source=str(uri), progress=min(share, 1.0), rows_total=None)
        before += item.size
