"""Serving benchmark: `kgfusion serve` under a bounded load on localhost, against the offline pipeline.

    python benchmarks/serve.py                    # -> benchmarks/results/serve.json (about 15 min)
    python benchmarks/serve.py --soak-seconds 60  # a shorter soak

The server is started as a subprocess (`kgfusion serve --apps finance`, shipped bundle, backend auto)
on 127.0.0.1 and driven by async httpx clients in this process. Payloads: StockNet raw tweets,
``--items-per-request`` per request (default 8, a dashboard posting the new items of a feed), each
item sent once (no repeats, so no cache helps). Phases, all bounded by a request count and a time cap:
  1. closed-loop load with 1, 8 and 32 concurrent clients: requests/s, items/s, p50/p95/p99, errors;
  2. the same 32-client load on a server started with --max-batch-size 1 (micro-batching off);
     both servers also under 32 clients sending one item per request (a feed pushing each post as it
     arrives), where a request is one model call unless micro-batching gathers them;
  3. open-loop at half the 32-client peak request rate: p99 latency;
  4. a soak at that rate for ``--soak-seconds`` (600 = 10 min): server RSS sampled every 5 s, growth
     = mean of the last minute minus mean of the first minute after warm-up;
  5. medical notes (data/notes, one per request) and recommendation lists (4 MovieLens users per
     request, k = 10) under 8 clients on a `--apps medical,recommend` server (reported; no targets).
     ``--other-only`` runs just this phase and updates an existing results file.
Offline throughput, same run, same items, same bundle (loaded by the server's own FinanceService.load):
FinanceMonitor.score_items (the server's per-item work: model, lexicon fusion, topics, company linking)
in batches of 256 in this process, with the server stopped, and the
bare Predictor.predict_proba for reference. All figures are for this 2-core machine, client and
server on the same cores (the load generator costs the server some CPU).
"""
from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

from kgfusion.core.fileio import atomic_write_json  # noqa: E402

FEED = ROOT / "data" / "datasets" / "stocknet" / "stocknet_raw_tweets.jsonl.gz"
RESULTS = ROOT / "benchmarks" / "results" / "serve.json"
KGF = Path(sys.executable).with_name("kgfusion")


