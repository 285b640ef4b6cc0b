"""What an attacker or a broken client sends, over real HTTP to an API with a key: each gets a 4xx
(or 503 past the memory budget) in the API's envelope, never a 500, and the server keeps serving."""

import gzip
import io
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest

from tests import factories
from tests.server import ApiServer, churn_api

KEY = "hostile-key"
AUTH = {"Authorization": f"Bearer {KEY}"}
MAX_INSTANCES = 500
PREDICT = "/v1/models/churn/predict"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    api = churn_api(
        tmp_path_factory.mktemp("hostile"),
        api_key=KEY,
        max_instances=str(MAX_INSTANCES),
        max_inflight_mb="1",
    )
    api.client.headers.update(AUTH)
    yield api
    api.stop()


@pytest.fixture(autouse=True)
def still_serving(server: ApiServer) -> Iterator[None]:
    yield
    response = server.client.post(PREDICT, json={"instances": factories.records(2)})
    assert response.status_code == 200, f"the server stopped serving: {response.text}"
    assert "internal_error" not in server.logs()


def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert response.headers["x-request-id"]
    return error


def nested(levels: int, inner: str = "1") -> str:
    return "[" * levels + inner + "]" * levels


@pytest.mark.parametrize(
    "body",
    [
        '{"instances": ' + nested(200_000) + "}",  # 400 KB: RecursionError in json and msgspec alike
        '{"instances": [' + json.dumps(factories.records(1)[0]) + '], "extra": ' + nested(200_000) + "}",
        '{"instances": [{"age": ' + nested(100_000) + ', "income": 1, "color": "red"}]}',
        nested(33),
    ],
    ids=["instances", "an-ignored-field", "a-value", "just-past-the-limit"],
)
def test_deep_nesting_is_malformed_json(server: ApiServer, body: str) -> None:
    error = refused(server.client.post(PREDICT, content=body), 400, "malformed_json")
    assert "levels of arrays and objects; at most 32 are read" in error["message"]


def test_nesting_up_to_the_limit_is_read_and_its_shape_refused(server: ApiServer) -> None:
    refused(server.client.post(PREDICT, content=nested(32)), 422, "invalid_request")
    record = '{"age": ' + nested(29) + ', "income": 1, "color": "red"}'  # 32 levels with the record's
    error = refused(
        server.client.post(PREDICT, content='{"instances": [' + record + "]}"), 422, "invalid_input"
    )
    assert error["details"][0]["field"] == "age"


def test_deep_nesting_in_a_job_body_and_a_pinned_version(server: ApiServer) -> None:
    refused(
        server.client.post("/v1/jobs", content='{"model": ' + nested(50_000) + "}"), 400, "malformed_json"
    )
    body = '{"instances": ' + nested(50_000) + "}"
    refused(server.client.post(PREDICT + "?version=1", content=body), 400, "malformed_json")


def test_too_many_instances_are_counted_before_decoding(server: ApiServer) -> None:
    body = json.dumps({"instances": factories.records(1) * (MAX_INSTANCES + 1)})
    error = refused(server.client.post(PREDICT, content=body), 413, "payload_too_large")
    assert error["message"].startswith(f"{MAX_INSTANCES + 1} instances in one request; the limit is 500")
    as_arrays = json.dumps({"instances": [[1, 2, "red"]] * (MAX_INSTANCES * 3)})
    assert (
        "1500 instances"
        in refused(server.client.post(PREDICT, content=as_arrays), 413, "payload_too_large")["message"]
    )


def test_braces_inside_strings_are_not_records(server: ApiServer) -> None:
    records = factories.records(3)
    records[0]["color"] = "{" * 5000 + '"[' + "\\" * 3  # more braces than instances allowed, all in a string
    response = server.client.post(PREDICT, json={"instances": records})
    assert response.status_code == 200, response.text[:300]
    [warning] = response.json()["warnings"]
    assert (warning["row"], warning["field"], warning["code"]) == (0, "color", "unknown_category")


def test_a_record_holding_a_huge_array_is_refused_before_decoding(server: ApiServer) -> None:
    records = factories.records(1)
    records[0]["age"] = [0] * 100_000
    error = refused(server.client.post(PREDICT, json={"instances": records}), 413, "payload_too_large")
    assert "values; at most" in error["message"]
    many_fields = {f"field_{i}": 0 for i in range(50_000)}
    refused(server.client.post(PREDICT, json={"instances": [many_fields]}), 413, "payload_too_large")


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_numbers_json_cannot_hold_are_invalid_input(server: ApiServer, text: str) -> None:
    body = '{"instances": [{"age": 30, "income": ' + text + ', "color": "red"}]}'
    error = refused(server.client.post(PREDICT, content=body), 422, "invalid_input")
    assert (error["details"][0]["row"], error["details"][0]["field"]) == (0, "income")


def test_duplicate_keys_take_the_last_value(server: ApiServer) -> None:
    body = '{"instances": [{"age": 30, "income": 1, "color": "red", "age": "old"}]}'
    error = refused(server.client.post(PREDICT, content=body), 422, "invalid_input")
    assert (error["details"][0]["field"], error["details"][0]["value"]) == ("age", "old")


@pytest.mark.parametrize(
    "body", [b"\xff\xfe{}", b'{"instances": [{"age": 1,', b"", b'{"instances": "\\ud800"}' + b"x"]
)
def test_bodies_that_are_not_json(server: ApiServer, body: bytes) -> None:
    refused(server.client.post(PREDICT, content=body), 400, "malformed_json")


