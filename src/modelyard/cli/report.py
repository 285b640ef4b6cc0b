"""`modelyard jobs report ID`: a batch run's report in the terminal, worst features first."""

import json
from typing import Any

import click

from modelyard.cli.client import ApiClient
from modelyard.cli.jobs import jobs
from modelyard.config import get_settings

STATUS_COLOURS = {"major": "red", "moderate": "yellow"}
BAR_WIDTH = 24
BAR_FULL_AT = 0.5
"""A drift score drawn as a full bar; the major threshold (0.25) is half of it."""
BINS_SHOWN_FOR = 3
"""Features whose bins are printed side by side with the reference's: the worst few that moved."""


@jobs.command("report")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON, as the API gives it.")
def jobs_report(job_id: str, as_json: bool) -> None:
    """A finished run's report: rows scored, invalid rows by field and code, and each feature's drift
    from the version's reference profile (population stability index), worst first."""
    report = ApiClient(get_settings()).request("GET", f"/v1/jobs/{job_id}/report")
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for line in render(report):
        click.echo(line)


def render(report: dict[str, Any]) -> list[str]:
    rows = report["rows"]
    origin = f" (schedule {report['schedule']})" if report["schedule"] else ""
    lines = [
        f"report of job {report['job_id']}{origin}: {report['model']} version {report['version']}, "
        f"finished {report['finished_at'][:19].replace('T', ' ')} UTC",
        f"  {report['input']} -> {report['output']}",
        f"rows: {rows['read']:,} read, {rows['scored']:,} scored, {rows['invalid']:,} invalid "
        f"({report['invalid_share']:.2%})",
    ]
    if report["invalid"]:
        lines.append("invalid rows by field and code:")
        width = max(len(str(item["field"])) for item in report["invalid"])
        lines += [
            f"  {item['field']!s:<{width}}  {item['code']:<24} {item['rows']:>10,}"
            for item in report["invalid"]
        ]
    if report["reference"] is None:
        lines.append(f"drift: not computed. {report['note']}")
        return lines
    reference, thresholds = report["reference"], report["drift"]["thresholds"]
    lines += [
        f"drift from the reference ({reference['rows']:,} rows: {reference['source']}),",
        f"  population stability index: stable < {thresholds['moderate']} <= moderate < "
        f"{thresholds['major']} <= major",
    ]
    compared = [*report["features"], report["prediction"]]
    width = max(len("prediction (model)"), *(len(item["name"]) for item in compared))
    lines.append(f"  {'FEATURE':<{width}} {'PSI':>8}  STATUS")
    for item in compared:
        name = "prediction (model)" if item is report["prediction"] else item["name"]
        lines.append(
            f"  {name:<{width}} {_score(item['psi'])}  {_status(item['status'])} {_bar(item['psi'])}"
        )
    moved = [item for item in compared if item["status"] in STATUS_COLOURS][:BINS_SHOWN_FOR]
    for item in moved:
        lines += _bins(item)
    return lines


def _score(psi: float | None) -> str:
    return f"{psi:>8.3f}" if psi is not None else f"{'-':>8}"


def _status(status: str) -> str:
    return click.style(f"{status:<8}", fg=STATUS_COLOURS.get(status), bold=status == "major")


def _bar(psi: float | None) -> str:
    return "█" * round(min((psi or 0.0) / BAR_FULL_AT, 1.0) * BAR_WIDTH)


def _bins(item: dict[str, Any]) -> list[str]:
    """A feature's bins: the reference's share beside the run's, each drawn as a bar."""
    reference = [n / (sum(item["reference"]) or 1) for n in item["reference"]]
    run = [n / (sum(item["run"]) or 1) for n in item["run"]]
    scale = BAR_WIDTH / max(*reference, *run, 1e-9)  # the largest share fills a bar
    width = max(len(label) for label in item["bins"])
    lines = [f"{item['name']}: share of rows per bin, reference | this run"]
    for label, e, a in zip(item["bins"], reference, run, strict=True):
        if e or a:
            before, after = "▇" * round(e * scale), "▇" * round(a * scale)
            lines.append(f"  {label:<{width}} {e:>6.1%} {before:<{BAR_WIDTH}} | {a:>6.1%} {after}")
    return lines
