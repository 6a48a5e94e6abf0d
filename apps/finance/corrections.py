"""Finance corrections: an analyst says an item's sentiment (or topic) is wrong and gives the right one.

The corrections table lives in the finance monitor's DuckDB file next to the items it corrects
(core.lifecycle.corrections); the item's label, topic, text and model come from the items table (model:
the run that scored it), which is never changed. Labels are checked against the bundle's sentiment labels
(negative | neutral | positive when the bundle is not at hand); topics against the bundle's topic head and
the topics present in the database (plus the packaged topic list when that bundle is not at hand).
Matching ignores case; the stored value is the canonical spelling.

CSV import: columns ``item_id`` (or ``id``) and at least one of ``label`` (or ``sentiment``) and
``topic``; an optional ``who`` column names the corrector of that row (else --who).
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgfusion.apps.finance.scoring import SENTIMENT_LABELS
from kgfusion.apps.finance.store import FinanceStore
from kgfusion.core.lifecycle.corrections import (
    Correction,
    CorrectionError,
    CorrectionStore,
    ImportResult,
    RowRejected,
    bundle_identity,
    check_who,
    import_csv,
)
from kgfusion.core.textfile import brief

ID_COLUMNS = ("item_id", "id")
LABEL_COLUMNS = ("label", "sentiment")


@dataclass
class ItemInfo:
    item_id: str
    text: str
    label: str | None
    topic: str | None
    model: str
    model_version: str


@dataclass
class Vocabulary:
    """What a correction may say: the sentiment labels and the topics (canonical spellings)."""

    labels: tuple[str, ...] = SENTIMENT_LABELS
    topics: tuple[str, ...] = ()
    model_versions: dict[str, str] = field(default_factory=dict)  # bundle name -> version

    def label(self, value: str) -> str:
        return _pick(value, self.labels, "label", "--label")

    def topic(self, value: str) -> str:
        if not self.topics:
            raise CorrectionError(f"topic {brief(value)}: this database has no topics (its model has no topic head); "
                                  "correct the sentiment only, or pass --bundle with a topic head")
        return _pick(value, self.topics, "topic", "--topic")


def _pick(value: str, allowed: Sequence[str], what: str, option: str) -> str:
    by_low = {a.lower(): a for a in allowed}
    got = by_low.get(str(value).strip().lower())
    if got is None:
        names = ", ".join(allowed[:25]) + (f", ... ({len(allowed)} in all)" if len(allowed) > 25 else "")
        raise CorrectionError(f"{what} {brief(value)} is not allowed; use one of {names} ({option})")
    return got


def _bundle_dir(name: str, bundle: str | Path | None) -> Path | None:
    from kgfusion.apps.common import repo_data_dir

    path = Path(bundle) if bundle else repo_data_dir() / "models" / name if name else None
    return path if path is not None and (path / "bundle.json").is_file() else None


def vocabulary(store: FinanceStore, bundle: str | Path | None = None) -> Vocabulary:
    """Labels and topics for ``store``: the bundle's (``bundle``, else the models that scored the items, found
    under data/models/) and the topics present in the items table."""
    from kgfusion.core.bundle import read_manifest
    from kgfusion.core.errors import KgfusionError
    from kgfusion.core.multitask import manifest_heads

    names = [r[0] for r in store.con.execute("SELECT DISTINCT model FROM runs WHERE model IS NOT NULL").fetchall()]
    labels: list[str] = []
    topics: list[str] = list(store.topic_counts())
    versions: dict[str, str] = {}
    for name in names or [""]:
        path = _bundle_dir(name, bundle)
        if path is None:
            continue
        try:
            manifest = read_manifest(path)
            heads = (manifest_heads(manifest.extra) or ({}, ""))[0]
        except KgfusionError:
            continue
        labels += [lab for lab in heads.get("sentiment", manifest.labels) if lab not in labels]
        topics += [t for t in heads.get("topic", []) if t not in topics]
        versions[name or path.name] = bundle_identity(path)[1]
    if topics and not any(versions):  # scored by a topic head we cannot open: the packaged topic vocabulary
        from kgfusion.apps.finance.topics import TopicCatalog

        topics += [t for t in TopicCatalog.default().labels if t not in topics]
    return Vocabulary(tuple(labels) or SENTIMENT_LABELS, tuple(topics), versions)


def open_store(db: str | Path) -> FinanceStore:
    """The finance store for writing corrections: it must exist and hold items (a monitor database)."""
    FinanceStore(db, read_only=True).close()  # not found / not a finance database: one clear error, nothing created
    return FinanceStore(db)


def item_info(store: FinanceStore, item_id: str, vocab: Vocabulary | None = None) -> ItemInfo:
    """The item's text, predicted label and topic and the model that scored it; CorrectionError if unknown."""
    topic = "i.topic" if store.has_topic_columns else "CAST(NULL AS VARCHAR)"
    row = store.con.execute(f"SELECT i.text, i.label, {topic}, r.model FROM items i LEFT JOIN runs r "
                            "USING (run_id) WHERE i.id = ?", [str(item_id)]).fetchone()
    if row is None:
        raise CorrectionError(f"item {brief(item_id)} is not in {store.path}; use an id of its items table "
                              "(the id column of `kgfusion finance score --out` / the page's evidence items)")
    model = row[3] or ""
    version = (vocab.model_versions if vocab else {}).get(model, "")
    return ItemInfo(str(item_id), row[0] or "", row[1], row[2], model, version)


