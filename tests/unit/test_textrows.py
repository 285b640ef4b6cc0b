"""Rows and lines in the bytes of CSV and JSON Lines files, against a byte-by-byte reference."""

import io
from pathlib import Path

import numpy as np
import pytest

from modelyard import textrows
from modelyard.textrows import CsvLines, newlines_before


def reference(data: bytes, quoted: bool, skip_empty: bool) -> tuple[list[int], list[int]]:
    """Where each row ends and the line it starts on, byte by byte."""
    ends, lines, in_quotes, start, line, start_line = [], [], False, 0, 1, 1
    for position, byte in enumerate(data):
        if quoted and byte == ord('"'):
            in_quotes = not in_quotes
        elif byte == ord("\n"):
            line += 1
            if not in_quotes:
                if not (skip_empty and data[start : position + 1] in (b"\n", b"\r\n")):
                    ends.append(position + 1)
                    lines.append(start_line)
                start, start_line = position + 1, line
    if start < len(data):
        ends.append(len(data))
        lines.append(start_line)
    return ends, lines


TRICKY = b'a,"b\nc"\r\n\r\n\n"x""y",2\n"\n\n",3\r\n\n4,5\n\r\n"q\r\n"\n6,7'
CASES = (TRICKY, TRICKY + b"\n", b"\n" + TRICKY, b"\r\n\r\n", b"", b"one")


@pytest.mark.parametrize("block", [1, 2, 3, 5, 8, 13, 4096])
@pytest.mark.parametrize("quoted", [True, False])
def test_rows_and_lines_are_what_a_byte_by_byte_scan_says_whatever_the_blocks(
    monkeypatch: pytest.MonkeyPatch, block: int, quoted: bool
) -> None:
    monkeypatch.setattr(textrows, "SCAN_BLOCK", block)
    for data in CASES:
        spans = list(textrows.row_spans(io.BytesIO(data), quoted, skip_empty=quoted))
        ends = [int(end) for found, _ in spans for end in found]
        lines = [int(line) for _, found in spans for line in found]
        assert (ends, lines) == reference(data, quoted, skip_empty=quoted), (block, data)
        assert all(found.dtype == np.int64 and len(found) == len(on) for found, on in spans)


def test_newlines_before_an_offset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(textrows, "SCAN_BLOCK", 3)
    handle = io.BytesIO(b"a\nb\n\nc\n")
    assert [newlines_before(handle, offset) for offset in (0, 1, 2, 5, 6, 8, 100)] == [0, 0, 1, 3, 3, 4, 4]


def test_csv_lines_are_found_forward_only_from_an_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(textrows, "SCAN_BLOCK", 4)
    path = tmp_path / "in.csv"
    path.write_bytes(b'h,"x\ny"\n1,2\n\n"3\n3",4\n5,6\n')

    def at(offset: int):
        def opened():
            handle = path.open("rb")
            handle.seek(offset)
            return handle

        return opened

    lines = CsvLines(at(8), first_row=0)  # after the header, itself on two lines
    assert [lines.line(row) for row in (0, 0, 1, 2)] == [3, 3, 5, 7]
    with pytest.raises(ValueError, match="ask in increasing order"):
        lines.line(0)
    with pytest.raises(IndexError, match="no data row 3"):
        lines.line(3)
    part = CsvLines(at(13), first_row=1)  # a part of a split file: the lines above are counted
    assert [part.line(1), part.line(2)] == [5, 7]
