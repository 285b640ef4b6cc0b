"""The console at /ui, in a real browser, on a real stack: each flow a user takes, checked against
what the REST API itself answers."""

import io
import json
import re
import time
from pathlib import Path

import pandas as pd
from playwright.sync_api import Browser, expect

from tests.browser.conftest import Watched, watching
from tests.browser.stack import CHUNK_ROWS, MARKUP, SCHEDULE, WIDE_FEATURES, ConsoleStack
from tests.server import churn_api

CSP = "default-src 'self'"


def test_pages_load_without_the_key_and_the_api_refuses_the_console_without_it(
    console: Watched, stack: ConsoleStack
) -> None:
    console.refusals_expected = True
    page = console.page
    answer = page.goto("/ui/")
    assert answer is not None and answer.status == 200
    assert answer.headers["content-security-policy"].startswith(CSP)
    expect(page.locator("#key")).to_be_visible()  # the API said 401: the console asks
    expect(page.locator("#models")).to_have_count(0)
    page.fill("#key-value", "not-the-key")
    page.click("#key button")
    expect(page.locator("#key-refused")).to_be_visible()
    expect(page.locator("#models")).to_have_count(0)

    refused = len(console.api_calls)
    page.fill("#key-value", stack.key)
    page.click("#key button")
    expect(page.locator("#models")).to_contain_text("churn")
    assert page.evaluate("sessionStorage.getItem('modelyard-api-key')") == stack.key
    given = console.api_calls[refused:]
    assert given and all(call.headers.get("authorization") == f"Bearer {stack.key}" for call in given)
    page.reload()  # the same tab keeps the key
    expect(page.locator("#models")).to_contain_text("markup")


def test_a_model_shows_its_runtimes_schema_profile_and_how_to_promote(
    console: Watched, stack: ConsoleStack
) -> None:
    page = console.open("#/models/churn")
    expect(page.locator("#versions")).to_contain_text("onnx")  # the demo is compiled, and says why
    expect(page.locator("#schema")).to_contain_text("monthly_charges")
    expect(page.locator("#schema")).to_contain_text("basic, premium, standard")
    expect(page.locator("#profile")).to_contain_text("4,000 reference rows")
    assert page.locator("#profile svg[data-chart=profile] rect").count() > 40
    page.goto("/ui/#/models/markup")
    expect(page.locator("#versions tr[data-version='2']")).to_contain_text(
        "docker compose run --rm admin modelyard models promote markup 2"
    )
    expect(page.locator("#profile")).to_contain_text("has no reference profile")


def test_a_wide_model_shows_a_page_of_charts_then_the_rest_on_demand(console: Watched) -> None:
    page = console.open("#/models/wide")
    charts = page.locator("#profile figure")
    expect(charts).to_have_count(13)  # the predictions, then the first 12 features
    page.get_by_role("button", name=f"Show the other {WIDE_FEATURES - 12} features").click()
    expect(charts).to_have_count(1 + WIDE_FEATURES)
    expect(page.locator("#profile button")).to_have_count(0)
    expect(charts.last).to_contain_text(f"x{WIDE_FEATURES - 1}")


def test_the_generated_form_predicts_what_the_api_does(console: Watched, stack: ConsoleStack) -> None:
    page = console.open("#/try/churn")
    page.locator("[data-feature=tenure_months]").fill("3")
    page.locator("[data-feature=plan]").select_option("premium")
    page.click("#record button[type=submit]")
    expect(page.locator("#prediction-value")).not_to_be_empty()
    sent = json.loads(page.locator("#request-json").text_content() or "")
    shown = json.loads(page.locator("#response-json").text_content() or "")
    assert sent["instances"][0]["tenure_months"] == 3 and sent["instances"][0]["plan"] == "premium"
    with stack.client() as client:
        direct = client.post("/v1/models/churn/predict", json=sent).json()
    assert shown["predictions"] == direct["predictions"]
    assert shown["probabilities"] == direct["probabilities"] and shown["classes"] == direct["classes"]
    assert page.locator("#prediction-value").text_content() == str(direct["predictions"][0])
    assert page.locator("svg[data-chart=probabilities] rect").count() == len(direct["classes"])


def test_an_uploaded_file_comes_back_scored(console: Watched, stack: ConsoleStack) -> None:
    page = console.open("#/try/churn")
    customers = (stack.data / "incoming" / "customers.csv").read_bytes()
    rows = b"".join(customers.splitlines(keepends=True)[:51])
    page.set_input_files("#upload-file", {"name": "few.csv", "mimeType": "text/csv", "buffer": rows})
    with page.expect_download() as download:
        page.click("#upload button[type=submit]")
    assert download.value.suggested_filename == "few.predictions.csv"
    scored = download.value.path().read_bytes()
    with stack.client() as client:
        direct = client.post("/v1/models/churn/predict-file", files={"file": ("few.csv", rows, "text/csv")})
    assert scored == direct.content
    frame = pd.read_csv(io.BytesIO(scored))
    assert len(frame) == 50 and "prediction" in frame.columns
    expect(page.locator("#scored-name")).to_have_text("few.predictions.csv")