def corrections_for(info: ItemInfo, vocab: Vocabulary, who: str, label: str | None = None,
                    topic: str | None = None, source: str = "cli") -> list[Correction]:
    """The sentiment and/or topic corrections of one item (old value = the model's prediction)."""
    if not label and not topic:
        raise CorrectionError(f"item {brief(info.item_id)}: give the right label and/or topic (--label, --topic)")
    out = []
    if label:
        out.append(Correction("finance", info.item_id, "sentiment", vocab.label(label), info.text, who,
                              old_value=info.label, model=info.model, model_version=info.model_version,
                              source=source))
    if topic:
        out.append(Correction("finance", info.item_id, "topic", vocab.topic(topic), info.text, who,
                              old_value=info.topic, model=info.model, model_version=info.model_version,
                              source=source))
    return out


def correct_item(db: str | Path, item_id: str, *, who: str, label: str | None = None, topic: str | None = None,
                 bundle: str | Path | None = None, source: str = "cli") -> list[Correction]:
    """Store the corrections of one item in ``db``; returns them as stored (with id and time)."""
    who = check_who(who)
    with open_store(db) as store:
        vocab = vocabulary(store, bundle)
        made = corrections_for(item_info(store, item_id, vocab), vocab, who, label, topic, source)
        return CorrectionStore(con=store.con, path=store.path).add_many(made)


def import_corrections(db: str | Path, csv_path: str | Path, *, who: str, bundle: str | Path | None = None,
                       encoding: str = "utf-8") -> ImportResult:
    """Import a corrections CSV (see the module docstring); bad rows go to CSV.rejects.csv with the reason."""
    who = check_who(who)
    with open_store(db) as store:
        vocab = vocabulary(store, bundle)
        corrections = CorrectionStore(con=store.con, path=store.path)

        def to_corrections(row: dict[str, str], line: int) -> list[Correction]:
            item_id = next((row[c] for c in ID_COLUMNS if row.get(c)), "")
            if not item_id:
                raise RowRejected("empty item_id")
            label = next((row[c] for c in LABEL_COLUMNS if row.get(c)), "")
            return corrections_for(item_info(store, item_id, vocab), vocab, row.get("who") or who, label or None,
                                   row.get("topic") or None, source="")

        return import_csv(corrections, csv_path, to_corrections, required=(ID_COLUMNS, (*LABEL_COLUMNS, "topic")),
                          encoding=encoding)


def item_choices(evidence: Sequence[dict[str, Any]]) -> dict[str, str]:
    """Item id -> a short description, for the page's picker (evidence items of an alert)."""
    out: dict[str, str] = {}
    for item in evidence:
        if item.get("id") is not None and str(item["id"]) not in out:
            text = " ".join(str(item.get("text", "")).split())
            out[str(item["id"])] = f"{item.get('label', '?')} · {text[:70]}"
    return out
