"""Compiling a registered version: converted to ONNX, verified, measured, kept beside it.

`compile_version` converts the model (convert.py), verifies that the graph computes what
scikit-learn computes (verify.py), measures which runtime scores big chunks faster, and adds
`model.onnx` and `compiled.json` to the version's folder, each written atomically; the registered
artifact and its metadata are not touched. A model that cannot be converted, or whose graph does not
verify, keeps scikit-learn, and the report says why.
"""

import hashlib
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version as installed
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from modelyard.compiled.choose import GRAPH, REPORT, read_report, session
from modelyard.compiled.convert import ConversionError, Graphs, convert
from modelyard.compiled.verify import Outputs, Verdict, input_rows, threshold_rows
from modelyard.errors import AlreadyCompiled, InvalidInput
from modelyard.formats import detect_format
from modelyard.fsutil import atomic_write_bytes, atomic_write_json
from modelyard.registry.artifacts import set_n_jobs, unpickle
from modelyard.registry.gate import verified_bytes
from modelyard.registry.store import ModelVersion
from modelyard.scoring.runtimes import (
    FINAL_INPUT,
    REGRESSION_TOLERANCE,
    SUM_TOLERANCE,
    TOLERANCE,
    OnnxRuntime,
    SklearnRuntime,
    as_probabilities,
)
from modelyard.scoring.validation import check
from modelyard.tabular import read_table

SAMPLE_ROWS = 5000
"""Most rows of a sample file used for verification (a random subset of a bigger one)."""
REQUEST_SIZES = (64, 256, 1024, 2048, 4096)
"""Request sizes tried, smallest first, for the one from which scikit-learn is the faster."""
SPEED_ROWS = 20_000
"""Rows timed per runtime to tell which one scores big chunks faster."""
BULK_MARGIN = 1.15
"""How much faster on big chunks ONNX must be to score files instead of scikit-learn."""
LIBRARIES = ("onnx", "onnxruntime", "skl2onnx")


@dataclass
class Attempt:
    graph: str
    runtime: OnnxRuntime | None
    verdict: Verdict | None
    error: str | None = None

    @property
    def passed(self) -> bool:
        return self.verdict is not None and self.verdict.passed

    def describe(self) -> dict[str, Any]:
        reason = self.error or (self.verdict.summary() if self.verdict else "")
        return {"graph": self.graph, "passed": self.passed, "reason": reason}


def compile_registered(
    model_version: ModelVersion,
    sample: Path | pd.DataFrame | None = None,
    allow_version_mismatch: bool = False,
    again: bool = False,
) -> dict[str, Any]:
    """Compile a registered version, loaded through the load gate like any other (n_jobs=1, as it
    is served, so that the speeds measured compare one thread with one thread)."""
    data = verified_bytes(model_version, allow_version_mismatch)
    estimator, _ = unpickle(data)
    set_n_jobs(estimator, 1)
    rows = read_sample(sample, model_version) if isinstance(sample, Path) else sample
    return compile_version(model_version, estimator, rows, again)


def read_sample(path: Path, model_version: ModelVersion) -> pd.DataFrame:
    """The valid rows of a CSV, Parquet or JSON Lines file, typed as the model takes them."""
    table = read_table(path.read_bytes(), detect_format(path.name, None))
    checked = check(table, model_version.schema)
    if checked.column_problems:
        raise InvalidInput(f"the sample {path} cannot be used: {checked.column_problems[0].message}")
    rows = checked.frame[~checked.bad_rows()].reset_index(drop=True)
    if rows.empty:
        raise InvalidInput(f"the sample {path} has no valid row for model {model_version.name!r}")
    if len(rows) > SAMPLE_ROWS:
        rows = rows.sample(SAMPLE_ROWS, random_state=0).reset_index(drop=True)
    return rows


TOLERANCES = {
    "probabilities": f"|compiled - scikit-learn| <= {TOLERANCE:g}, each in [0, 1], "
    f"rows summing to 1 within {SUM_TOLERANCE:g}",
    "regression": f"|compiled - scikit-learn| <= {REGRESSION_TOLERANCE:g} * max(1, |scikit-learn|)",
    "labels": "equal",
}
"""What a verified graph was held to; a report without it was verified under the older rule."""


