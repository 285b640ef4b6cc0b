import io
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.errors import UnparseableFile, UnsupportedFormat
from modelyard.formats import detect_format, safe_stem
from modelyard.tabular import (
    TableWriter,
    csv_header,
    csv_rows,
    jsonl_rows,
    parquet_file,
    parquet_rows,
    read_chunks,
    read_table,
    records_to_arrow,
    write_table,
)
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
    assert table.text_values == (fmt == "csv")
    if fmt == "csv":  # CSV is text: the values come back as written, parsed later against the schema
        pd.testing.assert_frame_equal(table.frame.astype(object), data.astype(str).astype(object))
    else:
        pd.testing.assert_frame_equal(table.frame, data, check_dtype=False)
        assert table.frame["age"].dtype == "int64" and table.frame["income"].dtype == "float64"
    assert table.records == (data.to_dict("records") if fmt == "jsonl" else None)


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


def test_csv_header_with_bom_quotes_and_crlf() -> None:
    handle = io.BytesIO(b'\xef\xbb\xbfid,"two\nlines",n\r\n1,a,2\r\n')
    assert csv_header(handle) == ["id", "two\nlines", "n"]
    [chunk] = csv_rows(handle, ["id", "two\nlines", "n"], chunk_rows=10, start_row=0)
    assert chunk.table.frame.to_dict("records") == [{"id": "1", "two\nlines": "a", "n": "2"}]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "the CSV file is empty: it has no header line of column names"),
        (b"\r\n1,2\n", "the CSV file is empty: it has no header line of column names"),
        (b"\xffid,n\n", "the CSV file is not UTF-8 text: 'utf-8' codec can't decode byte 0xff"),
        (b"id\rn,x\r\n1,2\n", "the CSV file's header line is not CSV (new-line character seen"),
    ],
)
def test_csv_header_errors(content: bytes, message: str) -> None:
    with pytest.raises(UnparseableFile) as caught:
        csv_header(io.BytesIO(content))
    assert caught.value.message.startswith(message)


def test_an_unclosed_quote_in_the_header_reads_to_the_end() -> None:
    assert csv_header(io.BytesIO(b'id,"open\nstill open\n')) == ["id", "open\nstill open"]


def test_csv_rows_from_the_middle_of_a_file() -> None:
    head = b"id,n\n" + b"".join(b"%d,%d\n" % (i, i) for i in range(5))
    tail = b"".join(b"%d,%d\n" % (i, i) for i in range(5, 12)).replace(b"8,8\n", b"8\n")
    handle = io.BytesIO(head + tail)
    handle.seek(len(head))  # a part of the file, as a worker reads it, its first row being row 5
    chunks = list(csv_rows(handle, ["id", "n"], chunk_rows=3, start_row=5))
    assert [c.rows.tolist() for c in chunks] == [[5, 6, 7], [9, 10, 11]]
    assert [c.table.frame["id"].tolist() for c in chunks] == [["5", "6", "7"], ["9", "10", "11"]]
    assert [[(m.row, m.text) for m in c.malformed] for c in chunks] == [[], [(8, "8")]]
    progress = [c.progress for c in chunks]
    assert progress == sorted(progress) and progress[-1] == 1.0 and all(0 < p <= 1 for p in progress)


def test_a_csv_read_whole_at_once_still_shows_progress_chunk_by_chunk() -> None:
    """The parser reads a small file in one go: progress follows the rows handed out, not the bytes
    read (a job's progress bar would stand at 100% from its first chunk)."""
    content = b"id\n" + b"".join(b"%d\n" % i for i in range(400))
    chunks = list(read_chunks(io.BytesIO(content), "csv", chunk_rows=100))
    assert [round(c.progress, 3) for c in chunks] == [0.25, 0.5, 0.75, 1.0]


def test_a_malformed_last_row_gets_a_chunk_of_its_own() -> None:
    chunks = list(read_chunks(io.BytesIO(b"a,b\n1,2\n3\n"), "csv", chunk_rows=1))
    assert [c.rows.tolist() for c in chunks] == [[0], []]
    assert [[m.row for m in c.malformed] for c in chunks] == [[], [1]]


def test_parquet_row_groups_of_a_part() -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(25))}), buffer, row_group_size=10)
    chunks = list(parquet_rows(parquet_file(buffer), [1, 2], chunk_rows=4, start_row=10))
    assert [c.rows.tolist() for c in chunks] == [
        [10, 11, 12, 13],
        [14, 15, 16, 17],
        [18, 19, 20, 21],
        [22, 23, 24],
    ]
    assert [c.table.frame["n"].tolist() for c in chunks][-1] == [22, 23, 24]
    assert [c.progress for c in chunks] == [4 / 15, 8 / 15, 12 / 15, 1.0]
    assert {c.rows_total for c in chunks} == {15}
    [empty] = parquet_rows(parquet_file(buffer), [], chunk_rows=4, start_row=0)
    assert empty.rows.tolist() == [] and empty.table.arrow.column_names == ["n"] and empty.progress == 1.0


