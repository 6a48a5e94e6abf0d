"""Cost as work grows: the finance monitor and the medical extractor at growing input sizes.

- Finance: `kgfusion finance monitor` on 10k, 100k and 1M items: StockNet's raw tweets resampled with
  replacement (random.Random(2026)), each copy with a new id and its timestamp moved by up to +-30 days,
  written to a temporary JSONL file as a stream; into a fresh DuckDB file.
- Medical: `kgfusion medical extract` on 1k, 10k and 50k notes cycled from data/notes/*.txt and the
  BC5CDR PubTator abstracts (title + abstract), written as JSONL.

Each size runs in its own child process (the real CLI, `--json`); items/s is the command's own figure
without the model load (monitor: items / its `seconds`; extract: `notes_per_s`), peak memory is the
child's maximum resident set (os.wait4). Target (issue 17): throughput flat within +-15 % and peak
memory bounded, since both commands stream their input in shards.

    python benchmarks/scaling.py                             # all sizes -> benchmarks/results/scale.json
    python benchmarks/scaling.py --sizes 200 --notes 50 --out /tmp/scale.json   # a smoke run
    python benchmarks/scaling.py --only monitor --model-variant fast --engine ray

Results are merged into the JSON file (only this script's keys change; other scripts own the others):
monitor_items_per_s_<size>, monitor_peak_rss_mb_<size>, monitor_items_per_s_1m_vs_10k_ratio,
monitor_peak_rss_mb_1m, medical_notes_per_s_<size>, medical_peak_rss_mb_<size>,
medical_notes_per_s_50k_vs_1k_ratio (size labels: 10k, 100k, 1m, 1k, 50k, or the plain number).
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
FEED = ROOT / "data" / "datasets" / "stocknet" / "stocknet_raw_tweets.jsonl.gz"
NOTES = ROOT / "data" / "notes"
PUBTATOR = [ROOT / "data" / "datasets" / "bc5cdr" / name
            for name in ("CDR_TrainingSet.PubTator.txt", "CDR_DevelopmentSet.PubTator.txt")]
SEED = 2026
MONITOR_SIZES = (10_000, 100_000, 1_000_000)
NOTE_SIZES = (1_000, 10_000, 50_000)
_TWITTER = "%a %b %d %H:%M:%S %z %Y"
CLI = "import sys; from kgfusion.apps.cli import cli; cli(sys.argv[1:])"


def label(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1m; other numbers as they are."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1000 == 0:
        return f"{n // 1000}k"
    return str(n)


# ------------------------------------------------------------------------------------------ inputs
def write_feed(path: Path, n: int, seed: int = SEED) -> Path:
    """``n`` StockNet tweets resampled with perturbed timestamps, streamed to ``path`` (JSONL)."""
    with gzip.open(FEED, "rt", encoding="utf-8") as fh:
        base = [json.loads(line) for line in fh if line.strip()]
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            rec = base[rng.randrange(len(base))]
            ts = datetime.strptime(rec["created_at"], _TWITTER) + timedelta(seconds=rng.randint(-30 * 86400,
                                                                                               30 * 86400))
            out.write(json.dumps({"id_str": f"s{i}", "created_at": ts.strftime("%Y-%m-%dT%H:%M:%SZ"),
                                  "ticker": rec.get("ticker"), "text": rec["text"]}, ensure_ascii=False) + "\n")
    return path


def note_pool() -> list[str]:
    """The sample notes and every PubTator abstract (title + abstract) as note texts."""
    pool = [p.read_text(encoding="utf-8") for p in sorted(NOTES.glob("*.txt"))]
    for path in PUBTATOR:
        if not path.is_file():
            continue
        title = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split("|", 2)
            if len(parts) == 3 and parts[1] == "t":
                title = parts[2]
            elif len(parts) == 3 and parts[1] == "a":
                pool.append(f"{title}\n\n{parts[2]}")
    return pool


def write_notes(path: Path, n: int) -> Path:
    pool = note_pool()
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(json.dumps({"note_id": f"n{i}", "text": pool[i % len(pool)]}, ensure_ascii=False) + "\n")
    return path


# -------------------------------------------------------------------------------------------- runs
def run_child(args: list[str], stdout: Path) -> tuple[dict, float, float]:
    """Run the CLI in a child; (its --json output, wall seconds, peak RSS in MB of that child)."""
    t0 = time.perf_counter()
    with stdout.open("w", encoding="utf-8") as fh:
        child = subprocess.Popen([sys.executable, "-c", CLI, *args], stdout=fh, cwd=ROOT)
        _, status, usage = os.wait4(child.pid, 0)
    child.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - t0
    if child.returncode != 0:
        raise SystemExit(f"`kgfusion {' '.join(args)}` failed with exit code {child.returncode}")
    return child_summary(stdout), wall, usage.ru_maxrss / 1024  # KB on Linux


def child_summary(stdout: Path) -> dict:
    """The command's --json object; anything a library printed before it (a progress bar) is skipped."""
    text = stdout.read_text(encoding="utf-8")
    start = text.find("{")
    try:
        return json.loads(text[start:] if start >= 0 else text)
    except json.JSONDecodeError as exc:
        raise SystemExit(f"{stdout}: the command's --json output is not JSON ({exc}); it starts {text[:120]!r}") from exc


