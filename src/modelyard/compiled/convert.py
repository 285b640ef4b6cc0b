"""scikit-learn models as ONNX graphs that compute what scikit-learn computes.

skl2onnx runs a whole pipeline in float32 by default. scikit-learn computes the preprocessing in
float64 and only then casts to float32 for its trees, so the default graph moves rows across tree
thresholds (about one row in ten of the demo). The graph is therefore built in two parts, as
scikit-learn runs the model: the preprocessing (a pipeline's steps before the last) in float64, cast
to what the final estimator computes in (float32 for trees, float64 otherwise); then the final
estimator, in double for the tree ensembles compiled/trees.py builds, by skl2onnx otherwise. When
the preprocessing cannot be converted, the final estimator's graph is still usable
after scikit-learn's own preprocessing. Whether either computes what scikit-learn does is for
verify.py to decide, not for this module to assume.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, compose, helper
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import BaseEnsemble
from sklearn.ensemble._gb import BaseGradientBoosting
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import RobustScaler, StandardScaler
from sklearn.tree import BaseDecisionTree

from modelyard.compiled.trees import double_graph
from modelyard.registry.schema import NUMBER, InputSchema
from modelyard.scoring.runtimes import FINAL_INPUT, FRONT_OUTPUT, PREFIX, split

OPSETS = {"": 17, "ai.onnx.ml": 3}


class ConversionError(Exception):
    """skl2onnx cannot convert this model (or part of it); the message says why."""


@dataclass
class Graphs:
    final: onnx.ModelProto
    """The final estimator alone: input `X`, a float matrix of `final_dtype`."""
    final_dtype: type
    whole: onnx.ModelProto | None
    """Preprocessing and final estimator: one input per feature, named as the feature."""
    whole_error: str | None
    """Why there is no whole graph."""
    outputs: list[str]
    """The final graph's outputs: label and probabilities, or variable (a regressor)."""


def computes_in_float32(final: Any) -> bool:
    """scikit-learn's trees and their ensembles cast their input to float32; the rest keep float64."""
    if isinstance(final, BaseDecisionTree | BaseGradientBoosting):
        return True
    return isinstance(final, BaseEnsemble) and isinstance(
        getattr(final, "estimator", None) or getattr(final, "base_estimator", None), BaseDecisionTree
    )


def convert(estimator: Any, schema: InputSchema) -> Graphs:
    prep, final = split(estimator)
    final_graph, dtype = _final_graph(final)
    outputs = [output.name for output in final_graph.graph.output]
    try:
        front = _front(prep, schema, dtype)
        whole, whole_error = _merge(front, final_graph), None
    except Exception as exc:
        whole, whole_error = None, f"the preprocessing cannot be converted: {type(exc).__name__}: {exc}"
    return Graphs(final_graph, dtype, whole, whole_error, outputs)


def _final_graph(final: Any) -> tuple[onnx.ModelProto, type]:
    """The final estimator's graph and the float type of its input."""
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    graph = double_graph(final)
    if graph is not None:
        return graph, np.float32
    width = int(final.n_features_in_)
    options = {id(final): {"zipmap": False}} if hasattr(final, "predict_proba") else None
    wanted = np.float32 if computes_in_float32(final) else np.float64
    errors = []
    for dtype in [np.float32] if wanted is np.float32 else [np.float64, np.float32]:
        tensor = FloatTensorType if dtype is np.float32 else DoubleTensorType
        try:
            return _to_onnx(final, [(FINAL_INPUT, tensor([None, width]))], options), dtype
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    raise ConversionError(f"skl2onnx cannot convert {type(final).__name__}: {errors[-1]}")


def _to_onnx(model: Any, initial_types: list[Any], options: dict[int, Any] | None) -> onnx.ModelProto:
    from skl2onnx import to_onnx

    graph: onnx.ModelProto = to_onnx(model, initial_types=initial_types, options=options, target_opset=OPSETS)
    return graph


