"""The product's front door, for real: images built without any registry, `docker compose up`, the
demo model trained through the admin service, then real HTTP to the api container: predictions,
a batch job, the nightly schedule, a worker container killed mid-job, Redis restarted under a
queued job. Then the client bundle: built, the images deleted, installed into a fresh folder, and a
prediction again. Slow (minutes): `make test-fast` leaves it out. The stack (conftest.py) is shared
with test_monitoring.py, whose tests run before the bundle test."""

import io
import json
import shutil
import tarfile
import time
from pathlib import Path

import httpx
import pandas as pd

from tests import factories
from tests.e2e.compose import ROOT, Stack, ended, job, run, wait_for
from tests.server import free_port

RECORD = {
    "tenure_months": 3,
    "monthly_charges": 89.5,
    "support_calls": 4,
    "data_usage_gb": 12.0,
    "plan": "premium",
    "contract": "month-to-month",
    "payment_method": "invoice",
    "region": "north",
}


def test_a_stack_with_no_model_is_healthy_then_serves_the_demo(stack: Stack) -> None:
    ready = stack.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["models"] == [] and ready.json()["queue"]["workers"] == 2
    trained = stack.compose("run", "--rm", "admin", "modelyard", "demo", "train")
    assert "churn registered as version 1" in trained
    answer = wait_for(
        lambda: stack.http.post("/v1/models/churn/predict", json={"instances": [RECORD]}),
        lambda response: response.status_code == 200,
    ).json()
    assert (answer["model"], answer["version"], answer["predictions"]) == ("churn", 1, ["yes"])
    assert "/static-offline-docs/swagger-ui-bundle.js" in stack.http.get("/docs").text
    assert stack.http.get("/static-offline-docs/swagger-ui-bundle.js").status_code == 200
    console = httpx.get(f"http://127.0.0.1:{stack.port}/ui/pages/report.js")  # in the image, without the key
    assert console.status_code == 200 and "default-src 'self'" in console.headers["content-security-policy"]


def test_a_model_file_from_the_host_is_registered_through_the_admin_service(
    stack: Stack, tmp_path: Path
) -> None:
    artifact = factories.save(factories.classifier(), tmp_path / "mine.joblib")
    artifact.chmod(0o644)
    registered = stack.compose(
        "run", "--rm", "-v", f"{artifact}:/in/mine.joblib:ro", "admin",
        "modelyard", "models", "register", "/in/mine.joblib", "--name", "mine", "--promote",
    )  # fmt: skip
    assert "registered mine version 1" in registered
    body = {"instances": factories.records(3)}
    answer = wait_for(
        lambda: stack.http.post("/v1/models/mine/predict", json=body), lambda r: r.status_code == 200
    ).json()
    assert (
        answer["predictions"]
        == factories.load_as_served(artifact).predict(pd.DataFrame(body["instances"])).tolist()
    )
    listed = stack.compose("run", "--rm", "admin", "modelyard", "models", "list")
    assert "churn" in listed and "mine" in listed


def sample(stack: Stack) -> bytes:
    return stack.compose("run", "--rm", "admin", "cat", "/data/incoming/churn-sample.csv").encode()


def test_a_file_in_real_time_and_as_a_batch_job_give_the_same_answers(stack: Stack) -> None:
    content = sample(stack)
    realtime = stack.http.post("/v1/models/churn/predict-file", files={"file": ("sample.csv", content)})
    assert realtime.status_code == 200, realtime.text
    expected = pd.read_csv(io.BytesIO(realtime.content))
    submitted = stack.http.post("/v1/jobs", json={"model": "churn", "input": "incoming/churn-sample.csv"})
    assert submitted.status_code == 202, submitted.text
    record = wait_for(lambda: job(stack, submitted.json()["id"]), ended)
    assert record["status"] == "finished" and record["rows_done"] == 200
    scored = pd.read_csv(io.BytesIO(stack.http.get(f"/v1/jobs/{record['id']}/result").content))
    assert scored["prediction"].tolist() == expected["prediction"].tolist()
    assert (
        (scored[["probability_no", "probability_yes"]] == expected[["probability_no", "probability_yes"]])
        .all()
        .all()
    )


