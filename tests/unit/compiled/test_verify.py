"""The verdict on a compiled graph and the rows it is reached on, without compiling anything."""

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier

from modelyard.compiled.verify import UNKNOWN_CATEGORY, Outputs, Verdict, input_rows, threshold_rows
from modelyard.registry.schema import NUMBER, STRING, Feature, InputSchema
from modelyard.scoring.runtimes import REGRESSION_TOLERANCE, TOLERANCE

LABELS = np.array(["no", "yes", "no"])
PROBABILITIES = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])


def classified(probabilities: np.ndarray, labels: np.ndarray = LABELS) -> Outputs:
    return Outputs(np.asarray(probabilities, dtype=float), np.asarray(labels))


def test_a_graph_within_the_tolerance_with_the_same_labels_passes() -> None:
    verdict = Verdict()
    within = PROBABILITIES + np.array([TOLERANCE / 2, -TOLERANCE / 2])  # rows still summing to 1
    verdict.add("sample", classified(PROBABILITIES), classified(within))
    verdict.add(
        "random", classified(PROBABILITIES[:1], LABELS[:1]), classified(PROBABILITIES[:1], LABELS[:1])
    )
    assert verdict.passed and verdict.problems == []
    assert verdict.rows == {"sample": 3, "random": 1}
    assert verdict.max_difference == pytest.approx(TOLERANCE / 2)
    assert verdict.summary() == (
        "verified on 4 rows (3 sample, 1 random): largest difference 5e-06, labels equal (0 near ties left "
        "to scikit-learn)"
    )


def test_differences_beyond_the_tolerance_are_counted_by_row() -> None:
    verdict = Verdict()
    got = PROBABILITIES.copy()
    got[0] += [3e-5, -3e-5]
    got[2] += [2e-5, -2e-5]
    verdict.add("threshold", classified(PROBABILITIES), classified(got))
    assert not verdict.passed
    assert verdict.problems == ["threshold rows: 2 differ by more than 1e-05 (up to 3e-05)"]
    assert verdict.max_difference == pytest.approx(3e-5)
    assert verdict.summary() == (
        "not verified on 3 rows (3 threshold): threshold rows: 2 differ by more than 1e-05 (up to 3e-05)"
    )


def test_another_label_fails_but_a_near_tie_is_left_to_scikit_learn() -> None:
    tied = np.array([[0.5, 0.5], [0.2, 0.8], [0.6, 0.4]])
    verdict = Verdict()
    verdict.add("category", classified(tied, ["no", "yes", "no"]), classified(tied, ["yes", "yes", "yes"]))
    assert verdict.near_ties == 1 and verdict.label_mismatches == 1
    assert verdict.problems == ["category rows: 1 get another label than scikit-learn's"]


def test_a_regressor_is_compared_relative_to_its_size() -> None:
    expected = np.array([10_000.0, 0.5, -3.0])
    verdict = Verdict()
    verdict.add("sample", Outputs(expected), Outputs(expected + np.array([5e-6, 5e-10, -2e-9])))
    assert verdict.max_difference == pytest.approx(2e-9 / 3)
    assert verdict.passed
    verdict.add("random", Outputs(expected), Outputs(expected + np.array([0.5, 0, 0])))
    assert verdict.problems == ["random rows: 1 differ by more than 1e-09 * max(1, |value|) (up to 5e-05)"]


def test_probabilities_outside_0_and_1_or_not_summing_to_1_never_pass() -> None:
    verdict = Verdict()
    expected = np.array([[0.0, 1.0], [0.5, 0.5]])
    float32_binary = np.array([[-1.1920928955078125e-07, 1.0000001192092896], [0.5, 0.5]])  # sums to 1
    verdict.add("random", classified(expected, ["yes", "no"]), classified(float32_binary, ["yes", "no"]))
    assert verdict.problems == ["random rows: 1 with a probability outside [0, 1]"]
    verdict = Verdict()
    off = np.array([[0.0, 1.0], [0.5 + 1e-8, 0.5]])
    verdict.add("sample", classified(expected, ["yes", "no"]), classified(off, ["yes", "no"]))
    assert verdict.problems == ["sample rows: 1 whose probabilities do not sum to 1 within 1e-09"]


def test_nan_or_another_shape_never_passes() -> None:
    verdict = Verdict()
    verdict.add("sample", Outputs(np.array([1.0, 2.0])), Outputs(np.array([1.0, np.nan])))
    assert verdict.max_difference == float("inf") and not verdict.passed
    shaped = Verdict()
    shaped.add("random", classified(PROBABILITIES), classified(PROBABILITIES[:, :1], LABELS))
    assert shaped.problems == ["random rows: outputs of shape (3, 1), not (3, 2)"]
    assert shaped.rows == {"random": 3}


def test_nothing_compared_is_no_difference() -> None:
    verdict = Verdict()
    verdict.add("threshold", Outputs(np.empty(0)), Outputs(np.empty(0)))
    assert verdict.passed and verdict.max_difference == 0.0 and verdict.rows == {"threshold": 0}


SCHEMA = InputSchema(
    [
        Feature("age", NUMBER, example=40.0),
        Feature("plan", STRING, categories=["basic", "pro"], unknown_categories="allowed"),
        Feature("tier", NUMBER, categories=[1, 2], unknown_categories="error"),
        Feature("city", STRING),
    ]
)