def compile_version(
    model_version: ModelVersion,
    estimator: Any,
    sample: pd.DataFrame | None = None,
    again: bool = False,
) -> dict[str, Any]:
    """Compile, verify and measure one version, write what was found, and return the report."""
    existing = read_report(model_version)
    if existing is not None and not again:
        raise AlreadyCompiled(
            f"model {model_version.name!r} version {model_version.version} was compiled on "
            f"{existing.get('created_at', '?')} (runtime: {existing.get('runtime')}); "
            "pass --again to compile it once more"
        )
    report: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(),
        "tolerances": TOLERANCES,
        "libraries": {name: installed(name) for name in LIBRARIES},
        "sample_rows": 0 if sample is None else len(sample),
    }
    sklearn = SklearnRuntime(estimator, bool(model_version.metadata.get("has_predict_proba")))
    if model_version.metadata.get("task") == "classification" and not sklearn.with_probabilities:
        report.update(
            runtime="sklearn", reason="a classifier without predict_proba is served by scikit-learn"
        )
        return _write(model_version, report, None)
    try:
        graphs = convert(estimator, model_version.schema)
    except Exception as exc:  # skl2onnx raises many kinds; any of them means "not convertible"
        why = str(exc) if isinstance(exc, ConversionError) else f"{type(exc).__name__}: {exc}"
        report.update(runtime="sklearn", reason=f"not converted to ONNX: {why}")
        return _write(model_version, report, None)
    attempts = _attempts(graphs, model_version, sklearn, sample)
    report["attempts"] = [attempt.describe() for attempt in attempts]
    chosen = next((attempt for attempt in attempts if attempt.passed), None)
    if chosen is None:
        reasons = "; ".join(f"{a.graph} graph: {a.describe()['reason']}" for a in attempts)
        report.update(
            runtime="sklearn", reason=f"the ONNX graph does not compute what scikit-learn does: {reasons}"
        )
        return _write(model_version, report, None)
    assert chosen.runtime is not None and chosen.verdict is not None
    report.update(
        runtime="onnx",
        graph=chosen.graph,
        final_dtype=np.dtype(graphs.final_dtype).name,
        reason=chosen.verdict.summary(),
        batch=_batch_speed(sklearn, chosen.runtime, model_version, sample),
    )
    model = graphs.whole if chosen.graph == "whole" else graphs.final
    assert model is not None
    return _write(model_version, report, model.SerializeToString())


def _attempts(
    graphs: Graphs, model_version: ModelVersion, sklearn: SklearnRuntime, sample: pd.DataFrame | None
) -> list[Attempt]:
    """The whole graph first, then (for a pipeline) the final estimator after scikit-learn's
    preprocessing; the first that verifies is the one."""
    schema = model_version.schema
    final = OnnxRuntime(
        session(graphs.final.SerializeToString()), "final", schema, sklearn, graphs.final_dtype
    )
    attempts = []
    if graphs.whole is None:
        attempts.append(Attempt("whole", None, None, graphs.whole_error))
        candidates = []
    else:
        candidates = [("whole", graphs.whole)]
    if sklearn.prep is not None:
        candidates.append(("final", graphs.final))
    for graph, model in candidates:
        try:
            runtime = (
                final
                if graph == "final"
                else OnnxRuntime(
                    session(model.SerializeToString()), graph, schema, sklearn, graphs.final_dtype
                )
            )
            verdict = _verify(runtime, final, sklearn, model_version, sample)
        except Exception as exc:  # a graph onnxruntime refuses, or that fails on some rows
            attempts.append(Attempt(graph, None, None, f"{type(exc).__name__}: {exc}"))
            continue
        attempts.append(Attempt(graph, runtime, verdict))
        if verdict.passed:
            break
    return attempts


def _verify(
    runtime: OnnxRuntime,
    final: OnnxRuntime,
    sklearn: SklearnRuntime,
    model_version: ModelVersion,
    sample: pd.DataFrame | None,
) -> Verdict:
    rng = np.random.default_rng(0)
    verdict = Verdict()
    seen = []
    for kind, rows in input_rows(model_version.schema, sample, rng):
        verdict.add(kind, sklearn_outputs(sklearn, rows), onnx_outputs(runtime, runtime.feed(rows)))
        seen.append(rows)
    # The final estimator alone, on its own input at its trees' thresholds: where rounding decides.
    base = sklearn.transform(pd.concat(seen, ignore_index=True))
    matrix = threshold_rows(sklearn.final, base, rng)
    if len(matrix):
        expected = sklearn_outputs(sklearn, matrix, final_only=True)
        verdict.add(
            "threshold", expected, onnx_outputs(final, {FINAL_INPUT: matrix.astype(final.final_dtype)})
        )
    return verdict


