"""``kgfusion serve --engine ray``: the API on a local Ray Serve with two replicas, and RAY_ADDRESS."""
from __future__ import annotations

import socket
import sys
import time

import pytest

from kgfusion.apps.serve.settings import ServeSettings
from kgfusion.core.errors import ConfigError, KgfusionError
from tests.apps.serve.ray_fixtures import LABEL, MODEL_NAME

LOADER = "tests.apps.serve.ray_fixtures:load"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_replicas_serve_the_api(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    serve = pytest.importorskip("ray.serve")
    import httpx

    from kgfusion.apps.serve.auth import entry_line, new_key
    from kgfusion.apps.serve.ray_engine import APP_NAME, DEPLOYMENT_NAME, serve_on_ray

    key = new_key()
    (tmp_path / "api.keys").write_text(entry_line("tester", key) + "\n", encoding="utf-8")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # workers import tests.* from this cwd
    try:
        monkeypatch.chdir(tmp_path)  # a relative keys path must still reach the replicas
        settings = ServeSettings(port=_free_port(), apps=("finance",), api_keys="api.keys")
        serving = serve_on_ray(settings, replicas=2, loader_path=LOADER, blocking=False)
        assert serving is not None and serving.url == f"http://127.0.0.1:{settings.port}"
        status = serve.status().applications[APP_NAME]
        assert status.status == "RUNNING"
        replicas = status.deployments[DEPLOYMENT_NAME].replica_states
        assert replicas.get("RUNNING") == 2

        auth = {"Authorization": f"Bearer {key}"}
        with httpx.Client(base_url=serving.url, timeout=30) as client:
            deadline = time.monotonic() + 30
            while True:  # the proxy may need a moment to learn the routes
                r = client.get("/readyz")
                if r.status_code == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
            assert r.status_code == 200, r.text
            assert r.json()["models"][0]["name"] == MODEL_NAME

            payload = {"items": [{"text": "$AAPL beats", "id": "a1"}]}
            r = client.post("/v1/finance/score", json=payload)
            assert r.status_code == 401 and r.json()["error"] == "unauthorized"
            r = client.post("/v1/finance/score", json=payload, headers=auth)
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["model"]["name"] == MODEL_NAME
            assert body["results"][0]["label"] == LABEL and body["results"][0]["id"] == "a1"
            assert r.headers["x-kgfusion-model"] == f"{MODEL_NAME}@0123456789ab"

            r = client.post("/v1/finance/score", json={"items": []}, headers=auth)  # the same 4xx shape as locally
            assert r.status_code == 422 and set(r.json()) == {"error", "detail", "field"}
        serve.shutdown()

        # a replica whose services fail to load: one line with the replica's reason, Serve stopped
        settings = ServeSettings(port=_free_port(), apps=("finance",))
        with pytest.raises(KgfusionError) as err:
            serve_on_ray(settings, replicas=1, loader_path=LOADER.replace(":load", ":load_broken"), blocking=False)
        assert str(err.value) == ("deploying kgfusion on Ray Serve failed: RuntimeError: the finance bundle is "
                                  "corrupt")
        assert ray.is_initialized()  # the test's Ray is not ours to stop
    finally:
        serve.shutdown()
        ray.shutdown()


class _Stop(Exception):
    pass


@pytest.fixture
def fake_ray(monkeypatch):
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.serve")
    calls: list[dict] = []

    def fake_init(*args, **kwargs):
        calls.append(kwargs)
        raise ConnectionError("Could not find any running Ray instance.\nPlease start one first.")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", fake_init)
    return calls


def test_ray_address_goes_to_ray_init(monkeypatch, fake_ray):
    from kgfusion.apps.serve.ray_engine import serve_on_ray

    monkeypatch.setenv("RAY_ADDRESS", "ray://head.example:10001")
    with pytest.raises(KgfusionError) as err:
        serve_on_ray(ServeSettings(port=_free_port()), replicas=3, loader_path=LOADER, blocking=False)
    assert fake_ray == [{"address": "ray://head.example:10001"}]
    msg = str(err.value)
    assert "RAY_ADDRESS=ray://head.example:10001" in msg and "\n" not in msg


def test_local_ray_when_ray_address_unset(monkeypatch, fake_ray):
    from kgfusion.apps.serve.ray_engine import serve_on_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(KgfusionError, match="cannot start a local Ray"):
        serve_on_ray(ServeSettings(port=_free_port()), loader_path=LOADER, blocking=False)
    assert fake_ray[0]["address"] is None


def test_port_in_use_is_one_line(monkeypatch, fake_ray):
    from kgfusion.apps.serve.ray_engine import serve_on_ray

    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        with pytest.raises(KgfusionError, match=f"cannot listen on 127.0.0.1:{port}"):
            serve_on_ray(ServeSettings(port=port), loader_path=LOADER, blocking=False)
    assert fake_ray == []  # failed before starting Ray


def test_bad_inputs_fail_before_ray(monkeypatch, fake_ray, tmp_path):
    from kgfusion.apps.serve.ray_engine import serve_on_ray

    with pytest.raises(ConfigError, match="package.module:function"):
        serve_on_ray(ServeSettings(), loader_path="no-colon", blocking=False)
    with pytest.raises(ConfigError, match="refusing to listen"):
        serve_on_ray(ServeSettings(host="0.0.0.0"), blocking=False)
    with pytest.raises(ConfigError, match="replicas"):
        serve_on_ray(ServeSettings(), replicas=0, blocking=False)
    with pytest.raises(KgfusionError):
        serve_on_ray(ServeSettings(api_keys=str(tmp_path / "missing.keys")), blocking=False)
    assert fake_ray == []


def test_missing_ray_names_the_extra(monkeypatch):
    from kgfusion.apps.serve.ray_engine import serve_on_ray

    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(KgfusionError, match=r"pip install 'kgfusion\[distributed\]'"):
        serve_on_ray(ServeSettings(port=_free_port()), loader_path=LOADER, blocking=False)