def test_not_a_parquet_file() -> None:
    with pytest.raises(UnparseableFile) as caught:
        parquet_file(io.BytesIO(b"PAR1 but not really"))
    assert caught.value.message.startswith("the Parquet file cannot be read: ")


def test_jsonl_rows_of_a_part_stop_at_its_byte_limit() -> None:
    lines = [b'{"n": %d}\n' % i for i in range(10)]
    handle = io.BytesIO(b"".join(lines))
    handle.seek(len(b"".join(lines[:2])))
    limit = len(b"".join(lines[2:6]))
    chunks = list(jsonl_rows(handle, chunk_rows=3, start_row=2, limit=limit))
    assert [c.rows.tolist() for c in chunks] == [[2, 3, 4], [5]]
    assert [c.table.records for c in chunks][1] == [{"n": 5}]
    assert chunks[0].progress == len(b"".join(lines[2:5])) / limit and chunks[1].progress == 1.0
    [empty] = jsonl_rows(io.BytesIO(b""), chunk_rows=3, start_row=0, limit=None)
    assert empty.rows.tolist() == [] and empty.table.records == []


def test_jsonl_line_that_is_not_utf8() -> None:
    [chunk] = read_chunks(io.BytesIO(b'{"a": "\xff"}\n'), "jsonl", chunk_rows=10)
    assert [(m.row, m.message) for m in chunk.malformed] == [(0, "not UTF-8 text")]


def test_records_with_mixed_types_keep_every_key_and_value() -> None:
    table = records_to_arrow([{"a": 1, "b": "x"}, {"a": "one", "c": [1, 2]}, {"b": None}])
    assert table.column_names == ["a", "b", "c"]
    assert table.to_pydict() == {"a": ["1", '"one"', None], "b": ["x", None, None], "c": [None, [1, 2], None]}
    assert records_to_arrow([]).num_columns == 0


def test_chunks_with_other_columns_are_conformed_to_the_first(tmp_path: Path) -> None:
    with TableWriter(tmp_path / "out.csv", "csv") as writer:
        writer.write(pa.table({"id": ["a"], "n": [1]}))
        writer.write(pa.table({"n": [2], "extra": ["dropped"]}))
    assert (tmp_path / "out.csv").read_text() == "id,n\na,1\n,2\n"
    with pytest.raises(UnparseableFile) as caught, TableWriter(tmp_path / "o.parquet", "parquet") as writer:
        writer.write(pa.table({"n": [1]}))
        writer.write(pa.table({"n": ["not a number"]}))
    assert "a column changes type from one part of the file to the next" in caught.value.message
    assert caught.value.message.endswith("write the output as jsonl, which has no fixed column types")


def test_csv_without_a_header_line(tmp_path: Path) -> None:
    with TableWriter(tmp_path / "part.csv", "csv", header=False) as writer:
        writer.write(pa.table({"id": ["a"], "n": [1.5]}))
        writer.write(pa.table({"id": ["b,c"], "n": [2.0]}))
    assert (tmp_path / "part.csv").read_text() == 'a,1.5\n"b,c",2\n'


def test_dataframes_are_written_in_each_format() -> None:
    data = pd.DataFrame({"id": ["a", "b"], "p": [0.5, float("nan")], "flag": [True, False]})
    assert write_table(data, "csv").decode() == "id,p,flag\na,0.5,True\nb,,False\n"
    assert write_table(data, "jsonl").decode() == (
        '{"id": "a", "p": 0.5, "flag": true}\n{"id": "b", "p": null, "flag": false}\n'
    )
    parquet = pq.read_table(io.BytesIO(write_table(data, "parquet")))
    assert parquet.to_pydict() == {"id": ["a", "b"], "p": [0.5, None], "flag": [True, False]}


@pytest.mark.parametrize(
    ("filename", "stem"),
    [
        ("people.csv", "people"),
        ("../../etc/passwd.csv", "passwd"),
        ('a "quoted"; name.parquet', "a__quoted___name"),
        (None, "upload"),
        ("x" * 300 + ".csv", "x" * 100),
        ("é.csv", "_"),
    ],
)
def test_upload_names_are_made_safe_for_a_path_and_a_header(filename: str | None, stem: str) -> None:
    assert safe_stem(filename) == stem
