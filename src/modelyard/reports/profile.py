"""A version's reference profile: how its reference rows (the training data, or rows like it) fall
into bins, feature by feature, and how the model's predictions on them do. Runs are compared with it.

It lives beside the artifact as `profile.json`, added at registration or later, never changing the
artifact or its metadata. Like the compiled graph, it is used only if it checks out: it records the
artifact's SHA-256 (a profile of another version is refused) and its own content's (a profile
edited by hand is refused), and a refused profile gives reports no drift and a reason.
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelyard.errors import InvalidInput, NotFound
from modelyard.formats import detect_format
from modelyard.fsutil import atomic_write_json
from modelyard.registry.artifacts import unpickle
from modelyard.registry.gate import verified_bytes
from modelyard.registry.schema import STRING, InputSchema
from modelyard.registry.store import ModelVersion
from modelyard.reports.bins import Bins, categorical_bins, numeric_bins
from modelyard.scoring.runtimes import SklearnRuntime
from modelyard.scoring.validation import check
from modelyard.tabular import Table, read_table

PROFILE = "profile.json"
FORMAT = 1


class ProfileNotFound(NotFound):
    """The version has no profile that can be used (none, or one refused)."""

    code = "profile_not_found"


@dataclass(frozen=True)
class Profile:
    features: tuple[Bins, ...]
    prediction: Bins
    reference: dict[str, list[int]]
    """Counts per bin of the reference rows, by feature name; the predictions' under 'prediction'."""
    rows: int
    source: str
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "rows": self.rows,
            "source": self.source,
            "created_at": self.created_at,
            "features": [bins.to_dict() for bins in self.features],
            "prediction": self.prediction.to_dict(),
            "reference": self.reference,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Profile":
        return cls(
            features=tuple(Bins.from_dict(item) for item in data["features"]),
            prediction=Bins.from_dict(data["prediction"]),
            reference={name: list(counts) for name, counts in data["reference"].items()},
            rows=int(data["rows"]),
            source=str(data["source"]),
            created_at=str(data["created_at"]),
        )


def build(
    schema: InputSchema, frame: pd.DataFrame, predictions: np.ndarray, classes: list[Any] | None, source: str
) -> Profile:
    """The profile of valid rows (`frame`, as validation leaves them) and the model's predictions."""
    features = tuple(
        categorical_bins(f.name, frame[f.name])
        if f.dtype == STRING or f.categories
        else numeric_bins(f.name, frame[f.name])
        for f in schema.features
    )
    prediction = (
        categorical_bins("prediction", predictions, classes)
        if classes is not None
        else numeric_bins("prediction", predictions)
    )
    reference = {bins.name: bins.count(frame[bins.name]).tolist() for bins in features}
    reference["prediction"] = prediction.count(predictions).tolist()
    return Profile(features, prediction, reference, len(frame), source, datetime.now(UTC).isoformat())


def profile_rows(
    model_version: ModelVersion, table: Table, source: str, allow_version_mismatch: bool = False
) -> tuple[Profile, int]:
    """The profile of a version on reference rows, and how many of them were invalid (left out)."""
    checked = check(table, model_version.schema)
    if checked.column_problems:
        raise InvalidInput(f"the reference rows cannot be used: {checked.column_problems[0].message}", [])
    good = ~checked.bad_rows()
    frame = checked.frame[good].reset_index(drop=True)
    if not len(frame):
        raise InvalidInput("no row of the reference is valid for this model: nothing to profile", [])
    estimator, _ = unpickle(verified_bytes(model_version, allow_version_mismatch))
    runtime = SklearnRuntime(estimator, bool(model_version.metadata.get("has_predict_proba")))
    predictions, _ = runtime.predict(frame)
    classes = model_version.metadata.get("classes")
    return build(model_version.schema, frame, predictions, classes, source), int((~good).sum())


def profile_bytes(
    model_version: ModelVersion,
    content: bytes,
    fmt: str,
    source: str,
    allow_version_mismatch: bool = False,
) -> tuple[Profile, int]:
    """The profile of reference rows given as a file's bytes (csv, parquet or jsonl)."""
    return profile_rows(model_version, read_table(content, fmt), source, allow_version_mismatch)


def profile_file(
    model_version: ModelVersion, reference: Path, allow_version_mismatch: bool = False
) -> tuple[Profile, int]:
    fmt = detect_format(reference.name, None)
    return profile_bytes(model_version, reference.read_bytes(), fmt, str(reference), allow_version_mismatch)


def write(model_version: ModelVersion, profile: Profile) -> Path:
    """Kept beside the artifact, bound to its SHA-256, and read-only like it."""
    content = profile.to_dict()
    sealed = {
        "artifact_sha256": model_version.metadata["artifact"]["sha256"],
        "sha256": _digest(content),
        "profile": content,
    }
    path = model_version.path / PROFILE
    atomic_write_json(path, sealed, mode=0o444)
    return path


def read(model_version: ModelVersion) -> tuple[Profile | None, str | None]:
    """The version's profile, or None and why there is none to use."""
    path = model_version.path / PROFILE
    label = f"model {model_version.name!r} version {model_version.version}"
    again = f"modelyard models profile {model_version.name} {model_version.version} --reference FILE"
    try:
        sealed = json.loads(path.read_text())
    except FileNotFoundError:
        return None, f"{label} has no reference profile, so drift is not computed: add one with {again}"
    except (OSError, ValueError) as exc:
        return None, f"{path} cannot be read ({exc}): make it again with {again} --again"
    if sealed.get("artifact_sha256") != model_version.metadata["artifact"]["sha256"]:
        return (
            None,
            f"{path} was made for another artifact than {label}'s: make it again with {again} --again",
        )
    if sealed.get("sha256") != _digest(sealed.get("profile")):
        return None, f"{path} changed after it was made and is not used: make it again with {again} --again"
    return Profile.from_dict(sealed["profile"]), None


def _digest(content: Any) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
