"""The OpenAPI document, with each served model's own request schema, example and predict path.

FastAPI builds the fixed part once. Each request for /openapi.json adds, for every model served in
production, a `<model>.Record` component (its features: names, types, categories, nullability),
a `<model>.PredictRequest` with an example of real values, and the path
/v1/models/<model>/predict that uses them, so that /docs "Try it out" works as it stands and a
generated client knows the fields. It is rebuilt when a model is registered or promoted.

Its security follows the server's settings: without an API key, the server takes every request,
so the document asks for no key (no security schemes or requirements, and no 401 answers).
"""

import copy
import re
from collections.abc import Iterator
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from modelyard.config import Settings
from modelyard.formats import FORMATS
from modelyard.registry.schema import NUMBER, Feature, InputSchema
from modelyard.scoring.predict import LoadedModel
from modelyard.serving.cache import ModelCache

GENERIC_PREDICT = "/v1/models/{name}/predict"


def install(app: FastAPI, store: ModelCache) -> None:
    fixed: dict[str, Any] = {}
    built: dict[tuple[tuple[str, int], ...], dict[str, Any]] = {}
    settings: Settings = app.state.settings

    def openapi() -> dict[str, Any]:
        if not fixed:
            fixed.update(
                get_openapi(
                    title=app.title, version=app.version, description=app.description, routes=app.routes
                )
            )
            _forms(fixed)
            if settings.api_key is None:
                _without_key(fixed)
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


def _forms(document: dict[str, Any]) -> None:
    """What a multipart form can say: a field left out is none (a form has no null), and a file
    part's type names its format, as much as its name does (api: detect_format)."""
    schemas = document.get("components", {}).get("schemas", {})
    for operation in _operations(document):
        form = operation.get("requestBody", {}).get("content", {}).get("multipart/form-data")
        if form is None:
            continue
        body = schemas.get(form["schema"].get("$ref", "").rpartition("/")[2], form["schema"])
        for name, field in body.get("properties", {}).items():
            kinds = [kind for kind in field.pop("anyOf", []) if kind.get("type") != "null"]
            if len(kinds) == 1:
                field.update(kinds[0])
            elif kinds:
                field["anyOf"] = kinds
            if field.get("contentMediaType"):
                form.setdefault("encoding", {})[name] = {"contentType": ", ".join(FORMATS.values())}


def _without_key(document: dict[str, Any]) -> None:
    """The document of a server that has no key: nothing asks for one, and no 401 can happen."""
    document.get("components", {}).pop("securitySchemes", None)
    for operation in _operations(document):
        operation.pop("security", None)
        operation.get("responses", {}).pop("401", None)


def _operations(document: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for operations in document["paths"].values():
        yield from operations.values()


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
    """The values of one record in the features' order, each as its feature takes it."""
    return {
        "type": "array",
        "description": f"The values in the order {', '.join(schema.names)}",
        "minItems": len(schema.names),
        "maxItems": len(schema.names),
        "prefixItems": [_feature_schema(feature) for feature in schema.features],
    }