def onnx_outputs(runtime: OnnxRuntime, feed: dict[str, np.ndarray]) -> Outputs:
    """The graph's own answers: labels by argmax, no near-tie help from scikit-learn."""
    [values] = runtime.session.run([runtime.output], feed)
    if runtime.classes is None:
        return Outputs(np.asarray(values, dtype=np.float64).reshape(len(values), -1)[:, 0])
    values = as_probabilities(values)
    return Outputs(values, runtime.classes.take(np.argmax(values, axis=1), axis=0))


def sklearn_outputs(sklearn: SklearnRuntime, rows: Any, final_only: bool = False) -> Outputs:
    if final_only:
        estimator = sklearn.final
        names = getattr(estimator, "feature_names_in_", None)
        if names is not None:  # a bare estimator fitted on a DataFrame: give it one
            rows = pd.DataFrame(rows, columns=names)
        labels = estimator.predict(rows)
        if not sklearn.with_probabilities:
            return Outputs(np.asarray(labels, dtype=np.float64))
        return Outputs(np.asarray(estimator.predict_proba(rows), dtype=np.float64), np.asarray(labels))
    labels, probabilities = sklearn.predict(rows)
    if probabilities is None:
        return Outputs(np.asarray(labels, dtype=np.float64))
    return Outputs(np.asarray(probabilities, dtype=np.float64), np.asarray(labels))


def _batch_speed(
    sklearn: SklearnRuntime, onnx: OnnxRuntime, model_version: ModelVersion, sample: pd.DataFrame | None
) -> dict[str, Any]:
    """Rows per second of each runtime on one big chunk, one thread each: the faster scores files.
    When scikit-learn is, also the smallest request it is faster on (`from_rows`): requests from
    that size go to it too. Timed on the sample's rows when there is a sample (the rows a model
    sees decide how deep its trees are walked), else on rows drawn from the schema."""
    rng = np.random.default_rng(1)
    if sample is not None and len(sample):
        rows, timed_on = sample[model_version.schema.names], f"the {len(sample)} sample rows"
    else:
        rows = pd.concat([rows for _, rows in input_rows(model_version.schema, None, rng)], ignore_index=True)
        timed_on = "rows drawn from the schema"
    rows = rows.iloc[rng.integers(len(rows), size=SPEED_ROWS)].reset_index(drop=True)
    speed = _rows_per_second((sklearn, onnx), rows)
    batch = {
        "runtime": bulk_runtime(speed),
        "rows": SPEED_ROWS,
        "rows_per_second": speed,
        "timed_on": timed_on,
    }
    if batch["runtime"] == "sklearn":
        batch["from_rows"] = next(
            (
                size
                for size in REQUEST_SIZES
                if bulk_runtime(_rows_per_second((sklearn, onnx), rows.iloc[:size])) == "sklearn"
            ),
            SPEED_ROWS,
        )
    return batch


def _rows_per_second(runtimes: tuple[Any, ...], rows: pd.DataFrame, rounds: int = 5) -> dict[str, int]:
    """Each runtime's best of `rounds` (a busy machine only ever slows a run down), taken in turns,
    so that the machine's speed drifting over seconds weighs on both alike."""
    for runtime in runtimes:
        runtime.predict(rows.iloc[:100])  # warm
    best = dict.fromkeys((runtime.name for runtime in runtimes), float("inf"))
    for _ in range(rounds):
        for runtime in runtimes:
            started = time.perf_counter()
            runtime.predict(rows)
            best[runtime.name] = min(best[runtime.name], time.perf_counter() - started)
    return {name: round(len(rows) / seconds) for name, seconds in best.items()}


def bulk_runtime(rows_per_second: dict[str, int]) -> str:
    """ONNX for big chunks only when clearly faster: scikit-learn is the reference, and a few
    percent either way is within what one timing on a shared machine can tell."""
    return "onnx" if rows_per_second["onnx"] >= BULK_MARGIN * rows_per_second["sklearn"] else "sklearn"


def _write(model_version: ModelVersion, report: dict[str, Any], graph: bytes | None) -> dict[str, Any]:
    if graph is not None:
        report.update(file=GRAPH, sha256=hashlib.sha256(graph).hexdigest(), size_bytes=len(graph))
        atomic_write_bytes(model_version.path / GRAPH, graph, mode=0o444)
    atomic_write_json(model_version.path / REPORT, report, mode=0o444)
    return report
