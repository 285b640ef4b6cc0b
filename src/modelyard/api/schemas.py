"""Request and response bodies of the API, as they appear in its OpenAPI document."""

from typing import Any

from pydantic import BaseModel, Field


class PredictRequest(BaseModel):
    instances: list[dict[str, Any]] = Field(
        min_length=1,
        description="Records to score, each an object of feature name to value.",
        examples=[[{"tenure_months": 3, "monthly_charges": 89.5, "plan": "premium"}]],
    )


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Any]
    probabilities: list[list[float]] | None = Field(
        default=None, description="Classifiers only: one row per record, one column per class."
    )
    classes: list[Any] | None = Field(default=None, description="Classifiers only.")
    warnings: list[dict[str, Any]] = Field(
        default_factory=list, description="Records scored with a caveat, e.g. an unknown category."
    )
    request_id: str
