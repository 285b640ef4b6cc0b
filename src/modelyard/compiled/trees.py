"""Tree ensembles as ONNX graphs in double precision, which compute what scikit-learn computes.

skl2onnx's tree operators hold leaf values and sum them in float32: a 40-tree forest of prices near
19,000 comes out 0.006 off, and a binary forest's second probability, one minus the first in float32,
lands outside [0, 1]. scikit-learn compares features in float32 but holds and sums leaf values in
float64. The graph here does the same with ai.onnx.ml's `TreeEnsemble` (opset 5): the features cast
to float32 (the graph's input, as before) and then to double, thresholds and leaf values in double,
summed in double, then the forest's mean (or the boosting's start value) in double.

Built for forests, extra trees and single trees with one output (regressors, and classifiers of two
classes: one sum, the other class one minus it), and `GradientBoostingRegressor` with a constant
start. A multi-class classifier would need its trees once per class (`TreeEnsemble` leaves feed one
target each), three to four times slower than skl2onnx's float graph; it keeps that graph, whose
probabilities the runtime divides by their sum (scoring/runtimes.py).
"""

from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from sklearn.dummy import DummyRegressor
from sklearn.ensemble import (
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    GradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)
from sklearn.tree import (
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)

from modelyard.scoring.runtimes import FINAL_INPUT

OPSETS = {"": 17, "ai.onnx.ml": 5}
AVERAGED = (
    RandomForestClassifier,
    RandomForestRegressor,
    ExtraTreesClassifier,
    ExtraTreesRegressor,
    DecisionTreeClassifier,
    DecisionTreeRegressor,
    ExtraTreeClassifier,
    ExtraTreeRegressor,
)
BRANCH_LEQ = 0
"""scikit-learn sends a row left when feature <= threshold."""


def double_graph(final: Any) -> onnx.ModelProto | None:
    """The final estimator's graph in double (input `X`, float32; output `probabilities` or
    `variable`, double), or None when this module does not build one for it."""
    if not _supported(final):
        return None
    classifier = hasattr(final, "classes_")
    trees = list(np.ravel(final.estimators_)) if hasattr(final, "estimators_") else [final]
    scale = final.learning_rate if isinstance(final, GradientBoostingRegressor) else 1.0
    ensemble = _Ensemble()
    for tree in trees:
        ensemble.add(tree.tree_, _leaf_values(tree.tree_, classifier) * scale)
    nodes = [
        helper.make_node("Cast", [FINAL_INPUT], ["features"], to=TensorProto.DOUBLE),
        ensemble.node("features", "sums"),
    ]
    if isinstance(final, GradientBoostingRegressor):
        constants = {"start": _start(final)}
        nodes.append(helper.make_node("Add", ["sums", "start"], ["variable"]))
    else:
        constants = {"trees": float(len(trees))}
        nodes.append(helper.make_node("Div", ["sums", "trees"], ["mean"]))
        if classifier:
            constants["one"] = 1.0
            nodes.append(helper.make_node("Sub", ["one", "mean"], ["other"]))
            nodes.append(helper.make_node("Concat", ["other", "mean"], ["probabilities"], axis=1))
        else:
            nodes.append(helper.make_node("Identity", ["mean"], ["variable"]))
    output = "probabilities" if classifier else "variable"
    graph = helper.make_graph(
        nodes,
        "trees_in_double",
        [helper.make_tensor_value_info(FINAL_INPUT, TensorProto.FLOAT, [None, int(final.n_features_in_)])],
        [helper.make_tensor_value_info(output, TensorProto.DOUBLE, [None, 2 if classifier else 1])],
        [numpy_helper.from_array(np.array([value], np.float64), name) for name, value in constants.items()],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid(d, v) for d, v in OPSETS.items()])


def _supported(final: Any) -> bool:
    if isinstance(final, GradientBoostingRegressor):
        return final.init_ == "zero" or isinstance(final.init_, DummyRegressor)
    if not isinstance(final, AVERAGED) or getattr(final, "n_outputs_", 1) != 1:
        return False
    return not hasattr(final, "classes_") or len(final.classes_) == 2


