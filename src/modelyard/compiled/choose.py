"""Compiled runtimes at load time: which runtime serves a version, and its verified ONNX graph.

A version's folder may hold `compiled.json`, the report of compiling it (compile.py), and the graph
`model.onnx` it verified. Nothing from them is used unless the report says the graph verified, under
today's tolerances for a regressor (a report without `tolerances` predates them), the onnxruntime
here is the one it verified with, and the graph's bytes have the SHA-256 recorded.
"""

import hashlib
import json
from dataclasses import dataclass
from importlib.metadata import version as installed
from typing import Any

from modelyard.errors import ArtifactTampered, RuntimeUnavailable
from modelyard.registry.store import ModelVersion

REPORT = "compiled.json"
GRAPH = "model.onnx"


@dataclass(frozen=True)
class RuntimeChoice:
    realtime: str
    """What scores requests: 'onnx' or 'sklearn'."""
    bulk: str
    """What scores big chunks (files, large requests): the faster of the two, as measured."""
    graph: str | None
    reason: str
    report: dict[str, Any] | None = None
    bulk_from_rows: int | None = None
    """Requests of at least this many rows are scored by `bulk` too."""


def read_report(model_version: ModelVersion) -> dict[str, Any] | None:
    path = model_version.path / REPORT
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        return {"runtime": "sklearn", "reason": f"{path} cannot be read ({exc})"}


def choose(model_version: ModelVersion, mode: str) -> RuntimeChoice:
    """Which runtime serves a version under MODELYARD_RUNTIME=`mode`, and why; for 'onnx', a version
    without a verified graph is refused (RuntimeUnavailable)."""
    if mode == "sklearn":
        return RuntimeChoice("sklearn", "sklearn", None, "MODELYARD_RUNTIME=sklearn")
    report = read_report(model_version)
    reason = _why_not(model_version, report)
    if report is not None and reason is None:
        bulk = "onnx" if mode == "onnx" else str(report["batch"]["runtime"])
        from_rows = report["batch"].get("from_rows") if bulk != "onnx" else None
        return RuntimeChoice("onnx", bulk, report.get("graph"), str(report["reason"]), report, from_rows)
    if mode == "onnx":
        raise RuntimeUnavailable(
            f"model {model_version.name!r} version {model_version.version} has no verified compiled "
            f"runtime, and MODELYARD_RUNTIME=onnx asks for one: {reason}"
        )
    return RuntimeChoice("sklearn", "sklearn", None, str(reason))


def _why_not(model_version: ModelVersion, report: dict[str, Any] | None) -> str | None:
    """Why the compiled runtime cannot serve this version; None when it can."""
    command = f"modelyard models compile {model_version.name} {model_version.version}"
    if report is None:
        return f"not compiled; to try the compiled runtime: {command}"
    if report.get("runtime") != "onnx":
        return str(report.get("reason"))
    if "tolerances" not in report and model_version.metadata.get("task") != "classification":
        return (
            "verified within 1e-5 of scikit-learn, where regressors are now held to 1e-9 * max(1, |value|); "
            f"compile it again to serve it compiled: {command} --again"
        )
    differ = _libraries_differ(report)
    return f"{differ}; verify it with this one: {command} --again" if differ else None


def _libraries_differ(report: dict[str, Any]) -> str | None:
    try:
        running = installed("onnxruntime")
    except Exception:
        return "onnxruntime is not installed here"
    verified = report.get("libraries", {}).get("onnxruntime", "")
    if verified.split(".")[:2] != running.split(".")[:2]:
        return f"verified with onnxruntime {verified}, this process runs {running}"
    return None


def session(graph: bytes, threads: int = 1) -> Any:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(graph, options, providers=["CPUExecutionProvider"])


def verified_graph(model_version: ModelVersion, report: dict[str, Any]) -> bytes:
    """The ONNX graph's bytes, after checking them against the SHA-256 the report recorded."""
    path = model_version.path / report["file"]
    label = f"model {model_version.name!r} version {model_version.version}"
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ArtifactTampered(
            f"{label}: {path} is missing; restore it, or compile again: "
            f"modelyard models compile {model_version.name} {model_version.version} --again"
        ) from None
    actual = hashlib.sha256(data).hexdigest()
    if actual != report["sha256"]:
        raise ArtifactTampered(
            f"{label}: {path} has SHA-256 {actual[:12]}…, but compiling recorded {report['sha256'][:12]}…; "
            "the file changed after it was verified and will not be loaded. Compile again: "
            f"modelyard models compile {model_version.name} {model_version.version} --again"
        )
    return bytes(data)
