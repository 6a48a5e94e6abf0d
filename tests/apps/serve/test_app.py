"""The HTTP API on the real finance pipeline (keyword model, mini KG) and small fakes: answers, errors, limits."""
from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from kgfusion.apps.serve.app import create_app
from kgfusion.apps.serve.services import Services
from kgfusion.apps.serve.settings import ServeSettings
from tests.apps.serve.conftest import SlowFinance


def test_finance_score_returns_sentiment_companies_evidence_and_model(make_client, services):
    client = make_client(services)
    r = client.post("/v1/finance/score", json={"items": [
        {"text": "Apple shares fell after the downgrade", "id": "a1", "ticker": "AAPL"},
        {"text": "Exxon profit rose", "time": "2020-01-02T10:00:00Z"}]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": "finsent-test", "version": "abc123def456", "backend": "keyword"}
    assert r.headers["x-kgfusion-model"] == "finsent-test@abc123def456"
    first, second = body["results"]
    assert first["id"] == "a1" and first["label"] == "negative" and first["score"] < 0
    assert abs(sum(first["probabilities"].values()) - 1) < 1e-6
    assert [c["ticker"] for c in first["companies"]] == ["AAPL"]
    assert first["sectors"] and {e["kind"] for e in first["evidence"]} >= {"model", "kg"}
    assert second["label"] == "positive" and second["id"].startswith("h")


def test_recommend_flags_unknown_users_as_cold_start(make_client, services):
    r = make_client(services).post("/v1/recommend", json={"users": [1, 99], "k": 3})
    assert r.status_code == 200, r.text
    known, unknown = r.json()["results"]
    assert known["user_id"] == 1 and not known["cold_start"] and len(known["items"]) == 3
    assert known["items"][0]["explanation"].startswith("Because you liked")
    assert unknown["cold_start"] and "popular with" in unknown["items"][0]["explanation"]


def test_sparql_is_read_only_and_link_rejects_unknown_graph(make_client, services):
    client = make_client(services)
    ok = client.post("/v1/kg/sparql", json={"graph": "finance", "query":
                     "SELECT ?t WHERE { ?c kgf:ticker ?t } ORDER BY ?t", "limit": 2})
    assert ok.status_code == 200, ok.text
    assert [row["t"] for row in ok.json()["rows"]] == ["AAPL", "ALL"]
    write = client.post("/v1/kg/sparql", json={"graph": "finance", "query": "INSERT DATA { <a:b> <a:c> <a:d> }"})
    assert write.status_code == 400 and write.json()["error"] == "invalid_query"
    unknown = client.get("/v1/kg/link", params={"mention": "Apple", "graph": "nope"})
    assert unknown.status_code == 404
    assert unknown.json() == {"error": "unknown_graph", "detail": unknown.json()["detail"], "field": "graph"}
    assert "finance" in unknown.json()["detail"]


@pytest.mark.parametrize(("body", "status", "error", "field"), [
    (b'{"items": [', 400, "malformed_json", None),
    (b'{"items": [{"text": "caf\xe9"}]}', 400, "invalid_utf8", None),
    (b'{"items": []}', 422, "empty_list", "items"),
    (b'{"items": [{"text": 5}]}', 422, "invalid_type", "items[0].text"),
    (b'{"items": [{"txt": "a"}]}', 422, "missing_field", "items[0].text"),
    (b'{"items": [{"text": "   "}]}', 422, "empty_text", "items[0].text"),
    (b'{"items": [{"text": "ok", "time": "yesterday-ish"}]}', 422, "invalid_value", "items[0].time"),
    (json.dumps({"items": [{"text": "x"}] * 5}).encode(), 413, "too_many_items", "items"),
    (json.dumps({"items": [{"text": "x" * 101}]}).encode(), 413, "text_too_long", "items[0].text"),
    (b'{"items": [{"text": "' + b"y" * 5000 + b'"}]}', 413, "payload_too_large", None),
])
def test_bad_requests_get_one_clear_json_error(make_client, services, body, status, error, field):
    client = make_client(services, max_items=4, max_chars=100, max_body_bytes=4096)
    r = client.post("/v1/finance/score", content=body, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    got = r.json()
    assert set(got) == {"error", "detail", "field"}
    assert got["error"] == error and got["field"] == field and got["detail"]
    assert "Traceback" not in r.text


def test_a_failing_model_gives_500_without_internals_and_unknown_routes_404(make_client):
    client = make_client(Services(finance=SlowFinance(fail=True)))
    r = client.post("/v1/finance/score", json={"items": [{"text": "a"}]})
    assert r.status_code == 500
    assert r.json()["error"] == "internal_error" and "secret" not in r.text and "model.py" not in r.text
    missing = client.get("/v2/nothing")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    not_served = client.post("/v1/medical/extract", json={"notes": [{"text": "no fever"}]})
    assert not_served.status_code == 404 and not_served.json()["error"] == "app_not_served"


def test_concurrent_requests_share_model_batches_and_a_cancelled_one_breaks_nothing():
    service = SlowFinance(seconds=0.05)
    app = create_app(ServeSettings(max_batch_size=64, max_wait_ms=20), Services(finance=service))

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async def one(i):
                return await client.post("/v1/finance/score", json={"items": [{"text": f"t{i}", "id": f"r{i}"}]})

            tasks = [asyncio.create_task(one(i)) for i in range(16)]
            await asyncio.sleep(0.005)
            tasks[3].cancel()  # a client that gives up while its request waits for a batch
            return await asyncio.gather(*tasks, return_exceptions=True)

    results = asyncio.run(run())
    answered = [r for i, r in enumerate(results) if i != 3]
    assert all(r.status_code == 200 for r in answered)
    assert [r.json()["results"][0]["id"] for r in answered] == [f"r{i}" for i in range(16) if i != 3]
    assert len(service.batch_sizes) < 8 and max(service.batch_sizes) > 1  # gathered, not one call per request


def test_no_batching_runs_one_request_per_model_call():
    service = SlowFinance(seconds=0.01)
    app = create_app(ServeSettings(max_batch_size=1), Services(finance=service))

    async def run():
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
            return await asyncio.gather(*[client.post("/v1/finance/score", json={"items": [{"text": "a"}]})
                                          for _ in range(6)])

    assert all(r.status_code == 200 for r in asyncio.run(run()))
    assert service.batch_sizes == [1] * 6


def test_metrics_count_requests_errors_batches_and_name_the_model(make_client, services):
    client = make_client(services)
    client.post("/v1/finance/score", json={"items": [{"text": "Apple fell"}]})
    client.post("/v1/finance/score", json={"items": []})
    text = client.get("/metrics").text
    assert 'kgfusion_requests_total{method="POST",route="/v1/finance/score",status="200"} 1.0' in text
    assert 'kgfusion_request_errors_total{route="/v1/finance/score",status="422"} 1.0' in text
    assert 'kgfusion_batch_items_count{model="finance"} 1.0' in text
    assert 'name="finsent-test"' in text and 'version="abc123def456"' in text
    assert "kgfusion_request_seconds_bucket" in text and "kgfusion_queue_depth" in text


def test_readyz_waits_for_the_models_and_healthz_does_not():
    import threading

    from fastapi.testclient import TestClient

    release = threading.Event()

    def loader():
        release.wait(10)
        return Services(finance=SlowFinance())

    with TestClient(create_app(ServeSettings(), loader=loader)) as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        waiting = client.get("/readyz")
        assert waiting.status_code == 503 and waiting.json()["error"] == "not_ready"
        early = client.post("/v1/finance/score", json={"items": [{"text": "a"}]})
        assert early.status_code == 503 and "loading" in early.json()["detail"]
        release.set()
        for _ in range(100):
            ready = client.get("/readyz")
            if ready.status_code == 200:
                break
            threading.Event().wait(0.05)
        assert ready.status_code == 200
        assert ready.json()["models"] == [{"app": "finance", "name": "slow-test", "version": "0123456789ab",
                                           "backend": "fake"}]


def test_docs_list_every_route(make_client, services):
    paths = make_client(services).get("/openapi.json").json()["paths"]
    assert {"/v1/finance/score", "/v1/medical/extract", "/v1/recommend", "/v1/kg/link", "/v1/kg/sparql",
            "/healthz", "/readyz", "/metrics"} <= set(paths)