def test_refusals_on_the_lean_path_match_the_route(server: ApiServer) -> None:
    """Without a query string the lean path answers; with one, FastAPI's route: the same answers."""
    for suffix in ("", "?alias=production"):
        unknown = refused(
            server.client.post(f"/v1/models/nope/predict{suffix}", json={"instances": factories.records(1)}),
            404,
            "model_not_found",
        )
        assert unknown["message"] == "no model named 'nope'; registered models: ['churn']"
        keyless = httpx.post(f"{server.url}{PREDICT}{suffix}", json={"instances": []})
        assert refused(keyless, 401, "unauthorized")["message"].startswith("this endpoint needs the API key")
        assert keyless.headers["www-authenticate"] == "Bearer"
        shape = refused(server.client.post(PREDICT + suffix, json={"rows": []}), 422, "invalid_request")
        assert shape["details"][0]["field"] == "instances"


def test_a_file_with_100000_columns(server: ApiServer) -> None:
    header = ",".join(f"c{i}" for i in range(100_000))
    content = (header + "\n" + ",".join("1" * 100_000) + "\n").encode()
    response = server.client.post(f"{PREDICT}-file", files={"file": ("wide.csv", content)})
    assert refused(response, 422, "invalid_input")["details"][0]["code"] == "missing_feature"


def test_a_parquet_file_with_a_broken_footer(server: ApiServer) -> None:
    buffer = io.BytesIO()
    pd.DataFrame(factories.records(20)).to_parquet(buffer)
    content = buffer.getvalue()[:-12] + b"\x00" * 8 + b"PAR1"
    response = server.client.post(f"{PREDICT}-file", files={"file": ("broken.parquet", content)})
    refused(response, 422, "unparseable_file")


def test_a_60_mb_field(server: ApiServer) -> None:
    huge = "x" * (60 * 1024 * 1024)
    csv = f"age,income,color\n30,1,{huge}\n".encode()
    response = server.client.post(f"{PREDICT}-file", files={"file": ("big.csv", csv)}, timeout=120)
    refused(response, 422, "unparseable_file")
    # a JSON Lines record may hold it: scored, with the category unknown to the model
    jsonl = json.dumps({"age": 30, "income": 1, "color": huge}).encode() + b"\n"
    response = server.client.post(f"{PREDICT}-file", files={"file": ("big.jsonl", jsonl)}, timeout=120)
    assert response.status_code == 200, response.text[:300]
    [warning] = json.loads(response.headers["x-modelyard-warnings"])
    assert (warning["field"], warning["code"]) == ("color", "unknown_category")


def test_a_gzip_bomb_named_csv_gz(server: ApiServer) -> None:
    bomb = gzip.compress(b"0" * (200 * 1024 * 1024), compresslevel=9)  # 200 MB in about 200 KB
    response = server.client.post(f"{PREDICT}-file", files={"file": ("bomb.csv.gz", bomb)})
    # its Content-Type (text/csv, guessed from the name) is believed, and the bytes are never inflated
    assert "is not UTF-8 text" in refused(response, 422, "unparseable_file")["message"]
    response = server.client.post(
        f"{PREDICT}-file", files={"file": ("bomb.csv.gz", bomb, "application/gzip")}
    )
    refused(response, 415, "unsupported_format")


def test_path_tricks_in_an_upload_name_stay_a_name(server: ApiServer) -> None:
    content = pd.DataFrame(factories.records(2)).to_csv(index=False).encode()
    response = server.client.post(f"{PREDICT}-file", files={"file": ("../../etc/passwd.csv", content)})
    assert response.status_code == 200
    assert response.headers["content-disposition"] == 'attachment; filename="passwd.predictions.csv"'


def held_open(server: ApiServer, size: int) -> socket.socket:
    """A request whose body is announced as `size` bytes and never finished: it holds its share of the
    budget until the socket closes (a slow client, or one that stalls on purpose)."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    head = (
        f"POST {PREDICT} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\nContent-Length: {size}\r\n\r\n"
    )
    sock.sendall(head.encode() + b'{"instances": [')
    return sock


def padded(size: int) -> bytes:
    body = json.dumps({"instances": factories.records(2)}).encode()
    return body + b" " * (size - len(body))


def test_bodies_past_the_inflight_budget_get_503_and_a_retry_after(server: ApiServer) -> None:
    holder = held_open(server, 900_000)
    try:
        time.sleep(0.5)  # for the server to take its headers: its share of the budget is held from then
        busy = server.client.post(PREDICT, content=padded(200_000))
        error = refused(busy, 503, "server_busy")
        assert busy.headers["retry-after"] == "1"
        assert "MODELYARD_MAX_INFLIGHT_MB is 1" in error["message"]
        chunked = server.client.post(PREDICT, content=iter([padded(150_000), b" " * 100_000]))
        refused(chunked, 503, "server_busy")
        small = server.client.post(PREDICT, content=padded(50_000))  # within what is left
        assert small.status_code == 200, small.text
    finally:
        holder.close()
    deadline = time.monotonic() + 10
    while server.client.post(PREDICT, content=padded(200_000)).status_code == 503:
        assert time.monotonic() < deadline, "the held request's share of the budget was never given back"
        time.sleep(0.05)


def test_a_request_alone_is_taken_whatever_the_budget(server: ApiServer) -> None:
    response = server.client.post(PREDICT, content=padded(3 * 1024 * 1024))
    assert response.status_code == 200, response.text