def load_texts(n: int, seed: int = 7) -> list[str]:
    texts: list[str] = []
    seen: set[str] = set()
    with gzip.open(FEED, "rt", encoding="utf-8") as fh:
        for line in fh:
            text = json.loads(line).get("text", "").strip()
            if text and text not in seen:
                seen.add(text)
                texts.append(text)
    random.Random(seed).shuffle(texts)
    return texts[:n]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, batch_size: int, wait_ms: float, apps: str = "finance") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = os.environ | {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.proc = subprocess.Popen([str(KGF), "serve", "--apps", apps, "--port", str(self.port),
                                      "--max-batch-size", str(batch_size), "--max-wait-ms", str(wait_ms)],
                                     env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def wait_ready(self, timeout: float = 180) -> None:
        import httpx

        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise SystemExit("server exited: " + self.proc.stderr.read().decode()[-2000:])
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise SystemExit("server not ready in time")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def summary(latencies: list[float], seconds: float, requests: int, items: int, errors: int) -> dict:
    lat = sorted(latencies) or [float("nan")]

    def q(p: float) -> float:
        return round(1000 * lat[min(len(lat) - 1, int(p * len(lat)))], 1)

    return {"requests": requests, "items": items, "errors": errors, "seconds": round(seconds, 2),
            "requests_per_s": round(requests / seconds, 1), "items_per_s": round(items / seconds, 1),
            "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99)}


class Payloads:
    def __init__(self, texts: list[str], per_request: int) -> None:
        self.texts, self.per, self.pos = texts, per_request, 0

    def next(self) -> dict:
        chunk = [self.texts[(self.pos + i) % len(self.texts)] for i in range(self.per)]
        self.pos += self.per
        return {"items": [{"text": t} for t in chunk]}


async def closed_loop(url: str, payloads, clients: int, requests: int, cap_s: float,
                      route: str = "/v1/finance/score", key: str = "items") -> dict:
    import httpx

    latencies: list[float] = []
    errors = 0
    sent = 0
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        started = time.perf_counter()

        async def worker() -> None:
            nonlocal sent, errors
            while sent < requests and time.perf_counter() - started < cap_s:
                sent += 1
                body = payloads.next()
                t0 = time.perf_counter()
                try:
                    r = await client.post(route, json=body)
                    ok = r.status_code == 200 and len(r.json()["results"]) == len(body[key])
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t0)
                errors += not ok

        await asyncio.gather(*[worker() for _ in range(clients)])
        seconds = time.perf_counter() - started
    return summary(latencies, seconds, len(latencies), len(latencies) * payloads.per, errors)


async def open_loop(url: str, payloads: Payloads, rate: float, seconds: float, pid: int | None = None,
                    sample_s: float = 5.0) -> tuple[dict, list[tuple[float, float]]]:
    """Requests at a fixed rate (one every 1/rate s, whatever the answers do) for ``seconds``."""
    import httpx

    latencies: list[float] = []
    errors = 0
    rss: list[tuple[float, float]] = []
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=httpx.Limits(max_connections=256)) as client:
        async def one(body: dict) -> None:
            nonlocal errors
            t0 = time.perf_counter()
            try:
                r = await client.post("/v1/finance/score", json=body)
                ok = r.status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - t0)
            errors += not ok

        started = time.perf_counter()
        tasks, n, next_sample = [], 0, 0.0
        while (now := time.perf_counter() - started) < seconds:
            if pid is not None and now >= next_sample:
                rss.append((round(now, 1), round(rss_mb(pid), 1)))
                next_sample += sample_s
            tasks.append(asyncio.create_task(one(payloads.next())))
            n += 1
            await asyncio.sleep(max(0.0, n / rate - (time.perf_counter() - started)))
        await asyncio.gather(*tasks)
        total = time.perf_counter() - started
    return summary(latencies, total, len(latencies), len(latencies) * payloads.per, errors), rss


class Notes:
    """One sample note per request (data/notes), in turn."""

    per = 1

    def __init__(self) -> None:
        self.notes = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "data" / "notes").glob("*.txt"))]
        self.pos = 0

    def next(self) -> dict:
        self.pos += 1
        return {"notes": [{"id": f"n{self.pos}", "text": self.notes[self.pos % len(self.notes)]}]}


class Users:
    """Four MovieLens users per request (a page asking for several lists), k = 10."""

    per = 4

    def __init__(self) -> None:
        import pandas as pd

        users = sorted(pd.read_csv(ROOT / "data" / "datasets" / "movielens_small" / "ratings.csv",
                                   usecols=["userId"])["userId"].unique().tolist())
        random.Random(7).shuffle(users)
        self.users, self.pos = users, 0

    def next(self) -> dict:
        chunk = [self.users[(self.pos + i) % len(self.users)] for i in range(self.per)]
        self.pos += self.per
        return {"users": chunk, "k": 10}


def other_apps(requests: int, cap_s: float, batch_size: int, wait_ms: float) -> dict:
    """Medical notes and recommendation lists under 8 concurrent clients (reported, no targets)."""
    server = Server(batch_size, wait_ms, apps="medical,recommend")
    server.wait_ready()
    try:
        out = {}
        for name, route, payloads, key in (("medical", "/v1/medical/extract", Notes(), "notes"),
                                           ("recommend", "/v1/recommend", Users(), "users")):
            asyncio.run(closed_loop(server.url, payloads, 2, 10, 30, route, key))  # warm-up
            out[name] = asyncio.run(closed_loop(server.url, payloads, 8, requests, cap_s, route, key))
            print(f"  {name}, 8 clients: {out[name]}", flush=True)
    finally:
        server.stop()
    return out


