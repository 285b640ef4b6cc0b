"""Which rows a table job, or each of its parts, reads: the SQL conditions, without a server."""

from modelyard.batch.parts import Part
from modelyard.batch.spec import JobSpec, Since
from modelyard.batch.tables import where

SPEC = JobSpec(
    id="j",
    model="m",
    version=1,
    input="postgresql://wh/landing.t",
    input_format="table",
    output="postgresql://wh/scores.t",
    errors_output="postgresql://wh/scores.t_errors",
    format="table",
    fail_fast=False,
    key=("customer", "day"),
)


def test_parts_cover_every_row_once_by_the_first_key_column() -> None:
    first, middle, last = (
        Part(0, 0, 0, high="c'1"),
        Part(1, 0, 0, low="c'1", high="m"),
        Part(2, 0, 0, low="m"),
    )
    assert where(SPEC, first) == """ WHERE "customer" < 'c''1'"""
    assert where(SPEC, middle) == """ WHERE "customer" >= 'c''1' AND "customer" < 'm'"""
    assert where(SPEC, last) == """ WHERE ("customer" >= 'm' OR "customer" IS NULL)"""  # NULLs sort last
    assert where(SPEC, None) == ""


def test_a_scheduled_run_reads_its_range_of_the_watermark() -> None:
    first_run = JobSpec(**{**SPEC.to_dict(), "since": Since("updated_at", None, "2026-12-02 10:00:00+00")})
    assert where(first_run, None) == """ WHERE "updated_at" <= '2026-12-02 10:00:00+00'"""
    later = JobSpec(**{**SPEC.to_dict(), "since": Since("updated_at", "2026-12-01", "2026-12-02")})
    assert where(later, Part(0, 0, 0, high="k")) == (
        """ WHERE "updated_at" > '2026-12-01' AND "updated_at" <= '2026-12-02' AND "customer" < 'k'"""
    )
