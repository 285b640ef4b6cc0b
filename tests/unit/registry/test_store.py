import hashlib
import json
import os
import pickle
import platform
import stat
import threading
from datetime import UTC, datetime
from pathlib import Path

import joblib
import numpy as np
import pytest
import sklearn
from sklearn.preprocessing import StandardScaler

from modelyard.errors import (
    AliasNotFound,
    AliasUnreadable,
    InvalidRequest,
    ModelNotFound,
    RegistryError,
    VersionNotFound,
)
from modelyard.registry.store import PRODUCTION, Registry
from tests import factories


def test_register_writes_artifact_and_metadata(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "clf.joblib")
    version = registry.register(artifact, "churn", description="first", metrics={"auc": 0.9})

    assert version.version == 1
    assert version.artifact.read_bytes() == artifact.read_bytes()
    meta = version.metadata
    assert meta["artifact"]["format"] == "joblib"
    assert meta["artifact"]["sha256"] == hashlib.sha256(artifact.read_bytes()).hexdigest()
    assert meta["artifact"]["size_bytes"] == artifact.stat().st_size
    assert meta["task"] == "classification"
    assert meta["classes"] == ["no", "yes"]
    assert meta["versions"] == {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        "joblib": joblib.__version__,
    }
    assert meta["description"] == "first" and meta["metrics"] == {"auc": 0.9}
    assert [f["name"] for f in meta["input_schema"]["features"]] == ["age", "income", "color"]
    assert not version.artifact.stat().st_mode & stat.S_IWUSR, "versions are read-only once written"


def test_versions_count_up_and_pickle_is_accepted(registry: Registry, tmp_path: Path) -> None:
    joblib_file = factories.save(factories.classifier(), tmp_path / "a.joblib")
    pickle_file = tmp_path / "b.pkl"
    pickle_file.write_bytes(pickle.dumps(factories.array_regressor()))

    first = registry.register(joblib_file, "m")
    second = registry.register(pickle_file, "m")

    assert (first.version, second.version) == (1, 2)
    assert second.metadata["artifact"]["format"] == "pickle"
    assert second.metadata["task"] == "regression"
    assert registry.version_numbers("m") == [1, 2]
    assert not list((registry.root / "m").glob(".staging-*"))


def test_concurrent_registrations_get_distinct_versions(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    results: list[int] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(registry.register(artifact, "r", force_new=True).version)
        )
        for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [1, 2, 3, 4, 5, 6]


