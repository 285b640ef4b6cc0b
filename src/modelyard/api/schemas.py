"""Request and response bodies of the API, as they appear in its OpenAPI document."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


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


class JobCreate(BaseModel):
    """A batch job: score a file that is already on the data volume."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.", examples=["churn"])
    input: str = Field(
        description="Path of a .csv, .parquet or .jsonl file, relative to the data volume.",
        examples=["incoming/churn-sample.csv"],
    )
    version: int | None = Field(default=None, ge=1, description="Pin a version instead of production.")
    alias: str | None = Field(default=None, description="Score with the version this alias points at.")
    output: str | None = Field(
        default=None,
        description="Output file, or folder when it ends with '/' (default scored/); relative to data.",
    )
    format: str | None = Field(default=None, description="csv, parquet or jsonl (default: the input's).")
    fail_fast: bool = Field(default=False, description="Fail the job at the first invalid row.")
    input_format: str | None = Field(
        default=None, description="csv, parquet or jsonl, for an input whose name does not say (e.g. .txt)."
    )
    overwrite: bool = Field(default=False, description="Replace the output if it exists (else 409).")