def _front(prep: Any | None, schema: InputSchema, dtype: type) -> onnx.ModelProto:
    """Features in (one input each, float64 or string), the final estimator's matrix out."""
    from skl2onnx.common.data_types import DoubleTensorType, StringTensorType

    inputs = [
        (f.name, DoubleTensorType([None, 1]) if f.dtype == NUMBER else StringTensorType([None, 1]))
        for f in schema.features
    ]
    if prep is not None and isinstance(prep[0], ColumnTransformer):
        graph = _to_onnx(prep, inputs, _float64_options(prep))
    else:
        if any(f.dtype != NUMBER for f in schema.features):
            raise ConversionError("text features need a ColumnTransformer to encode them")
        graph = _concat(schema)
        if prep is not None:
            width = len(schema.features)
            rest = _to_onnx(prep, [("joined", DoubleTensorType([None, width]))], _float64_options(prep))
            graph = _join(graph, rest, "joined")
    return _cast_output(graph, dtype)


def _float64_options(prep: Any) -> dict[int, Any]:
    """Scalers as Sub and Div in float64: skl2onnx's Scaler operator computes in float32."""
    scalers = [step for step in _steps(prep) if isinstance(step, StandardScaler | RobustScaler)]
    return {id(scaler): {"div": "div"} for scaler in scalers}


def _steps(model: Any) -> list[Any]:
    if isinstance(model, Pipeline):
        return [inner for _, step in model.steps for inner in _steps(step)]
    if isinstance(model, ColumnTransformer):
        return [inner for _, step, _ in model.transformers_ for inner in _steps(step)]
    return [model]


def _concat(schema: InputSchema) -> onnx.ModelProto:
    names = [feature.name for feature in schema.features]
    node = helper.make_node("Concat", names, ["joined"], axis=1)
    graph = helper.make_graph(
        [node],
        "features",
        [helper.make_tensor_value_info(name, TensorProto.DOUBLE, [None, 1]) for name in names],
        [helper.make_tensor_value_info("joined", TensorProto.DOUBLE, [None, len(names)])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])


def _cast_output(model: onnx.ModelProto, dtype: type) -> onnx.ModelProto:
    [output] = model.graph.output
    to = TensorProto.FLOAT if dtype is np.float32 else TensorProto.DOUBLE
    model.graph.node.append(helper.make_node("Cast", [output.name], [FRONT_OUTPUT], to=to))
    width = output.type.tensor_type.shape.dim[1].dim_value or None
    del model.graph.output[:]
    model.graph.output.append(helper.make_tensor_value_info(FRONT_OUTPUT, to, [None, width]))
    return model


def _join(first: onnx.ModelProto, second: onnx.ModelProto, name: str) -> onnx.ModelProto:
    second = compose.add_prefix(second, "then_")
    first, second = _compatible(first, second)
    return compose.merge_models(first, second, io_map=[(name, f"then_{name}")])


def _merge(front: onnx.ModelProto, final: onnx.ModelProto) -> onnx.ModelProto:
    """One graph; the final estimator's input stays an output too, for scoring/runtimes.py to check it for
    values beyond float32, which scikit-learn refuses and a cast would silently make infinite."""
    final = compose.add_prefix(final, PREFIX)
    front, final = _compatible(front, final)
    [between] = front.graph.output
    merged = compose.merge_models(front, final, io_map=[(FRONT_OUTPUT, PREFIX + FINAL_INPUT)])
    merged.graph.output.append(between)
    return merged


def _compatible(*models: onnx.ModelProto) -> list[onnx.ModelProto]:
    """merge_models wants one IR version and identical opset imports: the highest of each."""
    versions: dict[str, int] = {}
    for model in models:
        for opset in model.opset_import:
            versions[opset.domain] = max(versions.get(opset.domain, 0), opset.version)
    ir_version = max(model.ir_version for model in models)
    for model in models:
        model.ir_version = ir_version
        del model.opset_import[:]
        model.opset_import.extend(helper.make_opsetid(d, v) for d, v in sorted(versions.items()))
    return list(models)
