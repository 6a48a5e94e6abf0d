"""Finance feed drift: per day, the stored items' labels, confidences and text embeddings against the
training reference (core/lifecycle/drift.py), stored in the ``drift`` table of the monitor's DuckDB.

Reference: the sentiment bundle's own predictions (model fused with the finance rules, exactly what
``monitor`` stores) on a seeded sample of at most ``REFERENCE_ITEMS`` texts of its training data's
*dev* split by default -- the training distribution, but rows the model was not fitted on (on its
training rows a model is over-confident, and every day would look like confidence drift). It is built
once and cached beside the bundle as ``<bundle>.drift-reference.json`` (rebuilt when the bundle's
bundle.json changes), or given as a file (``kgfusion finance drift-reference --bundle B --out FILE``).

Embeddings: the sentiment Predictor exposes class probabilities, not sentence embeddings, so the
centroid uses the base encoder the KG linker already uses (core.embed.Embedder, the packaged MiniLM:
mean-pooled, L2-normalised) -- or the model-free character-hashing encoder (``encoder="hashing"``). The
cost stays bounded: at most ``EMBED_SAMPLE`` (256) distinct texts a day are embedded (a seeded sample by
item-id hash), and the reference's encoder is reused; a reference built with another encoder is an error.

Table ``drift``: one row per UTC day (items without a timestamp are not in any day) with the day's item
count, the figures, the verdict (NULL: too few items) and its reasons; a day is recomputed when its item
count, the reference, the thresholds or the sample size change. Databases written before the table
existed gain it when drift is first computed (CREATE TABLE IF NOT EXISTS; new columns are added in place).
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from kgfusion.apps.finance.store import FinanceStore
from kgfusion.core.errors import ConfigError, DataError
from kgfusion.core.lifecycle.drift import (  # noqa: F401 - drift_alerts, verdict, ... are part of this API
    REFERENCE_SUFFIX,
    DriftFigures,
    DriftReference,
    DriftThresholds,
    bundle_hash,
    cached_reference_path,
    compare,
    drift_alerts,
    load_or_build_cached,
    verdict,
)

REFERENCE_ITEMS = 2000  # texts scored and embedded for a reference (a minute of CPU, once)
EMBED_SAMPLE = 256  # texts embedded per day
HASHING = "hashing"  # encoder choice: the model-free character 3-gram hashing encoder
Split = Literal["dev", "train", "test"]

DRIFT_COLUMNS: tuple[tuple[str, str], ...] = (
    ("day", "DATE PRIMARY KEY"), ("items", "BIGINT"), ("embedded", "BIGINT"), ("label_psi", "DOUBLE"),
    ("confidence_psi", "DOUBLE"), ("confidence_ks", "DOUBLE"), ("confidence_ks_p", "DOUBLE"),
    ("confidence_mean", "DOUBLE"), ("centroid_distance", "DOUBLE"), ("centroid_spread", "DOUBLE"),
    ("centroid_ratio", "DOUBLE"), ("drifted", "BOOLEAN"), ("reasons", "VARCHAR"), ("figures", "VARCHAR"),
    ("reference", "VARCHAR"), ("basis", "VARCHAR"), ("computed", "TIMESTAMP"),
)
COLUMNS = [name for name, _ in DRIFT_COLUMNS]


# ------------------------------------------------------------------------------------------ encoders
def encoder_name(encoder: Any) -> str:
    return str(getattr(encoder, "name", type(encoder).__name__))


def make_encoder(name: str = "minilm", dim: int | None = None):
    """``hashing`` / ``hashing-char3``: HashingEncoder (no model); anything else: core.embed.Embedder(name)."""
    if name in (HASHING, "hashing-char3"):
        from kgfusion.knowledge.hashing import HashingEncoder

        return HashingEncoder(dim or 512)
    from kgfusion.core.embed import Embedder

    return Embedder(name)


def reference_encoder(reference: DriftReference):
    """The encoder a reference was built with (None when it has no centroid)."""
    if reference.centroid is None:
        return None
    return make_encoder(str(reference.meta.get("encoder", "minilm")), len(reference.centroid))


# ----------------------------------------------------------------------------------------- reference
def build_reference(scorer, texts: Sequence[str], *, encoder=None, meta: dict[str, Any] | None = None,
                    max_items: int = REFERENCE_ITEMS, seed: int = 13) -> DriftReference:
    """Score (and embed, with an ``encoder``) a seeded sample of at most ``max_items`` distinct texts."""
    texts = list(dict.fromkeys(t for t in texts if isinstance(t, str) and t.strip()))
    if not texts:
        raise DataError("no reference texts: the training data split is empty")
    if len(texts) > max_items:
        rng = np.random.default_rng(seed)
        texts = [texts[i] for i in sorted(rng.choice(len(texts), max_items, replace=False))]
    scored = scorer.score(texts)
    embeddings = encoder.encode(texts) if encoder is not None else None
    info = dict(meta or {}) | {"app": "finance", "items": len(texts),
                               "encoder": encoder_name(encoder) if encoder is not None else None,
                               "created": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    return DriftReference.build([s.label for s in scored], [s.confidence for s in scored], embeddings,
                                meta=info, seed=seed)


def reference_texts(bundle: str | Path, data, split: Split = "dev") -> list[str]:
    """The texts of the bundle's training data split (its recorded seed and fractions; see train.py)."""
    from kgfusion.apps.finance.train import data_for_bundle, load_finance_splits

    splits = load_finance_splits(data_for_bundle(bundle, data))
    if split == "dev":
        return [e.text for e in splits.dev]
    if split == "train":
        return [e.text for e in splits.train]
    if split == "test":
        return [e.text for name in ("phrasebank50", "twitter") for e in splits.tests.get(name, [])]
    raise ConfigError(f"split={split!r}; allowed: dev, train, test")