def offline(texts: list[str]) -> dict:
    from kgfusion.apps.finance.ingest import Item, item_id
    from kgfusion.apps.serve.services import FinanceService

    service = FinanceService.load()  # the server's own loader: the same bundle (promoted version), same backend
    monitor = service.monitor
    items = [Item(item_id("api", t, None), t, None, "api", None, i + 1) for i, t in enumerate(texts)]
    monitor.score(items[:64])  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(items), 256):
        monitor.score_items(items[start:start + 256])
    pipeline = len(items) / (time.perf_counter() - t0)
    predictor = monitor.scorer.predictor
    t0 = time.perf_counter()
    predictor.predict_proba(texts)
    model = len(texts) / (time.perf_counter() - t0)
    return {"offline_items_per_s": round(pipeline, 1), "offline_predictor_items_per_s": round(model, 1),
            "backend": monitor.backend, "bundle": service.info.name, "bundle_version": service.info.version}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items-per-request", type=int, default=8)
    ap.add_argument("--requests-32", type=int, default=600, help="requests of the 32-client phase")
    ap.add_argument("--cap-seconds", type=float, default=90, help="time cap of each closed-loop phase")
    ap.add_argument("--half-load-seconds", type=float, default=30)
    ap.add_argument("--soak-seconds", type=float, default=600)
    ap.add_argument("--requests-other", type=int, default=200, help="requests of the medical/recommend phases")
    ap.add_argument("--max-batch-size", type=int, default=128)
    ap.add_argument("--max-wait-ms", type=float, default=5.0)
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--other-only", action="store_true", help="only phase 5, merged into --results")
    args = ap.parse_args()
    if args.other_only:
        others = other_apps(args.requests_other, args.cap_seconds, args.max_batch_size, args.max_wait_ms)
        out = json.loads(args.results.read_text(encoding="utf-8")) if args.results.is_file() else {}
        out |= {"medical_8_clients": others["medical"], "recommend_8_clients": others["recommend"]}
        atomic_write_json(args.results, out)
        print(f"wrote {args.results}")
        return
    per = args.items_per_request
    texts = load_texts(20_000)
    payloads = Payloads(texts, per)
    out: dict = {"items_per_request": per, "max_batch_size": args.max_batch_size, "max_wait_ms": args.max_wait_ms,
                 "payload": "StockNet raw tweets (unique texts, shuffled, seed 7)",
                 "host": "127.0.0.1, client and server on the same 2 cores"}

    print("offline pipeline (server not running) ...", flush=True)
    out |= offline(texts[:4000])

    print("server with micro-batching ...", flush=True)
    server = Server(args.max_batch_size, args.max_wait_ms)
    server.wait_ready()
    try:
        asyncio.run(closed_loop(server.url, payloads, 8, 40, 30))  # warm-up
        phases = {}
        for clients, requests in ((1, max(40, args.requests_32 // 10)), (8, args.requests_32 // 2),
                                  (32, args.requests_32)):
            phases[clients] = asyncio.run(closed_loop(server.url, payloads, clients, requests, args.cap_seconds))
            print(f"  {clients:>2} clients: {phases[clients]}", flush=True)
        single = asyncio.run(closed_loop(server.url, Payloads(texts[::-1], 1), 32, args.requests_32, args.cap_seconds))
        print(f"  32 clients, 1 item per request: {single}", flush=True)
        peak_rps = phases[32]["requests_per_s"]
        half, _ = asyncio.run(open_loop(server.url, payloads, peak_rps / 2, args.half_load_seconds))
        print(f"  half load ({peak_rps / 2:.1f} req/s): {half}", flush=True)
        soak, rss = asyncio.run(open_loop(server.url, payloads, peak_rps / 2, args.soak_seconds,
                                          pid=server.proc.pid))
        peak_mem = peak_rss_mb(server.proc.pid)
        metrics_text = __import__("httpx").get(f"{server.url}/metrics").text
    finally:
        server.stop()
    warm = [m for t, m in rss if t >= 30] or [m for _, m in rss]
    window = max(1, int(60 / 5))
    growth = statistics.mean(warm[-window:]) - statistics.mean(warm[:window])
    print(f"  soak {args.soak_seconds:.0f} s: {soak}; RSS {warm[0]:.0f} -> {warm[-1]:.0f} MB", flush=True)
    batches = [line for line in metrics_text.splitlines() if line.startswith("kgfusion_batch_items_")]

    print("server without micro-batching ...", flush=True)
    server = Server(1, 0)
    server.wait_ready()
    try:
        asyncio.run(closed_loop(server.url, payloads, 8, 40, 30))
        nobatch = asyncio.run(closed_loop(server.url, payloads, 32, args.requests_32, args.cap_seconds))
        single_nobatch = asyncio.run(closed_loop(server.url, Payloads(texts[::-1], 1), 32, args.requests_32,
                                                 args.cap_seconds))
    finally:
        server.stop()
    print(f"  32 clients, no batching: {nobatch}", flush=True)
    print(f"  32 clients, 1 item per request, no batching: {single_nobatch}", flush=True)

    print("medical and recommend servers ...", flush=True)
    others = other_apps(args.requests_other, args.cap_seconds, args.max_batch_size, args.max_wait_ms)
    errors = sum(p["errors"] for p in phases.values()) + half["errors"] + soak["errors"] + nobatch["errors"]
    errors += single["errors"] + single_nobatch["errors"]
    errors += sum(p["errors"] for p in others.values())
    out |= {
        "items_per_s_1": phases[1]["items_per_s"], "items_per_s_8": phases[8]["items_per_s"],
        "items_per_s_32": phases[32]["items_per_s"], "items_per_s_32_no_batching": nobatch["items_per_s"],
        "ratio_32_vs_offline": round(phases[32]["items_per_s"] / out["offline_items_per_s"], 3),
        "ratio_32_vs_no_batching": round(phases[32]["items_per_s"] / nobatch["items_per_s"], 3),
        "items_per_s_32_single_item": single["items_per_s"],
        "items_per_s_32_single_item_no_batching": single_nobatch["items_per_s"],
        "ratio_32_vs_no_batching_single_item": round(single["items_per_s"] / single_nobatch["items_per_s"], 3),
        "p99_ms_half_load": half["p99_ms"], "half_load_requests_per_s": round(peak_rps / 2, 1),
        "errors": errors, "rss_growth_mb_soak": round(growth, 1), "soak_seconds": args.soak_seconds,
        "peak_rss_mb": round(peak_mem, 1),
        "phases": {f"clients_{c}": p for c, p in phases.items()} | {"clients_32_no_batching": nobatch,
                                                                    "half_load": half, "soak": soak,
                                                                    "clients_32_single_item": single,
                                                                    "clients_32_single_item_no_batching": single_nobatch},
        "medical_8_clients": others["medical"], "recommend_8_clients": others["recommend"],
        "soak_rss_mb": rss, "batch_size_histogram": batches,
    }
    atomic_write_json(args.results, out)
    keys = ("offline_items_per_s", "items_per_s_32", "items_per_s_32_no_batching", "ratio_32_vs_offline",
            "ratio_32_vs_no_batching", "items_per_s_32_single_item", "items_per_s_32_single_item_no_batching",
            "ratio_32_vs_no_batching_single_item", "p99_ms_half_load", "errors", "rss_growth_mb_soak", "peak_rss_mb")
    print("\n| figure | value |\n|---|---|")
    for k in keys:
        print(f"| {k} | {out[k]} |")
    print(f"\nwrote {args.results}")


if __name__ == "__main__":
    main()
