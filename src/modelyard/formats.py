"""The file formats modelyard reads and writes, and how a file's format is told. No heavy imports:
the CLI's HTTP-only commands load this and stay quick."""

import re
from pathlib import PurePath

from modelyard.errors import InvalidRequest, UnsupportedFormat

FORMATS = {
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
    "jsonl": "application/jsonl",
}
SUFFIXES = {
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
CONTENT_TYPES = {
    "text/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
    "application/jsonl": "jsonl",
    "application/x-ndjson": "jsonl",
    "application/x-jsonlines": "jsonl",
}


def detect_format(
    filename: str | None,
    content_type: str | None,
    explicit: str | None = None,
    how_to_say: str = "pass ?format=csv|parquet|jsonl",
) -> str:
    """The format asked for, else the file name's suffix, else the content type."""
    if explicit:
        if explicit not in FORMATS:
            raise UnsupportedFormat(f"format {explicit!r} is not one of {sorted(FORMATS)}")
        return explicit
    suffix = PurePath(filename or "").suffix.lower()
    if suffix in SUFFIXES:
        return SUFFIXES[suffix]
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type in CONTENT_TYPES:
        return CONTENT_TYPES[media_type]
    raise UnsupportedFormat(
        f"cannot tell the format of {filename or 'the upload'!r} ({content_type or 'no content type'}): "
        f"name it .csv, .parquet or .jsonl, or {how_to_say}"
    )


def output_format(explicit: str | None, output_name: str | None, input_format: str) -> str:
    """The format asked for, else the one the output's name says, else the input's; refused when
    the name says another format than the one asked for."""
    named = SUFFIXES.get(PurePath(output_name or "").suffix.lower())
    if explicit:
        fmt = detect_format(None, None, explicit)
        if named is not None and named != fmt:
            raise InvalidRequest(
                f"the output {output_name!r} is named as {named} but the format asked for is {fmt}: "
                "change one of them"
            )
        return fmt
    return named or input_format


def safe_stem(filename: str | None) -> str:
    """An uploaded file's name without its suffix, made safe for a path on the data volume and for
    a header: letters, digits, '.', '_' and '-' only, at most 100 of them."""
    stem = re.sub(r"[^A-Za-z0-9._-]", "_", PurePath(filename or "upload").stem)[:100]
    return stem or "upload"
