"""Scoring a whole file, chunk by chunk: the core of batch jobs and `modelyard score`. No Redis here.

Memory stays flat whatever the file size: one chunk is read, validated, scored and written at a
time. The output and the errors file are written under temporary names and renamed into place only
when every chunk is done, so no reader ever sees a partial file, and a stopped or failed run leaves
nothing behind, but for a file of which no row was valid: its errors file says why. Every input row
ends up exactly once in the output or in the errors file.
"""

import json
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa

from modelyard.batch import inputs, outputs
from modelyard.batch.places import FileTarget, Target
from modelyard.batch.progress import Progress, counted
from modelyard.batch.spec import JobSpec
from modelyard.config import Settings
from modelyard.errors import InvalidInput
from modelyard.formats import output_format
from modelyard.reports.tally import Tally
from modelyard.scoring.predict import LoadedModel, predict, refuse_clashes, with_predictions
from modelyard.scoring.validation import check, listed, where
from modelyard.tabular import Chunk, read_chunks

MODEL_COLUMNS = ["model", "model_version"]
"""Appended after the predictions, so a scored file says what scored it."""
AnyPath = TypeVar("AnyPath", bound=PurePath)


@dataclass
class BatchResult:
    rows_done: int
    rows_failed: int
    output: str
    errors_output: str
    seconds: float
    warnings: list[dict[str, Any]] = field(default_factory=list)
    """Rows scored with a caveat, by field and code: [{"field", "code", "count"}]."""
    tally: Tally | None = None
    """What the run's report is made of, when one was asked for."""

    @property
    def rows_total(self) -> int:
        return self.rows_done + self.rows_failed


def output_files(
    place: AnyPath, folder: bool, stem: str, input_format: str, requested_format: str | None
) -> tuple[AnyPath, AnyPath, str]:
    """Where a run writes its output and errors files, and the output's format: in a folder, as
    `<stem>.predictions.<format>` and `<stem>.errors.jsonl`; else at `place`, with its errors beside
    it as `<place without suffix>.errors.jsonl`. The format is the one asked for, else the output's
    name says it, else the input's. The rule for `modelyard score` and for batch jobs alike."""
    fmt = output_format(requested_format, None if folder else str(place), input_format)
    if folder:
        return place / f"{stem}.predictions.{fmt}", place / f"{stem}.errors.jsonl", fmt
    return place, place.with_name(f"{place.with_suffix('').name}.errors.jsonl"), fmt


ProgressHook = Callable[[Progress], None]
"""Called after every chunk; it may raise to stop the run (nothing is left behind)."""


def score_file(
    model: LoadedModel,
    source: Path,
    input_format: str,
    output: Path | Target,
    errors_output: Path | Target,
    output_format: str | None = None,
    chunk_rows: int = 50_000,
    fail_fast: bool = False,
    on_progress: ProgressHook | None = None,
) -> BatchResult:
    with source.open("rb") as handle:
        chunks = read_chunks(handle, input_format, chunk_rows)
        return score_chunks(
            model, chunks, output, errors_output, output_format or input_format, fail_fast, on_progress
        )


def score_spec(
    settings: Settings,
    spec: JobSpec,
    model: LoadedModel,
    on_progress: ProgressHook | None,
    tally: Tally | None = None,
) -> BatchResult:
    """A job's input scored in one piece into its outputs, committed: by a worker, or by
    `modelyard score` for places in stores."""
    output, errors = outputs.whole(settings, spec)
    result = score_chunks(
        model,
        inputs.whole(settings, spec, settings.chunk_rows),
        output=output,
        errors_output=errors,
        output_format=spec.format,
        fail_fast=spec.fail_fast,
        on_progress=on_progress,
        keep=spec.keep,
        tally=tally,
    )
    outputs.commit(settings, spec, [outputs.described(output, errors, result.rows_done, result.rows_failed)])
    if outputs.in_place(spec):  # its part is the dataset's or the table's now
        result.output, result.errors_output = spec.output, spec.errors_output
    return result


