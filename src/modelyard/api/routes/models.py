"""What is registered and what is served."""

from typing import Any

from fastapi import APIRouter

from modelyard.api.deps import Authorized, StoreDep

router = APIRouter(prefix="/v1/models", tags=["models"], dependencies=[Authorized])


@router.get("")
def list_models(store: StoreDep) -> dict[str, Any]:
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


@router.get("/{name}")
def show_model(name: str, store: StoreDep) -> dict[str, Any]:
    registry = store.registry
    versions = registry.versions(name)
    serving = store.production.get(name)
    latest = versions[-1].metadata
    return {
        "name": name,
        "aliases": registry.aliases(name),
        "serving_version": serving.version if serving else None,
        "input_schema": (serving.metadata if serving else latest)["input_schema"],
        "versions": [version.metadata for version in versions],
    }
