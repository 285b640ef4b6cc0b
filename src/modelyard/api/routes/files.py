"""The files on the data volume that a job can score, for a client (the console) to pick from."""

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query

from modelyard.api.deps import Authorized, SettingsDep
from modelyard.api.errors import documented
from modelyard.api.schemas import DataFileList
from modelyard.batch.paths import data_path
from modelyard.errors import InvalidPath, Unauthorized
from modelyard.formats import SUFFIXES

router = APIRouter(prefix="/v1/files", tags=["files"], dependencies=[Authorized])


@router.get("", response_model=DataFileList, responses=documented(Unauthorized, InvalidPath))
def list_files(
    settings: SettingsDep,
    under: Annotated[
        str | None, Query(description="A folder of the data volume (default: all of it).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
) -> dict[str, Any]:
    """CSV, Parquet and JSON Lines files on the data volume, newest first. Hidden files (a write in
    progress) and symbolic links are left out."""
    root = settings.data_dir.resolve()
    top = data_path(settings.data_dir, under, "folder") if under else root
    found = sorted(_scorable(top), key=lambda entry: entry[1].st_mtime, reverse=True)
    return {
        "files": [
            {
                "path": str(path.relative_to(root)),
                "format": SUFFIXES[path.suffix.lower()],
                "size_bytes": stat.st_size,
                "modified_at": datetime.fromtimestamp(stat.st_mtime, UTC).isoformat(),
            }
            for path, stat in found[:limit]
        ],
        "truncated": len(found) > limit,
    }


def _scorable(top: Path) -> list[tuple[Path, os.stat_result]]:
    found = []
    for folder, subfolders, names in os.walk(top):  # symbolic links to folders are not followed
        subfolders[:] = [name for name in subfolders if not name.startswith(".")]
        for name in names:
            path = Path(folder, name)
            if name.startswith(".") or path.suffix.lower() not in SUFFIXES or path.is_symlink():
                continue
            try:
                found.append((path, path.stat()))
            except OSError:  # removed meanwhile
                continue
    return found
