"""The monitoring profile, for real, on the shared stack (conftest.py turns the profile on, with an
API key and a 2 s scrape interval): the shipped alert rules pass their promtool unit tests in the
Prometheus image, Prometheus scrapes the API (with the key), itself and Alertmanager, and a
drifted scheduled run makes ModelyardFeatureDrift fire in Alertmanager. conftest.py runs these
after test_stack.py's tests and before its bundle test."""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.e2e.compose import Stack, ended, job, wait_for

ALERTS = {
    "ModelyardFeatureDrift",
    "ModelyardPredictionDrift",
    "ModelyardInvalidRows",
    "ModelyardNoSuccessfulRun",
    "ModelyardQueueGrowing",
    "ModelyardSchedulerStale",
    "ModelyardApiErrors",
    "ModelyardApiDown",
}
DRIFTED = "incoming/drifted-customers.csv"


def prometheus(stack: Stack, path: str, **params: str) -> Any:
    port = stack.settings["MODELYARD_PROMETHEUS_PORT"]
    answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/{path}", params=params, timeout=10)
    answer.raise_for_status()
    return answer.json()["data"]


def alertmanager_alerts(stack: Stack, name: str) -> list[dict[str, Any]]:
    port = stack.settings["MODELYARD_ALERTMANAGER_PORT"]
    answer = httpx.get(
        f"http://127.0.0.1:{port}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=10
    )
    answer.raise_for_status()
    return list(answer.json())


def test_the_shipped_rules_pass_their_unit_tests_in_the_prometheus_image(stack: Stack) -> None:
    """promtool in the running container, on the files its entrypoint rendered from .env."""
    promtool = ("exec", "prometheus", "promtool")
    tested = stack.compose(*promtool, "test", "rules", "/etc/prometheus/modelyard/rules.test.yml", both=True)
    assert "SUCCESS" in tested and "FAILED" not in tested, tested
    checked = stack.compose(*promtool, "check", "config", "/run/prometheus/prometheus.yml", both=True)
    assert "is valid prometheus config file" in checked and "FAILED" not in checked, checked
    rules = stack.compose(*promtool, "check", "rules", "/run/prometheus/rules.yml")
    assert f"SUCCESS: {len(ALERTS)} rules found" in rules, rules


def test_prometheus_scrapes_the_api_with_its_key_itself_and_alertmanager(stack: Stack) -> None:
    health = wait_for(
        lambda: {
            target["labels"]["job"]: target["health"]
            for target in prometheus(stack, "targets", state="active")["activeTargets"]
        },
        lambda found: set(found.values()) == {"up"},
    )
    assert health == {"modelyard-api": "up", "prometheus": "up", "alertmanager": "up"}
    [queue_up] = prometheus(stack, "query", query="modelyard_queue_up")["result"]
    assert queue_up["value"][1] == "1"
    # the heartbeat in seconds since 1970, as ModelyardSchedulerStale reads it: a tick ago (10 s)
    assert 0 <= value(stack, "time() - modelyard_scheduler_heartbeat_timestamp_seconds") < 60
    rules = [rule for group in prometheus(stack, "rules")["groups"] for rule in group["rules"]]
    assert {rule["name"] for rule in rules} == ALERTS and all(rule["health"] == "ok" for rule in rules)
    # what the API answers without the key: Prometheus's "up" above is its key at work
    port = stack.settings["MODELYARD_PORT"]
    assert httpx.get(f"http://127.0.0.1:{port}/metrics").status_code == 401


def value(stack: Stack, query: str) -> float:
    """The one value of a query."""
    [result] = prometheus(stack, "query", query=query)["result"]
    return float(result["value"][1])


def run_nightly(stack: Stack) -> list[str]:
    """The nightly schedule run now, and its jobs finished: their ids."""
    answer = stack.http.post("/v1/schedules/nightly/run")
    assert answer.status_code == 202, answer.text
    jobs: list[str] = answer.json()["jobs"]
    for job_id in jobs:
        assert finished(stack, job_id)["status"] == "finished"
    return jobs


def finished(stack: Stack, job_id: str) -> dict[str, Any]:
    return wait_for(lambda: job(stack, job_id), ended, timeout=120)


@pytest.fixture
def drifted_file(stack: Stack) -> Iterator[str]:
    """Demo customers whose tenure is one standard deviation (21 months) longer than the churn
    model's training data, in the nightly schedule's incoming folder, and only them: the files the
    schedule had not scored yet are scored first (each job of a run replaces the schedule's figures
    on /metrics, so a run of this file alone is what the alert is checked on)."""
    stack.compose("run", "--rm", "admin", "modelyard", "demo", "train", "--if-missing")
    run_nightly(stack)
    stack.compose(
        "run", "--rm", "admin", "python3", "-c",
        "from modelyard import demo\n"
        "customers = demo.customers(2000, seed=21)\n"
        "customers['tenure_months'] += 21\n"
        f"customers.to_csv('/data/{DRIFTED}', index=False)",
    )  # fmt: skip
    yield DRIFTED
    stack.compose("run", "--rm", "admin", "rm", "-f", f"/data/{DRIFTED}", check=False)


def test_a_drifted_scheduled_run_fires_feature_drift_in_alertmanager(stack: Stack, drifted_file: str) -> None:
    assert alertmanager_alerts(stack, "ModelyardFeatureDrift") == []
    [job_id] = run_nightly(stack)
    assert job(stack, job_id)["input"] == drifted_file
    alerts = wait_for(
        lambda: alertmanager_alerts(stack, "ModelyardFeatureDrift"), lambda found: len(found) > 0, timeout=60
    )
    [alert] = alerts  # one feature drifted, in one schedule
    assert (alert["labels"]["schedule"], alert["labels"]["feature"]) == ("nightly", "tenure_months")
    assert alert["status"]["state"] == "active" and alert["labels"]["severity"] == "warning"
    assert alert["annotations"]["summary"] == "tenure_months drifted in the last run of schedule nightly"
    nightly = '{schedule="nightly"}'
    assert value(stack, f"modelyard_schedule_rows_scored{nightly}") == 2000
    assert value(stack, f"modelyard_schedule_invalid_share{nightly}") == 0
    assert 0 <= value(stack, f"time() - modelyard_schedule_last_success_timestamp_seconds{nightly}") < 120
    psi = value(stack, 'modelyard_schedule_drift{feature="tenure_months"}')
    print(f"tenure_months drift (PSI) {psi:.2f}")