def score_chunks(
    model: LoadedModel,
    chunks: Iterable[Chunk],
    output: Path | Target,
    errors_output: Path | Target,
    output_format: str,
    fail_fast: bool = False,
    on_progress: ProgressHook | None = None,
    whole_file: bool = True,
    keep: tuple[str, ...] = (),
    tally: Tally | None = None,
) -> BatchResult:
    """Score chunk after chunk into `output`, invalid rows into `errors_output`. A whole file of
    which no row is valid fails (a wrong column type, say), with no output but its errors file;
    pass whole_file=False for a part. Each target is committed only if the run succeeds. With
    `keep`, the output holds only those input columns, then what scoring added. A `tally` counts
    the chunks for the run's report as they pass."""
    output, errors_output = _target(output), _target(errors_output)
    started = time.perf_counter()
    done = failed = 0
    first_problem: dict[str, Any] | None = None
    warned: Counter[tuple[str, str]] = Counter()
    refused: InvalidInput | None = None
    with errors_output.open() as errors_file:
        try:
            with output.writer(output_format) as writer:
                for chunk in chunks:
                    chunk_started = time.perf_counter()
                    scored, problems, warnings = score_chunk(model, chunk, fail_fast, tally)
                    writer.write(kept(scored, keep, model))
                    errors_file.write(b"".join(json.dumps(p).encode() + b"\n" for p in problems))
                    done += scored.num_rows
                    failed += len(problems)
                    first_problem = first_problem or (problems[0] if problems else None)
                    warned.update(warnings)
                    if on_progress:
                        elapsed = time.perf_counter() - chunk_started
                        on_progress(
                            Progress(done, failed, chunk.progress, chunk.rows_total, elapsed, counted(warned))
                        )
                if whole_file and first_problem is not None and not done:
                    if on_progress:  # the whole file is read: its row count is known
                        on_progress(Progress(done, failed, 1.0, failed, 0.0, counted(warned)))
                    refused = nothing_valid(failed, first_problem)
                    raise refused  # no output; the errors file, committed below, says why
        except InvalidInput as problem:
            if problem is not refused:
                raise
    if refused is not None:
        raise refused
    return BatchResult(
        done, failed, str(output), str(errors_output), time.perf_counter() - started, counted(warned), tally
    )


def kept(scored: pa.Table, keep: tuple[str, ...], model: LoadedModel) -> pa.Table:
    if not keep:
        return scored
    return scored.select([*keep, *model.output_columns, *MODEL_COLUMNS])


def _target(place: Path | Target) -> Target:
    return FileTarget(place) if isinstance(place, Path) else place


def nothing_valid(failed: int, first: dict[str, Any]) -> InvalidInput:
    return InvalidInput(
        f"no row could be scored: all {failed} rows are invalid; the first, {where(first)}"
        f"field {first['field']!r}: {first['message']}",
        [first],
    )


def score_chunk(
    model: LoadedModel, chunk: Chunk, fail_fast: bool, tally: Tally | None = None
) -> tuple[pa.Table, list[dict[str, Any]], Counter[tuple[str, str]]]:
    """The chunk's valid rows scored, one error record per invalid row (row numbers 1-based), and
    how many valid rows have each kind of warning; counted in `tally` if one is given."""
    table = chunk.table
    assert table.arrow is not None
    refuse_clashes(table.arrow.column_names, [*model.output_columns, *MODEL_COLUMNS])
    checked = check(table, model.schema)
    if checked.column_problems:
        items, _ = listed(checked.column_problems)
        raise InvalidInput(f"the file cannot be scored: {items[0]['message']}", items)
    bad = checked.bad_rows()
    problems = _row_problems(checked.problems, chunk)
    if fail_fast and problems:
        first = problems[0]
        raise InvalidInput(
            f"{where(first)}field {first['field']!r}: {first['message']} "
            "(fail_fast is on: the first bad row stops the job)",
            [first],
        )
    good = ~bad
    features = checked.frame[good] if bad.any() else checked.frame
    passthrough = table.arrow.filter(pa.array(good)) if bad.any() else table.arrow
    if len(features):
        predictions, probabilities = predict(model, features, bulk=True)
    else:
        predictions, probabilities = np.empty(0, dtype=object), np.empty((0, len(model.classes or [])))
    if tally is not None:
        tally.add_rows(features, predictions)
        tally.add_problems(problems)
    count = passthrough.num_rows
    extra = {
        "model": pa.repeat(pa.scalar(model.name), count),
        "model_version": pa.repeat(pa.scalar(model.version, pa.int64()), count),
    }
    warnings = Counter(
        {
            (w.field, w.code): int(np.count_nonzero(good[w.rows]))
            for w in checked.warnings
            if w.rows is not None
        }
    )
    return with_predictions(passthrough, model, predictions, probabilities, extra), problems, +warnings


def _row_problems(findings: list[Any], chunk: Chunk) -> list[dict[str, Any]]:
    """One record per bad row, in file order: its first problem, and the others if there are more."""
    by_row: dict[int, list[dict[str, Any]]] = {}
    for malformed in chunk.malformed:
        by_row[malformed.row] = [
            {"field": None, "code": "malformed_row", "message": malformed.message, "value": malformed.text}
        ]
    for finding in findings:
        for position in finding.rows:
            row = int(chunk.rows[position])
            item = finding.describe(int(position), None)
            del item["row"]
            by_row.setdefault(row, []).append(item)
    line_of = chunk.table.line_of
    keys = _keys_by_row(chunk) if chunk.keys is not None else None
    records = []
    for row in sorted(by_row):  # in file order, as line_of asks
        first, *others = by_row[row]
        record = {
            **({"key": keys[row]} if keys is not None else {"row": row}),
            **({"object": chunk.source} if chunk.source else {}),
            **({"line": line_of(row)} if line_of else {}),
            **first,
        }
        if others:
            record["other_problems"] = others
        records.append(record)
    return records


def _keys_by_row(chunk: Chunk) -> dict[int, dict[str, Any]]:
    """A table's rows name themselves by key: rows have no order in a table."""
    assert chunk.keys is not None
    return dict(zip((int(row) for row in chunk.rows), chunk.keys.to_pylist(), strict=True))