def test_aliases(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    registry.register(artifact, "r")
    registry.register(artifact, "r", force_new=True)

    with pytest.raises(AliasNotFound, match="modelyard models promote r VERSION"):
        registry.resolve("r")
    registry.promote("r", 1)
    registry.promote("r", 2, alias="staging")
    assert registry.resolve("r").version == 1
    assert registry.aliases("r") == {PRODUCTION: 1, "staging": 2}
    registry.promote("r", 2)
    assert registry.alias_version("r") == 2


def test_names_that_leave_the_registry_find_nothing(registry: Registry, tmp_path: Path) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    (registry.root.parent / "7").mkdir()  # a version-like folder just outside the registry
    assert registry.version_numbers("..") == []
    with pytest.raises(ModelNotFound):
        registry.get("..", 7)


def test_lookups_fail_with_404_errors(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound):
        registry.get("nothing", 1)
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    with pytest.raises(VersionNotFound, match="versions: \\[1\\]"):
        registry.promote("r", 5)


@pytest.mark.parametrize("name", ["", "../x", "a/b", "12", ".hidden", "x" * 65])
def test_bad_names_are_refused(registry: Registry, tmp_path: Path, name: str) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    with pytest.raises(RegistryError, match="not valid"):
        registry.register(artifact, name)


def test_bad_artifacts_are_refused(registry: Registry, tmp_path: Path) -> None:
    text = tmp_path / "model.txt"
    text.write_text("hi")
    with pytest.raises(RegistryError, match=r"expected a \.joblib"):
        registry.register(text, "m")
    garbage = tmp_path / "model.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(RegistryError, match="cannot be loaded"):
        registry.register(garbage, "m")
    transformer = factories.save(StandardScaler().fit([[1.0], [2.0]]), tmp_path / "scaler.joblib")
    with pytest.raises(RegistryError, match="neither a classifier nor a regressor"):
        registry.register(transformer, "m")
    assert registry.model_names() == []


def test_the_same_bytes_are_registered_once(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    first = registry.register(artifact, "r")
    again = registry.register(artifact, "r")
    assert (again.version, again.reused, first.reused) == (1, True, False)
    assert registry.version_numbers("r") == [1]
    assert registry.register(artifact, "r", force_new=True).version == 2
    assert registry.register(artifact, "other").version == 1  # per model name


def test_what_registration_records(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "Model.JOBLIB")
    before = datetime.now(UTC)
    version = registry.register(artifact, "r")
    meta = version.metadata
    assert meta["name"] == "r" and meta["version"] == 1
    assert before <= datetime.fromisoformat(meta["created_at"]) <= datetime.now(UTC)
    assert meta["artifact"]["file"] == "model.joblib" and meta["artifact"]["source"] == str(
        artifact.resolve()
    )
    assert version.artifact == registry.root / "r" / "1" / "model.joblib"
    for path in (version.artifact, version.path / "metadata.json"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert json.loads((version.path / "metadata.json").read_text()) == meta


def test_a_file_that_is_not_there_or_cannot_be_loaded(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(RegistryError) as caught:
        registry.register(tmp_path / "gone.joblib", "m")
    assert caught.value.message == f"{tmp_path / 'gone.joblib'}: no such file"
    garbage = tmp_path / "model.pkl"
    garbage.write_bytes(b"not a pickle")
    with pytest.raises(RegistryError) as caught:
        registry.register(garbage, "m")
    assert caught.value.message == (
        f"{garbage}: cannot be loaded (KeyError: 110); is the file complete, and written by "
        "joblib.dump or pickle.dump?"
    )


def test_reuse_looks_past_a_version_with_unreadable_metadata(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.array_regressor(), tmp_path / "r.joblib")
    first = registry.register(artifact, "r")
    registry.register(factories.save(factories.classifier(), tmp_path / "c.joblib"), "r")
    metadata = registry.root / "r" / "2" / "metadata.json"
    os.chmod(metadata, 0o644)
    metadata.write_text("{")
    again = registry.register(artifact, "r")
    assert (again.name, again.version, again.path, again.metadata) == ("r", 1, first.path, first.metadata)
    assert again.reused


def test_model_names_are_folders_with_versions(registry: Registry, tmp_path: Path) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    (registry.root / "empty").mkdir()
    (registry.root / ".staging-x" / "1").mkdir(parents=True)
    (registry.root / "file").write_text("not a model")
    assert registry.model_names() == ["r"]
    with pytest.raises(ModelNotFound) as caught:
        Registry(tmp_path / "nowhere").get("r", 1)
    assert caught.value.message == "no model named 'r'; registered models: none"
    with pytest.raises(ModelNotFound, match=r"registered models: \['r'\]"):
        registry.get("s", 1)


def test_alias_names_are_checked_and_written_with_a_time(registry: Registry, tmp_path: Path) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    with pytest.raises(RegistryError) as caught:
        registry.promote("r", 1, alias="../prod")
    assert caught.value.message.startswith("alias '../prod' is not valid: use 1-64 letters")
    assert caught.value.message.endswith("starting with a letter or digit, and not only digits")
    registry.promote("r", 1, alias="canary")
    record = json.loads((registry.root / "r" / "aliases" / "canary.json").read_text())
    assert record["version"] == 1 and datetime.fromisoformat(record["updated_at"]).tzinfo is not None
    with pytest.raises(AliasNotFound) as missing:
        registry.resolve("r", "staging")
    assert missing.value.message == (
        "model 'r' has no 'staging' alias; set one with: modelyard models promote r VERSION --alias staging"
    )
    for impossible in ("\x00", "../r/aliases/canary", ""):  # no file is read for these: found by make fuzz
        with pytest.raises(AliasNotFound):
            registry.resolve("r", impossible)


def test_an_unreadable_alias_is_left_out_and_says_how_to_fix_it(
    registry: Registry, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry.register(factories.save(factories.array_regressor(), tmp_path / "r.joblib"), "r")
    registry.promote("r", 1, alias="a")
    registry.promote("r", 1, alias="c")
    aliases = registry.root / "r" / "aliases"
    (aliases / "b.json").write_text('{"version": "two"}')
    (aliases / ".a.json.1234.tmp.json").write_text("{")  # a write in progress
    assert registry.aliases("r") == {"a": 1, "c": 1}
    expected = (
        f"the alias file {aliases / 'b.json'} cannot be read (ValueError: invalid literal for int() "
        "with base 10: 'two'); point the alias again with: modelyard models promote r VERSION --alias b"
    )
    assert [r.getMessage() for r in caplog.records] == [f"alias left out: {expected}"]
    with pytest.raises(AliasUnreadable) as caught:
        registry.alias_version("r", "b")
    assert caught.value.message == expected


def test_pick_is_the_one_rule_for_version_alias_and_production(registry: Registry, tmp_path: Path) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "clf.joblib")
    registry.register(artifact, "churn")
    registry.register(artifact, "churn", force_new=True)
    registry.promote("churn", 1)
    registry.promote("churn", 2, alias="canary")

    assert registry.pick("churn").version == 1
    assert registry.pick("churn", version=2).version == 2
    assert registry.pick("churn", alias="canary").version == 2
    assert registry.pick("churn", alias=PRODUCTION).version == 1
    with pytest.raises(InvalidRequest, match=r"^pass either version or alias, not both$"):
        registry.pick("churn", version=1, alias="canary")
    with pytest.raises(VersionNotFound):
        registry.pick("churn", version=3)
    with pytest.raises(AliasNotFound, match="--alias shadow"):
        registry.pick("churn", alias="shadow")
    with pytest.raises(ModelNotFound):
        registry.pick("fraud")