def build_bundle_reference(bundle: str | Path, *, data_dir: str | Path | None = None, data=None,
                           split: Split = "dev", backend: str = "auto", encoder: Any = "minilm",
                           rule_paths: Sequence[str | Path] = (), max_items: int = REFERENCE_ITEMS,
                           seed: int = 13) -> DriftReference:
    """The reference of a sentiment bundle: its fused predictions on its training data (``split``).

    ``encoder``: a name ("minilm", a local model dir, "hashing"), an encoder object, or None (no centroid)."""
    from kgfusion.apps.common import repo_data_dir
    from kgfusion.apps.finance import rule_kinds  # noqa: F401 - registers the finance rule kinds
    from kgfusion.apps.finance.scoring import SentimentScorer
    from kgfusion.apps.finance.train import FinanceData
    from kgfusion.core.bundle import resolve_backend
    from kgfusion.core.predict import Predictor
    from kgfusion.knowledge.rules import load_domain_rules

    bundle = Path(bundle)
    if not bundle.is_dir():
        raise DataError(f"{bundle}: sentiment bundle not found; pass --bundle DIR (e.g. data/models/finsent-full)")
    data = data or FinanceData.default(data_dir or repo_data_dir())
    texts = reference_texts(bundle, data, split)
    backend = resolve_backend(bundle, backend)
    predictor = Predictor.from_bundle(bundle, backend=backend)  # type: ignore[arg-type]
    scorer = SentimentScorer(predictor, load_domain_rules("finance", list(rule_paths)), model_name=bundle.name)
    enc = make_encoder(encoder) if isinstance(encoder, str) else encoder
    meta = {"bundle": bundle.name, "bundle_sha256": bundle_hash(bundle), "backend": backend, "split": split,
            "data": {"phrasebank": data.phrasebank, "twitter": data.twitter}}
    return build_reference(scorer, texts, encoder=enc, meta=meta, max_items=max_items, seed=seed)


def load_or_build_reference(bundle: str | Path | None, reference: str | Path | None = None,
                            **build_kwargs: Any) -> tuple[DriftReference, str]:
    """(reference, where it came from): ``reference`` if given (it must exist), else the cache beside
    ``bundle`` when it matches the bundle, else built from the bundle and cached."""
    return load_or_build_cached(bundle, reference, lambda: build_bundle_reference(bundle, **build_kwargs),
                                "kgfusion finance drift-reference")


# ------------------------------------------------------------------------------------------ the table
def ensure_drift_table(store: FinanceStore) -> None:
    """Create the drift table (and any column a newer kgfusion added) in a store opened for writing."""
    cols = ", ".join(f"{name} {sql}" for name, sql in DRIFT_COLUMNS)
    store.con.execute(f"CREATE TABLE IF NOT EXISTS drift ({cols})")
    for name, sql in DRIFT_COLUMNS[1:]:
        store.con.execute(f"ALTER TABLE drift ADD COLUMN IF NOT EXISTS {name} {sql.split()[0]}")


