"""The model registry on the shared volume.

    <root>/<name>/<version>/model.joblib|model.pkl   the artifact, read-only
    <root>/<name>/<version>/metadata.json            SHA-256, library versions, task, input schema
    <root>/<name>/aliases/<alias>.json               {"version": N, "updated_at": ...}

A version is staged in a hidden folder and renamed into place, so other containers see all of it or
none of it; renaming onto an existing version fails, which is how two registrations never share a
number. An alias is one small file replaced atomically.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.errors import (
    AliasNotFound,
    AliasUnreadable,
    ArtifactRefused,
    InvalidRequest,
    ModelNotFound,
    RegistryError,
    VersionNotFound,
)
from modelyard.fsutil import atomic_write_bytes, atomic_write_json

if TYPE_CHECKING:
    from modelyard.registry.schema import InputSchema

log = logging.getLogger(__name__)
PRODUCTION = "production"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    path: Path
    metadata: dict[str, Any]
    reused: bool = False
    """True when registering found these very bytes already registered, and added nothing."""

    @property
    def artifact(self) -> Path:
        return self.path / str(self.metadata["artifact"]["file"])

    @property
    def schema(self) -> "InputSchema":
        from modelyard.registry.schema import InputSchema  # scikit-learn: not for who only reads the registry

        return InputSchema.from_dict(self.metadata["input_schema"])


def check_name(name: str, what: str = "model name") -> str:
    if not NAME_PATTERN.fullmatch(name) or name.isdigit():
        raise RegistryError(
            f"{what} {name!r} is not valid: use 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, and not only digits"
        )
    return name


class Registry:
    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def register(
        self,
        artifact: Path,
        name: str,
        description: str | None = None,
        metrics: dict[str, float] | None = None,
        force_new: bool = False,
        source: str | None = None,
    ) -> ModelVersion:
        """A new version with a copy of the artifact (`source` says where it came from, its path by
        default); or, for a file whose SHA-256 equals that of a
        version already registered under this name, that version (unless force_new)."""
        from modelyard.registry.artifacts import FORMATS, describe, library_versions, unpickle

        check_name(name)
        artifact = Path(artifact)
        fmt = FORMATS.get(artifact.suffix.lower())
        if fmt is None:
            raise RegistryError(f"{artifact}: expected a .joblib, .pkl or .pickle file")
        if not artifact.is_file():
            raise RegistryError(f"{artifact}: no such file")
        data = artifact.read_bytes()
        sha256 = hashlib.sha256(data).hexdigest()
        existing = None if force_new else self._with_sha256(name, sha256)
        if existing is not None:
            return existing
        try:
            estimator, saved_with = unpickle(data)
        except Exception as exc:
            if isinstance(exc, ModuleNotFoundError):
                hint = f"it needs the module {exc.name!r}, not installed here: install its classes' code"
            else:
                hint = "is the file complete, and written by joblib.dump or pickle.dump?"
            raise RegistryError(
                f"{artifact}: cannot be loaded ({type(exc).__name__}: {exc}); {hint}"
            ) from exc
        metadata = {
            "name": name,
            "created_at": datetime.now(UTC).isoformat(),
            "description": description,
            "metrics": metrics or {},
            "artifact": {
                "file": f"model{artifact.suffix.lower()}",
                "format": fmt,
                "sha256": sha256,
                "size_bytes": len(data),
                "source": source or str(artifact.resolve()),
            },
            "versions": library_versions(saved_with),
            **describe(estimator),
        }
        return self._commit(name, data, metadata)

    def _with_sha256(self, name: str, sha256: str) -> ModelVersion | None:
        for number in reversed(self.version_numbers(name)):
            try:
                found = self._read(name, number)
            except ArtifactRefused:
                continue  # unreadable metadata: not a match
            if found.metadata.get("artifact", {}).get("sha256") == sha256:
                return ModelVersion(found.name, found.version, found.path, found.metadata, reused=True)
        return None

    def _commit(self, name: str, data: bytes, metadata: dict[str, Any]) -> ModelVersion:
        model_dir = self.root / name
        model_dir.mkdir(parents=True, exist_ok=True)
        staging = model_dir / f".staging-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            atomic_write_bytes(staging / metadata["artifact"]["file"], data, mode=0o444)
            while True:
                version = max(self.version_numbers(name), default=0) + 1
                metadata["version"] = version
                atomic_write_json(staging / "metadata.json", metadata, mode=0o444)
                try:
                    os.rename(staging, model_dir / str(version))
                except OSError:
                    if (model_dir / str(version)).exists():
                        continue  # another process took this number first: take the next
                    raise
                return self.get(name, version)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def model_names(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            entry.name
            for entry in self.root.iterdir()
            if entry.is_dir() and NAME_PATTERN.fullmatch(entry.name) and self.version_numbers(entry.name)
        )

    def version_numbers(self, name: str) -> list[int]:
        model_dir = self.root / name
        if not NAME_PATTERN.fullmatch(name) or not model_dir.is_dir():
            return []
        return sorted(int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit())

    def versions(self, name: str) -> list[ModelVersion]:
        return [self._read(name, version) for version in self._existing(name)]

    def get(self, name: str, version: int) -> ModelVersion:
        existing = self._existing(name)
        if version not in existing:
            raise VersionNotFound(f"model {name!r} has no version {version}; versions: {existing}")
        return self._read(name, version)

    def _read(self, name: str, version: int) -> ModelVersion:
        path = self.root / name / str(version)
        try:
            metadata = json.loads((path / "metadata.json").read_text())
        except (OSError, ValueError) as exc:
            raise ArtifactRefused(
                f"{path / 'metadata.json'} cannot be read ({exc}); without it the artifact cannot be "
                f"verified. Register the model again: modelyard models register FILE --name {name}"
            ) from exc
        return ModelVersion(name=name, version=version, path=path, metadata=metadata)

    def _existing(self, name: str) -> list[int]:
        numbers = self.version_numbers(name)
        if not numbers:
            raise ModelNotFound(
                f"no model named {name!r}; registered models: {self.model_names() or 'none'}", model=name
            )
        return numbers

    def promote(self, name: str, version: int, alias: str = PRODUCTION) -> ModelVersion:
        check_name(alias, "alias")
        model_version = self.get(name, version)
        record = {"version": version, "updated_at": datetime.now(UTC).isoformat()}
        atomic_write_json(self.root / name / "aliases" / f"{alias}.json", record)
        return model_version

    def aliases(self, name: str) -> dict[str, int]:
        """Every readable alias of a model; an unreadable alias file is logged and left out."""
        self._existing(name)
        alias_dir = self.root / name / "aliases"
        if not alias_dir.is_dir():
            return {}
        found = {}
        for path in sorted(alias_dir.glob("*.json")):
            if path.name.startswith("."):
                continue
            try:
                found[path.stem] = self._read_alias(path)
            except AliasUnreadable as exc:
                log.warning("alias left out: %s", exc.message)
        return found

    def alias_version(self, name: str, alias: str = PRODUCTION) -> int | None:
        """The version an alias points at; None when the alias does not exist."""
        if not NAME_PATTERN.fullmatch(alias):
            return None  # promote makes only valid names: '../x' or a NUL byte is no alias
        path = self.root / name / "aliases" / f"{alias}.json"
        try:
            return self._read_alias(path)
        except FileNotFoundError:
            return None

    @staticmethod
    def _read_alias(path: Path) -> int:
        try:
            return int(json.loads(path.read_text())["version"])
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, TypeError) as exc:
            model = path.parent.parent.name
            raise AliasUnreadable(
                f"the alias file {path} cannot be read ({type(exc).__name__}: {exc}); point the alias "
                f"again with: modelyard models promote {model} VERSION --alias {path.stem}"
            ) from exc

    def resolve(self, name: str, alias: str = PRODUCTION) -> ModelVersion:
        self._existing(name)
        version = self.alias_version(name, alias)
        if version is None:
            raise AliasNotFound(
                f"model {name!r} has no {alias!r} alias; set one with: "
                f"modelyard models promote {name} VERSION"
                + ("" if alias == PRODUCTION else f" --alias {alias}")
            )
        return self.get(name, version)

    def pick(self, name: str, version: int | None = None, alias: str | None = None) -> ModelVersion:
        """The version a caller asks for: by number, or by alias, else the production one. The one
        rule for the API, the CLI, batch jobs and schedules; each words a conflict in its own terms
        first (?version and ?alias, --version and --alias), this is the last word."""
        if version is not None and alias is not None:
            raise InvalidRequest("pass either version or alias, not both")
        if version is not None:
            return self.get(name, version)
        return self.resolve(name, alias or PRODUCTION)
