"""What is registered and what is served."""

from typing import Annotated, Any

from fastapi import APIRouter, Path

from modelyard.api.deps import Authorized, SettingsDep, StoreDep
from modelyard.api.errors import documented
from modelyard.api.schemas import ModelDetail, ModelList, ProfileInfo
from modelyard.compiled.choose import choose, read_report
from modelyard.errors import (
    ArtifactRefused,
    InvalidRequest,
    ModelNotFound,
    RuntimeUnavailable,
    Unauthorized,
    VersionNotFound,
)
from modelyard.registry.store import ModelVersion
from modelyard.reports import profile as profiles
from modelyard.reports.bins import Bins
from modelyard.scoring.predict import LoadedModel

router = APIRouter(
    prefix="/v1/models",
    tags=["models"],
    dependencies=[Authorized],
    responses=documented(Unauthorized, InvalidRequest),  # the routes below add no other 401 or 422
)


@router.get("", response_model=ModelList)
def list_models(store: StoreDep) -> dict[str, Any]:
    """Registered models: versions, aliases, the version being served."""
    registry = store.registry
    models = []
    for name in registry.model_names():
        serving = store.production.get(name)
        models.append(
            {
                "name": name,
                "versions": registry.version_numbers(name),
                "aliases": registry.aliases(name),
                "serving_version": serving.version if serving else None,
            }
        )
    return {"models": models}


@router.get(
    "/{name}",
    response_model=ModelDetail,
    responses=documented(Unauthorized, InvalidRequest, ModelNotFound, ArtifactRefused),
)
def show_model(name: str, store: StoreDep, settings: SettingsDep) -> dict[str, Any]:
    """One model: aliases, every version's metadata and runtime, and the input schema of the version
    served."""
    registry = store.registry
    versions = registry.versions(name)
    serving = store.production.get(name)
    latest = versions[-1].metadata
    return {
        "name": name,
        "aliases": registry.aliases(name),
        "serving_version": serving.version if serving else None,
        "input_schema": (serving.metadata if serving else latest)["input_schema"],
        "versions": [
            {**v.metadata, "runtime": _runtime(v, serving, settings.runtime), **_reference(v)}
            for v in versions
        ],
    }


def _reference(version: ModelVersion) -> dict[str, Any]:
    profile, why_none = profiles.read(version)
    if profile is None:
        return {"reference": None, "reference_note": why_none}
    summary = {"rows": profile.rows, "source": profile.source, "created_at": profile.created_at}
    return {"reference": summary, "reference_note": None}


def _runtime(version: ModelVersion, serving: LoadedModel | None, mode: str) -> dict[str, Any]:
    """What serves the version if loaded, else what would."""
    report = read_report(version)
    if serving is not None and serving.version == version.version:
        assert serving.runtime is not None and serving.bulk is not None
        runtime, bulk, reason = serving.runtime.name, serving.bulk.name, serving.runtime_reason
    else:
        try:
            choice = choose(version, mode)
            runtime, bulk, reason = choice.realtime, choice.bulk, choice.reason
        except RuntimeUnavailable as exc:
            runtime, bulk, reason = None, None, exc.message
    return {"serving": runtime, "bulk": bulk, "reason": reason, "compiled": report}


@router.get(
    "/{name}/versions/{version}/profile",
    response_model=ProfileInfo,
    responses=documented(
        Unauthorized,
        InvalidRequest,
        ModelNotFound,
        VersionNotFound,
        ArtifactRefused,
        profiles.ProfileNotFound,
    ),
)
def version_profile(name: str, version: Annotated[int, Path(ge=1)], store: StoreDep) -> dict[str, Any]:
    """The version's reference profile: per feature (and for the predictions) the bins its values
    fall into and how many reference rows fell in each; every run's report is compared with it."""
    model_version = store.registry.get(name, version)
    profile, why_none = profiles.read(model_version)
    if profile is None:
        raise profiles.ProfileNotFound(why_none or "no profile")
    return {
        "model": name,
        "version": version,
        "rows": profile.rows,
        "source": profile.source,
        "created_at": profile.created_at,
        "features": [_profiled(bins, profile.reference[bins.name]) for bins in profile.features],
        "prediction": _profiled(profile.prediction, profile.reference["prediction"]),
    }


def _profiled(bins: Bins, reference: list[int]) -> dict[str, Any]:
    return {"name": bins.name, "kind": bins.kind, "bins": bins.labels, "reference": reference}