def has_drift_table(store: FinanceStore) -> bool:
    names = {r[0] for r in store.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    return "drift" in names


def read_drift(store: FinanceStore) -> pd.DataFrame:
    """The stored per-day figures, oldest day first (no rows when drift was never computed)."""
    if not has_drift_table(store):
        return pd.DataFrame(columns=COLUMNS)
    frame = store.con.execute("SELECT * FROM drift ORDER BY day").df().reindex(columns=COLUMNS)
    # the verdict as Python True / False / None (no verdict), not a nullable-boolean NA
    frame["drifted"] = pd.Series([None if pd.isna(v) else bool(v) for v in frame["drifted"]], dtype=object,
                                 index=frame.index)
    return frame


def load_drift_table(db: str | Path) -> pd.DataFrame:
    """The stored figures of a finance DB, read-only (what the Models page shows; nothing is computed)."""
    with FinanceStore(db, read_only=True) as store:
        return read_drift(store)


def day_counts(store: FinanceStore) -> dict[Any, int]:
    rows = store.con.execute("SELECT CAST(ts AS DATE) AS day, count(*) FROM items WHERE ts IS NOT NULL "
                             "GROUP BY day ORDER BY day").fetchall()
    return {day: int(n) for day, n in rows}


def day_batch(store: FinanceStore, day: Any, sample: int = EMBED_SAMPLE) -> tuple[list[str], list[float], list[str]]:
    """(labels, confidences, up to ``sample`` distinct texts) of one day's items."""
    rows = store.con.execute("SELECT label, confidence FROM items WHERE ts IS NOT NULL AND CAST(ts AS DATE) = ?",
                             [day]).fetchall()
    labels = [str(r[0]) for r in rows if r[0] is not None]
    confidences = [float(r[1]) for r in rows if r[1] is not None]
    texts = [r[0] for r in store.con.execute(
        "SELECT text FROM (SELECT text, min(hash(id)) AS h FROM items WHERE ts IS NOT NULL AND CAST(ts AS DATE) = ? "
        "AND text IS NOT NULL GROUP BY text) ORDER BY h LIMIT ?", [day, int(sample)]).fetchall()]
    return labels, confidences, texts


def _basis(reference: DriftReference, thresholds: DriftThresholds, sample: int) -> str:
    key = json.dumps({"ref": reference.fingerprint, "t": thresholds.to_dict(), "sample": sample}, sort_keys=True)
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def figures_row(day: Any, items: int, fig: DriftFigures, reference: str, basis: str) -> dict[str, Any]:
    conf = fig.variable()
    return {"day": day, "items": items, "embedded": fig.embedded, "label_psi": fig.label_psi,
            "confidence_psi": conf.psi if conf else None, "confidence_ks": conf.ks if conf else None,
            "confidence_ks_p": conf.ks_p if conf else None, "confidence_mean": conf.mean if conf else None,
            "centroid_distance": fig.centroid_distance, "centroid_spread": fig.centroid_spread,
            "centroid_ratio": fig.centroid_ratio, "drifted": fig.drifted, "reasons": json.dumps(fig.reasons),
            "figures": json.dumps(fig.to_dict(), default=float), "reference": reference, "basis": basis,
            "computed": datetime.now(timezone.utc).replace(tzinfo=None)}


def update_drift(db: str | Path, reference: DriftReference, *, encoder=None,
                 thresholds: DriftThresholds | None = None, sample: int = EMBED_SAMPLE,
                 recompute: bool = False) -> pd.DataFrame:
    """Compute the figures of every day not stored yet (or stale; all with ``recompute``), store them in
    the drift table of ``db`` and return the whole table (``attrs["computed"]``: days computed now).

    ``encoder``: default the reference's own (built lazily, only when a day needs it)."""
    thresholds = thresholds or DriftThresholds()
    basis = _basis(reference, thresholds, sample)
    label = f"{reference.meta.get('bundle') or 'reference'}@{reference.fingerprint}"
    if encoder is not None and reference.centroid is not None:
        want = str(reference.meta.get("encoder"))
        if encoder_name(encoder) != want:
            raise ConfigError(f"the drift reference was built with the encoder {want!r}, not "
                              f"{encoder_name(encoder)!r}; rebuild the reference with this encoder")
    with FinanceStore(db) as store:
        ensure_drift_table(store)
        stored = {r[0]: (int(r[1]), r[2]) for r in
                  store.con.execute("SELECT day, items, basis FROM drift").fetchall()}
        todo = [(day, n) for day, n in day_counts(store).items()
                if recompute or stored.get(day) != (n, basis)]
        rows = []
        for day, n in todo:
            labels, confidences, texts = day_batch(store, day, sample)
            embeddings = None
            if reference.centroid is not None and texts:
                if encoder is None:
                    encoder = reference_encoder(reference)
                embeddings = encoder.encode(texts)
            fig = compare(reference, labels, confidences, embeddings, thresholds=thresholds)
            rows.append(figures_row(day, n, fig, label, basis))
        if rows:
            frame = pd.DataFrame(rows, columns=COLUMNS)
            store.con.register("_drift", frame)
            try:
                store.con.execute(f"INSERT OR REPLACE INTO drift ({', '.join(COLUMNS)}) "
                                  f"SELECT {', '.join(COLUMNS)} FROM _drift")
            finally:
                store.con.unregister("_drift")
        out = read_drift(store)
    out.attrs["computed"] = len(rows)
    return out


# ------------------------------------------------------------------------------------------- report
def _num(v: Any, fmt: str) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return "-"
    return "-" if np.isnan(f) else format(f, fmt)


def reasons_of(row: Any) -> list[str]:
    raw = row["reasons"] if isinstance(row, dict) else getattr(row, "reasons", None)
    try:
        return list(json.loads(raw)) if isinstance(raw, str) else []
    except ValueError:
        return []


def describe_reference(reference: DriftReference) -> str:
    m = reference.meta
    return (f"{m.get('bundle') or 'reference'} ({m.get('split', '?')} split, {reference.n} items, "
            f"encoder {m.get('encoder') or 'none'})")


def format_report(table: pd.DataFrame, reference: DriftReference, thresholds: DriftThresholds,
                  source: str = "") -> str:
    """The text of ``finance alerts --drift``: one line per day, then the drift alerts with their reasons."""
    lines = [f"drift vs {describe_reference(reference)}" + (f" from {source}" if source else ""),
             f"thresholds: {thresholds.describe()} a day"]
    if table.empty:
        return "\n".join([*lines, "no timestamped items in the database: nothing to compare"])
    lines.append(f"{'day':<10}  {'items':>6}  {'label PSI':>9}  {'conf PSI':>8}  {'conf KS D (p)':<16}  "
                 f"{'centroid (x spread)':<20}  verdict")
    for r in table.itertuples(index=False):
        ks = f"{_num(r.confidence_ks, '.3f')} ({_num(r.confidence_ks_p, '.2g')})"
        cen = f"{_num(r.centroid_distance, '.4f')} ({_num(r.centroid_ratio, '.2f')}x)"
        lines.append(f"{str(r.day)[:10]:<10}  {int(r.items):>6}  {_num(r.label_psi, '.3f'):>9}  "
                     f"{_num(r.confidence_psi, '.3f'):>8}  {ks:<16}  {cen:<20}  {verdict(r.drifted)}")
    alerts = drift_alerts(table)
    lines.append(f"{len(alerts)} drift alert{'s' if len(alerts) != 1 else ''}" + (":" if len(alerts) else ""))
    for r in alerts.itertuples(index=False):
        lines.append(f"  {str(r.day)[:10]}  " + "; ".join(reasons_of(r)))
    return "\n".join(lines)


def records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows (reasons and figures parsed)."""
    out = json.loads(table.drop(columns=["figures"]).to_json(orient="records", date_format="iso",
                                                               default_handler=str))
    for row, raw in zip(out, table["figures"]):
        row["reasons"] = json.loads(row["reasons"]) if isinstance(row.get("reasons"), str) else []
        row["day"] = str(row["day"])[:10]
        row["verdict"] = verdict(row.get("drifted"))
        row["notes"] = json.loads(raw).get("notes", []) if isinstance(raw, str) else []
    return out
