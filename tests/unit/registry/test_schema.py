from modelyard.registry.schema import NUMBER, STRING, read_input_schema
from tests import factories


def test_pipeline_schema_has_names_types_and_categories() -> None:
    schema = read_input_schema(factories.classifier())
    features = {feature.name: feature for feature in schema.features}

    assert schema.names == ["age", "income", "color"]
    assert features["age"].dtype == NUMBER and features["age"].categories is None
    assert features["color"].dtype == STRING
    assert features["color"].categories == factories.COLORS
    assert features["color"].unknown_categories == "allowed"
    assert not any(feature.nullable for feature in schema.features)


def test_strict_encoder_is_recorded() -> None:
    schema = read_input_schema(factories.classifier(handle_unknown="error"))
    assert schema.features[2].unknown_categories == "error"


def test_imputer_makes_features_nullable() -> None:
    schema = read_input_schema(factories.imputing_classifier())
    assert [feature.nullable for feature in schema.features] == [True, True]


def test_array_fitted_estimator_gets_sklearn_style_names() -> None:
    schema = read_input_schema(factories.array_regressor())
    assert schema.names == ["x0", "x1", "x2"]
    assert {feature.dtype for feature in schema.features} == {NUMBER}


def test_schema_round_trips_through_json() -> None:
    schema = read_input_schema(factories.classifier())
    assert type(schema).from_dict(schema.to_dict()) == schema
