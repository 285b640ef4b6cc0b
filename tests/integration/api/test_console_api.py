"""What the console at /ui reads besides the rest of the API: a version's reference profile, the
data volume's files; and how /ui itself is served (without the key, under a strict CSP)."""

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.tabular import write_table
from tests import factories
from tests.server import ApiServer, run_cli

KEY = "console-key"
AUTH = {"Authorization": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApiServer, Path]]:
    root = tmp_path_factory.mktemp("console-api")
    run_cli(root, "demo", "train")  # version 1, profiled on its 4,000 training rows
    run_cli(root, "models", "register", str(factories.save(factories.classifier(), root / "c.joblib")),
            "--name", "churn")  # fmt: skip  # version 2: no profile
    data = root / "data"
    (data / "incoming" / ".hidden").mkdir(parents=True)
    for index, name in enumerate(["incoming/old.csv", "incoming/new.parquet", "scored/out.jsonl"]):
        path = data / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(write_table(factories.frame(3), name.rsplit(".", 1)[1]))
        os.utime(path, (time.time() + index, time.time() + index))
    (data / "incoming" / "notes.txt").write_text("not a table")
    (data / "incoming" / ".partial.csv").write_text("a,b\n")
    (data / "incoming" / ".hidden" / "x.csv").write_text("a,b\n")
    (data / "incoming" / "outside.csv").symlink_to(root / "c.joblib")
    api = ApiServer(root / "models", root / "api.log", data_dir=str(data), api_key=KEY).wait()
    yield api, root
    api.stop()


def test_a_version_profile_has_every_feature_and_the_predictions(server) -> None:
    api, _ = server
    profile = api.client.get("/v1/models/churn/versions/1/profile", headers=AUTH).json()
    schema = api.client.get("/v1/models/churn", headers=AUTH).json()["versions"][0]["input_schema"]
    assert [f["name"] for f in profile["features"]] == [f["name"] for f in schema["features"]]
    for feature in [*profile["features"], profile["prediction"]]:
        assert len(feature["bins"]) == len(feature["reference"]) and feature["bins"][-1] == "missing"
        assert sum(feature["reference"]) == profile["rows"] == 4000
    assert set(profile["prediction"]["bins"][:2]) == {"no", "yes"}  # the classes, most frequent first


def test_a_version_without_a_profile_says_how_to_add_one(server) -> None:
    api, _ = server
    missing = api.client.get("/v1/models/churn/versions/2/profile", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "profile_not_found"
    assert "modelyard models profile churn 2 --reference FILE" in missing.json()["error"]["message"]
    versions = api.client.get("/v1/models/churn", headers=AUTH).json()["versions"]
    assert versions[0]["reference"]["rows"] == 4000 and versions[0]["reference_note"] is None
    assert versions[1]["reference"] is None and "has no reference profile" in versions[1]["reference_note"]
    absent = api.client.get("/v1/models/churn/versions/9/profile", headers=AUTH)
    assert absent.status_code == 404 and absent.json()["error"]["code"] == "version_not_found"


def test_the_data_volume_lists_its_tables_newest_first(server) -> None:
    api, _ = server
    listed = api.client.get("/v1/files", headers=AUTH).json()
    paths = [f["path"] for f in listed["files"]]
    assert paths[:3] == ["scored/out.jsonl", "incoming/new.parquet", "incoming/old.csv"]
    assert sorted(paths[3:]) == ["incoming/churn-sample.csv"]  # the demo's, older: no .txt, hidden or link
    assert listed["files"][1]["format"] == "parquet" and listed["files"][1]["size_bytes"] > 0
    under = api.client.get("/v1/files", params={"under": "incoming", "limit": 1}, headers=AUTH).json()
    assert [f["path"] for f in under["files"]] == ["incoming/new.parquet"] and under["truncated"]
    outside = api.client.get("/v1/files", params={"under": "../"}, headers=AUTH)
    assert outside.status_code == 422 and outside.json()["error"]["code"] == "invalid_path"


@pytest.mark.parametrize("path", ["/v1/files", "/v1/models/churn/versions/1/profile"])
def test_what_the_console_reads_needs_the_key(server, path: str) -> None:
    api, _ = server
    assert api.client.get(path).status_code == 401


@pytest.mark.parametrize("asset", ["/ui/", "/ui/console.js", "/ui/pages/report.js", "/ui/console.css"])
def test_the_console_loads_without_the_key_under_a_strict_policy(server, asset: str) -> None:
    api, _ = server
    answer = api.client.get(asset)
    assert answer.status_code == 200
    assert answer.headers["content-security-policy"].startswith("default-src 'self';")
    assert "unsafe" not in answer.headers["content-security-policy"]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert api.client.get("/ui/settings.json").json() == {"key_required": True}
    assert api.client.get("/ui").status_code in (307, 308)  # to /ui/


def test_a_server_without_a_key_tells_the_console_so(tmp_path: Path) -> None:
    api = ApiServer(tmp_path / "models", tmp_path / "api.log").wait(ready=False)
    try:
        assert api.client.get("/ui/settings.json").json() == {"key_required": False}
    finally:
        api.stop()