def test_the_nightly_schedule_run_on_demand(stack: Stack) -> None:
    listed = stack.http.get("/v1/schedules").json()
    assert listed["scheduler"]["alive"] and [s["name"] for s in listed["schedules"]] == ["nightly"]
    assert listed["schedules"][0]["next_run"].endswith("02:00:00+00:00")
    run_now = stack.http.post("/v1/schedules/nightly/run")
    assert run_now.status_code == 202, run_now.text
    [job_id] = run_now.json()["jobs"]
    record = wait_for(lambda: job(stack, job_id), ended)
    assert record["status"] == "finished" and record["output"].startswith("scored/20")
    assert (
        record["output"].endswith("/churn-sample.predictions.csv") and record["origin"] == "schedule:nightly"
    )
    last = wait_for(
        lambda: stack.http.get("/v1/schedules").json()["schedules"][0]["last_run"],
        lambda run: run["status"] == "finished",
    )
    assert last["jobs"] == [job_id]


def test_a_worker_container_killed_mid_job_loses_nothing(stack: Stack) -> None:
    stack.compose(
        "run", "--rm", "admin", "python3", "-c",
        "from modelyard import demo; import pathlib; pathlib.Path('/data/batch').mkdir(exist_ok=True); "
        "demo.customers(150_000, seed=5).to_csv('/data/batch/big.csv', index=False)",
    )  # fmt: skip
    submitted = stack.http.post("/v1/jobs", json={"model": "churn", "input": "batch/big.csv"}).json()
    running = wait_for(lambda: job(stack, submitted["id"]), lambda r: r["rows_done"] >= 10_000, 120)
    victim = running["worker"].rsplit("-", 1)[0]  # the worker's name starts with its container id
    run("docker", "kill", victim)
    killed_at = time.monotonic()
    record = wait_for(lambda: job(stack, submitted["id"]), ended, timeout=240)
    print(f"finished {time.monotonic() - killed_at:.0f}s after its worker's container was killed")
    assert record["status"] == "finished", record
    assert (record["rows_done"], record["rows_failed"]) == (150_000, 0)
    assert not record["worker"].startswith(victim)


def test_queued_jobs_survive_a_redis_restart(stack: Stack) -> None:
    stack.compose("stop", "worker")
    submitted = stack.http.post("/v1/jobs", json={"model": "churn", "input": "incoming/churn-sample.csv"})
    assert submitted.status_code == 202
    time.sleep(1.5)  # appendfsync everysec
    stack.compose("restart", "redis")
    record = wait_for(
        lambda: stack.http.get(f"/v1/jobs/{submitted.json()['id']}"), lambda r: r.status_code == 200
    )
    assert record.json()["status"] == "queued"
    stack.compose("start", "worker")
    assert wait_for(lambda: job(stack, submitted.json()["id"]), ended)["status"] == "finished"


def test_the_bundle_installs_with_nothing_but_docker(stack: Stack, tmp_path: Path) -> None:
    """After the stack above is gone: a bundle, the images deleted, an install into a fresh folder."""
    stack.down()
    bundle = tmp_path / "modelyard.tar.gz"
    log = run("scripts/bundle.sh", str(bundle), env={"MODELYARD_REBUILD": "no"}, both=True)
    assert "files checked by its install.sh" in log
    images = dict(line.split("=", 1) for line in (ROOT / ".images.env").read_text().split())
    version = images["MODELYARD_VERSION"]
    for service in ("api", "worker", "scheduler"):
        run(
            "docker",
            "rmi",
            "-f",
            f"modelyard/{service}:{version}",
            f"modelyard/{service}:latest",
            check=False,
        )
    run("docker", "rmi", "-f", images["REDIS_IMAGE"], check=False)

    client = tmp_path / "client"
    client.mkdir()
    with tarfile.open(bundle) as archive:
        archive.extractall(client, filter="data")
    folder = client / f"modelyard-{version}"
    sboms = sorted(p.name for p in (folder / "sbom").iterdir())
    assert sboms == ["api.cdx.json", "scheduler.cdx.json", "worker.cdx.json"]
    components = {
        c["name"].lower() for c in json.loads((folder / "sbom" / "api.cdx.json").read_text())["components"]
    }
    assert {"scikit-learn", "numpy", "fastapi", "rq"} <= components
    port = free_port()
    env = {"COMPOSE_PROJECT_NAME": "modelyard-e2e-client", "MODELYARD_PORT": str(port)}
    try:
        installed = run("./install.sh", cwd=folder, env=env, both=True)
        assert f"is up on port {port}" in installed
        key = next(line.split()[-1] for line in installed.splitlines() if "API key:" in line)
        headers = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers=headers, timeout=60) as http:
            answer = wait_for(
                lambda: http.post("/v1/models/churn/predict", json={"instances": [RECORD]}),
                lambda response: response.status_code == 200,
            )
            assert answer.json()["predictions"] == ["yes"]
            assert httpx.get(f"http://127.0.0.1:{port}/v1/models").status_code == 401  # no key, no answer
            the_readme_s_commands_work_in_the_install_folder(folder, http, tmp_path)
            newer = a_newer_bundle(folder, version, client / "newer")
            upgraded = run("./install.sh", "--env", str(folder / ".env"), cwd=newer, env=env, both=True)
            assert f"is up on port {port}" in upgraded and f"API key: {key}" in upgraded  # the key kept
            compose = ("docker", "compose")  # bare, in the new folder: the new images, offline
            running = run(*compose, "ps", "--format", "{{.Service}} {{.Image}}", cwd=newer, env=bare)
            assert (
                "api modelyard/api:0.1.0-upgrade" in running
                and "worker modelyard/worker:0.1.0-upgrade" in running
            )
            models = wait_for(lambda: http.get("/v1/models"), lambda response: response.status_code == 200)
            assert {m["name"] for m in models.json()["models"]} == {"churn", "fraud"}  # the volume kept
    finally:
        for place in (folder, client / "newer"):
            if place.exists():
                run(
                    "docker",
                    "compose",
                    "-p",
                    env["COMPOSE_PROJECT_NAME"],
                    "down",
                    "-v",
                    cwd=place,
                    check=False,
                )


