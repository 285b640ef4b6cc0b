"""Reading and writing the tabular files modelyard scores: CSV, Parquet and JSON Lines."""

import io
import json
import re
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

import pandas as pd

from modelyard.errors import UnparseableFile, UnsupportedFormat

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


@dataclass
class Table:
    frame: pd.DataFrame
    """Every column of the input as read; extra columns pass through to the output."""
    text_values: bool = False
    """True when every value arrived as text (CSV) and numbers still have to be parsed."""
    records: list[dict[str, Any]] | None = None
    """The parsed records, for inputs made of JSON objects (a key can be absent in one record)."""

    @classmethod
    def from_records(cls, records: list[dict[str, Any]]) -> "Table":
        return cls(frame=pd.DataFrame.from_records(records), records=records)


def detect_format(filename: str | None, content_type: str | None, explicit: str | None = None) -> str:
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
        "name it .csv, .parquet or .jsonl, or pass ?format=csv|parquet|jsonl"
    )


def read_table(content: bytes, fmt: str) -> Table:
    readers = {"csv": _read_csv, "parquet": _read_parquet, "jsonl": _read_jsonl}
    table = readers[fmt](content)
    if table.frame.empty:
        raise UnparseableFile(f"the {fmt} file has no rows to score")
    return table


def _read_csv(content: bytes) -> Table:
    try:
        # Everything as text: the input schema, not pandas' guess, decides what is a number.
        frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, na_values=[""])
    except UnicodeDecodeError as exc:
        raise UnparseableFile(f"the CSV file is not UTF-8 text: {exc}") from exc
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        line = re.search(r"line (\d+)", str(exc))
        details = [{"line": int(line.group(1)), "message": str(exc)}] if line else []
        raise UnparseableFile(f"the CSV file cannot be parsed: {exc}", details) from exc
    return Table(frame=frame, text_values=True)


def _read_parquet(content: bytes) -> Table:
    import pyarrow

    try:
        frame = pd.read_parquet(io.BytesIO(content))
    except (pyarrow.ArrowException, OSError, ValueError) as exc:
        raise UnparseableFile(f"the Parquet file cannot be read: {exc}") from exc
    return Table(frame=frame.reset_index(drop=True))


def _read_jsonl(content: bytes) -> Table:
    records: list[dict[str, Any]] = []
    for number, line in enumerate(content.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            detail = {"row": len(records), "line": number, "message": str(exc)}
            raise UnparseableFile(
                f"line {number} of the JSON Lines file is not JSON: {exc}", [detail]
            ) from exc
        if not isinstance(record, dict):
            detail = {"row": len(records), "line": number, "message": "expected a JSON object"}
            raise UnparseableFile(f"line {number} of the JSON Lines file is not a JSON object", [detail])
        records.append(record)
    return Table.from_records(records)


def write_table(frame: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.to_csv(index=False).encode()
    if fmt == "parquet":
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False)
        return buffer.getvalue()
    # Not DataFrame.to_json: it rounds floats to 10 significant digits.
    clean = frame.astype(object).where(frame.notna(), None)
    lines = (
        json.dumps(record, ensure_ascii=False, default=str) for record in clean.to_dict(orient="records")
    )
    return ("\n".join(lines) + "\n").encode()
