"""Unlabelled in-domain text for continued MLM pretraining (``kgfusion medical pretrain-corpus``).

Sources (under ``<data_dir>/datasets``): titles + abstracts of the NCBI-disease and BC5CDR *training*
PubTator files, and one line per Disease Ontology term ("<term> is a <parent>. <term> has symptom <x>.
<term> has allergic trigger <y>.", from HumanDO.tsv, requested/disease-symptom.tsv and
DO-subClassOf-anonymous.tsv; the DO files carry no definitions). Never development text: a document whose
PMID is in NCBIdevelopset_corpus.txt or CDR_DevelopmentSet.PubTator.txt is dropped, and so is every
sentence (of any source) that appears in ncbi_disease/devel.tsv or bc5cdr/devel.tsv, compared as
lower-cased word/punctuation token strings (so "22-oxa" and "22 - oxa" match).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from kgfusion.core.errors import DataError
from kgfusion.core.pretrain import CorpusBuild, clean_line, iter_pubtator

TRAIN_FILES = (("ncbi_disease", "NCBItrainset_corpus.txt"), ("bc5cdr", "CDR_TrainingSet.PubTator.txt"))
DEV_PUBTATOR = (("ncbi_disease", "NCBIdevelopset_corpus.txt"), ("bc5cdr", "CDR_DevelopmentSet.PubTator.txt"))
DEV_TSV = (("ncbi_disease", "devel.tsv"), ("bc5cdr", "devel.tsv"))
_TOKEN = re.compile(r"\w+|[^\w\s]")
# a sentence ends at . ! ? followed by space and an upper-case letter, digit or bracket
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9(\[])")
_ANON = re.compile(r"'([^']+)' some (?:'([^']+)'|(\S[^|]*))")


def sentence_key(text: str) -> str:
    """Lower-cased word/punctuation tokens joined by spaces: how sentences are compared with devel.tsv."""
    return " ".join(_TOKEN.findall(text.lower()))


def split_sentences(text: str) -> list[str]:
    """Rule-based sentence split of an abstract (enough to line up with the sentences of the IOB files)."""
    return [s for s in (p.strip() for p in _SENTENCE_END.split(text)) if s]


def read_iob_sentences(path: Path) -> list[str]:
    """Sentences of a token-per-line IOB file (first column; blank lines separate sentences)."""
    if not path.is_file():
        raise DataError(f"{path}: development file not found; pass --data-dir pointing at the folder holding "
                        "datasets/ (it is needed to keep development text out of the corpus)")
    out: list[str] = []
    tokens: list[str] = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not valid UTF-8 ({exc.reason}); re-save the file as UTF-8") from exc
    for line in text.splitlines() + [""]:
        if not line.strip() or line.startswith("-DOCSTART-"):
            if tokens:
                out.append(" ".join(tokens))
            tokens = []
        else:
            tokens.append(line.split("\t")[0].split()[0] if line.split() else "")
    return out


def _need(path: Path, what: str) -> Path:
    if not path.is_file():
        raise DataError(f"{path}: {what} not found; pass --data-dir pointing at the folder holding datasets/")
    return path


def _do_lines(do_dir: Path) -> tuple[list[str], dict[str, int]]:
    """One line per Disease Ontology term: is-a parent, symptoms and other logical restrictions."""
    from kgfusion.knowledge.builders import read_table

    rows = read_table(_need(do_dir / "HumanDO.tsv", "Disease Ontology table"), ("id", "label", "subClassOf"), "\t")
    parents: dict[str, list[str]] = {}
    labels: dict[str, str] = {}
    for row in rows:
        if row["id"].startswith("DOID:") and row["label"]:
            labels.setdefault(row["id"], row["label"])
            p = parents.setdefault(row["id"], [])
            if row["subClassOf"] and row["subClassOf"] not in p:
                p.append(row["subClassOf"])
    facts: dict[str, list[str]] = {doid: [] for doid in labels}
    counts = {"do_terms": len(labels), "do_symptom_facts": 0, "do_restriction_facts": 0}
    symptoms = do_dir / "requested" / "disease-symptom.tsv"
    if symptoms.is_file():
        for row in read_table(symptoms, ("disease_id", "symptom_label"), "\t"):
            if row["disease_id"] in facts and row["symptom_label"]:
                facts[row["disease_id"]].append(f"has symptom {row['symptom_label']}")
                counts["do_symptom_facts"] += 1
    anon = do_dir / "DO-subClassOf-anonymous.tsv"
    if anon.is_file():
        for row in read_table(anon, ("ID", "SubClass Of [ANON]"), "\t"):
            if row["ID"] not in facts:
                continue
            for part in row["SubClass Of [ANON]"].split("|"):
                m = _ANON.search(part)
                if m:
                    facts[row["ID"]].append(f"{m.group(1)} {(m.group(2) or m.group(3)).strip()}")
                    counts["do_restriction_facts"] += 1
    lines = []
    for doid, label in labels.items():
        sentences = [f"{label} is a {p}." for p in parents[doid]] or [f"{label}."]
        sentences += [f"{label} {fact}." for fact in dict.fromkeys(facts[doid])]
        lines.append(" ".join(sentences))
    return lines, counts


def build_medical_corpus(data_dir: str | Path) -> CorpusBuild:
    """Training abstracts + Disease Ontology lines, with development documents and sentences removed."""
    d = Path(data_dir) / "datasets"
    dev_pmids: set[str] = set()
    for folder, name in DEV_PUBTATOR:
        dev_pmids |= {doc_id for doc_id, _, _ in iter_pubtator(_need(d / folder / name, "development PubTator file"))}
    dev_keys = {sentence_key(s) for folder, name in DEV_TSV for s in read_iob_sentences(d / folder / name)}
    dev_keys.discard("")
    stats: dict[str, Any] = {"domain": "medical", "dev_pmids": len(dev_pmids), "dev_sentences": len(dev_keys),
                             "sources": {}, "excluded": {}}
    lines: list[str] = []
    seen: set[str] = set()
    dropped_sentences = duplicates = 0

    def keep(sentences: Iterable[str]) -> str:
        nonlocal dropped_sentences
        kept = []
        for s in sentences:
            if sentence_key(s) in dev_keys:
                dropped_sentences += 1
            else:
                kept.append(s)
        return clean_line(" ".join(kept))

    def add(text: str) -> bool:
        """Append a new document; False (counted) for an empty or repeated one."""
        nonlocal duplicates
        if text and text.lower() in seen:
            duplicates += 1
        elif text:
            seen.add(text.lower())
            lines.append(text)
            return True
        return False

    for folder, name in TRAIN_FILES:
        path = _need(d / folder / name, "training PubTator file")
        docs = kept_docs = by_pmid = 0
        for pmid, title, abstract in iter_pubtator(path):
            docs += 1
            if pmid in dev_pmids:
                by_pmid += 1
                continue
            kept_docs += add(keep([title, *split_sentences(abstract)]))
        stats["sources"][f"{folder}/{name}"] = {"documents": docs, "kept": kept_docs}
        stats["excluded"][f"{folder}/{name}: PMID in a development set"] = by_pmid
    do_lines, do_counts = _do_lines(d / "disease_ontology")
    kept_do = 0
    for line in do_lines:
        kept_do += add(keep(split_sentences(line)))
    stats["sources"]["disease_ontology"] = do_counts | {"kept": kept_do}
    stats["excluded"]["sentences equal to a devel.tsv sentence"] = dropped_sentences
    stats["excluded"]["duplicate documents"] = duplicates
    stats["documents"] = len(lines)
    return CorpusBuild(lines, stats)
