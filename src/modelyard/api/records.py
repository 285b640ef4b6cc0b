"""The full reading of a JSON prediction request, `{"instances": [...]}`, for the predict route and
the lean path (api/fastpredict.py) alike: every check, every error and warning, in one order.

The model comes first, since what a body may hold is counted in its features; then the body's
shape, before decoding (api/body.py); then its records.
"""

import json
from typing import Any

from modelyard.api.body import parse_body
from modelyard.api.schemas import PredictRequest
from modelyard.errors import InvalidRequest
from modelyard.registry.schema import InputSchema
from modelyard.scoring.predict import LoadedModel
from modelyard.tabular import Table


def read_records(raw: bytes, model: LoadedModel, max_instances: int) -> Table:
    """The request's records as a table of the model's features, or the error that says why not."""
    # Room for a few more fields per record than the model takes (an id column is common): beyond
    # that, a body is refused before it is decoded, whatever it holds.
    max_values = max_instances * (2 * len(model.schema.names) + 8) + 8
    # every instance is an object or an array (others are refused), so the shape counted them all
    instances = parse_body(raw, PredictRequest, max_instances, max_values).instances
    return Table.from_records(as_records(instances, model.schema))


def as_records(instances: list[dict[str, Any] | list[Any]], schema: InputSchema) -> list[dict[str, Any]]:
    """Arrays of values become records, for a model fitted without feature names."""
    if all(isinstance(instance, dict) for instance in instances):
        return instances  # type: ignore[return-value]
    rows = [row for row, instance in enumerate(instances) if isinstance(instance, list)]
    if not schema.generated_names:
        raise InvalidRequest(
            f"record {rows[0]} is an array, but this model's features have names: send objects, "
            f"e.g. {json.dumps(schema.example_row())[:200]}",
            [{"row": row, "code": "array_record"} for row in rows[:100]],
        )
    wrong = [row for row in rows if len(instances[row]) != len(schema.names)]
    if wrong:
        raise InvalidRequest(
            f"record {wrong[0]} has {len(instances[wrong[0]])} values; this model takes "
            f"{len(schema.names)} ({', '.join(schema.names)})",
            [{"row": row, "code": "wrong_length"} for row in wrong[:100]],
        )
    return [dict(zip(schema.names, i, strict=True)) if isinstance(i, list) else i for i in instances]
