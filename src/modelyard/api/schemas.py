"""Request and response bodies of the API, as they appear in its OpenAPI document."""

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from modelyard.batch.spec import Status
from modelyard.stores.uris import IDENTIFIER


class PredictRequest(BaseModel):
    instances: list[dict[str, Any] | list[Any]] = Field(
        min_length=1,
        description="Records to score, each an object of feature name to value; for a model fitted "
        "without feature names, also an array of values in the order of its features (x0, x1, ...).",
        examples=[[{"tenure_months": 3, "monthly_charges": 89.5, "plan": "premium"}]],
    )


class PredictResponse(BaseModel):
    model: str
    version: int
    predictions: list[Any]
    probabilities: list[list[float | None]] | None = Field(
        default=None, description="Classifiers only: one row per record, one column per class."
    )
    classes: list[Any] | None = Field(default=None, description="Classifiers only.")
    warnings: list[dict[str, Any]] = Field(
        default_factory=list, description="Records scored with a caveat, e.g. an unknown category."
    )
    request_id: str


class JobCreate(BaseModel):
    """A batch job: score a file that is already on the data volume, objects in a store, or a
    PostgreSQL table."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(description="Registered model name.", examples=["churn"])
    input: str = Field(
        description="Path of a .csv, .parquet or .jsonl file, relative to the data volume; or an object "
        "s3://BUCKET/KEY, or every such object under s3://BUCKET/PREFIX/, of a store the connections "
        "file allows reading; or a table postgresql://CONNECTION/SCHEMA.TABLE, or a query the "
        "connections file names, postgresql://CONNECTION?query=NAME.",
        examples=[
            "incoming/churn-sample.csv",
            "s3://landing/2026-12-01/",
            "postgresql://warehouse/landing.customers",
        ],
    )
    version: int | None = Field(default=None, ge=1, description="Pin a version instead of production.")
    alias: str | None = Field(default=None, description="Score with the version this alias points at.")
    output: str | None = Field(
        default=None,
        description="Output file, or folder when it ends with '/' (default scored/); relative to data. Or "
        "an object s3://BUCKET/KEY, or a dataset s3://BUCKET/PREFIX/ (parts and a _SUCCESS manifest), "
        "of a store the connections file allows writing. Or a table postgresql://CONNECTION/SCHEMA.TABLE "
        "in a schema the connection may write (bad rows go to SCHEMA.TABLE_errors).",
    )
    format: str | None = Field(default=None, description="csv, parquet or jsonl (default: the input's).")
    fail_fast: bool = Field(default=False, description="Fail the job at the first invalid row.")
    input_format: str | None = Field(
        default=None, description="csv, parquet or jsonl, for an input whose name does not say (e.g. .txt)."
    )
    overwrite: bool = Field(default=False, description="Replace the output if it exists (else 409).")
    key: list[Annotated[str, Field(pattern=IDENTIFIER.pattern)]] = Field(
        default=[],
        description="For a table input: the columns that identify a row (default: its primary key).",
        examples=[["id"]],
    )
    keep: list[Annotated[str, Field(pattern=IDENTIFIER.pattern)]] = Field(
        default=[],
        description="The input columns the output keeps (for a table input, default: its key and the "
        "model's features); the predictions follow.",
    )
    mode: Literal["create", "replace", "append"] | None = Field(
        default=None,
        description="For a table output: create (default; 409 if it exists), replace (TRUNCATE and INSERT "
        "in one transaction) or append.",
    )


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable and machine-readable, e.g. invalid_input.")
    message: str = Field(description="What was wrong, and how to fix it.")
    details: list[dict[str, Any]] = Field(
        description="Per row and field where there are some: row, field, code, message, value."
    )


class ErrorResponse(BaseModel):
    """Every error the API returns, whatever the status."""

    error: ErrorDetail


class Health(BaseModel):
    status: Literal["ok"]


class ModelReadiness(BaseModel):
    model: str
    production_version: int
    serving_version: int | None
    status: Literal["ready", "loading", "refused"]
    code: str | None = None
    message: str | None = None


class QueueState(BaseModel):
    status: Literal["ok", "unavailable"]
    workers: int | None = Field(default=None, description="Workers listening on the queue.")
    message: str | None = None


class Readiness(BaseModel):
    status: Literal["ready", "not_ready"]
    models: list[ModelReadiness]
    queue: QueueState
    process: int = Field(description="The server process that answered: several can serve one port")


class ModelSummary(BaseModel):
    name: str
    versions: list[int]
    aliases: dict[str, int]
    serving_version: int | None


class ModelList(BaseModel):
    models: list[ModelSummary]


class FeatureInfo(BaseModel):
    name: str
    dtype: Literal["number", "string"]
    categories: list[Any] | None = None
    unknown_categories: Literal["error", "allowed"] | None = None
    nullable: bool = False
    example: Any = None


class InputSchemaInfo(BaseModel):
    features: list[FeatureInfo]
    generated_names: bool = False


class ArtifactInfo(BaseModel):
    file: str
    format: Literal["joblib", "pickle"]
    sha256: str
    size_bytes: int
    source: str


class RuntimeInfo(BaseModel):
    """Which runtime computes this version's predictions, and why."""

    serving: Literal["onnx", "sklearn"] | None = Field(
        description="What scores requests (null: refused under MODELYARD_RUNTIME=onnx)"
    )
    bulk: Literal["onnx", "sklearn"] | None = Field(
        description="What scores big chunks: files, large requests"
    )
    reason: str
    compiled: dict[str, Any] | None = Field(
        description="The report of `modelyard models compile`: verification, speeds, the graph's SHA-256"
    )


