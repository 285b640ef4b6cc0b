"""What is registered and what is served."""

from typing import Any

from fastapi import APIRouter

from modelyard.api.deps import Authorized, SettingsDep, StoreDep
from modelyard.api.errors import documented
from modelyard.api.schemas import ModelDetail, ModelList
from modelyard.compiled.choose import choose, read_report
from modelyard.errors import ArtifactRefused, InvalidRequest, ModelNotFound, RuntimeUnavailable, Unauthorized
from modelyard.registry.store import ModelVersion
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
        "versions": [{**v.metadata, "runtime": _runtime(v, serving, settings.runtime)} for v in versions],
    }


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
