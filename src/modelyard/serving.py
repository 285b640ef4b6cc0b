"""The models the API serves, kept in step with the registry.

A watcher thread polls the production aliases (cheap: one small file per model) and loads a moved
alias in the background; requests keep getting the previous version until the new one is loaded and
warmed, then the reference is swapped in one assignment. A version the load gate refuses is never
swapped in: the old one keeps serving and the refusal is kept for /readyz.
"""

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from modelyard import loading
from modelyard.config import Settings
from modelyard.errors import BadRequest, ModelNotReady, ModelyardError
from modelyard.metrics import ApiMetrics
from modelyard.registry import PRODUCTION, Registry
from modelyard.scoring import LoadedModel

log = logging.getLogger(__name__)

RETRY_REFUSED_S = 30.0
"""How long a refused version rests before the watcher tries it again (the file may be restored)."""


@dataclass(frozen=True)
class LoadProblem:
    version: int
    code: str
    message: str
    at: float

    def blocks(self, version: int) -> bool:
        return self.version == version and time.monotonic() - self.at < RETRY_REFUSED_S


class ModelStore:
    def __init__(self, registry: Registry, settings: Settings, metrics: ApiMetrics) -> None:
        self.registry = registry
        self.settings = settings
        self.metrics = metrics
        self.production: dict[str, LoadedModel] = {}
        self.wanted: dict[str, int] = {}
        self.problems: dict[str, LoadProblem] = {}
        self.synced = False
        self._pinned: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._pinned_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._watch, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _watch(self) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception:
                log.exception("checking the registry failed; retrying")
            self._stop.wait(self.settings.reload_interval_s)

    def sync(self) -> None:
        """Load every production version that moved since the last look."""
        wanted = {}
        for name in self.registry.model_names():
            try:
                version = self.registry.alias_version(name, PRODUCTION)
            except (OSError, ValueError, KeyError) as exc:
                log.error(
                    "cannot read the production alias; keeping what is served",
                    extra={"model": name, "reason": repr(exc)},
                )
                version = self.wanted.get(name)
            if version is not None:
                wanted[name] = version
        self.wanted = wanted
        for name, version in wanted.items():
            current = self.production.get(name)
            problem = self.problems.get(name)
            if (current and current.version == version) or (problem and problem.blocks(version)):
                continue
            self._load_production(name, version)
        self.production = {name: model for name, model in self.production.items() if name in wanted}
        self.synced = True

    def _load_production(self, name: str, version: int) -> None:
        try:
            model = self._load(name, version)
        except ModelyardError as exc:
            self.problems[name] = LoadProblem(version, exc.code, exc.message, time.monotonic())
            self.metrics.load_failures.labels(name, exc.code).inc()
            serving = self.production.get(name)
            log.error(
                "refused to load a production version; %s",
                f"still serving version {serving.version}" if serving else "nothing is served",
                extra={"model": name, "version": version, "code": exc.code, "reason": exc.message},
            )
            return
        self.production = {**self.production, name: model}
        self.problems.pop(name, None)
        self.metrics.serving_version.labels(name).set(version)
        log.info("now serving", extra={"model": name, "version": version})

    def _load(self, name: str, version: int) -> LoadedModel:
        model_version = self.registry.get(name, version)
        return loading.load(model_version, self.settings.allow_version_mismatch)

    def get(self, name: str, version: int | None = None, alias: str | None = None) -> LoadedModel:
        """The production version, or a version pinned by number or by another alias."""
        if version is not None and alias is not None:
            raise BadRequest("pass either ?version=N or ?alias=NAME, not both")
        if alias is not None and alias != PRODUCTION:
            version = self.registry.alias_version(name, alias)
            if version is None:
                self.registry.resolve(name, alias)  # raises the 404 that says what is missing
        if version is None:
            return self._get_production(name)
        current = self.production.get(name)
        if current and current.version == version:
            return current
        return self._get_pinned(name, version)

    def _get_production(self, name: str) -> LoadedModel:
        model = self.production.get(name)
        if model:
            return model
        self.registry.resolve(name)  # raises a 404 when there is no such model or no production alias
        problem = self.problems.get(name)
        reason = problem.message if problem else "it is still loading; try again shortly"
        raise ModelNotReady(f"model {name!r} has no production version loaded: {reason}")

    def _get_pinned(self, name: str, version: int) -> LoadedModel:
        key = (name, version)
        with self._pinned_lock:
            if key in self._pinned:
                self._pinned.move_to_end(key)
                return self._pinned[key]
            model = self._load(name, version)
            self._pinned[key] = model
            while len(self._pinned) > self.settings.model_cache_size:
                self._pinned.popitem(last=False)
            return model

    def readiness(self) -> tuple[bool, list[dict[str, Any]]]:
        """Ready when every model with a production alias has a version loaded and serving."""
        details = []
        ready = self.synced
        for name, version in sorted(self.wanted.items()):
            model = self.production.get(name)
            problem = self.problems.get(name)
            entry: dict[str, Any] = {
                "model": name,
                "production_version": version,
                "serving_version": model.version if model else None,
            }
            if model and model.version == version:
                entry["status"] = "ready"
            elif problem and problem.version == version:
                entry.update(status="refused", code=problem.code, message=problem.message)
            else:
                entry["status"] = "loading"
            ready = ready and model is not None
            details.append(entry)
        return ready, details