def test_without_a_sample_the_rows_start_from_the_schemas_example() -> None:
    kinds = dict(input_rows(SCHEMA, None, np.random.default_rng(0), random_rows=50))
    assert list(kinds) == ["category", "random"]
    edges = kinds["category"]
    assert edges["plan"].tolist() == ["basic", "pro", UNKNOWN_CATEGORY, "basic", "basic"]
    assert edges["tier"].tolist() == [1, 1, 1, 1, 2]  # no unseen tier: the encoder refuses one
    assert set(edges["age"]) == {40.0}
    random = kinds["random"]
    assert list(random.columns) == SCHEMA.names and len(random) == 50
    assert set(random["plan"]) <= {"basic", "pro"} and set(random["tier"]) <= {1, 2}
    assert random["age"].std() > 1.0  # spread around the one value seen


def test_a_sample_comes_first_and_seeds_the_other_rows() -> None:
    sample = pd.DataFrame(
        {"city": ["Oslo", "Rome"], "age": [20.0, 60.0], "plan": ["pro", "basic"], "tier": [2, 1], "x": [0, 0]}
    )
    kinds = dict(input_rows(SCHEMA, sample, np.random.default_rng(1), random_rows=200))
    assert list(kinds) == ["sample", "category", "random"]
    assert list(kinds["sample"].columns) == SCHEMA.names  # the schema's order, extra columns dropped
    edges = kinds["category"]
    assert edges["city"].tolist() == ["Oslo", "Rome", "Oslo", "Rome", "Oslo"]  # base rows in turn
    random = kinds["random"]
    assert set(random["city"]) == {"Oslo", "Rome"}
    assert 20.0 < random["age"].mean() < 60.0


def test_numeric_categories_left_open_get_an_unseen_number() -> None:
    schema = InputSchema([Feature("code", NUMBER, categories=[7], unknown_categories="allowed")])
    edges = dict(input_rows(schema, None, np.random.default_rng(0)))["category"]
    assert edges["code"].tolist() == [7, -987654.0]


def test_rows_at_each_split_and_one_float32_step_either_side() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 5.0], [3.0, 2.0]])
    tree = DecisionTreeClassifier(random_state=0).fit(x, [0, 1, 0, 1])
    inner = tree.tree_.feature >= 0
    splits = set(zip(tree.tree_.feature[inner], tree.tree_.threshold[inner], strict=True))
    rows = threshold_rows(tree, x, np.random.default_rng(0))
    assert rows.shape == (3 * len(splits), 2) and rows.dtype == np.float64
    seen = set()
    for below, at, above in rows.reshape(-1, 3, 2):
        changed = int(np.flatnonzero(below != above)[0])
        threshold = np.float32(at[changed])
        assert below[changed] == np.nextafter(threshold, np.float32(-np.inf))
        assert above[changed] == np.nextafter(threshold, np.float32(np.inf))
        assert below[1 - changed] == at[1 - changed] == above[1 - changed]  # the rest from a base row
        seen.add((changed, float(threshold)))
    assert seen == {(int(f), float(np.float32(t))) for f, t in splits}


def test_threshold_rows_are_limited_and_empty_without_trees() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 3))
    tree = DecisionTreeClassifier(random_state=0).fit(x, rng.integers(2, size=200))
    assert tree.tree_.node_count > 30
    assert len(threshold_rows(tree, x, rng, limit=30)) == 30
    assert threshold_rows(LogisticRegression().fit(x, x[:, 0] > 0), x, rng).shape == (0, 3)
    assert threshold_rows(tree, np.empty((0, 3)), rng).shape == (0, 3)


def test_counts_add_up_over_several_comparisons_and_problems_are_all_said() -> None:
    tied = np.array([[0.5, 0.5], [0.1, 0.9]])
    verdict = Verdict()
    for kind in ("sample", "sample"):
        verdict.add(kind, classified(tied, ["no", "yes"]), classified(tied, ["yes", "no"]))
    assert verdict.rows == {"sample": 4}
    assert (verdict.near_ties, verdict.label_mismatches) == (2, 2)
    assert verdict.summary() == (
        "not verified on 4 rows (4 sample): sample rows: 1 get another label than scikit-learn's; "
        "sample rows: 1 get another label than scikit-learn's"
    )


def test_the_tolerance_itself_passes_and_small_values_are_compared_as_they_are() -> None:
    verdict = Verdict()
    tolerance = REGRESSION_TOLERANCE
    verdict.add("sample", Outputs(np.array([0.0, 0.25])), Outputs(np.array([tolerance, 0.25])))
    assert verdict.passed and verdict.max_difference == tolerance
    verdict.add("random", Outputs(np.array([0.5])), Outputs(np.array([0.5 + 1.5 * tolerance])))
    assert verdict.problems == ["random rows: 1 differ by more than 1e-09 * max(1, |value|) (up to 1.5e-09)"]


def test_threshold_rows_of_a_forest_come_from_every_tree() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 2))
    forest = RandomForestClassifier(n_estimators=3, max_depth=2, random_state=0).fit(x, x[:, 0] > x[:, 1])
    splits = {
        (int(f), float(np.float32(t)))
        for tree in forest.estimators_
        for f, t in zip(tree.tree_.feature, tree.tree_.threshold, strict=True)
        if f >= 0
    }
    rows = threshold_rows(forest, x, rng)
    assert len(rows) == 3 * len(splits) and len(splits) > 3
