"""Where a job's scored rows and bad rows go, and how they are committed: one home for the layout.

- A file on the data volume, or one object: written whole (temporary name and rename, or a
  multipart upload completed at the end). A split job's parts wait beside it, hidden, for the join.
- An s3:// prefix (the output ends with '/') is a dataset, as Spark and Hadoop write them:
  part objects `part-NNNNN-<job>.<format>`, bad rows in `_errors/part-NNNNN-<job>.jsonl`, and a
  `_SUCCESS` manifest written last that lists every part with its rows and SHA-256. A split job's
  parts are the dataset's parts: nothing is copied. Readers that follow the convention read nothing
  until the manifest is there; with `overwrite`, the old parts are deleted only after it is.
- A PostgreSQL table (`postgresql://CONNECTION/SCHEMA.TABLE`): each part is staged in a table of
  its own, and the job's last transaction moves them all into the destination (batch/staging.py).
"""

import json
from datetime import UTC, datetime
from typing import Any

from modelyard.batch import staging
from modelyard.batch.places import FileTarget, ObjectTarget, Store, Target, Written, object_uri, store_for
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.errors import OutputExists
from modelyard.stores import s3, upload
from modelyard.stores.uris import ObjectUri, is_table_uri

MANIFEST = "_SUCCESS"
ERRORS_FOLDER = "_errors/"


def dataset(spec: JobSpec) -> ObjectUri | None:
    """The job's output prefix, when it writes a dataset."""
    uri = object_uri(spec.output, "output")
    return uri if uri is not None and uri.is_prefix else None


def in_place(spec: JobSpec) -> bool:
    """Whether a split job's parts stay where they were written (a dataset's parts, a table's
    staging tables) until the commit, rather than being joined into one file or object."""
    return dataset(spec) is not None or is_table_uri(spec.output)


def whole(settings: Settings, spec: JobSpec) -> tuple[Target, Target]:
    """The output and errors targets of a job scored in one piece."""
    if in_place(spec):
        return part(settings, spec, 0)
    uri = object_uri(spec.output, "output")
    if uri is None:
        return FileTarget(spec.output_path(settings.data_dir)), FileTarget(
            spec.errors_path(settings.data_dir)
        )
    errors = object_uri(spec.errors_output, "output")
    assert errors is not None
    return ObjectTarget(_store(settings, uri), uri), ObjectTarget(_store(settings, errors), errors)


def part(settings: Settings, spec: JobSpec, index: int) -> tuple[Target, Target]:
    """Where one part of a split job writes, until the join."""
    if is_table_uri(spec.output):
        return staging.part_targets(settings, spec, index)
    if dataset(spec) is not None:
        return dataset_part(settings, spec, index)
    uri = object_uri(spec.output, "output")
    names = f"part-{index:05d}.{spec.format}", f"part-{index:05d}.errors.jsonl"
    if uri is None:
        folder = spec.parts_folder(settings.data_dir)
        return FileTarget(folder / names[0]), FileTarget(folder / names[1])
    store, hidden = _store(settings, uri), staging_prefix(spec, uri)
    return ObjectTarget(store, hidden.under(names[0])), ObjectTarget(store, hidden.under(names[1]))


def staging_prefix(spec: JobSpec, uri: ObjectUri) -> ObjectUri:
    """Beside an output object, hidden: where a split job's parts wait for the join."""
    return uri.beside(f".{spec.id}.parts/")


def dataset_part(settings: Settings, spec: JobSpec, index: int) -> tuple[Target, Target]:
    prefix = dataset(spec)
    assert prefix is not None
    store = _store(settings, prefix)
    name = f"part-{index:05d}-{spec.id}"
    return (
        ObjectTarget(store, prefix.under(f"{name}.{spec.format}")),
        ObjectTarget(store, prefix.under(f"{ERRORS_FOLDER}{name}.jsonl")),
    )


def _store(settings: Settings, uri: ObjectUri) -> Store:
    return store_for(settings, uri, "write", "output")


def described(output: Target, errors: Target, rows_done: int, rows_failed: int) -> dict[str, Any]:
    """A committed part, as its job records it for the manifest."""
    assert output.written is not None and errors.written is not None
    return {"output": _listing(output.written, rows_done), "errors": _listing(errors.written, rows_failed)}


def _listing(written: Written, rows: int) -> dict[str, Any]:
    return {"key": written.name, "rows": rows, "bytes": written.bytes, "sha256": written.sha256}


def commit(settings: Settings, spec: JobSpec, parts: list[dict[str, Any]]) -> None:
    """For a dataset: write the manifest of its parts, then (with overwrite) delete the old parts.
    For a table: the parts' staged rows into it, in one transaction."""
    if is_table_uri(spec.output):
        staging.commit(settings, spec, parts)
        return
    prefix = dataset(spec)
    if prefix is None:
        return
    store = _store(settings, prefix)
    client = store.client()
    manifest = prefix.under(MANIFEST)
    if not spec.overwrite and s3.exists(store.fs(), store.name, manifest):
        raise OutputExists(
            f"output {prefix} already holds a dataset ({MANIFEST} exists): choose another prefix, or ask to "
            'replace it ("overwrite": true; modelyard jobs submit --overwrite)'
        )
    files = [item["output"] for item in parts]
    errors = [item["errors"] for item in parts]
    document = {
        "job_id": spec.id,
        "model": spec.model,
        "model_version": spec.version,
        "format": spec.format,
        "input": spec.input,
        "rows": sum(item["rows"] for item in files),
        "rows_failed": sum(item["rows"] for item in errors),
        "files": files,
        "errors": errors,
        "committed_at": datetime.now(UTC).isoformat(),
    }
    upload.put(client, store.name, manifest, json.dumps(document, indent=2).encode() + b"\n")
    upload.abort_stale(client, store.name, prefix, f"-{spec.id}.")  # a killed attempt's unfinished parts
    if spec.overwrite:
        ours = {item["key"] for item in [*files, *errors]} | {manifest.key}
        old = [
            key
            for key in upload.keys_under(client, store.name, prefix)
            if _is_part(prefix, key) and key not in ours
        ]
        upload.delete(client, store.name, prefix.bucket, old)


def _is_part(prefix: ObjectUri, key: str) -> bool:
    name = key[len(prefix.key) :].removeprefix(ERRORS_FOLDER)
    return "/" not in name and name.startswith("part-")


def discard(settings: Settings, spec: JobSpec) -> None:
    """Remove what a failed or canceled job wrote to a store, and abort its unfinished uploads."""
    if is_table_uri(spec.output):
        staging.discard(settings, spec)
        return
    uri = object_uri(spec.output, "output")
    if uri is None:
        return
    store = _store(settings, uri)
    client = store.client()
    if uri.is_prefix:
        mine = [key for key in upload.keys_under(client, store.name, uri) if f"-{spec.id}." in key]
        upload.abort_stale(client, store.name, uri, f"-{spec.id}.")
    else:
        hidden = staging_prefix(spec, uri)
        mine = upload.keys_under(client, store.name, hidden)
        upload.abort_stale(client, store.name, hidden, "")
    upload.delete(client, store.name, uri.bucket, mine)
