"""SIGTERM lets in-flight requests finish before the process exits."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_in_flight_requests():
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "tests.apps.serve.slow_app:create",
                             "--host", "127.0.0.1", "--port", str(port), "--timeout-graceful-shutdown", "10"],
                            cwd=ROOT, env=os.environ | {"PYTHONPATH": str(ROOT)},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise AssertionError("server did not start: " + proc.stdout.read().decode()[-2000:])
        answer: dict = {}

        def call():
            answer["r"] = httpx.post(f"{url}/v1/finance/score", json={"items": [{"text": "a", "id": "x"}]},
                                     timeout=20)

        t = threading.Thread(target=call)
        t.start()
        time.sleep(0.5)  # the request is inside its 1.5 s batch
        proc.send_signal(signal.SIGTERM)
        t.join(20)
        assert answer["r"].status_code == 200 and answer["r"].json()["results"][0]["id"] == "x"
        assert proc.wait(20) in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once drained
    finally:
        if proc.poll() is None:
            proc.kill()
