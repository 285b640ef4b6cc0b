import pandas as pd
import pytest

from modelyard.errors import UnparseableFile, UnsupportedFormat
from modelyard.tabular import detect_format, read_table, write_table
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