bare = {"COMPOSE_PROJECT_NAME": "modelyard-e2e-client"}
"""All a client exports to run the README's commands in the install folder."""


def the_readme_s_commands_work_in_the_install_folder(
    folder: Path, http: httpx.Client, tmp_path: Path
) -> None:
    """Bare `docker compose` in the install folder, no --env-file, no registry: register, promote,
    predict, ps, logs, restart."""
    model = factories.save(factories.classifier(seed=7), tmp_path / "fraud model.joblib")  # a space too
    listed = run(
        "docker", "compose", "run", "--rm", "admin", "modelyard", "models", "list", cwd=folder, env=bare
    )
    assert "churn" in listed
    with model.open("rb") as stdin:  # the README's way: the file on the admin container's stdin
        registered = run(
            "docker", "compose", "run", "--rm", "-T", "admin",
            "modelyard", "models", "register", "-", "--file-format", "joblib", "--name", "fraud", "--promote",
            cwd=folder, env=bare, stdin=stdin,
        )  # fmt: skip
    assert "promoted fraud version 1 to production" in registered
    answer = wait_for(
        lambda: http.post("/v1/models/fraud/predict", json={"instances": factories.records(2)}),
        lambda response: response.status_code == 200,
    )
    assert (
        answer.json()["predictions"]
        == factories.load_as_served(model).predict(pd.DataFrame(factories.records(2))).tolist()
    )
    services = run("docker", "compose", "ps", "--format", "{{.Service}}", cwd=folder, env=bare).split()
    assert {"api", "worker", "scheduler", "redis"} <= set(services)
    assert '"logger"' in run("docker", "compose", "logs", "--tail", "5", "api", cwd=folder, env=bare)
    run("docker", "compose", "restart", "api", cwd=folder, env=bare)
    assert wait_for(lambda: answered(http, "/readyz"), lambda status: status == 200, 120)


def answered(http: httpx.Client, path: str) -> int | None:
    """The status of GET path; None while the server restarts (its old connections are gone)."""
    try:
        return http.get(path).status_code
    except httpx.TransportError:
        return None


def a_newer_bundle(folder: Path, version: str, newer: Path) -> Path:
    """The same images under a newer version, unpacked as a newer bundle would be."""
    shutil.copytree(folder, newer, ignore=shutil.ignore_patterns(".env", "images.tar", "SHA256SUMS"))
    tags = []
    for service in ("api", "worker", "scheduler"):
        run("docker", "tag", f"modelyard/{service}:{version}", f"modelyard/{service}:0.1.0-upgrade")
        tags.append(f"modelyard/{service}:0.1.0-upgrade")
    run("docker", "save", "-o", str(newer / "images.tar"), *tags)
    images = (
        (newer / "images.env")
        .read_text()
        .replace(f"MODELYARD_VERSION={version}", "MODELYARD_VERSION=0.1.0-upgrade")
    )
    (newer / "images.env").write_text(images)
    run(
        "sh",
        "-c",
        "find . -type f ! -name SHA256SUMS -printf '%P\\n' | sort | xargs sha256sum >SHA256SUMS",
        cwd=newer,
    )
    return newer