def _leaf_values(tree: Any, classifier: bool) -> np.ndarray:
    """Each node's value as a leaf: for a classifier, the second class's share, computed as
    scikit-learn's predict_proba does (each row divided by its sum), to the last bit."""
    if not classifier:
        return np.asarray(tree.value[:, 0, 0], dtype=np.float64)
    counts = tree.value[:, 0, :]
    normalizer = counts.sum(axis=1)
    normalizer[normalizer == 0.0] = 1.0
    return np.asarray((counts / normalizer[:, None])[:, 1], dtype=np.float64)


def _start(boosting: GradientBoostingRegressor) -> float:
    """The boosting's start value, the same for every row (a constant or zero)."""
    rows = np.zeros((1, boosting.n_features_in_), dtype=np.float32)
    return float(boosting._raw_predict_init(rows)[0, 0])


class _Ensemble:
    """The trees in TreeEnsemble's encoding: interior nodes in `nodes_*`, leaves in `leaf_*`."""

    def __init__(self) -> None:
        self.roots: list[int] = []
        self.nodes: dict[str, list[Any]] = {
            key: []
            for key in ("featureids", "splits", "truenodeids", "trueleafs", "falsenodeids", "falseleafs")
        }
        self.weights: list[float] = []

    def add(self, tree: Any, values: np.ndarray) -> None:
        left, right = tree.children_left, tree.children_right
        interior = np.flatnonzero(left != -1)
        leaves = np.flatnonzero(left == -1)
        leaf_at = dict(
            zip(leaves.tolist(), range(len(self.weights), len(self.weights) + len(leaves)), strict=True)
        )
        self.weights.extend(values[leaves].tolist())
        if not len(interior):  # a tree that is one leaf: a node whose two branches are that leaf
            self.roots.append(len(self.nodes["splits"]))
            self._node(0, 0.0, (leaf_at[0], 1), (leaf_at[0], 1))
            return
        node_at = dict(
            zip(
                interior.tolist(),
                range(len(self.nodes["splits"]), len(self.nodes["splits"]) + len(interior)),
                strict=True,
            )
        )
        self.roots.append(node_at[0])

        def branch(child: int) -> tuple[int, int]:
            return (leaf_at[child], 1) if child in leaf_at else (node_at[child], 0)

        for node in interior.tolist():
            self._node(
                int(tree.feature[node]), float(tree.threshold[node]), branch(left[node]), branch(right[node])
            )

    def _node(self, feature: int, threshold: float, true: tuple[int, int], false: tuple[int, int]) -> None:
        self.nodes["featureids"].append(feature)
        self.nodes["splits"].append(threshold)
        self.nodes["truenodeids"].append(true[0])
        self.nodes["trueleafs"].append(true[1])
        self.nodes["falsenodeids"].append(false[0])
        self.nodes["falseleafs"].append(false[1])

    def node(self, features: str, output: str) -> onnx.NodeProto:
        count = len(self.nodes["splits"])
        return helper.make_node(
            "TreeEnsemble",
            [features],
            [output],
            domain="ai.onnx.ml",
            n_targets=1,
            aggregate_function=1,  # SUM
            post_transform=0,  # NONE
            tree_roots=self.roots,
            nodes_featureids=self.nodes["featureids"],
            nodes_modes=numpy_helper.from_array(np.full(count, BRANCH_LEQ, np.uint8), "nodes_modes"),
            nodes_splits=numpy_helper.from_array(np.array(self.nodes["splits"], np.float64), "nodes_splits"),
            nodes_truenodeids=self.nodes["truenodeids"],
            nodes_trueleafs=self.nodes["trueleafs"],
            nodes_falsenodeids=self.nodes["falsenodeids"],
            nodes_falseleafs=self.nodes["falseleafs"],
            leaf_targetids=[0] * len(self.weights),
            leaf_weights=numpy_helper.from_array(np.array(self.weights, np.float64), "leaf_weights"),
        )
