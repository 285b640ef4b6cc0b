"""One error hierarchy: each error carries its HTTP status and a stable machine-readable code."""

from typing import Any


class ModelyardError(Exception):
    status_code = 500
    code = "internal_error"
    when = ""
    """What causes it, where the code alone does not say (for the OpenAPI document)."""

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []

    def to_dict(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "details": self.details}}


class BadRequest(ModelyardError):
    status_code = 400
    code = "bad_request"


class MalformedJSON(BadRequest):
    code = "malformed_json"


class Unauthorized(ModelyardError):
    status_code = 401
    code = "unauthorized"


class NotFound(ModelyardError):
    status_code = 404
    code = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"

    def __init__(self, message: str, details: list[dict[str, Any]] | None = None, model: str = "") -> None:
        super().__init__(message, details)
        self.model = model
        """The model asked for."""


class VersionNotFound(NotFound):
    code = "version_not_found"


class AliasNotFound(NotFound):
    code = "alias_not_found"


class JobNotFound(NotFound):
    code = "job_not_found"


class ReportNotFound(NotFound):
    code = "report_not_found"


class ScheduleNotFound(NotFound):
    code = "schedule_not_found"


class Conflict(ModelyardError):
    """The resource is not in a state that allows this, e.g. a job that has not finished yet."""

    status_code = 409
    code = "conflict"


class OutputExists(Conflict):
    code = "output_exists"


class JobNotFinished(Conflict):
    code = "job_not_finished"


class JobAlreadyEnded(Conflict):
    code = "job_already_ended"


class JobNotEnded(Conflict):
    """A job that a worker may still touch (queued, running, or canceled and not yet stopped)
    cannot be deleted: its records would come back half-written."""

    code = "job_not_ended"
    when = "a canceled job whose worker has not stopped yet; retry in a few seconds"


class AlreadyCompiled(Conflict):
    code = "already_compiled"


class PayloadTooLarge(ModelyardError):
    status_code = 413
    code = "payload_too_large"


class UnsupportedFormat(ModelyardError):
    status_code = 415
    code = "unsupported_format"


class InvalidInput(ModelyardError):
    """The request is well-formed but its records do not fit the model's input schema."""

    status_code = 422
    code = "invalid_input"


class InvalidRequest(ModelyardError):
    """The body or a query parameter does not have the shape the endpoint takes."""

    status_code = 422
    code = "invalid_request"


class UnparseableFile(InvalidInput):
    code = "unparseable_file"


class InvalidPath(InvalidRequest):
    """A path that leaves the data volume, or names nothing there."""

    code = "invalid_path"


class InputNotFound(InvalidRequest):
    code = "input_not_found"


class RegistryError(ModelyardError):
    """A registry operation was asked for something the registry cannot do."""

    status_code = 400
    code = "registry_error"


class AliasUnreadable(ModelyardError):
    """An alias file on the registry volume is not the JSON the registry wrote."""

    status_code = 503
    code = "alias_unreadable"


class ArtifactRefused(ModelyardError):
    """The load gate refused to unpickle an artifact."""

    status_code = 503
    code = "artifact_refused"


class ArtifactTampered(ArtifactRefused):
    code = "artifact_tampered"


class VersionMismatch(ArtifactRefused):
    code = "library_version_mismatch"


class RuntimeUnavailable(ArtifactRefused):
    """MODELYARD_RUNTIME=onnx, and this version has no verified compiled runtime."""

    code = "runtime_unavailable"


class PredictionFailed(ModelyardError):
    """The estimator raised on records that passed validation: a problem of the model, not the input."""

    code = "prediction_failed"


class ModelNotReady(ModelyardError):
    status_code = 503
    code = "model_not_ready"


class ServerBusy(ModelyardError):
    """The process holds as many request bodies as its memory budget allows: try again shortly."""

    status_code = 503
    code = "server_busy"
    when = "the process holds MODELYARD_MAX_INFLIGHT_MB of request bodies; retry after Retry-After seconds"


class QueueUnavailable(ModelyardError):
    """Redis cannot be reached: batch jobs wait, real-time prediction goes on."""

    status_code = 503
    code = "queue_unavailable"


class JobStopped(ModelyardError):
    """A running job was canceled, or its worker asked to stop, between two chunks."""

    code = "job_stopped"
