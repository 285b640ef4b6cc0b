import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.errors import UnparseableFile, UnsupportedFormat
from modelyard.formats import detect_format
from modelyard.tabular import TableWriter, read_chunks, read_table, write_table
from tests import factories


@pytest.mark.parametrize(
    ("filename", "content_type", "expected"),
    [
        ("a.csv", None, "csv"),
        ("a.PARQUET", None, "parquet"),
        ("a.ndjson", None, "jsonl"),
        ("upload", "text/csv; charset=utf-8", "csv"),
        ("blob", "application/x-ndjson", "jsonl"),
    ],
)
def test_format_detection(filename: str, content_type: str | None, expected: str) -> None:
    assert detect_format(filename, content_type) == expected


def test_unknown_format_says_how_to_fix() -> None:
    with pytest.raises(UnsupportedFormat, match=r"\?format=csv"):
        detect_format("data.xlsx", "application/octet-stream")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_round_trip(fmt: str) -> None:
    data = factories.frame(5)
    table = read_table(write_table(data, fmt), fmt)
    assert list(table.frame.columns) == list(data.columns)
    assert len(table.frame) == 5
    assert table.text_values == (fmt == "csv")
    assert (table.records is not None) == (fmt == "jsonl")


def test_csv_parse_error_names_the_line() -> None:
    with pytest.raises(UnparseableFile) as caught:
        read_table(b"a,b\n1,2\n3,4,5,6\n", "csv")
    assert caught.value.details[0]["line"] == 3


def test_jsonl_parse_error_names_the_line() -> None:
    with pytest.raises(UnparseableFile) as caught:
        read_table(b'{"a": 1}\n{"a": \n', "jsonl")
    assert caught.value.details[0]["line"] == 2
    with pytest.raises(UnparseableFile, match="not a JSON object"):
        read_table(b"[1, 2]\n", "jsonl")


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_empty_or_broken_files(fmt: str) -> None:
    with pytest.raises(UnparseableFile):
        read_table(b"", fmt)
    with pytest.raises(UnparseableFile):
        read_table(b"\xff\xfe\x00garbage\x00" if fmt != "jsonl" else b"\xff\xfe", fmt)


def test_jsonl_keeps_every_digit_and_writes_null_for_missing() -> None:
    data = pd.DataFrame({"p": [0.1 + 0.2, 1 / 3], "label": ["a", None]})
    written = write_table(data, "jsonl")
    assert written.decode().splitlines()[1] == '{"p": 0.3333333333333333, "label": null}'
    assert read_table(written, "jsonl").frame["p"].tolist() == [0.1 + 0.2, 1 / 3]


CSV_WITH_TRAPS = (
    b'id,"note, with comma",n\n'
    b'1,"a ""quoted""\nline break",1\n'  # row 0: a newline inside quotes
    b"2,x\n"  # row 1: too few fields
    b"\n"  # a blank line is no row
    b"3,y,3\r\n"  # row 2
    b"4,z,4,extra\n"  # row 3: too many fields
    b"5,,5"  # row 4: no final newline, empty value
)


def test_csv_chunks_number_rows_as_in_the_file() -> None:
    chunks = list(read_chunks(io.BytesIO(CSV_WITH_TRAPS), "csv", chunk_rows=2))
    rows = [int(r) for chunk in chunks for r in chunk.rows]
    ids = [v for chunk in chunks for v in chunk.table.frame["id"]]
    malformed = [(m.row, m.message, m.text) for chunk in chunks for m in chunk.malformed]
    assert list(zip(rows, ids, strict=True)) == [(0, "1"), (2, "3"), (4, "5")]
    assert malformed == [
        (1, "expected 3 fields, found 2", "2,x"),
        (3, "expected 3 fields, found 4", "4,z,4,extra"),
    ]
    first = chunks[0].table.frame
    assert first["note, with comma"].tolist() == ['a "quoted"\nline break', "y"]
    assert chunks[-1].table.frame["note, with comma"].isna().all()  # an empty value is null
    assert all(chunk.table.text_values for chunk in chunks)


def test_a_malformed_row_refuses_an_upload_with_its_line() -> None:
    with pytest.raises(UnparseableFile) as caught:
        read_table(b"a,b\n1,2\n3\n", "csv")
    assert caught.value.details == [{"row": 1, "line": 3, "message": "expected 2 fields, found 1"}]


def test_header_only_csv_gives_one_empty_chunk_with_the_columns() -> None:
    [chunk] = read_chunks(io.BytesIO(b"a,b\n"), "csv", chunk_rows=10)
    assert chunk.table.arrow.column_names == ["a", "b"] and chunk.table.arrow.num_rows == 0


def test_parquet_is_read_a_chunk_at_a_time_with_its_row_count() -> None:
    data = factories.frame(25)
    buffer = io.BytesIO()
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), buffer, row_group_size=10)
    buffer.seek(0)
    chunks = list(read_chunks(buffer, "parquet", chunk_rows=10))
    assert [len(c.rows) for c in chunks] == [10, 10, 5]
    assert [int(c.rows[0]) for c in chunks] == [0, 10, 20]
    assert {c.rows_total for c in chunks} == {25} and chunks[-1].progress == 1.0
    assert pd.concat([c.table.frame for c in chunks], ignore_index=True).equals(data)


def test_jsonl_rows_are_lines_and_bad_lines_are_reported() -> None:
    content = b'{"a": 1}\n\n[1, 2]\n{"a": 2, "b": "x"}\n{oops\n'
    chunks = list(read_chunks(io.BytesIO(content), "jsonl", chunk_rows=10))
    assert [int(r) for c in chunks for r in c.rows] == [0, 3]
    assert [(m.row, m.message, m.text) for c in chunks for m in c.malformed] == [
        (2, "not a JSON object", "[1, 2]"),
        (4, "not JSON: Expecting property name enclosed in double quotes at character 2", "{oops"),
    ]
    assert chunks[0].table.records == [{"a": 1}, {"a": 2, "b": "x"}]


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_writer_keeps_columns_and_values_chunk_after_chunk(fmt: str, tmp_path: Path) -> None:
    first = pa.table({"id": ["a,1", "b"], "p": [0.1 + 0.2, 1 / 3]})
    second = pa.table({"id": ["c"], "p": [2.5]})
    with TableWriter(tmp_path / f"out.{fmt}", fmt) as writer:
        writer.write(first)
        writer.write(second)
    [chunk] = read_chunks(tmp_path / f"out.{fmt}", fmt, chunk_rows=100)
    frame = chunk.table.frame
    assert frame["id"].tolist() == ["a,1", "b", "c"]
    assert pd.to_numeric(frame["p"]).tolist() == [0.1 + 0.2, 1 / 3, 2.5]


def test_plain_csv_output_is_not_quoted() -> None:
    written = write_table(pa.table({"id": ["a", "b"], "n": [1, 2]}), "csv").decode()
    assert written == "id,n\na,1\nb,2\n"
    quoted = write_table(pa.table({"id": ['say "hi"', "b"]}), "csv").decode()
    assert quoted == 'id\n"say ""hi"""\n"b"\n'
