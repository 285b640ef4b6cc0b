"""Split files: every row in exactly one part, numbered as in the whole file; joined parts are the file."""

import io
import itertools
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelyard.batch import parts
from modelyard.batch.files import score_chunks, score_file
from modelyard.batch.parts import Part, join, plan, read_part
from modelyard.registry.store import Registry
from modelyard.serving import load as loading
from modelyard.tabular import as_opener, write_table
from tests import factories
from tests.unit.test_tabular import CSV_WITH_TRAPS


@pytest.mark.parametrize("part_rows", [1, 2, 3, 100])
def test_csv_parts_cover_every_row_once(tmp_path: Path, part_rows: int) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(CSV_WITH_TRAPS)
    parts = plan(source, "csv", part_rows)
    assert sum(part.rows for part in parts) == 5
    seen, malformed = [], []
    with source.open("rb") as handle:
        for part in parts:
            for chunk in read_part(handle, "csv", part, 2, source):
                seen += [(int(r), v) for r, v in zip(chunk.rows, chunk.table.frame["id"], strict=True)]
                malformed += [m.row for m in chunk.malformed]
    assert seen == [(0, "1"), (2, "3"), (4, "5")]
    assert malformed == [1, 3]


def test_jsonl_and_parquet_parts(tmp_path: Path) -> None:
    data = factories.frame(25)
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_bytes(write_table(data, "jsonl"))
    parquet = tmp_path / "in.parquet"
    pq.write_table(pa.Table.from_pandas(data, preserve_index=False), parquet, row_group_size=5)
    for path, fmt, expected in [(jsonl, "jsonl", [8, 8, 9]), (parquet, "parquet", [10, 5, 10])]:
        parts = plan(path, fmt, 10)
        assert [p.rows for p in parts] == expected  # even shares, cut at row-group boundaries
        assert len(plan(path, fmt, 10, workers=2)) == 4  # no worker left alone with the last part
        with path.open("rb") as handle:
            rows = [int(r) for p in parts for c in read_part(handle, fmt, p, 4, path) for r in c.rows]
        assert rows == list(range(25))


@pytest.mark.parametrize("fmt", ["csv", "parquet", "jsonl"])
def test_scored_parts_joined_equal_the_whole_file_scored(
    registry: Registry, tmp_path: Path, fmt: str
) -> None:
    registry.register(factories.save(factories.classifier(), tmp_path / "m.joblib"), "churn")
    model = loading.load(registry.get("churn", 1), n_jobs=1)
    data = factories.frame(97, seed=4)
    source = tmp_path / f"in.{fmt}"
    if fmt == "parquet":
        pq.write_table(pa.Table.from_pandas(data, preserve_index=False), source, row_group_size=10)
    else:
        source.write_bytes(write_table(data, fmt))
    score_file(model, source, fmt, tmp_path / f"whole.{fmt}", tmp_path / "whole.errors.jsonl", chunk_rows=7)

    outputs = []
    with source.open("rb") as handle:
        for part in plan(source, fmt, 30):
            out = tmp_path / f"part{part.index}.{fmt}"
            score_chunks(model, read_part(handle, fmt, part, 7, source), out, tmp_path / "e.jsonl", fmt)
            outputs.append(out)
    with (tmp_path / f"joined.{fmt}").open("wb") as sink:
        join([as_opener(out) for out in outputs], fmt, sink)
    if fmt == "parquet":
        assert pq.read_table(tmp_path / "joined.parquet").equals(pq.read_table(tmp_path / "whole.parquet"))
    else:
        assert (tmp_path / f"joined.{fmt}").read_bytes() == (tmp_path / f"whole.{fmt}").read_bytes()


def test_plan_of_a_small_file_is_one_part(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(io.BytesIO(CSV_WITH_TRAPS).read())
    assert len(plan(source, "csv", 1000)) == 1


def test_a_part_crosses_the_queue_as_json_and_back() -> None:
    part = Part(index=2, first_row=40, rows=20, row_groups=(4, 5))
    assert Part.from_dict(json.loads(json.dumps(part.to_dict()))) == part
    assert Part.from_dict({"index": 0, "first_row": 0, "rows": 3, "offset": 9, "length": 30}).row_groups == ()


def test_checkpoints_every_step_rows_and_at_the_end() -> None:
    data = b"".join(b"%d\n" % i for i in range(10)) + b"10"
    rows, offsets = parts._checkpoints(io.BytesIO(data), 4, quoted=False)
    assert rows.tolist() == [0, 4, 8, 11]
    assert offsets.tolist() == [0, 8, 16, len(data)]


@pytest.mark.parametrize(
    ("part_rows", "workers", "count"), [(10, 1, 10), (10, 3, 12), (30, 2, 4), (99, 1, 2)]
)
def test_parts_are_even_and_a_multiple_of_the_workers(
    tmp_path: Path, part_rows: int, workers: int, count: int
) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"n\n" + b"".join(b"%d\n" % i for i in range(100)))
    planned = plan(source, "csv", part_rows, workers)
    assert len(planned) == count
    assert [p.index for p in planned] == list(range(count))
    sizes = [p.rows for p in planned]
    assert sum(sizes) == 100
    assert max(sizes) - min(sizes) <= max(1, part_rows // 4)  # cut at the nearest checkpoint
    assert planned[0].offset == 2 and all(
        a.offset + a.length == b.offset and a.first_row + a.rows == b.first_row
        for a, b in itertools.pairwise(planned)
    )


def test_the_last_row_without_a_newline_keeps_its_last_byte(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_bytes(b"a,b\n1,2\n3,45")
    values = []
    with source.open("rb") as handle:
        for part in plan(source, "csv", 1):
            values += [
                v for chunk in read_part(handle, "csv", part, 10, source) for v in chunk.table.frame["b"]
            ]
    assert [str(v) for v in values] == ["2", "45"]


def test_joining_no_parquet_parts_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^no parts to join$"):
        join([], "parquet", io.BytesIO())