def test_a_job_runs_to_done_its_output_downloads_and_it_is_deleted(
    console: Watched, stack: ConsoleStack
) -> None:
    page = console.open("#/jobs")
    output = f"scored/console-{time.monotonic_ns()}.csv"
    page.fill("#job-input", "incoming/customers.csv")
    page.fill("#job-output", output)
    page.click("#submit-job button[type=submit]")
    expect(page.locator("#job-message")).to_contain_text("queued")
    job_id = (page.locator("#job-message").text_content() or "").split()[1]
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row).to_have_attribute("data-status", "finished")
    expect(row.locator("progress")).to_have_attribute("value", "100")
    expect(row).to_contain_text("2,000 / 2,000")
    with page.expect_download() as download:
        row.get_by_role("button", name="Result").click()
    assert download.value.path().read_bytes() == (stack.data / output).read_bytes()

    page.check("#delete-files")
    row.get_by_role("button", name="Delete").click()
    expect(row).to_have_count(0)
    with stack.client() as client:
        assert client.get(f"/v1/jobs/{job_id}").status_code == 404
    assert not (stack.data / output).exists()


def test_a_running_job_moves_its_progress_bar_and_is_canceled(console: Watched, stack: ConsoleStack) -> None:
    page = console.open("#/jobs")
    page.select_option("#job-model", "slow")
    page.fill("#job-input", "incoming/slow.csv")
    page.click("#submit-job button[type=submit]")
    expect(page.locator("#job-message")).to_contain_text("queued")
    job_id = (page.locator("#job-message").text_content() or "").split()[1]
    row = page.locator(f"tr[data-job='{job_id}']")
    expect(row.locator("progress")).to_have_attribute("value", re.compile(r"^[1-9][0-9]?$"))  # 1 to 99
    row.get_by_role("button", name="Cancel").click()
    expect(page.locator("#job-message")).to_contain_text(f"Job {job_id} canceled")
    expect(row).to_have_attribute("data-status", "canceled")
    with stack.client() as client:
        job = client.get(f"/v1/jobs/{job_id}").json()
    assert job["status"] == "canceled" and 0 < job["rows_done"] < 20 * CHUNK_ROWS  # stopped midway


def test_a_schedule_runs_now_and_its_drifted_report_is_drawn(console: Watched, stack: ConsoleStack) -> None:
    page = console.open("#/schedules")
    card = page.locator(f"[data-schedule='{SCHEDULE}']")
    card.locator("input[type=checkbox]").check()  # rescore: another test may have run it
    card.get_by_role("button", name="Run now").click()
    expect(page.locator("#schedule-message")).to_contain_text("1 job(s) for 1 file(s)")
    run_id = (page.locator("#schedule-message").text_content() or "").split()[1]
    run = card.locator(f"tr[data-run='{run_id}']")
    expect(run).to_contain_text("finished", timeout=60_000)

    run.locator("a").click()
    expect(page.locator("#view h1")).to_contain_text("Report of job")
    drift = page.locator("svg[data-chart=drift]")
    expect(drift.locator("rect")).to_have_count(8)  # the demo's eight features
    assert drift.locator("line.mark").count() == 2  # moderate and major
    expect(drift.locator("rect").first).to_have_class("bar major")
    expect(drift.locator("text.label").first).to_have_text("monthly_charges")  # the feature --drift moves
    expect(page.locator("svg[data-chart=invalid] rect")).to_have_count(2)  # two fields, 30 rows each
    assert page.locator("svg[data-chart=feature]").count() == 9  # the predictions, then eight features
    assert page.locator("svg[data-chart=feature] rect.run").count() > 50
    expect(page.locator("#report-rows")).to_contain_text("3,000 read, 2,940 scored, 60 invalid")

    job_id = page.url.split("/")[-2]
    page.goto("/ui/#/jobs")
    with page.expect_download() as download:
        page.locator(f"tr[data-job='{job_id}']").get_by_role("button", name="Invalid rows").click()
    invalid = [json.loads(line) for line in download.value.path().read_text().splitlines()]
    assert len(invalid) == 60 and {row["field"] for row in invalid} == {"monthly_charges", "tenure_months"}


def test_markup_in_a_feature_name_is_shown_as_text_and_runs_nothing(
    console: Watched, stack: ConsoleStack
) -> None:
    page = console.open("#/models/markup")
    expect(page.locator("#schema")).to_contain_text(MARKUP)
    page.goto("/ui/#/try/markup")
    expect(page.locator("#record")).to_contain_text(MARKUP)
    page.locator("[data-feature=age]").fill("40")
    page.locator(f"[data-feature='{MARKUP}']").fill("51.5")
    page.click("#record button[type=submit]")
    expect(page.locator("#request-json")).to_contain_text(json.dumps(MARKUP))
    expect(page.locator("#prediction-value")).to_have_text(re.compile("^(no|yes)$"))
    assert page.locator("main img").count() == 0
    assert page.evaluate("document.querySelectorAll('[onerror]').length") == 0


def test_a_server_without_a_key_opens_the_console_straight_away(browser: Browser, tmp_path: Path) -> None:
    api = churn_api(tmp_path)
    try:
        with watching(browser, api.url, None) as console:
            page = console.open()
            expect(page.locator("#models")).to_contain_text("churn")
            expect(page.locator("#key")).to_be_hidden()
            assert console.api_calls and not any(
                call.headers.get("authorization") for call in console.api_calls
            )
    finally:
        api.stop()