def monitor_size(n: int, work: Path, opts: argparse.Namespace) -> dict[str, float]:
    feed = write_feed(work / f"feed-{n}.jsonl", n)
    args = ["finance", "monitor", str(feed), "--db", str(work / f"m-{n}.duckdb"), "--json", "--quiet",
            "--engine", opts.engine]
    args += ["--bundle", opts.bundle] if opts.bundle else []
    args += ["--model-variant", opts.model_variant] if opts.model_variant else []
    args += ["--shard-size", str(opts.shard_size)] if opts.shard_size else []
    summary, wall, rss = run_child(args, work / f"m-{n}.json")
    feed.unlink()
    rate = summary["new_items"] / max(summary["seconds"], 1e-9)
    print(f"monitor {label(n):>6}: {summary['new_items']:>8} items  {rate:8.1f} items/s  peak {rss:7.1f} MB  "
          f"({wall:.0f} s wall)", flush=True)
    return {f"monitor_items_per_s_{label(n)}": rate, f"monitor_peak_rss_mb_{label(n)}": rss}


def medical_size(n: int, work: Path, opts: argparse.Namespace) -> dict[str, float]:
    notes = write_notes(work / f"notes-{n}.jsonl", n)
    args = ["medical", "extract", str(notes), "--out", str(work / f"x-{n}.jsonl"), "--json",
            "--engine", opts.engine, "--link-encoder", opts.link_encoder, "--no-text"]
    args += ["--bundle", opts.medical_bundle] if opts.medical_bundle else []
    args += ["--model-variant", opts.model_variant] if opts.model_variant else []
    args += ["--shard-size", str(opts.shard_size)] if opts.shard_size else []
    summary, wall, rss = run_child(args, work / f"x-{n}.json")
    notes.unlink()
    (work / f"x-{n}.jsonl").unlink(missing_ok=True)
    rate = float(summary["notes_per_s"] or 0.0)
    print(f"medical {label(n):>6}: {summary['notes']:>8} notes  {rate:8.1f} notes/s  peak {rss:7.1f} MB  "
          f"({wall:.0f} s wall)", flush=True)
    return {f"medical_notes_per_s_{label(n)}": rate, f"medical_peak_rss_mb_{label(n)}": rss}


def ratios(values: dict[str, float]) -> dict[str, float]:
    out = {}
    for key, big, small in (("monitor_items_per_s_1m_vs_10k_ratio", "monitor_items_per_s_1m", "monitor_items_per_s_10k"),
                            ("medical_notes_per_s_50k_vs_1k_ratio", "medical_notes_per_s_50k",
                             "medical_notes_per_s_1k")):
        if values.get(big) and values.get(small):
            out[key] = values[big] / values[small]
    return out


def merge_json(path: Path, updates: dict[str, float]) -> dict:
    """Update only ``updates``' keys of ``path`` (core.fileio.update_json: atomic, locked against other writers)."""
    from kgfusion.core.fileio import update_json

    return update_json(path, lambda current: current | {k: round(float(v), 6) for k, v in updates.items()})


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(float(s)) for s in text.replace("_", "").split(",") if s.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: give sizes as numbers, e.g. 10000,100000") from exc
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: sizes must be >= 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_sizes, default=list(MONITOR_SIZES), help="Monitor item counts (comma list).")
    ap.add_argument("--notes", type=_sizes, default=list(NOTE_SIZES), help="Medical note counts (comma list).")
    ap.add_argument("--only", choices=["monitor", "medical"], default=None)
    ap.add_argument("--bundle", default=None, help="Sentiment bundle for the monitor (default: the app's).")
    ap.add_argument("--medical-bundle", default=None, help="NER bundle for the extractor (default: the app's).")
    ap.add_argument("--model-variant", choices=["fast", "accurate"], default=None)
    ap.add_argument("--engine", choices=["local", "ray"], default="local")
    ap.add_argument("--shard-size", type=int, default=None, help="Default: each command's own.")
    ap.add_argument("--link-encoder", choices=["minilm", "hashing"], default="minilm")
    ap.add_argument("--out", type=Path, default=RESULTS, help="Results JSON (merged).")
    opts = ap.parse_args(argv)
    values: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="kgfusion-scale-") as tmp:
        work = Path(tmp)
        if opts.only in (None, "monitor"):
            for n in opts.sizes:
                values |= monitor_size(n, work, opts)
        if opts.only in (None, "medical"):
            for n in opts.notes:
                values |= medical_size(n, work, opts)
    values |= ratios(values)
    merge_json(opts.out, values)
    print(f"\n{'key':<44} value")
    for key, value in sorted(values.items()):
        print(f"{key:<44} {value:,.2f}")
    print(f"merged into {opts.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
