"""The OpenAPI document, with each served model's own request schema, example and predict path.

FastAPI builds the fixed part once. Each request for /openapi.json adds, for every model served in
production, a `<model>.Record` component (its features: names, types, categories, nullability),
a `<model>.PredictRequest` with an example of real values, and the path
/v1/models/<model>/predict that uses them, so that /docs "Try it out" works as it stands and a
generated client knows the fields. It is rebuilt when a model is registered or promoted.
"""

import copy
import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from modelyard.registry.schema import NUMBER, Feature, InputSchema
from modelyard.scoring.predict import LoadedModel
from modelyard.serving.cache import ModelCache

GENERIC_PREDICT = "/v1/models/{name}/predict"


def install(app: FastAPI, store: ModelCache) -> None:
    fixed: dict[str, Any] = {}
    built: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}

    def openapi() -> dict[str, Any]:
        if not fixed:
            fixed.update(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
        served = dict(store.production)
        key = tuple(sorted((name, model.version) for name, model in served.items()))
        if key not in built:
            document = copy.deepcopy(fixed)
            for name in sorted(served):
                _add_model(document, served[name])
            _name_examples(document, sorted(served))
            built.clear()
            built[key] = document
        return built[key]

    app.openapi = openapi  # type: ignore[method-assign]


def _add_model(document: dict[str, Any], model: LoadedModel) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    record, request = f"{model.name}.Record", f"{model.name}.PredictRequest"
    schemas[record] = record_schema(
        model.schema, f"A record for model {model.name!r} version {model.version}."
    )
    example = {"instances": [model.schema.example_row()]}
    item: dict[str, Any] = {"$ref": f"#/components/schemas/{record}"}
    if model.schema.generated_names:
        item = {"oneOf": [item, _array_schema(model.schema)]}
    schemas[request] = {
        "type": "object",
        "required": ["instances"],
        "properties": {"instances": {"type": "array", "minItems": 1, "items": item}},
        "example": example,
    }
    generic = document["paths"].get(GENERIC_PREDICT, {}).get("post")
    if generic is None:
        return
    operation = copy.deepcopy(generic)
    operation["parameters"] = [p for p in operation.get("parameters", []) if p["name"] != "name"]
    operation["operationId"] = f"predict_{re.sub(r'[^A-Za-z0-9_]', '_', model.name)}"
    operation["summary"] = f"Predict with {model.name}"
    operation["requestBody"] = {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{request}"}, "example": example}
        },
    }
    document["paths"][f"/v1/models/{model.name}/predict"] = {"post": operation}


def _name_examples(document: dict[str, Any], names: list[str]) -> None:
    """The models served, as examples of the {name} of the model endpoints."""
    for path, operations in document["paths"].items():
        if not path.startswith("/v1/models/{name}"):
            continue
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                if parameter["name"] == "name" and names:
                    parameter["schema"]["examples"] = names


def record_schema(schema: InputSchema, description: str) -> dict[str, Any]:
    """A JSON schema of one record: every feature required, others allowed (and ignored)."""
    return {
        "type": "object",
        "description": description,
        "required": schema.names,
        "properties": {feature.name: _feature_schema(feature) for feature in schema.features},
        "additionalProperties": True,
        "example": schema.example_row(),
    }


def _feature_schema(feature: Feature) -> dict[str, Any]:
    kind = "number" if feature.dtype == NUMBER else "string"
    schema: dict[str, Any] = {"type": [kind, "null"] if feature.nullable else kind}
    notes = []
    if feature.categories is not None:
        if feature.unknown_categories == "error":
            schema["enum"] = [*feature.categories, *([None] if feature.nullable else [])]
            notes.append("one of the categories the model was fitted on")
        else:
            notes.append(f"known: {feature.categories[:20]}; others are scored, with a warning")
    if feature.nullable:
        notes.append("null is imputed")
    if notes:
        schema["description"] = "; ".join(notes)
    return schema


def _array_schema(schema: InputSchema) -> dict[str, Any]:
    return {
        "type": "array",
        "description": f"The values in the order {', '.join(schema.names)}",
        "minItems": len(schema.names),
        "maxItems": len(schema.names),
        "items": {"type": ["number", "null"]},
    }
