"""API keys, per-key rate limits and the loopback-only default."""
from __future__ import annotations

from click.testing import CliRunner

from kgfusion.apps.cli import cli
from kgfusion.apps.serve.auth import KeyStore, RateLimiter, entry_line
from kgfusion.apps.serve.services import Services
from tests.apps.serve.conftest import SlowFinance


def test_keys_are_required_checked_and_rate_limited(make_client, tmp_path):
    keys = tmp_path / "keys.txt"
    keys.write_text("# team keys\n" + entry_line("dashboard", "k-one") + "\n" + entry_line("ehr", "k-two", rate=1,
                    burst=2) + "\n", encoding="utf-8")
    client = make_client(Services(finance=SlowFinance()), api_keys=str(keys))
    body = {"items": [{"text": "a"}]}
    assert client.get("/healthz").status_code == 200  # probes stay open
    missing = client.post("/v1/finance/score", json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["field"] == "Authorization"
    assert client.post("/v1/finance/score", json=body, headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/metrics").status_code == 401
    good = {"Authorization": "Bearer k-one"}
    assert client.post("/v1/finance/score", json=body, headers=good).status_code == 200
    limited = {"Authorization": "Bearer k-two"}
    codes = [client.post("/v1/finance/score", json=body, headers=limited).status_code for _ in range(4)]
    assert codes[:2] == [200, 200] and codes[-1] == 429
    last = client.post("/v1/finance/score", json=body, headers=limited)
    assert last.json()["error"] == "rate_limited" and int(last.headers["retry-after"]) >= 1
    assert client.post("/v1/finance/score", json=body, headers=good).status_code == 200  # others unaffected


def test_keys_file_holds_hashes_and_bad_lines_name_the_line(tmp_path):
    path = tmp_path / "keys.txt"
    path.write_text("ops kgf_plaintext_key\n", encoding="utf-8")
    try:
        KeyStore.load(path)
    except Exception as exc:  # noqa: BLE001
        assert f"{path} line 1" in str(exc) and "hash-key" in str(exc)
    else:
        raise AssertionError("a plain key in the keys file must be refused")


def test_rate_limiter_refills_over_time():
    now = [0.0]
    limiter = RateLimiter(rate=2, burst=1, clock=lambda: now[0])
    assert limiter.allow("a") == (True, 0.0)
    ok, wait = limiter.allow("a")
    assert not ok and abs(wait - 0.5) < 1e-9
    now[0] = 0.5
    assert limiter.allow("a")[0]


def test_cli_refuses_a_public_bind_without_keys_and_hash_key_makes_a_loadable_line(tmp_path):
    runner = CliRunner()
    refused = runner.invoke(cli, ["serve", "--host", "0.0.0.0"])
    assert refused.exit_code != 0 and "refusing to listen on 0.0.0.0 without API keys" in refused.output
    made = runner.invoke(cli, ["serve", "hash-key", "--name", "bi-team", "--rate", "5"])
    assert made.exit_code == 0, made.output
    line = made.stdout.strip().splitlines()[-1]
    key = made.stderr.split(": ")[-1].strip()
    (tmp_path / "k.txt").write_text(line + "\n", encoding="utf-8")
    store = KeyStore.load(tmp_path / "k.txt")
    assert store.verify(key).name == "bi-team" and store.verify(key).rate == 5.0
    assert key not in line