class VersionInfo(BaseModel):
    """What the registry recorded for a version (its metadata.json)."""

    model_config = ConfigDict(extra="allow")

    name: str
    version: int
    created_at: str
    description: str | None
    metrics: dict[str, float]
    artifact: ArtifactInfo
    versions: dict[str, str] = Field(description="python, scikit-learn (as saved with), numpy, joblib")
    task: Literal["classification", "regression"]
    estimator: str
    classes: list[Any] | None
    has_predict_proba: bool
    input_schema: InputSchemaInfo
    runtime: RuntimeInfo
    reference: "Reference | None" = Field(
        description="The reference profile runs are compared with (GET .../profile gives its bins)."
    )
    reference_note: str | None = Field(description="Why there is no profile to use, and how to add one.")


class ModelDetail(BaseModel):
    name: str
    aliases: dict[str, int]
    serving_version: int | None
    input_schema: InputSchemaInfo
    versions: list[VersionInfo]


class WarningCount(BaseModel):
    field: str
    code: str
    count: int


class JobRecord(BaseModel):
    id: str
    status: Status
    model: str
    version: int
    input: str
    output: str
    errors_output: str
    format: Literal["csv", "parquet", "jsonl", "table"] = Field(
        description="The output's format; `table` for a PostgreSQL table."
    )
    fail_fast: bool
    origin: str | None
    rows_total: int | None
    rows_done: int
    rows_failed: int
    progress: float | None
    warnings: list[WarningCount]
    error: ErrorDetail | None
    created_at: str | None
    started_at: str | None
    ended_at: str | None
    heartbeat_at: str | None
    worker: str | None
    parts: dict[str, int] | None


class JobList(BaseModel):
    jobs: list[JobRecord]


class InvalidCount(BaseModel):
    field: str | None = Field(description="The field at fault; null for a malformed row.")
    code: str
    rows: int


class RowCounts(BaseModel):
    read: int
    scored: int
    invalid: int


class Reference(BaseModel):
    rows: int
    source: str = Field(description="The reference rows' file, or the demo's training data.")
    created_at: str


