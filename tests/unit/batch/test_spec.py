"""The job spec as it crosses the queue: the same JSON out as in, paths that stay on the data volume,
and the job names RQ runs by."""

import json
from pathlib import Path, PurePosixPath

import pytest
from rq.utils import import_attribute

from modelyard import jobs
from modelyard.batch import queue, tasks
from modelyard.batch.files import output_files
from modelyard.batch.progress import merge_warnings
from modelyard.batch.spec import ENDED, STATUSES, JobSpec, Marker
from modelyard.errors import InvalidPath, InvalidRequest

STORED = {
    "id": "abc",
    "model": "churn",
    "version": 3,
    "input": "incoming/a.csv",
    "input_format": "csv",
    "output": "scored/a.predictions.csv",
    "errors_output": "scored/a.errors.jsonl",
    "format": "csv",
    "fail_fast": False,
    "origin": "api",
    "submitted_at": "2026-12-01T02:00:00+00:00",
}
MARKER = {"path": ".modelyard/scored/n/x.json", "input": "a.csv", "sha256": "ff", "size": 9, "mtime": 1.5}


@pytest.mark.parametrize("stored", [STORED, {**STORED, "marker": MARKER}])
def test_the_json_comes_back_as_it_went_keys_in_order(stored: dict) -> None:
    spec = JobSpec.from_dict(json.loads(json.dumps(stored)))
    assert json.dumps(spec.to_dict()) == json.dumps(stored)
    assert (spec.marker is None) == ("marker" not in stored)


def test_a_marker_is_typed_and_unknown_keys_of_a_newer_release_are_dropped() -> None:
    spec = JobSpec.from_dict({**STORED, "marker": MARKER, "added_later": 1})
    assert spec.marker == Marker(**MARKER)
    assert "added_later" not in spec.to_dict()


@pytest.mark.parametrize("args", [(), ("not a spec",), ({"id": "x"},), ([STORED],)])
def test_jobs_that_are_not_ours_have_no_spec(args: tuple) -> None:
    assert JobSpec.of(args) is None


def test_the_spec_of_a_part_is_its_first_argument() -> None:
    assert JobSpec.of((STORED, {"index": 0})) == JobSpec.from_dict(STORED)


def test_paths_resolve_inside_the_data_volume(tmp_path: Path) -> None:
    spec = JobSpec.from_dict(STORED)
    root = tmp_path.resolve()
    assert spec.input_path(tmp_path) == root / "incoming" / "a.csv"
    assert spec.errors_path(tmp_path) == root / "scored" / "a.errors.jsonl"
    assert spec.parts_folder(tmp_path) == root / "scored" / ".abc.parts"
    with pytest.raises(InvalidPath, match="leaves the data volume"):
        JobSpec.from_dict({**STORED, "output": "../elsewhere.csv"}).output_path(tmp_path)


def test_statuses() -> None:
    assert STATUSES == ("queued", "started", "finished", "failed", "canceled")
    assert sorted(ENDED) == ["canceled", "failed", "finished"]


def test_the_names_rq_runs_by_are_the_task_functions() -> None:
    assert (queue.SCORE, queue.SCORE_PART, queue.JOIN_PARTS) == (
        "modelyard.jobs.score",
        "modelyard.jobs.score_part",
        "modelyard.jobs.join_parts",
    )
    assert import_attribute(queue.SCORE) is tasks.score is jobs.score
    assert import_attribute(queue.SCORE_PART) is tasks.score_part
    assert import_attribute(queue.JOIN_PARTS) is tasks.join_parts


@pytest.mark.parametrize(
    ("place", "folder", "requested", "expected"),
    [
        ("scored", True, None, ("scored/a.predictions.csv", "scored/a.errors.jsonl", "csv")),
        ("scored", True, "parquet", ("scored/a.predictions.parquet", "scored/a.errors.jsonl", "parquet")),
        ("out/b.jsonl", False, None, ("out/b.jsonl", "out/b.errors.jsonl", "jsonl")),
        ("out/b.v2.parquet", False, "parquet", ("out/b.v2.parquet", "out/b.v2.errors.jsonl", "parquet")),
        ("out/b", False, None, ("out/b", "out/b.errors.jsonl", "csv")),
    ],
)
def test_output_files_are_named_by_one_rule(place: str, folder: bool, requested, expected: tuple) -> None:
    output, errors, fmt = output_files(PurePosixPath(place), folder, "a", "csv", requested)
    assert (str(output), str(errors), fmt) == expected
    local = output_files(Path(place), folder, "a", "csv", requested)  # the CLI's local paths: same rule
    assert (str(local[0]), str(local[1]), local[2]) == expected


def test_an_output_named_as_another_format_than_asked_is_refused() -> None:
    with pytest.raises(InvalidRequest, match=r"'out/b\.csv' is named as csv but the format asked for is"):
        output_files(PurePosixPath("out/b.csv"), False, "a", "csv", "parquet")


def test_warnings_of_parts_are_summed_by_field_and_code() -> None:
    merged = merge_warnings(
        [
            [{"field": "color", "code": "unknown_category", "count": 2}],
            [],
            [
                {"field": "color", "code": "unknown_category", "count": 3},
                {"field": "age", "code": "rounded", "count": 1},
            ],
        ]
    )
    assert merged == [
        {"field": "age", "code": "rounded", "count": 1},
        {"field": "color", "code": "unknown_category", "count": 5},
    ]


def test_each_path_says_which_it_is_when_refused(tmp_path: Path) -> None:
    spec = JobSpec.from_dict(
        {**STORED, "input": "/in.csv", "output": "/out.csv", "errors_output": "/e.jsonl"}
    )
    for method, what in [
        (spec.input_path, "input"),
        (spec.output_path, "output"),
        (spec.errors_path, "output"),
    ]:
        with pytest.raises(InvalidPath) as refused:
            method(tmp_path)
        assert refused.value.message.startswith(f"{what} '/")
    assert Marker(**MARKER).to_dict() == MARKER
