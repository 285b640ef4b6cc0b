"""Loaded models kept in step with the registry, for the API and the batch worker alike.

`sync()` reads the production aliases (cheap: one small file per model) and loads a moved alias
while callers keep getting the previous version, then swaps the reference in one assignment. A
version the load gate refuses is never swapped in: the old one keeps serving and the refusal is
kept for readiness reports. Versions pinned by number or by another alias live in a small LRU.

Under a pre-fork server (api/prefork.py) the parent loads moved versions and forks fresh workers that
share them; each worker's cache is told to leave a move to the parent (`leave_moves_s`) and loads it
itself only if the parent has not delivered it by then.
"""

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from modelyard import heap
from modelyard.errors import AliasUnreadable, BadRequest, ModelNotReady, ModelyardError
from modelyard.registry.store import PRODUCTION, Registry
from modelyard.scoring.predict import LoadedModel
from modelyard.serving.load import load

log = logging.getLogger(__name__)

RETRY_REFUSED_S = 30.0
"""How long a refused version rests before it is tried again (the file may be restored)."""


@dataclass(frozen=True)
class LoadProblem:
    version: int
    code: str
    message: str
    at: float

    def blocks(self, version: int) -> bool:
        return self.version == version and time.monotonic() - self.at < RETRY_REFUSED_S


@dataclass(frozen=True)
class LoadPolicy:
    allow_version_mismatch: bool = False
    n_jobs: int | None = None
    """Set on every step that has n_jobs; None keeps what the artifact was saved with."""
    pinned_size: int = 4
    """How many versions besides the production ones stay loaded."""
    runtime: str = "auto"
    """MODELYARD_RUNTIME: which runtime computes predictions (see compiled.choose)."""


class ModelCache:
    def __init__(
        self,
        registry: Registry,
        policy: LoadPolicy,
        on_loaded: Callable[[str, int], None] | None = None,
        on_refused: Callable[[str, str], None] | None = None,
    ) -> None:
        self.registry = registry
        self.leave_moves_s = 0.0
        """How long a moved version is left to a pre-fork parent before this process loads it."""
        self.policy = policy
        self.on_loaded = on_loaded
        self.on_refused = on_refused
        self.production: dict[str, LoadedModel] = {}
        self.wanted: dict[str, int] = {}
        self.problems: dict[str, LoadProblem] = {}
        self.synced = False
        self._moves_seen: dict[str, tuple[int, float]] = {}
        self._pinned: OrderedDict[tuple[str, int], LoadedModel] = OrderedDict()
        self._pinned_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, interval_s: float) -> None:
        """Follow the production aliases from a background thread."""
        self._thread = threading.Thread(
            target=self._watch, args=(interval_s,), name="model-watcher", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)

    def _watch(self, interval_s: float) -> None:
        while not self._stop.is_set():
            self.look()
            self._stop.wait(interval_s)

    def look(self) -> None:
        """`sync`, for a loop that follows the registry: a failure is logged, and the next look retries."""
        try:
            self.sync()
        except Exception:
            log.exception("checking the registry failed; retrying")

    def sync(self) -> None:
        """Load every production version that moved since the last look."""
        wanted = {}
        for name in self.registry.model_names():
            try:
                version = self.registry.alias_version(name, PRODUCTION)
            except AliasUnreadable as exc:
                log.error("keeping what is served; %s", exc.message, extra={"model": name})
                version = self.wanted.get(name)
            if version is not None:
                wanted[name] = version
        self.wanted = wanted
        for name, version in wanted.items():
            current = self.production.get(name)
            problem = self.problems.get(name)
            if (current and current.version == version) or (problem and problem.blocks(version)):
                continue
            if self._due(name, version):
                self._load_production(name, version)
        self.production = {name: model for name, model in self.production.items() if name in wanted}
        self.synced = True

    def _due(self, name: str, version: int) -> bool:
        """Whether this process loads a moved version now, or still leaves it to the parent."""
        if not self.leave_moves_s:
            return True
        seen_version, since = self._moves_seen.get(name, (None, 0.0))
        if seen_version != version:
            self._moves_seen[name] = (version, time.monotonic())
            return False
        return time.monotonic() - since >= self.leave_moves_s

    def state(self) -> tuple[dict[str, int], dict[str, tuple[int, str]]]:
        """What is served and what was refused: a change in it is worth forking fresh workers for."""
        served = {name: model.version for name, model in self.production.items()}
        refused = {name: (p.version, p.code) for name, p in self.problems.items()}
        return served, refused

    def _load_production(self, name: str, version: int) -> None:
        try:
            model = self._load(name, version)
        except ModelyardError as exc:
            self.problems[name] = LoadProblem(version, exc.code, exc.message, time.monotonic())
            if self.on_refused:
                self.on_refused(name, exc.code)
            serving = self.production.get(name)
            log.error(
                "refused to load a production version; %s",
                f"still serving version {serving.version}" if serving else "nothing is served",
                extra={"model": name, "version": version, "code": exc.code, "reason": exc.message},
            )
            return
        self.production = {**self.production, name: model}
        self.problems.pop(name, None)
        heap.trim()  # the artifact's bytes and the loading's garbage: freed, but kept by malloc
        if self.on_loaded:
            self.on_loaded(name, version)
        log.info("now serving", extra={"model": name, "version": version})

    def _load(self, name: str, version: int) -> LoadedModel:
        model_version = self.registry.get(name, version)
        policy = self.policy
        return load(model_version, policy.allow_version_mismatch, policy.n_jobs, policy.runtime)

    def get(self, name: str, version: int | None = None, alias: str | None = None) -> LoadedModel:
        """The production version, or a version pinned by number or by another alias."""
        if version is not None and alias is not None:
            raise BadRequest("pass either ?version=N or ?alias=NAME, not both")
        if version is None and alias in (None, PRODUCTION):
            return self._get_production(name)
        chosen = self.registry.pick(name, version, alias).version
        current = self.production.get(name)
        if current and current.version == chosen:
            return current
        return self._get_pinned(name, chosen)

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
            while len(self._pinned) > self.policy.pinned_size:
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