class DriftMethod(BaseModel):
    method: str
    empty_share: float = Field(description="Share an empty bin counts as, on either side.")
    thresholds: dict[str, float] = Field(description="moderate and major: the usual 0.1 and 0.25.")


class Compared(BaseModel):
    """A feature (or the predictions): the run's counts on the reference's bins, and its drift."""

    name: str
    kind: Literal["numeric", "categorical"]
    psi: float | None = Field(description="Population stability index; null when no row was scored.")
    status: Literal["stable", "moderate", "major", "no rows"]
    bins: list[str] = Field(description="What each bin holds; the last is missing values.")
    reference: list[int] = Field(description="Reference rows per bin.")
    run: list[int] = Field(description="The run's valid rows per bin.")


class JobReport(BaseModel):
    """What a committed batch run scored, what it set aside, and how far its data drifted from the
    version's reference profile (features worst first)."""

    job_id: str
    model: str
    version: int
    origin: str | None
    schedule: str | None
    input: str
    output: str
    submitted_at: str | None
    finished_at: str
    rows: RowCounts
    invalid_share: float
    invalid: list[InvalidCount] = Field(description="Invalid rows by field and code, most first.")
    reference: Reference | None = Field(description="Null when the version has no reference profile.")
    note: str | None = Field(description="Why drift is not computed, when it is not.")
    drift: DriftMethod
    features: list[Compared]
    prediction: Compared | None
    counting_seconds: float = Field(description="Time the run spent counting for this report.")


class RowRange(BaseModel):
    """The rows of a table a run scores: `column` in (after, upto]."""

    column: str
    after: str | None = Field(description="None on the schedule's first run: every row up to `upto`.")
    upto: str


class RunRecord(BaseModel):
    id: str
    schedule: str
    slot: str
    started_at: str
    rescore: bool
    files: list[str]
    jobs: list[str]
    unchanged: int
    waiting: list[str]
    """Files changed within MODELYARD_FILE_SETTLE_S: maybe still being written, left for a later run."""
    settles_at: dict[str, str] = Field(
        default_factory=dict,
        description="When each waiting file will have settled (unchanged for MODELYARD_FILE_SETTLE_S): a "
        "run from then on scores it",
    )
    range: RowRange | None = Field(
        default=None, description="For a schedule on a table's new rows (since): the rows this run scores."
    )
    status: str = Field(
        description="running, finished, failed, canceled (of its jobs), no new files, waiting for "
        "files, no new rows, waiting: run ... has not ended, model not registered, or model not ready: ..."
    )


class RunList(BaseModel):
    runs: list[RunRecord]


class ScheduleInfo(BaseModel):
    name: str
    cron: str
    timezone: str
    model: str
    version: int | None
    alias: str | None
    input: str
    output: str
    format: str | None
    fail_fast: bool
    next_run: str
    last_run: RunRecord | None


class SchedulerState(BaseModel):
    alive: bool
    last_tick: str | None


class ScheduleList(BaseModel):
    scheduler: SchedulerState
    schedules: list[ScheduleInfo]


class ProfiledFeature(BaseModel):
    """A feature (or the predictions) of the reference rows: its bins and how many rows fell in each."""

    name: str
    kind: Literal["numeric", "categorical"]
    bins: list[str] = Field(description="What each bin holds; the last is missing values.")
    reference: list[int] = Field(description="Reference rows per bin.")


class ProfileInfo(BaseModel):
    """A version's reference profile, which every run of it is compared with."""

    model: str
    version: int
    rows: int
    source: str = Field(description="The reference rows' file, or the demo's training data.")
    created_at: str
    features: list[ProfiledFeature]
    prediction: ProfiledFeature


class DataFile(BaseModel):
    path: str = Field(description="Relative to the data volume, as a job's input names it.")
    format: Literal["csv", "parquet", "jsonl"]
    size_bytes: int
    modified_at: str


class DataFileList(BaseModel):
    files: list[DataFile] = Field(description="Newest first.")
    truncated: bool = Field(description="True when there were more than `limit`.")
