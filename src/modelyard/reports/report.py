"""A batch run's report: rows scored, invalid rows by field and code, and per feature (and for the
predictions) the run's counts on the reference's bins with a drift score, worst first.

Reports are files on the data volume, `reports/<job id>.json`, written once the run's outputs are
committed and kept as long as job records are (MODELYARD_JOB_RETENTION_DAYS).
"""

import json
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard.errors import ReportNotFound
from modelyard.fsutil import atomic_write_json
from modelyard.reports import drift
from modelyard.reports.profile import Profile
from modelyard.reports.tally import Tally

FOLDER = "reports"
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,199}$")


def build(tally: Tally, rows_done: int, rows_failed: int, about: dict[str, Any]) -> dict[str, Any]:
    """The report of a run: `about` says which job it was (ids, model, input, times)."""
    profile = tally.profile
    read = rows_done + rows_failed
    invalid = [
        {"field": field, "code": code, "rows": n}
        for (field, code), n in sorted(tally.invalid.items(), key=lambda item: (-item[1], str(item[0])))
    ]
    report: dict[str, Any] = {
        **about,
        "rows": {"read": read, "scored": rows_done, "invalid": rows_failed},
        "invalid_share": round(rows_failed / read, 6) if read else 0.0,
        "invalid": invalid,
        "reference": None,
        "note": tally.note,
        "drift": {
            "method": "population stability index",
            "empty_share": drift.EMPTY_SHARE,
            "thresholds": {"moderate": drift.MODERATE, "major": drift.MAJOR},
        },
        "features": [],
        "prediction": None,
        "counting_seconds": round(tally.seconds, 3),
    }
    if profile is not None:
        report["reference"] = {
            "rows": profile.rows,
            "source": profile.source,
            "created_at": profile.created_at,
        }
        features = [_compared(bins.name, bins.kind, bins.labels, profile, tally) for bins in profile.features]
        features.sort(key=lambda item: (-(item["psi"] if item["psi"] is not None else -1), item["name"]))
        report["features"] = features
        prediction = profile.prediction
        report["prediction"] = _compared(prediction.name, prediction.kind, prediction.labels, profile, tally)
    return report


def _compared(name: str, kind: str, labels: list[str], profile: Profile, tally: Tally) -> dict[str, Any]:
    reference, run = profile.reference[name], tally.counts[name].tolist()
    score = drift.psi(reference, run)
    return {
        "name": name,
        "kind": kind,
        "psi": score,
        "status": drift.status(score),
        "bins": labels,
        "reference": reference,
        "run": run,
    }


def path(data_dir: Path, job_id: str) -> Path:
    if not SAFE_ID.fullmatch(job_id):
        raise ReportNotFound(f"no report for job {job_id!r}: not a job id")
    return data_dir / FOLDER / f"{job_id}.json"


def write(data_dir: Path, job_id: str, report: dict[str, Any], keep_s: float) -> Path:
    """Write the report, and remove those older than job records are kept."""
    target = path(data_dir, job_id)
    atomic_write_json(target, report)
    _sweep(target.parent, keep_s)
    return target


def read(data_dir: Path, job_id: str, why_none: Callable[[], str]) -> dict[str, Any]:
    """A job's report; `why_none` words the 404 when there is none (the job has not ended, say)."""
    try:
        return dict(json.loads(path(data_dir, job_id).read_text()))
    except FileNotFoundError:
        raise ReportNotFound(why_none()) from None


def _sweep(folder: Path, keep_s: float) -> None:
    oldest = time.time() - keep_s
    for entry in folder.glob("*.json"):
        try:
            if entry.stat().st_mtime < oldest:
                entry.unlink()
        except FileNotFoundError:
            pass  # another worker swept it first
